"""The nbgrader course, with real nbgrader: built from course/, released, fetched, submitted,
collected, graded (tests in the grading containers; nbgrader's autograde executes nothing) and fed
back; bad submissions reported while the batch goes on. That the reference earns every visible point
and an untouched release none, module by module, is checked in the containers (test_autograder.py)."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
import yaml

import hub_config
from autograder import coursedir, hidden, nbgrader_adapter
from autograder.gradebook import HIDDEN_CELL
from autograder.nbgrader_adapter import nbgrader_env
from course.build import sources
from course.build.skeleton import write_skeleton
from course.build.leaks import find_leaks
from tests.test_autograder import grader_image  # noqa: F401
from tinytorch import export

MODULES = sources.course_modules()
COURSE_ID = "tt101"

pytestmark = pytest.mark.filterwarnings("ignore:.*not in session")  # nbgrader 0.9.6 + SQLAlchemy 2 noise


def identity(home: Path) -> dict[str, str]:
    """The environment of one person: their own home, so their own nbgrader cache (which
    fetch_feedback reads) and Jupyter settings, never the machine's."""
    home.mkdir(parents=True, exist_ok=True)
    return {**nbgrader_env(), "HOME": str(home), "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"),
            "JUPYTER_CONFIG_DIR": str(home / ".jupyter")}


def nbgrader(*args: str, cwd: Path, home: Path | None = None) -> subprocess.CompletedProcess:
    """A real `nbgrader` command, as a TA or a student types it (in their home, or the TA's)."""
    env = identity(home or cwd.parent / "homes" / "tina")
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A course site: the config file the hub would read, an exchange, the course directory built from it."""
    top = tmp_path_factory.mktemp("site")
    exchange = top / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)  # nbgrader's documented mode for the exchange root
    (top / "course.yml").write_text(yaml.safe_dump({
        "course_id": COURSE_ID,
        "nbgrader": {"course_root": str(top / "course"), "exchange_root": str(exchange), "grader_uid": 1999},
        "roster": {"students": ["alice", "bob"], "tas": ["tina"], "admins": ["admin"],
                   "names": {"alice": "Alice  van Example", "tina": "Tina"}},  # bob has none
        "hub": {"public_url": "https://localhost"},  # the hub's keys: the course build reads them too
    }))
    result = subprocess.run([sys.executable, "-m", "autograder", "course", "--config", str(top / "course.yml")],
                            cwd=sources.ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return top


@pytest.fixture(scope="module")
def course(site) -> Path:
    return site / "course"


# ---- the course config ------------------------------------------------------------------------

def test_course_directory_settings_come_from_the_hub_file(tmp_path):
    """hub_config.py is the one reader of the course config: the course directory's nbgrader_config.py holds
    the values of the file the hub reads, and the defaults are the hub's."""
    path = tmp_path / "course.yml"
    path.write_text(f"course_id: ml101\nnbgrader: {{course_root: {tmp_path / 'here'}, exchange_root: /srv/x}}\n"
                    "roster: {students: [ann, bo], tas: [tia], admins: [root1]}\nspawner: {mem_limit: 2G}\n")
    cfg = hub_config.load_course_config(path)
    assert (cfg["course_id"], cfg["nbgrader"]["course_root"], cfg["nbgrader"]["exchange_root"]) == \
        ("ml101", str(tmp_path / "here"), "/srv/x")
    assert cfg["roster"]["students"] == ["ann", "bo"] and cfg["roster"]["tas"] == ["tia"]
    defaults = hub_config.load_course_config(None)
    assert (defaults["course_id"], defaults["nbgrader"]["course_root"], defaults["nbgrader"]["exchange_root"]) == \
        ("tinytorch", "/srv/nbgrader/course", "/srv/nbgrader/exchange")
    text = coursedir.nbgrader_config(cfg, tmp_path / "here", "course.yml")
    assert "c.CourseDirectory.course_id = 'ml101'" in text and "c.Exchange.root = '/srv/x'" in text
    assert f"c.CourseDirectory.db_url = 'sqlite:///{tmp_path / 'here' / 'gradebook.db'}'" in text


@pytest.mark.parametrize("text, message", [
    ("course_id: Intro ML\n", "course_id: 'Intro ML' does not match"),
    ("roster: {students: alice}\n", "roster.students: 'alice' is not of type 'array'"),
    ("roster: {students: [alice, alice]}\n", "roster.students: ['alice', 'alice'] has non-unique elements"),
    ("roster: {students: [alice], tas: [alice]}\n", "alice listed as both student and TA"),
    ("roster: {students: [alice], names: {bob: Bob}}\n", "roster.names: bob not on the roster"),
    ("roster: {students: [alice], names: {alice: \"A\\nB\"}}\n", "roster.names.alice: 'A\\nB' does not match"),
    ("nbgrader: [1]\n", "nbgrader: [1] is not of type 'object'"),
    ("nbgrader: {exchange_root: 3}\n", "nbgrader.exchange_root: 3 is not of type 'string'"),
    ("nbgrader: {exchange_root: exchange}\n", "nbgrader.exchange_root: 'exchange' does not match '^/'"),
    ("nbgrader: {course_dir: /srv/x}\n", "Additional properties are not allowed ('course_dir' was unexpected)"),
    ("course_id: [unclosed\n", "is not valid YAML/JSON"),
    ("- a list\n", "must hold a mapping"),
])
def test_course_command_reports_config_errors(tmp_path, text, message):
    """The course directory's build reads the config with the hub's rules: a bad key is named, nothing is written."""
    path = tmp_path / "course.yml"
    path.write_text(text)
    result = subprocess.run([sys.executable, "-m", "autograder", "course", str(tmp_path / "course"), "--config",
                             str(path)], cwd=sources.ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr and str(path) in result.stderr, result.stderr
    assert not (tmp_path / "course").exists()


def test_course_command_reports_a_missing_config_or_directory(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "autograder", "course", *args], cwd=sources.ROOT,
                              capture_output=True, text=True)
    missing = run("--config", str(tmp_path / "nope.yml"))
    assert missing.returncode == 2 and "nope.yml not found" in missing.stderr
    nowhere = run()
    assert nowhere.returncode == 2 and "name the course directory" in nowhere.stderr


def test_the_roster_csv_gives_names(tmp_path):
    """The roster CSV's optional name column: one line, single spaces; a bad name stops the deploy with its line."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "read_roster", sources.ROOT / "deploy" / "roles" / "preflight" / "files" / "read_roster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "roster.csv"
    path.write_text("username,role,name\nalice,student,  Alice   Example \nbob,student,\ntina,ta,Tina T\n")
    assert module.read_roster(str(path)) == (
        {"students": ["alice", "bob"], "tas": ["tina"], "names": {"alice": "Alice Example", "tina": "Tina T"}}, [])
    path.write_text("username,role\nalice,student\n")  # no name column: no names
    assert module.read_roster(str(path)) == ({"students": ["alice"], "tas": [], "names": {}}, [])
    path.write_text("username,role,name\nalice,student,Al\x07ice\nbob,student," + "b" * 201 + "\n")
    _, problems = module.read_roster(str(path))
    assert [p.split(": ")[1] for p in problems] == ["line 2", "line 3"], problems


# ---- the course directory ---------------------------------------------------------------------

def test_one_assignment_per_module_in_source_release_and_gradebook(course):
    from nbgrader.api import Gradebook

    slugs = [m.slug for m in MODULES]
    assert len(slugs) == 15
    for slug in slugs:
        assert (course / "source" / slug / f"{slug}.ipynb").is_file()
        assert [p.name for p in (course / "release" / slug).iterdir()] == [f"{slug}.ipynb"]
    settings = (course / "nbgrader_config.py").read_text()
    assert f"c.CourseDirectory.course_id = '{COURSE_ID}'" in settings
    assert f"c.Exchange.root = '{course.parent / 'exchange'}'" in settings
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        assert sorted(a.name for a in gradebook.assignments) == slugs
        assert sorted(s.id for s in gradebook.students) == ["alice", "bob"]
        tensor = gradebook.find_assignment("02_tensor")
        visible = sum(c.metadata["nbgrader"]["points"] for c in nbformat.read(
            course / "source" / "02_tensor" / "02_tensor.ipynb", as_version=4).cells if sources.is_test_cell(c))
        assert tensor.max_code_score == visible > 0  # the visible tests' points, from the course source
        # the hidden tests' task cell counts toward the assignment's total, next to visible and written points
        (notebook,) = tensor.notebooks
        assert [c.max_score for c in notebook.task_cells if c.name == HIDDEN_CELL] == [hidden.points("02_tensor")]
        assert tensor.max_score == tensor.max_code_score + tensor.max_written_score + hidden.points("02_tensor")


def test_the_rosters_names_reach_the_gradebook(course):
    """formgrader shows "last name, first name" from the gradebook: the course build enters the roster's names."""
    from nbgrader.api import Gradebook

    assert coursedir.split_name("Ada King Lovelace") == ("Ada King", "Lovelace")
    assert coursedir.split_name("Plato") == ("", "Plato")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        names = {s.id: (s.first_name, s.last_name) for s in gradebook.students}
    assert names == {"alice": ("Alice van", "Example"), "bob": (None, None)}


def test_release_stubs_the_solutions_and_keeps_tests_and_the_export_cell(course):
    for module in MODULES:
        source = nbformat.read(course / "source" / module.slug / f"{module.slug}.ipynb", as_version=4)
        release = nbformat.read(course / "release" / module.slug / f"{module.slug}.ipynb", as_version=4)
        by_id = {c.metadata["nbgrader"]["grade_id"]: c for c in release.cells if "nbgrader" in c.metadata}
        for cell in source.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") and cell.cell_type == "code":
                stub = by_id[meta["grade_id"]].source
                assert stub.count("# YOUR CODE HERE") == cell.source.count(sources.BEGIN_SOLUTION) > 0
                assert stub.count("raise NotImplementedError()") >= cell.source.count(sources.BEGIN_SOLUTION)
            elif meta.get("solution"):
                assert by_id[meta["grade_id"]].source == "YOUR ANSWER HERE"
            elif meta.get("grade"):
                assert by_id[meta["grade_id"]].source == cell.source, "visible tests reach students unchanged"
        assert release.cells[-1].source == f'from tinytorch.export import export_notebook\n\n' \
                                           f'export_notebook("{module.slug}.ipynb")'
        if module.slug in hidden.assignments():  # the hidden tests' task cell, before the export's prose and code
            task = release.cells[-3]
            assert task.cell_type == "markdown" and task.metadata["nbgrader"]["grade_id"] == HIDDEN_CELL
            assert task.metadata["nbgrader"]["points"] == hidden.points(module.slug)


def test_release_holds_no_solution_mark_scheme_or_hidden_test(course):
    leaks = find_leaks(course / "release")
    assert not leaks, "the release leaks:\n" + "\n".join(leaks[:20])
    assert len(find_leaks(course / "source")) > 30, "the same check finds the solutions in source/"


@pytest.mark.slow
def test_course_build_is_deterministic_and_protects_hand_edits(site, course, tmp_path, monkeypatch):
    """Building again changes nothing; a second course directory gets the same notebooks."""
    snapshot = {p: p.read_bytes() for p in course.rglob("*.ipynb")}
    cfg = hub_config.load_course_config(site / "course.yml")
    assert coursedir.write_course_directory(course, cfg, str(site / "course.yml")) == []
    assert {p: p.read_bytes() for p in course.rglob("*.ipynb")} == snapshot
    other = tmp_path / "again"
    coursedir.write_course_directory(other, cfg, str(site / "course.yml"))
    for path, data in snapshot.items():
        assert (other / path.relative_to(course)).read_bytes() == data, path

    edited = other / "source" / "03_activations" / "03_activations.ipynb"
    edited.write_text(edited.read_text().replace("ReLU", "ReLu"))
    with pytest.raises(sources.CourseError, match="source/03_activations/03_activations.ipynb changed since the last"):
        coursedir.write_course_directory(other, cfg, str(site / "course.yml"))
    assert "ReLu" in edited.read_text(), "the edit is kept until the TA decides"

    # --force overwrites the edit; a module gone from course/ leaves source/ and release/ with it
    monkeypatch.setattr(coursedir, "course_modules", lambda: MODULES[:-1])
    changed = coursedir.write_course_directory(other, cfg, str(site / "course.yml"), force=True)
    gone = other / "source" / MODULES[-1].slug / f"{MODULES[-1].slug}.ipynb"
    assert edited in changed and gone in changed and "ReLu" not in edited.read_text()
    assert not gone.parent.exists() and not (other / "release" / MODULES[-1].slug).exists()


# ---- what students run --------------------------------------------------------------------------

def test_student_image_context_holds_the_skeleton_and_no_secret(tmp_path):
    """What docker/build.sh puts in the student image: the skeleton with the overlay hook, no solution,
    mark scheme, reference module or hidden test."""
    context = tmp_path / "student"
    result = subprocess.run(["bash", str(sources.ROOT / "docker" / "build.sh"), "context", "student", str(context)],
                            env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "TINYTORCH_OVERLAY" in (context / "tinytorch" / "__init__.py").read_text()
    assert (context / "tinytorch" / "export.py").is_file()
    leaks = find_leaks(context)
    assert not leaks, "the student image would leak:\n" + "\n".join(leaks[:20])


def first_solution_cell(nb) -> int:
    return min(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("solution")
               and c.cell_type == "code")


@pytest.fixture(scope="module")
def skeleton(tmp_path_factory) -> Path:
    return write_skeleton(tmp_path_factory.mktemp("image"))


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.slug)
def test_released_notebook_runs_until_the_first_stub(module, course, skeleton, tmp_path, monkeypatch, datasets):
    """In the student image (the skeleton, plus modules < N exported by a student who finished them),
    the release runs without error up to the first call of an exercise left undone."""
    overlay = tmp_path / "overlay"
    for earlier in MODULES[: MODULES.index(module)]:
        export.export_notebook(course / "source" / earlier.slug / f"{earlier.slug}.ipynb", overlay, check=False)
    for name, value in {"PYTHONPATH": str(skeleton.parent), "PYTHONSAFEPATH": "1",
                        "TINYTORCH_OVERLAY": str(overlay), "TINYTORCH_DATASETS": str(datasets)}.items():
        monkeypatch.setenv(name, value)
    nb = nbformat.read(course / "release" / module.slug / f"{module.slug}.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    failure = None
    with client.setup_kernel():
        client.execute_cell(nbformat.v4.new_code_cell(
            "import sys, tinytorch; print(tinytorch.__file__)"), 0)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except nbclient.exceptions.CellExecutionError as error:
                failure = (index, error.ename, error.evalue)
                break
        loaded = client.execute_cell(nbformat.v4.new_code_cell(
            "import sys\nfor name, m in sorted(sys.modules.items()):\n"
            "    if name.startswith('tinytorch.'): print(name, getattr(m, '__file__', None))"), 0)
    files = dict(line.split() for line in "".join(o.get("text", "") for o in loaded.outputs).splitlines())
    for earlier in MODULES[: MODULES.index(module)]:
        name = f"tinytorch.{sources.export_target(sources.read_notebook(earlier), earlier)}"
        assert name not in files or files[name].startswith(str(overlay)), f"{name} came from {files[name]}"
    assert failure is not None, "an untouched release must fail somewhere: its exercises are stubs"
    index, ename, evalue = failure
    assert index >= first_solution_cell(nb), f"setup cell {index} failed before any exercise: {ename}: {evalue}"
    assert ename == "NotImplementedError" and "implement in module" not in evalue, \
        f"cell {index} failed with {ename}: {evalue} (expected the notebook's own stub)"


@pytest.mark.slow
@pytest.mark.notebook
def test_a_student_who_finished_module_02_gets_their_tensor_in_module_03(course, skeleton, tmp_path, monkeypatch):
    """The student's path end to end: modules 01 (the profiler later modules measure with) and 02 solved and
    run to their last cell (the export), then module 03's notebook, in a new kernel, imports that student's
    Tensor."""
    home = tmp_path / "home"
    for slug in ("01_setup", "02_tensor", "03_activations"):
        (home / slug).mkdir(parents=True)
    for slug in ("01_setup", "02_tensor"):  # all exercises done
        shutil.copy(course / "source" / slug / f"{slug}.ipynb", home / slug)
    shutil.copy(course / "release" / "03_activations" / "03_activations.ipynb", home / "03_activations")
    for name, value in {"PYTHONPATH": str(skeleton.parent), "PYTHONSAFEPATH": "1", "HOME": str(home)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TINYTORCH_OVERLAY", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)

    for slug, target in (("01_setup", "profiler.py"), ("02_tensor", "tensor.py")):
        solved = nbformat.read(home / slug / f"{slug}.ipynb", as_version=4)
        nbclient.NotebookClient(solved, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(home / slug)}}).execute()
        assert "-> " + str(home / ".tinytorch" / "overlay" / target) in solved.cells[-1].outputs[0]["text"]

    nb = nbformat.read(home / "03_activations" / "03_activations.ipynb", as_version=4)
    first_code = next(i for i, c in enumerate(nb.cells) if sources.is_export_cell(c))
    probe = nbformat.v4.new_code_cell("import sys\nprint(Tensor.__module__, sys.modules[Tensor.__module__].__file__)\n"
                                      "print((Tensor([1.0, -2.0]) * 3).data)")
    nb.cells.insert(first_code + 1, probe)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(home / "03_activations")}})
    with client.setup_kernel():
        for index in range(first_code + 2):
            if nb.cells[index].cell_type == "code":
                client.execute_cell(nb.cells[index], index)
    printed = probe.outputs[0]["text"]
    assert f"tinytorch.tensor {home / '.tinytorch' / 'overlay' / 'tensor.py'}" in printed and "[ 3. -6.]" in printed


# ---- grading ------------------------------------------------------------------------------------

validations: dict[str, str] = {}


def student_submits(site: Path, student: str, slug: str, work=None, validate: bool = False) -> Path:
    """A student fetches the assignment from the exchange, works on it (``work(folder)``), submits."""
    home = site / "homes" / student
    home.mkdir(parents=True, exist_ok=True)
    exchange = [f"--course={COURSE_ID}", f"--Exchange.root={site / 'exchange'}"]
    fetched = nbgrader("fetch_assignment", slug, *exchange, cwd=home, home=home)
    assert fetched.returncode == 0 and (home / slug / f"{slug}.ipynb").is_file(), fetched.stderr
    if work:
        work(home / slug)
    if validate:
        validated = nbgrader("validate", f"{slug}/{slug}.ipynb", cwd=home, home=home)  # the Validate button
        validations[student] = validated.stdout + validated.stderr
    submitted = nbgrader("submit", slug, *exchange, f"--student={student}", cwd=home, home=home)
    assert submitted.returncode == 0, submitted.stderr
    return home


def solve(course: Path, slug: str):
    """The student's work: every solution cell filled in (with the reference)."""
    def work(folder: Path) -> None:
        reference = nbformat.read(course / "source" / slug / f"{slug}.ipynb", as_version=4)
        answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in reference.cells
                   if c.metadata.get("nbgrader", {}).get("solution")}
        path = folder / f"{slug}.ipynb"
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id]
        nbformat.write(nb, path)
    return work


def delete_grade_cell(grade_id: str):
    def work(folder: Path) -> None:
        (path,) = folder.glob("*.ipynb")
        nb = json.loads(path.read_text())
        nb["cells"] = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") != grade_id]
        path.write_text(json.dumps(nb))
    return work


def rename_notebook(folder: Path) -> None:
    (path,) = folder.glob("*.ipynb")
    path.rename(folder / "Copy1.ipynb")


def empty(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink()


@pytest.mark.slow
def test_round_trip_two_students_one_ta_and_bad_submissions(site, course, grader_image):
    """release -> fetch -> submit -> collect -> grade (tests in the grading containers, nbgrader's autograde
    executing nothing) -> feedback -> fetch_feedback, with real nbgrader. Alice solves 01_setup, Bob submits
    it untouched; carol, dave and erin submit broken work in the same batch."""
    slug = "01_setup"
    released = nbgrader("release_assignment", slug, cwd=course)  # the TA
    assert released.returncode == 0, released.stderr
    assert (site / "exchange" / COURSE_ID / "outbound" / slug / f"{slug}.ipynb").is_file()

    alice = student_submits(site, "alice", slug, solve(course, slug), validate=True)
    student_submits(site, "bob", slug, validate=True)
    student_submits(site, "carol", slug, delete_grade_cell("test-setup-predictions"))
    student_submits(site, "dave", slug, rename_notebook)
    student_submits(site, "erin", slug, empty)
    assert "Success! Your notebook passes all the tests." in validations["alice"], validations["alice"]
    assert "VALIDATION FAILED ON" in validations["bob"] and "NotImplementedError" in validations["bob"]
    wrong = nbgrader("submit", "01_setp", f"--course={COURSE_ID}", f"--Exchange.root={site / 'exchange'}",
                     "--student=fred", cwd=alice, home=alice)
    assert wrong.returncode != 0 and "Assignment not found" in wrong.stderr

    # the TA's command
    ta = subprocess.run([sys.executable, "-m", "autograder", "grade", slug, "--course", str(course),
                         "--release-feedback", "--image", grader_image],
                        cwd=sources.ROOT, env=identity(site / "homes" / "tina"), capture_output=True, text=True,
                        timeout=900)
    report = ta.stdout
    assert ta.returncode == 1, "some submissions could not be graded: the TA's command says so\n" + report + ta.stderr
    assert "5 submission(s) collected" in report
    lines = {line.split()[0]: line for line in report.splitlines() if line.startswith("  ")}
    hidden_points = f"{hidden.points(slug):g}"
    visible = sum(c.metadata["nbgrader"]["points"] for c in sources.read_notebook(sources.find_module(slug)).cells
                  if sources.is_test_cell(c))
    assert lines["alice"].split()[1:4] == ["graded", f"{visible:g}/{visible:g}", f"{hidden_points}/{hidden_points}"], report
    assert lines["bob"].split()[1:4] == ["graded", f"0/{visible:g}", f"0/{hidden_points}"], report
    assert "graded" in lines["carol"] and "test-setup-predictions were deleted: they score 0" in lines["carol"]
    assert "skipped" in lines["dave"] and "01_setup.ipynb is missing; the submission has Copy1.ipynb" in lines["dave"]
    assert "skipped" in lines["erin"] and "empty submission" in lines["erin"]

    for student in ("alice", "bob", "carol"):
        for step in ("submitted", "autograded", "feedback"):
            name = f"{slug}.html" if step == "feedback" else f"{slug}.ipynb"
            assert (course / step / student / slug / name).is_file(), (step, student)
    assert not (course / "autograded" / "dave").exists() and not (course / "autograded" / "erin").exists()

    # feedback shows a student their own notebook and the visible tests: never a mark scheme or hidden test
    assert find_leaks(course / "feedback" / "bob") == []
    assert any("solution text from 01_setup" in leak for leak in find_leaks(course / "feedback" / "alice")), \
        "the same check sees alice's own (reference) answers in her feedback"

    exported = nbgrader("export", cwd=course)
    assert exported.returncode == 0, exported.stderr
    rows = {(r["assignment"], r["student_id"]): r for r in csv.DictReader((course / "grades.csv").open())}
    # the visible tests' points + 6 of written answers a TA grades by hand + the hidden tests
    assert float(rows[(slug, "alice")]["raw_score"]) == visible + hidden.points(slug)
    assert float(rows[(slug, "alice")]["max_score"]) == visible + 6 + hidden.points(slug), "visible, written and hidden points"
    assert rows[(slug, "bob")]["raw_score"] == "0.0" and rows[(slug, "carol")]["raw_score"] == "0.0"
    assert (slug, "dave") not in rows or rows[(slug, "dave")]["timestamp"] == ""

    fetched = nbgrader("fetch_feedback", slug, f"--course={COURSE_ID}", f"--Exchange.root={site / 'exchange'}",
                       "--student=alice", cwd=alice, home=alice)
    assert fetched.returncode == 0, fetched.stderr
    (feedback,) = (alice / slug / "feedback").glob(f"*/{slug}.html")  # hers alone
    assert 'test-setup-predictions">Test cell</a> (Score: 2.0 / 2.0)' in feedback.read_text()


def test_submission_checks_name_the_problem(course):
    """Before nbgrader runs, each broken submission gets a message that says what is wrong and what to do."""
    graded = nbgrader_adapter.Course(course)
    slug, folder = "03_activations", course / "submitted"

    def submission(student: str, files: dict[str, str]) -> tuple[bool, list[str]]:
        (folder / student / slug).mkdir(parents=True)
        for name, text in files.items():
            (folder / student / slug / name).write_text(text)
        return graded.check_submission(slug, student)

    release = (course / "release" / slug / f"{slug}.ipynb").read_text()
    other = (course / "release" / "04_layers" / "04_layers.ipynb").read_text()
    assert graded.check_submission(slug, "nobody") == (False, [f"no submission collected (expected "
                                                              f"{folder / 'nobody' / slug})"])
    ok, problems = submission("zoe", {f"{slug}.ipynb": "{not json"})
    assert not ok and problems[0].startswith(f"{slug}.ipynb is not a readable notebook")
    ok, problems = submission("yan", {f"{slug}.ipynb": other})
    assert ok and "none of the assignment's test cells (another assignment's notebook?)" in problems[0]
    ok, problems = submission("xia", {"notes.txt": "hello"})
    assert not ok and "empty submission: no notebook" in problems[0]
    assert submission("wes", {f"{slug}.ipynb": release}) == (True, [])


def test_grading_an_unknown_assignment_names_the_known_ones(course):
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", "01_setp", "--course", str(course)],
                            cwd=sources.ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "no assignment '01_setp'" in result.stderr and "01_setup, 02_tensor" in result.stderr
    outside = subprocess.run([sys.executable, "-m", "autograder", "grade", "01_setup", "--course", str(course.parent)],
                             cwd=sources.ROOT, capture_output=True, text=True)
    assert outside.returncode == 2 and "is not a course directory" in outside.stderr


def test_autograde_executes_nothing_and_scores_only_the_grading_containers_results(course, tmp_path):
    """Student code never runs on the course server. nbgrader's autograde there (Course.autograde, which
    `autograder grade` calls; formgrader's Autograde button and `nbgrader autograde`, with the course's
    config) executes no cell. Test cells score what the grading container found; a submission it could not
    grade scores 0, never nbgrader's full marks for a test cell without output."""
    from nbgrader.api import Gradebook

    slug = "02_tensor"
    marker = tmp_path / "executed"
    nb = nbformat.read(course / "source" / slug / f"{slug}.ipynb", as_version=4)  # every answer right...
    for cell in nb.cells:  # ... and every code cell (export or not, even the tests: nbgrader restores those) writes
        if cell.cell_type == "code":
            cell.source += f"\nopen({str(marker)!r}, 'a').write('ran on the host')\n"
    for student in ("mia", "noah", "olga"):
        (course / "submitted" / student / slug).mkdir(parents=True)
        nbformat.write(nb, course / "submitted" / student / slug / f"{slug}.ipynb")
    tests = [sources.test_name(g) for g in nbgrader_adapter.Course(course).expected_notebooks(slug)[f"{slug}.ipynb"]]
    results = {"mia": {name: {"passed": True, "message": ""} for name in tests},
               "noah": "the grading container exited with status 137 without a result"}
    results["mia"][tests[1]] = {"passed": False, "message": "AssertionError: a + b is wrong\n  at the test's line: assert x"}
    del results["mia"][tests[2]]  # a test the container sent nothing for
    outcomes = {o.student: o for o in nbgrader_adapter.Course(course).autograde(slug, results)}
    button = nbgrader("autograde", slug, "--student=olga", cwd=course)  # what formgrader's Autograde button runs
    assert button.returncode == 0, button.stderr
    assert not marker.exists(), "nbgrader executed the student's notebook on the host"

    points = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in nb.cells if sources.is_test_cell(c)}
    assert outcomes["mia"].status == "graded" and outcomes["mia"].score == sum(points.values()) - \
        points[list(points)[1]] - points[list(points)[2]]
    assert outcomes["noah"].status == "graded" and outcomes["noah"].score == 0
    assert "not graded: the grading container exited with status 137" in outcomes["noah"].messages[0]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        for student in ("noah", "olga"):
            submission = gradebook.find_submission(slug, student)
            assert submission.code_score == 0, student
            code = [g for g in submission.notebooks[0].grades if g.cell.cell_type == "code"]
            if student == "noah":
                assert all(g.auto_score == 0 and not g.needs_manual_grade for g in code)
            else:  # nbgrader alone scores nothing: the TA sees the tests still to grade, never full marks
                assert all(g.auto_score is None and g.needs_manual_grade for g in code)
    graded = nbformat.read(course / "autograded" / "mia" / slug / f"{slug}.ipynb", as_version=4)
    outputs = {c.metadata["nbgrader"]["grade_id"]: c.outputs for c in graded.cells if sources.is_test_cell(c)}
    first, failed, missing = list(points)[:3]
    assert outputs[first][0]["text"].startswith("passed")
    assert outputs[failed][0]["ename"] == "AssertionError" and outputs[failed][0]["evalue"].startswith("a + b is wrong")
    assert "sent no result" in outputs[missing][0]["evalue"]
    assert all(not c.get("outputs") for c in graded.cells if c.cell_type == "code" and not sources.is_test_cell(c))

"""The autograder: hidden tests run by Otter in hardened containers (autograder/, docker/grader/).

Real containers of the real grader image, real nbgrader: the reference scores full marks on every
module's hidden tests and an untouched release 0; the containers really have the limits they claim;
hidden tests never reach what students get; the TA command collects an LMS zip, grades, resumes,
and writes Otter's CSV, the Canvas CSV, the nbgrader gradebook and the feedback.
"""
from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

import hub_config
from autograder import containers, coursedir, hidden
from autograder.gradebook import HIDDEN_CELL
from autograder.results import read_results, results_dir
from autograder.nbgrader_adapter import nbgrader_env
from autograder.ttgrade import wire
from course.build import sources
from course.build.leaks import find_leaks

ROOT = Path(__file__).resolve().parent.parent
MODULES = {m.slug: m for m in sources.course_modules()}
pytestmark = pytest.mark.filterwarnings("ignore:.*not in session")  # nbgrader 0.9.6 + SQLAlchemy 2 noise
FAST = containers.Limits(probe_timeout=60)


# ---- fixtures and helpers (also used by test_autograder_hostile.py) ------------------------------

@pytest.fixture(scope="session")
def grader_image() -> str:
    """The grader image, built by docker/build.sh (content-tagged: a no-op when nothing changed)."""
    done = subprocess.run(["bash", str(ROOT / "docker" / "build.sh"), "build", "grader"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"building the grader image failed (is dockerd running?):\n{done.stderr[-3000:]}"
    return re.search(r"^grader=(\S+)$", done.stdout, re.M).group(1)


def course_config(course_id: str, course_root: Path, exchange_root: Path, students: tuple[str, ...] = ()) -> dict:
    """A course config as the hub reads it (hub_config.py, its one reader), with these nbgrader values."""
    return hub_config.validate(hub_config.deep_merge(hub_config.DEFAULTS, {
        "course_id": course_id, "nbgrader": {"course_root": str(course_root), "exchange_root": str(exchange_root)},
        "roster": {"students": list(students)}}))


@pytest.fixture(scope="session")
def course_dir(tmp_path_factory) -> Path:
    """An nbgrader course built by the course build (each notebook with its hidden-tests cell)."""
    root = tmp_path_factory.mktemp("course") / "course"
    (root.parent / "exchange").mkdir(mode=0o777)
    cfg = course_config("tt101", root, root.parent / "exchange", students=("alice", "bob"))
    coursedir.write_course_directory(root, cfg)
    return root


def reference_notebook(slug: str) -> nbformat.NotebookNode:
    return coursedir.nbgrader_notebook(MODULES[slug])


def with_payload(nb: nbformat.NotebookNode, payload: str) -> nbformat.NotebookNode:
    """The notebook with one more export cell after its last one (the student's extra code)."""
    last = max(i for i, c in enumerate(nb.cells) if sources.is_export_cell(c))
    nb.cells.insert(last + 1, nbformat.v4.new_code_cell("#| export\n" + payload))
    return nb


def write_notebooks(folder: Path, notebooks: dict[str, nbformat.NotebookNode]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for slug, nb in notebooks.items():
        paths[slug] = folder / f"{slug}.ipynb"
        nbformat.write(nb, paths[slug])
    return paths


def earlier(slug: str) -> list[str]:
    return [s for s in MODULES if s <= slug] if hidden.uses_own_stack(slug) else [slug]


def grade_all(jobs: list[containers.Job], workers: int = 2) -> list[dict]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(containers.grade_in_container, jobs))


def notebook_test_points(course_dir: Path, slug: str) -> float:
    """The points of the visible tests: the test cells of the course's source notebook."""
    nb = nbformat.read(course_dir / "source" / slug / f"{slug}.ipynb", as_version=4)
    return sum(c.metadata["nbgrader"]["points"] for c in nb.cells if sources.is_test_cell(c))


def failures(result: dict) -> str:
    if result.get("status") != "graded":
        return result.get("message", "") + result.get("traceback", "")
    return "\n".join(f"  {t['name']}: {t['message']}" for t in result["tests"] if not t["passed"])


# ---- what never reaches students -----------------------------------------------------------------

def hidden_names() -> list[str]:
    """Text only the hidden tests hold: their test functions' definitions (``def test_x(`` or, for a test
    declared on its probe, ``test_case(name="test_x"``) and their files' names."""
    names = []
    for slug in hidden.assignments():
        for source in hidden.test_files(slug).values():
            names += re.findall(r"^(def test_\w+)\(", source, re.M)
            names += re.findall(r'^@(test_case\(name="test_\w+")', source, re.M)
            names += re.findall(r"^name = \"([^\"]+)\"$", source, re.M)
    return names


def test_hidden_tests_are_not_in_the_student_image_context_nor_the_release(course_dir, tmp_path):
    context = tmp_path / "student"
    done = subprocess.run(["bash", str(ROOT / "docker" / "build.sh"), "context", "student", str(context)],
                          cwd=ROOT, capture_output=True, text=True, env={**__import__("os").environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr
    leaks = find_leaks(context, course_dir / "release")
    assert leaks == [], "\n".join(leaks[:20])
    names = hidden_names()
    assert names, "no hidden test found"
    for top in (context, course_dir / "release"):
        for path in top.rglob("*"):
            if path.is_file() and path.suffix in (".py", ".ipynb", ".txt", ".json"):
                text = path.read_text(errors="replace")
                found = [n for n in names if n in text]
                assert not found, f"{path} names hidden tests {found[:3]}"


@pytest.mark.slow
def test_the_grader_image_holds_no_hidden_test(grader_image):
    """The hidden tests travel in the grading container's stdin, never in the image."""
    patterns = "\n".join(hidden_names())
    done = subprocess.run(["docker", "run", "--rm", "-i", "--network", "none", grader_image, "bash", "-c",
                           "cat > /tmp/patterns && grep -rlF -f /tmp/patterns / --include='*.py' --include='*.json' "
                           "--exclude-dir=proc --exclude-dir=sys --exclude-dir=tmp 2>/dev/null || true"],
                          input=patterns, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "", f"hidden tests found in the grader image: {done.stdout[:500]}"


def test_every_module_with_hidden_tests_has_points_and_a_task_cell(course_dir):
    """The course build appends the hidden tests' task cell to the source notebook; nbgrader keeps it in the
    release and the gradebook, so formgrader shows the hidden score beside the visible and manual grades."""
    from nbgrader.api import Gradebook
    assert hidden.assignments(), "no hidden tests at all"
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", "tt101") as gradebook:
        for slug in hidden.assignments():
            assert slug in MODULES, f"autograder/hidden/{slug} is not a course module"
            assert hidden.points(slug) > 0
            for step in ("source", "release"):
                nb = nbformat.read(course_dir / step / slug / f"{slug}.ipynb", as_version=4)
                cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == HIDDEN_CELL]
                assert len(cells) == 1 and cells[0].metadata["nbgrader"]["task"], (step, slug)
                assert cells[0].metadata["nbgrader"]["points"] == hidden.points(slug)
            (notebook,) = gradebook.find_assignment(slug).notebooks
            assert [c.max_score for c in notebook.task_cells if c.name == HIDDEN_CELL] == [hidden.points(slug)]


# ---- the wire format and the container flags ----------------------------------------------------

def test_the_wire_format_carries_arrays_and_refuses_anything_else():
    import numpy as np
    value = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "n": 3, "x": 0.5, "t": (1, "s", None),
             "z": np.float32(2.5), "scalar": np.asarray(1.0)}
    back = wire.decode(wire.encode(value))
    assert back["a"].dtype == np.float32 and back["a"].shape == (2, 3) and back["scalar"].shape == ()
    assert back["t"] == (1, "s", None) and back["x"] == 0.5
    with pytest.raises(wire.WireError):
        wire.encode(object())
    with pytest.raises(wire.WireError):
        wire.encode(np.array([object()]))
    import base64
    import io
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)  # a pickle inside .npy
    with pytest.raises(wire.WireError):
        wire.decode(json.dumps({"__nd__": base64.b64encode(buffer.getvalue()).decode()}).encode())


class RecordedProbes:
    """A grading context whose probe runs are scripted outcomes: the student's first, then the reference's."""

    def __init__(self, workdir: Path, *outcomes):
        self.workdir, self.outcomes, self.runs, self.notes = str(workdir), list(outcomes), [], []

    def run(self, fn, args, timeout=None, sample=False, reference=False):
        self.runs.append("reference" if reference else "student")
        return self.outcomes.pop(0)

    def note(self, text):
        self.notes.append(text)


def test_a_memory_test_starts_the_references_baseline_only_when_the_students_growth_could_fail(tmp_path, monkeypatch):
    """The baseline costs a fresh process; below budget + slack the student's growth alone passes whatever the
    baseline says (a growth is never below 0); above it the baseline decides, and a failed baseline fails."""
    from autograder.ttgrade import api, runner
    from autograder.ttgrade.runner import ProbeOutcome
    budget, line = 4 * 2**20, 4 * 2**20 + api.RSS_SLACK
    probe = api.probe(lambda tt: 0)

    def grade(*outcomes):
        context = RecordedProbes(tmp_path, *outcomes)
        monkeypatch.setattr(runner, "CONTEXT", context, raising=False)
        try:
            return api.within_budget(probe, budget=budget, what="add"), context.runs
        except api.StudentError as error:
            return str(error), context.runs

    def student(growth):
        return ProbeOutcome("ok", value=2**20, rss_growth=growth, marked=True)

    assert grade(student(line)) == (2**20, ["student"])
    assert grade(student(line + 1), ProbeOutcome("ok", rss_growth=1)) == (2**20, ["student", "reference"])
    message, runs = grade(student(line + 2), ProbeOutcome("ok", rss_growth=1))
    assert runs == ["student", "reference"] and "tracemalloc did not report" in message
    message, runs = grade(student(line + 1), ProbeOutcome("error", "read-only folder"))
    assert runs == ["student", "reference"] and "could not be compared" in message and "read-only folder" in message
    message, runs = grade(ProbeOutcome("ok", value=budget + 1, rss_growth=0, marked=True))
    assert runs == ["student"] and "over the budget" in message


def test_every_hardening_flag_is_on_the_docker_command(tmp_path):
    command = " ".join(containers.docker_command("n", "img", tmp_path, containers.Limits(memory_mb=700, pids=64, cpus=0.5)))
    for flag in ["--network none", "--memory 700m", "--memory-swap 700m", "--pids-limit 64", "--cpus 0.5",
                 "--read-only", "--tmpfs /tmp:", "--user 1000:100", "--cap-drop ALL",
                 "--security-opt no-new-privileges", f"source={tmp_path},target=/submission,readonly"]:
        assert flag in command
    assert command.count("type=bind") == 1 and " -v " not in command, "only the submission may be mounted"


def test_every_hardening_flag_swarm_can_express_is_on_a_grading_jobs_service(tmp_path):
    """The Swarm job's twin of the docker run (autograder/swarm_jobs.py): the same limits; root only with the
    capabilities the grader process needs to take its secrets and drop them; no course folder mounted."""
    from autograder import swarm_jobs
    job = containers.Job("02_tensor", {}, limits=containers.Limits(memory_mb=700, pids=64, cpus=0.5), image="img")
    command = " ".join(swarm_jobs.service_command("n", job, ["n.000", "n.001"]))
    for flag in ["--replicas 1 --restart-condition none", "--constraint node.labels.tinytorch.graders==true",
                 "--limit-memory 700M", "--limit-pids 64", "--limit-cpu 0.5", "--read-only", "type=tmpfs,target=/tmp,",
                 "type=tmpfs,target=/opt/tinytorch-reference,readonly", "--user 0:0",
                 "--cap-drop ALL --cap-add CAP_SETUID --cap-add CAP_SETGID --cap-add CAP_NET_ADMIN --ulimit core=0",
                 "source=n.000,target=ttgrade-bundle.000,uid=0,gid=0,mode=0400",
                 "source=n.001,target=ttgrade-bundle.001,uid=0,gid=0,mode=0400", "img python -I -m ttgrade.parent --from-secrets"]:
        assert flag in command, flag
    assert "type=bind" not in command, "02_tensor needs no datasets: nothing of the host is mounted"
    datasets = " ".join(swarm_jobs.service_command("n", containers.Job("11_adam", {}), ["n.000"]))
    assert datasets.count("type=bind") == 1 and "target=/datasets,readonly" in datasets


def test_a_grading_job_swarm_withdrew_or_whose_node_died_is_given_again_and_nothing_else_is(monkeypatch):
    """A Swarm job's task that ended because its node went down, or that Swarm took back saying the node no longer
    meets its constraints, is run again with a new nonce (at most ATTEMPTS times); a task that failed for any other
    reason is the submission's result, not retried."""
    from autograder import swarm_jobs
    ran: list[str] = []
    endings = iter([])

    def fake_docker(*args, input=None, timeout=120):
        if args[:2] == ("service", "create"):
            ran.append(args[args.index("--name") + 1])
        return subprocess.CompletedProcess(args, 0, b"", b"")

    monkeypatch.setattr(swarm_jobs, "docker", fake_docker)
    monkeypatch.setattr(swarm_jobs, "delivery", lambda job, nonce: b"x")
    monkeypatch.setattr(swarm_jobs, "POLL_SECONDS", 0)
    monkeypatch.setattr(swarm_jobs, "latest_task", lambda name: next(endings))
    monkeypatch.setattr(swarm_jobs, "node_down", lambda node: node == "dead")
    job = containers.Job("02_tensor", {}, image="img")

    def task(state, node="n1", err=""):
        return {"NodeID": node, "Status": {"State": state, "Err": err}}

    endings = iter([task("rejected", err="assigned node no longer meets constraints"),
                    task("shutdown", node="dead"), task("failed", err="task: non-zero exit (1)")])
    result = swarm_jobs.grade_as_job(job)
    assert len(ran) == 3 and len(set(ran)) == 3, ran  # three jobs, each its own name (a new nonce)
    assert result["status"] == "error" and "non-zero exit (1)" in result["message"], result
    ran.clear()
    endings = iter([task("failed", err="task: non-zero exit (137)")])
    assert swarm_jobs.grade_as_job(job)["status"] == "error" and len(ran) == 1, ran
    ran.clear()
    endings = iter([task("rejected", err="assigned node no longer meets constraints")] * swarm_jobs.ATTEMPTS)
    assert "under this job 3 times" in swarm_jobs.grade_as_job(job)["message"] and len(ran) == 3


PROBE_ENVIRONMENT = r"""
import json, os, socket, resource
facts = {"uid": os.getuid()}
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
facts["cap_eff"] = status["CapEff"].strip(); facts["no_new_privs"] = status["NoNewPrivs"].strip()
for path in ["/", "/submission", "/opt/venv"]:
    try:
        open(os.path.join(path, "w.txt"), "w").write("x"); facts["writable " + path] = True
    except OSError:
        facts["writable " + path] = False
facts["interfaces"] = sorted(os.listdir("/sys/class/net"))
try:
    socket.create_connection(("172.17.0.1", 9), timeout=2); facts["network"] = True
except OSError:
    facts["network"] = False
facts["reference_visible"] = os.listdir("/opt/tinytorch-reference")
mem = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
facts["memory_limit"] = int(open(mem).read()) if os.path.exists(mem) else int(open("/sys/fs/cgroup/memory.max").read())
pids = "/sys/fs/cgroup/pids/pids.max" if os.path.exists("/sys/fs/cgroup/pids/pids.max") else "/sys/fs/cgroup/pids.max"
facts["pids_max"] = open(pids).read().strip()
facts["submission"] = sorted(os.listdir("/submission"))
print(json.dumps(facts))
"""


def hardened_running(name: str, image: str, folder: Path, limits: containers.Limits, argv: list[str]) -> list[str]:
    """A grading container's own docker command (every hardening flag, ``folder`` as the submission) running argv."""
    command = containers.docker_command(name, image, folder, limits)
    return command[:command.index(image) + 1] + argv


@pytest.mark.slow
def test_a_grading_container_really_has_its_limits(grader_image, tmp_path):
    (tmp_path / "02_tensor.ipynb").write_text("{}")
    tmp_path.chmod(0o755)
    command = hardened_running(f"ttgrade-limits-check-{os.getpid()}", grader_image, tmp_path,
                               containers.Limits(memory_mb=600, pids=50), ["python", "-c", PROBE_ENVIRONMENT])
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["uid"] == 1000 and facts["cap_eff"] == "0000000000000000" and facts["no_new_privs"] == "1"
    assert not facts["writable /"] and not facts["writable /submission"] and not facts["writable /opt/venv"]
    assert facts["interfaces"] == ["lo"] and facts["network"] is False
    assert facts["reference_visible"] == [], "the image's reference copy must be masked while grading"
    assert facts["memory_limit"] == 600 * 2**20 and facts["pids_max"] == "50"
    assert facts["submission"] == ["02_tensor.ipynb"]


START_UP_IMPORTS = r"""
import json, subprocess, sys
def loaded(code):  # the modules a fresh process (as the grader starts them) holds after running code
    done = subprocess.run([sys.executable, "-I", "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)), file=sys.stderr)"],
                          input=b"{}", capture_output=True, env={"PYTHONDONTWRITEBYTECODE": "1"})
    return json.loads(done.stderr.decode().splitlines()[-1])
grader = "import runpy\ntry:\n    runpy.run_module('ttgrade.parent', run_name='__main__')\nexcept SystemExit:\n    pass"
probe = "import sys\nsys.path.insert(0, '/submission')\nimport ttgrade.child, tinytorch"
print(json.dumps({"grader": loaded(grader), "probe": loaded(probe)}))
"""


@pytest.mark.slow
def test_the_grader_and_each_probe_start_without_what_they_never_use(grader_image, tmp_path):
    """A submission's grading starts one fresh process per probe (about 20), so every start-up import is paid
    that often: the grader process loads Otter's test files without Otter's command line (pandas, nbconvert), and
    a probe's process neither the grader's API nor what tinytorch imports only where it is used (the download's
    urllib.request, fit's tqdm, ctypes.util)."""
    shutil.copytree(ROOT / "tinytorch", tmp_path / "tinytorch", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    command = hardened_running(f"ttgrade-start-up-{os.getpid()}", grader_image, tmp_path, containers.Limits(),
                               ["python", "-I", "-c", START_UP_IMPORTS])
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = {side: set(names) for side, names in json.loads(done.stdout).items()}
    assert "otter.test_files" in loaded["grader"] and "ttgrade.parent" not in loaded["probe"]
    assert {"tinytorch.data", "tinytorch.training", "tinytorch.tensor"} <= loaded["probe"]
    assert not {"pandas", "nbconvert", "otter.api"} & loaded["grader"]
    assert not {"ttgrade.api", "ttgrade.runner", "urllib.request", "tqdm", "ctypes.util"} & loaded["probe"]


# ---- reference = full marks, untouched release = 0 ----------------------------------------------

@pytest.mark.slow
def test_reference_scores_full_marks_and_untouched_release_zero_on_every_module(grader_image, tmp_path):
    """In the grading containers: the reference earns every visible and hidden point, an untouched release none.
    Then nbgrader's autograde (which executes nothing) records those visible results in the gradebook."""
    from autograder.pipeline import visible_results
    from autograder.nbgrader_adapter import Course
    course_dir = tmp_path / "course"  # a course of its own: its submissions are no other test's business
    coursedir.write_course_directory(course_dir, course_config("tt102", course_dir, tmp_path / "exchange"))
    jobs, labels = [], []
    for slug in hidden.assignments():
        reference = write_notebooks(tmp_path / "reference" / slug, {s: reference_notebook(s) for s in earlier(slug)})
        release = {s: course_dir / "release" / s / f"{s}.ipynb" for s in earlier(slug)}
        jobs += [containers.Job(slug, reference, image=grader_image, limits=FAST),
                 containers.Job(slug, release, image=grader_image, limits=FAST)]
        labels += [(slug, "reference"), (slug, "untouched")]
    results = dict(zip(labels, grade_all(jobs)))
    problems = []
    for (slug, who), result in results.items():
        label = f"{slug} {who}"
        if result.get("status") != "graded":
            problems.append(f"{label}: not graded: {failures(result)}")
            continue
        visible_points = notebook_test_points(course_dir, slug)
        if result["visible_possible"] != visible_points or visible_points <= 0:
            problems.append(f"{label}: {result['visible_possible']} visible points possible, the notebook has {visible_points}")
        if who == "reference" and (result["score"] != result["possible"] or result["visible_score"] != visible_points):
            problems.append(f"{label}: hidden {result['score']}/{result['possible']}, visible "
                            f"{result['visible_score']}/{visible_points}\n{failures(result)}"
                            + "".join(f"\n  {t['name']}: {t['message']}" for t in result["visible"] if not t["passed"]))
        elif who == "untouched" and (result["score"] != 0 or result["visible_score"] != 0):
            passed = [t["name"] for t in result["tests"] + result["visible"] if t["passed"]]
            problems.append(f"{label}: {result['score']} hidden, {result['visible_score']} visible points for an "
                            f"untouched release ({passed})")
    assert not problems, "\n".join(problems)

    course = Course(course_dir)
    for slug in hidden.assignments():
        for who, step in (("reference", tmp_path / "reference" / slug), ("untouched", course_dir / "release" / slug)):
            folder = course_dir / "submitted" / who / slug
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(step / f"{slug}.ipynb", folder)
        outcomes = {o.student: o for o in course.autograde(slug, {who: visible_results(results[(slug, who)])
                                                                  for who in ("reference", "untouched")})}
        reference, untouched = outcomes["reference"], outcomes["untouched"]
        assert reference.status == "graded" and reference.score == reference.max_score > 0, reference
        assert untouched.status == "graded" and untouched.score == 0, untouched


# ---- the TA command ------------------------------------------------------------------------------

def canvas_zip(path: Path, submissions: dict[str, Path], slug: str) -> Path:
    """A Canvas "Download submissions" zip: <lastfirst>_<user id>_<submission id>_<file name>."""
    with zipfile.ZipFile(path, "w") as archive:
        for number, (student, notebook) in enumerate(sorted(submissions.items())):
            archive.write(notebook, f"{student}_{1000 + number}_{5000 + number}_{slug}-1.ipynb")
    return path


def autograder(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1800)


@pytest.mark.slow
def test_ta_grades_an_lms_zip_resumes_and_exports_every_gradebook(grader_image, course_dir, tmp_path):
    slug = "02_tensor"
    alice = write_notebooks(tmp_path / "alice", {slug: reference_notebook(slug)})[slug]
    bob = write_notebooks(tmp_path / "bob", {slug: with_payload(
        reference_notebook(slug), "def _wrong_mul(self, other):\n    return _make(self.data * 2, 'mul', (self, other))"
                                  "\n\n\nTensor.__mul__ = _wrong_mul\n")})[slug]
    ursula = course_dir / "release" / slug / f"{slug}.ipynb"  # submits the release untouched
    archive = canvas_zip(tmp_path / "submissions.zip", {"alice": alice, "bob": bob, "ursula": ursula}, slug)

    first = autograder("grade", slug, "--zip", str(archive), "--image", grader_image, "--no-progress", cwd=course_dir)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "grading 3 submission(s)" in first.stdout
    results = read_results(course_dir, slug)
    assert set(results) == {"alice", "bob", "ursula"}
    assert results["alice"]["score"] == results["alice"]["possible"] == hidden.points(slug)
    assert 0 < results["bob"]["score"] < results["alice"]["score"]
    points = notebook_test_points(course_dir, slug)
    lines = {line.split()[0]: line.split()[1:4] for line in first.stdout.splitlines() if line.startswith("  ")}
    assert lines["alice"] == ["graded", f"{points:g}/{points:g}", f"{hidden.points(slug):g}/{hidden.points(slug):g}"]
    assert lines["ursula"] == ["graded", f"0/{points:g}", f"0/{hidden.points(slug):g}"]

    # the visible tests ran in the container: each test cell's grade is what the container found, nothing else
    from nbgrader.api import Gradebook
    bob_visible = {t["name"]: t for t in results["bob"]["visible"]}
    failed = [name for name, t in bob_visible.items() if not t["passed"]]
    assert failed and len(failed) < len(bob_visible), "bob's multiplication fails some visible tests, not all"
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", "tt101") as gradebook:
        for student in ("alice", "bob", "ursula"):
            submission = gradebook.find_submission(slug, student)
            passed = {t["name"]: t["passed"] for t in results[student]["visible"]}
            for grade in submission.notebooks[0].grades:
                if grade.cell.cell_type == "code":
                    assert grade.auto_score == (grade.max_score if passed[sources.test_name(grade.name)] else 0), \
                        (student, grade.name)
            # formgrader's total: visible + hidden (+ written answers, graded by hand: none yet)
            assert submission.score == submission.code_score + results[student]["score"], student
        bob = gradebook.find_submission(slug, "bob")
        assert bob.code_score == sum(t["points"] for t in bob_visible.values() if t["passed"]) == \
            results["bob"]["visible_score"]
        assert gradebook.find_submission(slug, "alice").code_score == points
        assert gradebook.find_submission(slug, "ursula").score == 0

    # Otter's final_grades.csv: the points row, then one row per submission
    rows = list(csv.DictReader((course_dir / "autograder" / slug / "final_grades.csv").open()))
    assert rows[0]["file"] == "points-per-question"
    by_file = {r["file"]: r for r in rows[1:]}
    assert float(by_file["alice"]["total_points_earned"]) == results["alice"]["score"]
    assert float(by_file["bob"]["total_points_earned"]) == results["bob"]["score"]

    # the nbgrader gradebook holds the hidden score in the notebook's hidden-tests cell, next to the visible tests
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", "tt101") as gradebook:
        grade = gradebook.find_grade(HIDDEN_CELL, slug, slug, "bob")
        assert grade.score == results["bob"]["score"] and not grade.needs_manual_grade
        submission = gradebook.find_submission(slug, "alice")
        visible = submission.code_score
        assert visible > 0 and submission.score == visible + results["alice"]["score"]

    # the Canvas gradebook: Student, ID, SIS User ID, Section, one column per assignment
    canvas = list(csv.reader((course_dir / "autograder" / "canvas_gradebook.csv").open()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "Section", slug]
    assert canvas[1][0] == "Points Possible"
    alice_row = next(r for r in canvas if r[2] == "alice")
    assert float(alice_row[4]) == visible + results["alice"]["score"]

    # feedback: the failed visible tests with their messages (nbgrader's page); the failed hidden tests with
    # their messages and the memory budgets, never the test code
    page = (course_dir / "feedback" / "bob" / slug / f"{slug}.html").read_text()
    for name in failed:
        first_line = bob_visible[name]["message"].split("\n")[0].split(": ", 1)[-1]
        assert html.escape(first_line, quote=False) in page, (name, first_line)
    assert "Hidden tests" in page and "memory" in page and "budget" in page and "differ" in page
    for source in hidden.test_files(slug).values():
        for line in source.splitlines():
            if line.strip().startswith(("def ", "same(", "within_budget(", "return ")):
                assert line.strip() not in page, f"feedback shows test code: {line.strip()}"

    # a second run resumes: nothing to grade; --force grades everyone again
    again = autograder("grade", slug, "--no-collect", "--image", grader_image, "--no-progress", cwd=course_dir)
    assert again.returncode == 0, again.stderr
    assert "grading" not in again.stdout and read_results(course_dir, slug)["bob"]["graded_at"] == results["bob"]["graded_at"]
    forced = autograder("grade", slug, "--no-collect", "--force", "--student", "bob", "--image", grader_image,
                        "--no-progress", cwd=course_dir)
    assert forced.returncode == 0 and "grading 1 submission(s)" in forced.stdout, forced.stdout + forced.stderr
    assert read_results(course_dir, slug)["bob"]["score"] == results["bob"]["score"]


@pytest.mark.slow
def test_a_submission_the_container_could_not_grade_scores_zero_and_is_reported(grader_image, course_dir, tmp_path):
    """A grading container that ends without a result (here: killed at its wall-clock limit) leaves the reference
    with 0 visible points, never nbgrader's full marks for test cells without output, and the TA is told."""
    from autograder import pipeline
    slug = "05_autograd"
    zed = write_notebooks(tmp_path / "zed", {slug: reference_notebook(slug)})[slug]
    lines = []
    summary = pipeline.grade_assignment(course_dir, slug, zips=[canvas_zip(tmp_path / "z.zip", {"zed": zed}, slug)],
                                        students=["zed"], image=grader_image, bar=False, log=lines.append,
                                        limits=containers.Limits(wall_seconds=1))
    pipeline.report(summary, course_dir, log=lines.append)
    assert "did not finish within 1 s" in summary.errors["zed"]
    row = next(line.split() for line in lines if line.startswith("  zed "))
    assert row[1:4] == ["ERROR", f"0/{notebook_test_points(course_dir, slug):g}", "-"] and "did not finish" in " ".join(row)
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", "tt101") as gradebook:
        submission = gradebook.find_submission(slug, "zed")
        assert submission.score == 0 and all(g.auto_score == 0 for g in submission.notebooks[0].grades
                                              if g.cell.cell_type == "code")


def nbgrader_as(home: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A real nbgrader command run by one person (their own HOME, so their own nbgrader cache)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**nbgrader_env(), "HOME": str(home), "JUPYTER_DATA_DIR": str(home / ".jupyter-data")}
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_ta_collects_from_the_exchange_and_releases_feedback_with_the_hidden_tests(grader_image, course_dir, tmp_path):
    slug = "01_setup"
    exchange = ["--course=tt101", f"--Exchange.root={course_dir.parent / 'exchange'}"]
    released = nbgrader_as(tmp_path / "tina", "release_assignment", slug, "--force", cwd=course_dir)
    assert released.returncode == 0, released.stderr
    home = tmp_path / "gina"
    fetched = nbgrader_as(home, "fetch_assignment", slug, *exchange, cwd=home)
    assert fetched.returncode == 0, fetched.stderr
    nbformat.write(reference_notebook(slug), home / slug / f"{slug}.ipynb")  # she solves it
    submitted = nbgrader_as(home, "submit", slug, *exchange, "--student=gina", cwd=home)
    assert submitted.returncode == 0, submitted.stderr

    graded = autograder("grade", slug, "--image", grader_image, "--no-progress", "--release-feedback", cwd=course_dir)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    result = read_results(course_dir, slug)["gina"]
    assert result["score"] == result["possible"]
    fetched_feedback = nbgrader_as(home, "fetch_feedback", slug, *exchange, "--student=gina", cwd=home)
    assert fetched_feedback.returncode == 0, fetched_feedback.stderr
    pages = list((home / slug / "feedback").rglob("*.html"))
    assert pages and "Hidden tests" in pages[0].read_text(), "the student's feedback lacks the hidden tests"


@pytest.mark.slow
def test_an_interrupted_run_keeps_its_results_and_the_next_one_resumes(grader_image, course_dir, tmp_path):
    import signal
    import time
    slug = "03_activations"
    notebooks = {name: write_notebooks(tmp_path / name, {slug: reference_notebook(slug)})[slug]
                 for name in ("carol", "dave", "erin", "frank")}
    archive = canvas_zip(tmp_path / "zip.zip", notebooks, slug)
    command = [sys.executable, "-m", "autograder", "grade", slug, "--zip", str(archive), "--image", grader_image,
               "--jobs", "1", "--no-progress"]
    # As from a TA's terminal: SIGINT delivered (a CI runner may start us with SIGINT ignored, as a shell
    # does for background jobs, and Python then never raises KeyboardInterrupt).
    process = subprocess.Popen(command, cwd=course_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    folder = results_dir(course_dir, slug)
    deadline = time.monotonic() + 300
    while not list(folder.glob("*.json")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)  # the TA presses Ctrl-C
    out, err = process.communicate(timeout=300)
    kept = read_results(course_dir, slug)
    assert process.returncode == 2 and "interrupted" in err, out + err
    assert 1 <= len(kept) < 4 and all(r["status"] == "graded" for r in kept.values())
    batch = re.search(r"; batch (\S+) ", out).group(1)  # its containers' label: other batches may run on this host
    leftovers = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={containers.BATCH_LABEL}={batch}"],
                               capture_output=True, text=True).stdout
    assert leftovers.strip() == "", "the interrupted run left containers behind"
    again = autograder("grade", slug, "--no-collect", "--image", grader_image, "--no-progress", cwd=course_dir)
    assert again.returncode == 0, again.stderr
    assert f"grading {4 - len(kept)} submission(s)" in again.stdout
    assert f"({len(kept)} already graded, unchanged)" in again.stdout
    assert set(read_results(course_dir, slug)) == set(notebooks)


def test_ta_command_errors_are_clear(course_dir, tmp_path):
    unknown = autograder("grade", "99_nothing", "--no-collect", cwd=course_dir)
    assert unknown.returncode == 2 and "no assignment '99_nothing'" in unknown.stderr
    not_a_course = autograder("grade", "02_tensor", cwd=tmp_path)
    assert not_a_course.returncode == 2 and "not a course directory" in not_a_course.stderr
    missing_zip = autograder("grade", "02_tensor", "--zip", str(tmp_path / "nope.zip"), cwd=course_dir)
    assert missing_zip.returncode == 2 and "nope.zip: no such zip file" in missing_zip.stderr


def test_grading_refuses_a_course_whose_test_cells_are_not_the_tests_the_grader_runs(course_dir, tmp_path):
    """The container runs tinytorch/checks (built from course/); nbgrader records grades per test cell of the course
    directory's notebook. Should the two differ (a course built from another version of course/), grading stops."""
    from autograder.nbgrader_adapter import GradeError
    slug = "02_tensor"
    coursedir.check_visible_tests(course_dir, slug)  # built from this checkout: the same
    nb = nbformat.read(course_dir / "source" / slug / f"{slug}.ipynb", as_version=4)
    next(c for c in nb.cells if sources.is_test_cell(c)).metadata["nbgrader"]["points"] += 1
    write_notebooks(tmp_path / "source" / slug, {slug: nb})
    with pytest.raises(GradeError, match="rebuild it"):
        coursedir.check_visible_tests(tmp_path, slug)


def test_a_milestone_job_takes_the_students_earlier_submissions(tmp_path):
    """Module 08 has a milestone on the student's own code: its job carries their notebooks of 01-08."""
    from autograder import pipeline
    root = tmp_path / "course"
    for slug in MODULES:
        (root / "source" / slug).mkdir(parents=True)
    for slug in ["02_tensor", "05_autograd", "08_training", "09_spatial"]:
        folder = root / "submitted" / "zoe" / slug
        folder.mkdir(parents=True)
        (folder / f"{slug}.ipynb").write_text("{}")
    assert hidden.uses_own_stack("08_training") and not hidden.uses_own_stack("02_tensor")
    assert sorted(pipeline.student_notebooks(root, "08_training", "zoe")) == ["02_tensor", "05_autograd", "08_training"]
    assert sorted(pipeline.student_notebooks(root, "02_tensor", "zoe")) == ["02_tensor"]
    digest = pipeline.submission_digest(pipeline.student_notebooks(root, "08_training", "zoe"))
    (root / "submitted" / "zoe" / "05_autograd" / "05_autograd.ipynb").write_text('{"changed": 1}')
    assert pipeline.submission_digest(pipeline.student_notebooks(root, "08_training", "zoe")) != digest, \
        "a changed earlier notebook must trigger a re-grade of the milestone"


def test_the_graders_clean_up_walks_trees_deeper_than_the_recursion_limit(tmp_path):
    """A probe may leave 2,000 nested folders in /tmp: the grader's clean-up removes them without recursion
    (a recursive walk raised RecursionError, and the grading of that submission stopped)."""
    from autograder.ttgrade.runner import remove
    top = tmp_path / "left-by-a-probe"
    here = top
    try:
        for _ in range(2000):
            here = here / "d"
            here.mkdir(parents=True)
        (here / "file").write_text("x")
        remove(str(top))
        assert not top.exists()
    finally:  # pytest's own clean-up of old temporary folders recurses too
        subprocess.run(["rm", "-rf", str(top)], check=True)

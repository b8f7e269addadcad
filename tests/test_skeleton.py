"""The student skeleton of tinytorch: importable, every solution stubbed, no solution text."""
from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest

from autograder import coursedir
from course.build import comparisons, sources
from course.build.skeleton import write_skeleton
from course.build.leaks import find_leaks, secret_lines


@pytest.fixture(scope="module")
def skeleton(tmp_path_factory):
    return write_skeleton(tmp_path_factory.mktemp("student"))


def run_with(skeleton, code: str) -> subprocess.CompletedProcess:
    """Run Python with only the skeleton's tinytorch importable (not the reference)."""
    env = {**os.environ, "PYTHONPATH": str(skeleton.parent), "PYTHONSAFEPATH": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=skeleton.parent)


def test_the_leak_check_has_something_to_look_for():
    assert len(secret_lines()) > 30


def test_skeleton_contains_no_solution_line(skeleton):
    leaks = find_leaks(skeleton)
    assert not leaks, "solution text in the student package:\n" + "\n".join(leaks)


def test_leak_check_finds_the_solutions_in_the_reference_package():
    """The same search over the reference tinytorch (which has the solutions) must find them."""
    assert len(find_leaks(sources.PACKAGE)) > 30


def test_leaks_command_fails_on_solutions_and_passes_on_the_skeleton(skeleton):
    clean = subprocess.run([sys.executable, "-m", "course.build", "leaks", str(skeleton)],
                           capture_output=True, text=True, cwd=sources.ROOT)
    assert clean.returncode == 0, clean.stderr
    leaky = subprocess.run([sys.executable, "-m", "course.build", "leaks", str(sources.PACKAGE / "tensor.py")],
                           capture_output=True, text=True, cwd=sources.ROOT)
    assert leaky.returncode == 1 and "solution text from 02_tensor" in leaky.stderr


def test_skeleton_imports_and_stubs_name_their_module(skeleton):
    result = run_with(skeleton, "import tinytorch, tinytorch.nn\n"
                                "x = tinytorch.Tensor([1.0, 2.0])\n"
                                "print(tinytorch.__file__)\n"
                                "x + x\n")
    assert str(skeleton) in result.stdout, "the skeleton, not the reference, was imported"
    assert "NotImplementedError: implement in module 02_tensor" in result.stderr


def test_the_skeleton_shows_the_stored_pytorch_comparison_where_torch_is_missing(skeleton, tmp_path):
    """The student image has no PyTorch: a module's comparison cell prints the figures stored with the skeleton."""
    assert (skeleton / "comparisons.json").read_bytes() == (sources.PACKAGE / "comparisons.json").read_bytes()
    module = sources.find_module("02_tensor")
    nb = sources.read_notebook(module)
    cell = nb.cells[comparisons.comparison_cell(nb, module)].source
    env = {**os.environ, "PYTHONPATH": str(skeleton.parent), "PYTHONSAFEPATH": "1",
           "TINYTORCH_OVERLAY": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", "import sys\nsys.modules['torch'] = None\n" + cell],
                            capture_output=True, text=True, env=env, cwd=skeleton.parent)
    assert result.returncode == 0, result.stderr
    assert "STORED figures, not measured now" in result.stdout and "skipping" not in result.stdout
    assert all(f"  | {line}" in result.stdout for line in comparisons.load()["02_tensor"]["output"].splitlines())


def test_a_stub_reached_from_a_later_module_says_what_to_finish_and_export(skeleton):
    """Every later module's analysis cell profiles with module 01's Profile: a student who has not exported
    module 01 must learn there which function is missing, in which module, and what to do."""
    result = run_with(skeleton, "from tinytorch.profiler import Profile, measure\n"
                                "import numpy as np\n"
                                "with Profile('matmul'):\n"
                                "    np.ones(3)\n")
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("NotImplementedError: implement in module 01_setup: Profile.__enter__ "), last
    assert "01_setup.ipynb" in last and "last cell" in last and "export" in last, last
    measured = run_with(skeleton, "from tinytorch.profiler import measure\nmeasure(print, 1)\n")
    assert "NotImplementedError: implement in module 01_setup: measure " in measured.stderr, measured.stderr


def test_check_runner_on_the_skeleton_reports_failures_not_crashes(skeleton):
    result = run_with(skeleton, "import sys\nfrom tinytorch import check\nsys.exit(check.main(['02', '05']))")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stdout and "implement in module 02_tensor" in result.stdout
    assert "tensor.py (the skeleton's stubs: export your notebook first)" in result.stdout
    assert " passed, " in result.stdout


# ---- the student's overlay: exported notebook code becomes the tinytorch later modules import ----

@pytest.fixture
def student(skeleton, tmp_path):
    """A student's environment: the skeleton importable, an empty overlay, a home, notebooks folder."""
    env = {**os.environ, "PYTHONPATH": str(skeleton.parent), "PYTHONSAFEPATH": "1",
           "TINYTORCH_OVERLAY": str(tmp_path / "overlay"), "HOME": str(tmp_path)}
    env.pop("NBGRADER_EXECUTION", None)
    return env, tmp_path


def finished_notebook(slug: str, folder) -> str:
    """A student's notebook for module ``slug`` with every exercise done (the solutions)."""
    (module,) = [m for m in sources.course_modules() if m.slug == slug]
    path = folder / f"{slug}.ipynb"
    nbformat.write(coursedir.nbgrader_notebook(module), path)
    return path.name


def run_student(env, folder, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=folder)


def test_exported_modules_replace_their_stubs_and_only_theirs(student):
    env, home = student
    for slug in ("01_setup", "02_tensor"):
        result = run_student(env, home, "-m", "tinytorch.export", finished_notebook(slug, home))
        assert result.returncode == 0, result.stderr
        assert f"-> {home / 'overlay'}" in result.stdout
    used = run_student(env, home, "-c", "import sys, tinytorch\n"
                                        "print(sys.modules['tinytorch.tensor'].__file__)\n"
                                        "print((tinytorch.Tensor([1.0, 2.0]) * 2).data)\n"
                                        "tinytorch.activations.relu(tinytorch.Tensor([1.0]))\n")
    assert str(home / "overlay" / "tensor.py") in used.stdout, "module 03 must import the student's Tensor"
    assert "[2. 4.]" in used.stdout
    assert "NotImplementedError: implement in module 03_activations" in used.stderr, "unexported modules stay stubs"
    check = run_student(env, home, "-m", "tinytorch.check", "01", "02")
    assert check.returncode == 0 and "18/18 points" in check.stdout, check.stdout + check.stderr
    assert f"code under test: {home / 'overlay' / 'tensor.py'}\n" in check.stdout


def test_a_broken_export_is_refused_and_the_previous_one_kept(student):
    env, home = student
    name = finished_notebook("02_tensor", home)
    assert run_student(env, home, "-m", "tinytorch.export", name).returncode == 0
    exported = (home / "overlay" / "tensor.py").read_text()
    nb = nbformat.read(home / name, as_version=4)
    first_export = next(c for c in nb.cells if sources.is_export_cell(c))
    for broken, message in (("\ndef oops(:\n", "syntax error"),
                            ("\nfrom tinytorch.nowhere import thing\n", "No module named 'tinytorch.nowhere'")):
        original = first_export.source
        first_export.source += broken
        nbformat.write(nb, home / name)
        result = run_student(env, home, "-m", "tinytorch.export", name)
        first_export.source = original
        assert result.returncode == 1 and message in result.stderr and "previous export was kept" in result.stderr
        assert (home / "overlay" / "tensor.py").read_text() == exported


def test_an_exported_unfinished_exercise_says_where_to_finish_it(student):
    """A release notebook exported before its exercises are written: a later module that reaches one of
    them learns which notebook to finish, not a bare NotImplementedError()."""
    env, home = student
    cells = [nbformat.v4.new_code_cell("#| default_exp profiler"),
             nbformat.v4.new_code_cell("#| export\ndef measure(fn):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
                                       "\n\ndef kept(x):\n    raise NotImplementedError()  # a student's own raise, kept\n")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), home / "01_setup.ipynb")
    assert run_student(env, home, "-m", "tinytorch.export", "01_setup.ipynb").returncode == 0
    result = run_student(env, home, "-c", "from tinytorch.profiler import measure\nmeasure(print)")
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("NotImplementedError: measure is not written yet in your export of 01_setup.ipynb"), last
    assert "run its last cell" in last, last
    assert "raise NotImplementedError()  # a student's own raise, kept" in (home / "overlay" / "profiler.py").read_text()


def test_export_refuses_a_notebook_that_is_not_a_module(student):
    env, home = student
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")]), home / "scratch.ipynb")
    result = run_student(env, home, "-m", "tinytorch.export", "scratch.ipynb", "missing.ipynb")
    assert result.returncode == 1
    assert "scratch.ipynb has no '#| default_exp <name>' cell" in result.stderr
    assert "missing.ipynb does not exist" in result.stderr
    assert not (home / "overlay").exists() or not list((home / "overlay").glob("*.py"))


def test_export_does_nothing_while_nbgrader_grades(student):
    env, home = student
    name = finished_notebook("02_tensor", home)
    result = run_student({**env, "NBGRADER_EXECUTION": "autograde"}, home, "-m", "tinytorch.export", name)
    assert result.returncode == 0 and "skipped while nbgrader" in result.stdout
    assert not (home / "overlay" / "tensor.py").exists()


def test_the_overlay_defaults_to_the_students_home(student):
    env, home = student
    env = {k: v for k, v in env.items() if k != "TINYTORCH_OVERLAY"}
    result = run_student(env, home, "-c", "import tinytorch, tinytorch.export\n"
                                          "print(tinytorch.__path__[0])\nprint(tinytorch.export.overlay_path())")
    assert result.stdout.split() == [str(home / ".tinytorch" / "overlay")] * 2, result.stderr


def test_milestones_run_on_the_students_own_tinytorch(student, skeleton):
    """The milestones ship beside the skeleton (not the rest of course/); they name the FIRST module a student
    has not exported yet (XOR named module 06 when 05 was missing, the first stub it happened to call), and once
    02-07 are exported, XOR trains on the student's code; tinytorch.status follows along."""
    env, home = student
    assert sorted(p.name for p in (skeleton.parent / "course").iterdir()) == ["__init__.py", "milestones"]
    plot = ["--plot", str(home / "xor.png")]
    stub = run_student(env, home, "-m", "course.milestones.xor", *plot)
    assert stub.returncode == 2 and "Traceback" not in stub.stderr, stub.stderr
    assert "module 02_tensor is not exported yet" in stub.stderr, stub.stderr
    for slug in ("02_tensor", "03_activations", "04_layers", "06_losses", "07_optimizers"):
        exported = run_student(env, home, "-m", "tinytorch.export", finished_notebook(slug, home))
        assert exported.returncode == 0, exported.stderr
    gap = run_student(env, home, "-m", "course.milestones.xor", *plot)
    assert gap.returncode == 2 and "module 05_autograd is not exported yet" in gap.stderr, gap.stderr
    status = run_student(env, home, "-m", "tinytorch.status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert any(line.split()[:3] == ["02_tensor", "exported", "7/7"] for line in lines), status.stdout
    assert any(line.split()[:3] == ["05_autograd", "not", "exported"] for line in lines), status.stdout
    assert "xor" in status.stdout and "locked: export module 05_autograd first" in status.stdout
    assert "next step: finish module 01_setup" in status.stdout, status.stdout  # 01 comes first
    exported = run_student(env, home, "-m", "tinytorch.export", finished_notebook("05_autograd", home))
    assert exported.returncode == 0, exported.stderr
    trained = run_student(env, home, "-m", "course.milestones.xor", *plot)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "< 0.01 after" in trained.stdout and (home / "xor.png").is_file()
    used = run_student(env, home, "-c", "import course.milestones.xor, sys\n"
                                        "print(sys.modules['tinytorch.optimizers'].__file__)")
    assert used.stdout.strip() == str(home / "overlay" / "optimizers.py")
    status = run_student(env, home, "-m", "tinytorch.status")
    assert any(line.split()[:2] == ["xor", "XOR"] and line.endswith("passed") for line in status.stdout.splitlines()), \
        status.stdout


def overlay_with(env, home, target: str, old: str, new: str) -> None:
    """The student's overlay holds the reference's ``target``.py with one line changed (their own version)."""
    overlay = home / "overlay"
    overlay.mkdir(exist_ok=True)
    text = (sources.PACKAGE / f"{target}.py").read_text()
    assert old in text, f"{old!r} is not in tinytorch/{target}.py any more"
    (overlay / f"{target}.py").write_text(text.replace(old, new))


def test_check_names_the_earlier_module_whose_contract_broke(student):
    """A module 02 that records no exponent for pow passes every module 02 test but the contract one, and
    module 05's check says to fix module 02 first (it used to report only module 05's own TypeError)."""
    env, home = student
    overlay_with(env, home, "tensor", '"pow", (self,), exponent)', '"pow", (self,))')
    for target in ("autograd", "activations", "layers"):
        overlay_with(env, home, target, "", "")
    own = run_student(env, home, "-m", "tinytorch.check", "02")
    assert "FAIL test_tensor_ctx_contract" in own.stdout and "x ** 3: _ctx should be 3, got None" in own.stdout
    later = run_student(env, home, "-m", "tinytorch.check", "05")
    assert later.returncode == 1, later.stdout + later.stderr
    assert f"earlier modules it uses: your exports ({home / 'overlay'}): 02 03 04" in later.stdout, later.stdout
    assert ("your exported module 02_tensor fails 1 of its own visible test(s) (test_tensor_ctx_contract)"
            in later.stdout and "python -m tinytorch.check 02" in later.stdout), later.stdout


def test_check_says_when_a_failure_is_raised_in_an_earlier_modules_code(student):
    """Module 03's tests failing inside the student's tensor.py point at module 02's check."""
    env, home = student
    overlay_with(env, home, "tensor", 'return _make(np.exp(self.data), "exp", (self,))',
                 'raise ValueError("my exp is broken")')
    overlay_with(env, home, "activations", "", "")
    result = run_student(env, home, "-m", "tinytorch.check", "03")
    assert "ValueError: my exp is broken" in result.stdout, result.stdout + result.stderr
    assert ("the error is raised in module 02_tensor's code (tensor.py, your export, "
            f"{home / 'overlay' / 'tensor.py'}): run python -m tinytorch.check 02") in result.stdout, result.stdout

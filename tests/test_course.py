"""The course's promise to instructors: one source, notebooks that run, tests in course order."""
from __future__ import annotations

import ast
import io
import os
import subprocess
import sys

import nbclient
import nbformat
import pytest

from course.build import comparisons, package, sources
from tinytorch import check

ROOT = sources.ROOT
MODULES = sources.course_modules()


def test_generated_package_matches_course_sources():
    problems = package.drift()
    assert not problems, "generated files drifted from course/:\n" + "\n".join(problems) + \
        "\nrun `python -m course.build export`"


def test_drift_is_detected(tmp_path, monkeypatch):
    """The drift check can fail: a hand edit to a generated file in a copy of the repo is reported."""
    for folder in ("course", "tinytorch"):
        subprocess.run(["cp", "-r", str(ROOT / folder), str(tmp_path / folder)], check=True)
    for name, value in {"ROOT": tmp_path, "COURSE": tmp_path / "course", "PACKAGE": tmp_path / "tinytorch",
                        "CHECKS": tmp_path / "tinytorch" / "checks"}.items():
        for module in (sources, package):  # each binds the paths it uses
            if hasattr(module, name):
                monkeypatch.setattr(module, name, value)
    assert package.drift() == []
    edited = tmp_path / "tinytorch" / "tensor.py"
    edited.write_text(edited.read_text() + "\n# a hand edit\n")
    assert package.drift() == ["tinytorch/tensor.py differs from its course source"]


def test_build_is_deterministic():
    assert package.generate() == package.generate()


def target_numbers() -> dict[str, int]:
    return {sources.export_target(sources.read_notebook(m), m): int(m.number) for m in MODULES}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.slug)
def test_module_imports_nothing_from_later_modules(module):
    """Module N's code, tests and demo cells import only modules <= N (course order)."""
    numbers = target_numbers()
    nb = sources.read_notebook(module)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    later = []
    for node in ast.walk(ast.parse(code)):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tinytorch."):
            names = [node.module.split(".")[1]]
        elif isinstance(node, ast.ImportFrom) and node.module == "tinytorch":
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("tinytorch.")]
        later += [n for n in names if numbers.get(n, 0) > int(module.number)]
    # The two documented forward references, both lazy imports inside a method: Tensor.backward
    # calls module 05's walk, GPT.generate calls module 15's sampler (nanoGPT keeps generate on the model).
    allowed = {"02": {"autograd"}, "14": {"generation"}}.get(module.number, set())
    assert set(later) <= allowed, f"{module.slug} imports later modules: {sorted(set(later) - allowed)}"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.slug)
def test_module_source_has_every_required_part(module):
    nb = sources.read_notebook(module)
    text = "\n".join(c.source for c in nb.cells)
    grade_cells = [c for c in nb.cells if sources.is_test_cell(c)]
    questions = [c for c in nb.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")]
    assert grade_cells and all(c.metadata["nbgrader"].get("points", 0) > 0 for c in grade_cells)
    assert all(c.source.lstrip().startswith('"""') for c in grade_cells), "each grade cell opens with a docstring"
    assert "### BEGIN SOLUTION" in text, "the module has code for students to write"
    assert "Profile(" in text or "measure(" in text, "memory/performance analysis uses the module 01 profiler"
    # guarded PyTorch comparison: module 01 writes the guard (tinytorch.profiler.torch_if_installed), every module
    # calls it with its own name (so that, without PyTorch, the cell shows the module's stored figures)
    assert f'torch = torch_if_installed("{module.slug}")' in text, "guarded PyTorch comparison, named by its module"
    assert 3 <= len(questions) <= 5, f"{len(questions)} systems questions"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "grade_ids are unique"


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.slug)
def test_notebook_with_solutions_executes_top_to_bottom(module, tmp_path, datasets):
    """The notebook a TA releases from runs without error, including its visible tests."""
    (path,) = [p for p in package.write_notebooks(tmp_path) if p.stem == module.slug]
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("TINYTORCH_DATASETS")
    os.environ["TINYTORCH_DATASETS"] = str(datasets)
    try:
        nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("TINYTORCH_DATASETS", None)
        else:
            os.environ["TINYTORCH_DATASETS"] = env_before
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


def test_check_runner_passes_on_the_reference():
    result = subprocess.run([sys.executable, "-m", "tinytorch.check", "02"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout and "18/18 points" in result.stdout


def test_check_runner_reports_a_broken_implementation(monkeypatch):
    """A wrong solution fails with the test's name, the error and the line; the run exits non-zero."""
    import tinytorch.checks.test_03_activations as tests
    monkeypatch.setattr(tests, "relu", lambda x: x)  # "forgot" the max(0, x)
    out = io.StringIO()
    passed, failed, earned, possible = check.run_module("test_03_activations", out=out)
    assert failed >= 1 and earned < possible
    assert "FAIL test_activations_values" in out.getvalue() and "AssertionError" in out.getvalue()


def test_check_runner_refuses_unknown_modules():
    result = subprocess.run([sys.executable, "-m", "tinytorch.check", "99"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "no visible tests for module(s) 99" in result.stderr


def test_build_prints_solution_lines_per_module():
    """`python -m course.build lines`: one row per module (its solution lines, counted from its source), and the total."""
    result = subprocess.run([sys.executable, "-m", "course.build", "lines"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:-1]}
    assert list(rows)[:-1] == [m.slug for m in MODULES], result.stdout
    counted = {m.slug: sources.module_size(m).solution_lines for m in MODULES}
    assert {slug: int(rows[slug][2]) for slug in counted} == counted
    assert int(rows["total"][2]) == sum(counted.values()) > 0
    tensor = sources.module_size(sources.find_module("02_tensor"))
    assert tensor.exercises >= 1 and tensor.questions >= 3 and tensor.hours > 0.5


def silent_asserts(source: str) -> list[str]:
    """The asserts of a grade cell that would fail without saying what they got: no message, a message without
    a value in it, or several conditions joined by `and` (the report could not say which one failed)."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Assert):
            continue
        line = ast.get_source_segment(source, node).splitlines()[0]
        if isinstance(node.test, ast.BoolOp) and isinstance(node.test.op, ast.And):
            problems.append(f"line {node.lineno}: `and` joins several checks (split them): {line}")
        elif node.msg is None:
            problems.append(f"line {node.lineno}: no message: {line}")
        elif isinstance(node.msg, ast.Constant) or (isinstance(node.msg, ast.JoinedStr) and not any(
                isinstance(part, ast.FormattedValue) for part in node.msg.values)):
            problems.append(f"line {node.lineno}: the message shows no value: {line}")
    return problems


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.slug)
def test_every_visible_test_says_what_it_got_and_expected(module):
    """A failing grade cell reports values (`AssertionError: (no message)` told a student nothing)."""
    nb = sources.read_notebook(module)
    problems = [f"{cell.metadata['nbgrader']['grade_id']} {p}" for cell in nb.cells if sources.is_test_cell(cell)
                for p in silent_asserts(sources.cell_source(cell))]
    assert not problems, f"{module.slug}: {len(problems)} silent assert(s):\n" + "\n".join(problems)


def test_the_silent_assert_check_finds_each_kind():
    found = silent_asserts("assert a == 1\nassert a == 1, 'a is wrong'\nassert a and b, f'{a}'\nassert a == 1, f'got {a}'\n")
    assert [p.split(":")[0] for p in found] == ["line 1", "line 2", "line 3"], found


def test_every_module_has_current_stored_pytorch_comparison():
    """Where PyTorch is missing, each comparison cell shows figures recorded by running that very cell with PyTorch."""
    problems = comparisons.stale()
    assert not problems, "\n".join(problems)
    stored = comparisons.load()
    for module in MODULES:
        entry = stored[module.slug]
        assert entry["torch"].startswith("2.13.0") and entry["recorded"] and entry["machine"], entry
        assert 0 < len(entry["output"].splitlines()) <= 12, f"{module.slug}: keep a comparison's output short"


def test_a_changed_or_missing_comparison_is_reported(monkeypatch):
    stored = comparisons.load()
    first, second = MODULES[0].slug, MODULES[1].slug
    changed = {**stored, first: {**stored[first], "cell_sha256": "0" * 64}}
    del changed[second]
    monkeypatch.setattr(comparisons, "load", lambda: changed)
    problems = comparisons.stale()
    assert problems[0].startswith(f"{first}'s PyTorch comparison cell changed since its figures were recorded")
    assert problems[1] == f"{second} has no stored PyTorch comparison in tinytorch/comparisons.json"
    assert "python -m course.build comparisons" in problems[-1] and len(problems) == 3
    result = subprocess.run([sys.executable, "-c", "import sys; from course.build import comparisons, __main__ as m\n"
                             "comparisons.load = lambda: {}\nsys.exit(m.main(['check']))"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "01_setup has no stored PyTorch comparison" in result.stderr


def test_editing_a_comparison_cell_makes_its_stored_figures_stale(tmp_path, monkeypatch):
    """In a copy of the course: an edit to module 12's comparison cell is reported, one elsewhere in it is not."""
    subprocess.run(["cp", "-r", str(ROOT / "course"), str(tmp_path / "course")], check=True)
    for module, name, value in [(sources, "ROOT", tmp_path), (sources, "COURSE", tmp_path / "course"),
                                (comparisons, "ROOT", tmp_path), (comparisons, "STORED", comparisons.STORED)]:
        monkeypatch.setattr(module, name, value)
    assert comparisons.stale() == []
    source = tmp_path / "course" / "12_production" / "12_production.py"
    source.write_text(source.read_text().replace("# ## Systems questions", "# ## Systems questions, edited"))
    assert comparisons.stale() == []
    source.write_text(source.read_text().replace("for _ in range(10):", "for _ in range(12):"))
    assert [p.split("'")[0] for p in comparisons.stale()[:-1]] == ["12_production"]


def test_stored_comparisons_are_where_the_profiler_reads_them():
    from tinytorch import profiler
    assert comparisons.STORED == sources.PACKAGE / profiler.STORED_COMPARISONS


def comparison_source(slug: str) -> str:
    module = sources.find_module(slug)
    nb = sources.read_notebook(module)
    return nb.cells[comparisons.comparison_cell(nb, module)].source


def run_without_torch(code: str, pythonpath: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python where `import torch` fails, as in the student image."""
    env = {**os.environ, "PYTHONPATH": pythonpath, "PYTHONSAFEPATH": "1"}
    return subprocess.run([sys.executable, "-c", "import sys\nsys.modules['torch'] = None\n" + code],
                          capture_output=True, text=True, env=env, cwd=pythonpath)


@pytest.mark.parametrize("slug", ["05_autograd", "12_production"])
def test_a_comparison_cell_without_torch_shows_its_stored_figures(slug):
    result = run_without_torch(comparison_source(slug), str(ROOT))
    assert result.returncode == 0, result.stderr
    stored = comparisons.load()[slug]
    assert "skipping" not in result.stdout
    assert "STORED figures, not measured now" in result.stdout and f"PyTorch {stored['torch']}" in result.stdout
    assert stored["recorded"] in result.stdout and stored["machine"] in result.stdout
    for line in stored["output"].splitlines():
        assert f"  | {line}" in result.stdout

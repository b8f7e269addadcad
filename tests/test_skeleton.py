"""The student skeleton of tinytorch: importable, every solution stubbed, no solution text."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from course import build


@pytest.fixture(scope="module")
def skeleton(tmp_path_factory):
    return build.write_skeleton(tmp_path_factory.mktemp("student"))


def run_with(skeleton, code: str) -> subprocess.CompletedProcess:
    """Run Python with only the skeleton's tinytorch importable (not the reference)."""
    env = {**os.environ, "PYTHONPATH": str(skeleton.parent), "PYTHONSAFEPATH": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=skeleton.parent)


def distinctive_solution_lines() -> dict[str, str]:
    """Solution lines (by module) that appear nowhere in given code, so finding one means a leak."""
    given, solutions = set(), {}
    for module in build.course_modules():
        for cell in build.read_notebook(module).cells:
            if cell.cell_type != "code":
                continue
            inside = set(build.solution_lines(cell.source))
            solutions.update({line: module.slug for line in inside if len(line) > 12})
            given.update(line.strip() for line in cell.source.splitlines() if line.strip() not in inside)
    return {line: slug for line, slug in solutions.items() if line not in given}


def find_leaks(package) -> list[str]:
    lines = distinctive_solution_lines()
    assert len(lines) > 30, "the leak check must have something to look for"
    leaks = []
    for path in package.rglob("*.py"):
        text = {line.strip() for line in path.read_text().splitlines()}
        leaks += [f"{path.name}: {line!r} (from {slug})" for line, slug in lines.items() if line in text]
    return leaks


def test_skeleton_contains_no_solution_line(skeleton):
    leaks = find_leaks(skeleton)
    assert not leaks, "solution text in the student package:\n" + "\n".join(leaks)


def test_leak_check_finds_the_solutions_in_the_reference_package():
    """The same search over the reference tinytorch (which has the solutions) must find them."""
    assert len(find_leaks(build.PACKAGE)) > 30


def test_skeleton_imports_and_stubs_name_their_module(skeleton):
    result = run_with(skeleton, "import tinytorch, tinytorch.nn\n"
                                "x = tinytorch.Tensor([1.0, 2.0])\n"
                                "print(tinytorch.__file__)\n"
                                "x + x\n")
    assert str(skeleton) in result.stdout, "the skeleton, not the reference, was imported"
    assert "NotImplementedError: implement in module 02_tensor" in result.stderr


def test_check_runner_on_the_skeleton_reports_failures_not_crashes(skeleton):
    result = run_with(skeleton, "import sys\nfrom tinytorch import check\nsys.exit(check.main(['02', '05']))")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stdout and "implement in module 02_tensor" in result.stdout
    assert " passed, " in result.stdout

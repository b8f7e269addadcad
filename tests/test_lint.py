"""The code is lint-clean: mypy on the typed public API, ruff on every Python file of the repo.

Both tools are pinned in pyproject.toml's `test` extra and configured there ([tool.mypy], [tool.ruff]).
"""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

# tinytorch's public API, the code written on top of it, the course build, the autograder and the course config's
# reader are typed (pyproject.toml [tool.mypy] files); the rest of the repo is ruff-checked only.
MYPY_PATHS = ["tinytorch", "course/milestones", "course/build", "autograder", "hub_config.py", "bench"]
RUFF_PATHS = ["tinytorch", "course", "bench", "tests", "autograder", "hub_config.py", "deploy", "docker"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_mypy_is_clean():
    result = run("mypy", *MYPY_PATHS)
    assert result.returncode == 0, f"mypy {' '.join(MYPY_PATHS)} found problems:\n{result.stdout}{result.stderr}"


def test_ruff_is_clean():
    result = run("ruff", "check", "--no-cache", *RUFF_PATHS)
    assert result.returncode == 0, f"ruff check {' '.join(RUFF_PATHS)} found problems:\n{result.stdout}{result.stderr}"


def test_no_file_holds_a_merge_conflict_marker():
    """A merge left half-done shows users both sides (the README once did): no tracked file may keep one."""
    markers = subprocess.run(["git", "grep", "-n", "-I", "-E", r"^(<<<<<<< |>>>>>>> |=======$)"],
                             cwd=ROOT, capture_output=True, text=True)
    assert markers.returncode == 1, f"merge conflict markers left in:\n{markers.stdout}"

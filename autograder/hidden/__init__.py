"""The hidden tests: ``autograder/hidden/<NN_name>/*.py``, one Otter test file each (see ttgrade/__init__.py).

Data, read here without running it (standard library only): which modules have hidden tests, their
files, their points, and what they declare. autograder/bundle.py sends them into a grading container.
"""
from __future__ import annotations

import ast
from pathlib import Path

from autograder.ttgrade.protocol import declared

HIDDEN = Path(__file__).resolve().parent


def assignments() -> list[str]:
    """Every module with hidden tests, in course order."""
    return sorted(p.name for p in HIDDEN.iterdir() if p.is_dir() and list(p.glob("*.py")))


def test_files(assignment: str) -> dict[str, str]:
    folder = HIDDEN / assignment
    if not folder.is_dir():
        raise KeyError(f"no hidden tests for {assignment!r} (they live in {folder})")
    return {p.name: p.read_text() for p in sorted(folder.glob("*.py"))}


def points(assignment: str) -> float:
    """The hidden tests' total points (read from the test_case decorators, nothing is run)."""
    total = 0.0
    for source in test_files(assignment).values():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef):
                for deco in node.decorator_list:
                    if isinstance(deco, ast.Call) and getattr(deco.func, "id", "") == "test_case":
                        total += next((ast.literal_eval(k.value) for k in deco.keywords if k.arg == "points"), 0)
    return total


def uses_own_stack(assignment: str) -> bool:
    """Whether some test runs on the student's own code for every earlier module (milestones)."""
    return any(declared(s, "stack", "module") == "own" for s in test_files(assignment).values())


def datasets(assignment: str) -> list[str]:
    """The datasets the module's hidden tests declare (``datasets = ["mnist"]``), by name."""
    return sorted({name for s in test_files(assignment).values() for name in declared(s, "datasets", [])})

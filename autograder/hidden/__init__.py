"""The hidden tests: ``autograder/hidden/<NN_name>/*.py``, one Otter test file each (see ttgrade/__init__.py).

They never leave the host but inside a grading container's memory: ``bundle()`` puts them, with the
reference and skeleton sources of tinytorch and the module's visible tests, into the JSON the
container reads on stdin.
"""
from __future__ import annotations

import ast
import base64
import functools
import json
import os
from pathlib import Path

HIDDEN = Path(__file__).resolve().parent
ROOT = HIDDEN.parent.parent
PACKAGE = ROOT / "tinytorch"
DATASET_FILES = {
    "mnist": ["mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz",
              "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"],
    "tinyshakespeare": ["tinyshakespeare/input.txt"],
}


def declared(source: str, name: str, default):
    """A module-level ``name = <literal>`` of a test file, read without running it."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return default


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


@functools.lru_cache(maxsize=1)
def course_sources() -> tuple:
    """(modules, reference files, skeleton files) of the course as it is in this checkout."""
    from course import build  # jupytext: only the host needs it
    modules = []
    for module in build.course_modules():
        modules.append({"slug": module.slug, "target": build.export_target(build.read_notebook(module), module)})
    reference = {f"tinytorch/{p.relative_to(PACKAGE).as_posix()}": p.read_text()
                 for p in sorted(PACKAGE.rglob("*.py")) if "checks" not in p.relative_to(PACKAGE).parts}
    skeleton = {f"tinytorch/{p.relative_to(PACKAGE).as_posix()}": text
                for p, text in build.build(student=True).items() if "checks" not in p.relative_to(PACKAGE).parts}
    return modules, reference, skeleton


def visible_tests(assignment: str) -> dict | None:
    """The module's visible tests as the grading container runs them: the notebook's grade cells, generated
    from course/ into ``tinytorch/checks/test_<NN_name>.py`` (one ``test_<grade_id>`` function each, and
    their ``POINTS``). None for a module without that file."""
    path = PACKAGE / "checks" / f"test_{assignment}.py"
    if not path.is_file():
        return None
    source = path.read_text()
    return {"module": f"tinytorch.checks.{path.stem}", "points": declared(source, "POINTS", {}), "source": source}


def datasets_root() -> Path:
    return Path(os.environ.get("TINYTORCH_DATASETS") or ROOT.parent / "shared" / "datasets")


def bundle(assignment: str, limits: dict, nonce: str) -> bytes:
    """What a grading container reads on stdin, as bytes."""
    tests = test_files(assignment)
    modules, reference, skeleton = course_sources()
    wanted = sorted({d for s in tests.values() for d in declared(s, "datasets", [])})
    data = {}
    for name in wanted:
        for rel in DATASET_FILES[name]:
            path = datasets_root() / rel
            if not path.is_file():
                raise FileNotFoundError(f"the hidden tests of {assignment} need {path} (set TINYTORCH_DATASETS)")
            data[rel] = base64.b64encode(path.read_bytes()).decode("ascii")
    return json.dumps({"nonce": nonce, "assignment": assignment, "modules": modules, "reference": reference,
                       "skeleton": skeleton, "tests": tests, "limits": limits, "datasets": data,
                       "visible": visible_tests(assignment)}).encode()

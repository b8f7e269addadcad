"""What one grading container reads on stdin: the ``Bundle`` of autograder/ttgrade/protocol.py.

The hidden tests, the reference and skeleton tinytorch sources (built from course/), the module's
visible tests and the datasets the tests declare (or, for a Swarm job, their digests: the grader node
has its own copy). None of it is ever written to the container's disk.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
from pathlib import Path

from autograder import hidden
from autograder.ttgrade.protocol import DATASET_FILES, Bundle, ProbeLimits, Visible, declared
from course.build.package import package_files
from course.build.sources import CHECKS, ROOT, course_modules, export_target, read_notebook


@functools.lru_cache(maxsize=1)
def course_sources() -> tuple[list[dict[str, str]], dict[str, str], dict[str, str]]:
    """(modules, reference files, skeleton files) of the course as it is in this checkout."""
    modules = [{"slug": m.slug, "target": export_target(read_notebook(m), m)} for m in course_modules()]
    return modules, package_files(), package_files(student=True)


def visible_tests(assignment: str) -> Visible | None:
    """The module's visible tests as the grading container runs them: the notebook's grade cells, generated
    from course/ into ``tinytorch/checks/test_<NN_name>.py`` (one ``test_<grade_id>`` function each, and
    their ``POINTS``). None for a module without that file."""
    path = CHECKS / f"test_{assignment}.py"
    if not path.is_file():
        return None
    source = path.read_text()
    return {"module": f"tinytorch.checks.{path.stem}", "points": declared(source, "POINTS", {}), "source": source}


def datasets_root() -> Path:
    return Path(os.environ.get("TINYTORCH_DATASETS") or ROOT.parent / "shared" / "datasets")


@functools.lru_cache(maxsize=4)
def dataset_files(assignment: str) -> dict[str, str]:
    """The files of the datasets the hidden tests declare, base64; read once per assignment and grading run
    (MNIST is 11 MB, and every submission of a milestone module gets it)."""
    data = {}
    for name in hidden.datasets(assignment):
        for rel in DATASET_FILES[name]:
            path = datasets_root() / rel
            if not path.is_file():
                raise FileNotFoundError(f"the hidden tests of {assignment} need {path} (set TINYTORCH_DATASETS)")
            data[rel] = base64.b64encode(path.read_bytes()).decode("ascii")
    return data


@functools.lru_cache(maxsize=4)
def dataset_digests(assignment: str) -> dict[str, str]:
    """The sha256 of each file of the datasets the hidden tests declare: a Swarm job checks its node's copy."""
    return {rel: hashlib.sha256(base64.b64decode(data)).hexdigest() for rel, data in dataset_files(assignment).items()}


def message(assignment: str, limits: ProbeLimits, nonce: str, datasets_on_node: bool = False) -> Bundle:
    """The bundle; ``datasets_on_node``: the datasets' digests instead of their bytes (a Swarm job)."""
    modules, reference, skeleton = course_sources()
    return {"nonce": nonce, "assignment": assignment, "modules": modules, "reference": reference,
            "skeleton": skeleton, "tests": hidden.test_files(assignment), "limits": limits,
            "datasets": {} if datasets_on_node else dataset_files(assignment),
            "dataset_digests": dataset_digests(assignment) if datasets_on_node else {},
            "visible": visible_tests(assignment)}


def bundle(assignment: str, limits: ProbeLimits, nonce: str) -> bytes:
    """What a grading container reads on stdin, as bytes."""
    return json.dumps(message(assignment, limits, nonce)).encode()

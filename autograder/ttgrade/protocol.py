"""What the host (autograder/) and the grading container (ttgrade) agree on, in one place.

Both sides import this file: the host as ``autograder.ttgrade.protocol``, the container as
``ttgrade.protocol`` (the grader image holds ttgrade alone). Standard library only.

The host writes one JSON *bundle* (``Bundle``) to the container's stdin; the container's grader
process prints one line, ``RESULT_PREFIX + nonce + " " + json``, as its last words.
"""
from __future__ import annotations

import ast
from typing import Any, TypedDict

RESULT_PREFIX = "TTGRADE-RESULT "
SUBMISSION = "/submission"  # where the submission's notebooks are mounted, read-only, named <NN_name>.ipynb
DATASET_FILES = {           # what a hidden test file's `datasets = [...]` brings into the bundle
    "mnist": ["mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz",
              "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"],
    "tinyshakespeare": ["tinyshakespeare/input.txt"],
}


class ProbeLimits(TypedDict):
    probe_timeout: float    # seconds one probe may run unless its test says otherwise
    probe_memory_mb: int    # the student's process: its address space is capped near this
    probe_budget: float     # seconds all probes of a submission without a timeout of their own may take together


class Visible(TypedDict):
    module: str                 # "tinytorch.checks.test_02_tensor"
    points: dict[str, float]    # test function -> points, in the notebook's order
    source: str                 # the generated test file


class Bundle(TypedDict):
    nonce: str                      # the result line must carry it
    assignment: str                 # "02_tensor"
    modules: list[dict[str, str]]   # every course module in order: {"slug": "02_tensor", "target": "tensor"}
    reference: dict[str, str]       # "tinytorch/tensor.py" -> source, the reference package (no checks/)
    skeleton: dict[str, str]        # the same paths, solutions stubbed (generated files only)
    tests: dict[str, str]           # hidden test file name -> source
    limits: ProbeLimits
    datasets: dict[str, str]        # a DATASET_FILES path -> base64 of its bytes
    visible: Visible | None


def declared(source: str, name: str, default: Any) -> Any:
    """A module-level ``name = <literal>`` of a hidden test file, read without running it."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return default

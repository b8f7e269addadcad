"""What the host (autograder/) and the grading container (ttgrade) agree on, in one place.

Both sides import this file: the host as ``autograder.ttgrade.protocol``, the container as
``ttgrade.protocol`` (the grader image holds ttgrade alone). Standard library only.

The host writes one JSON *bundle* (``Bundle``) to the container's stdin; the container's grader
process prints one line, ``RESULT_PREFIX + nonce + " " + json``, as its last words.

A Swarm job (autograder/swarm_jobs.py) has no stdin: there the bundle and the submission's notebooks come
as a ``Delivery``, gzipped JSON cut into Swarm secrets of at most ``SECRET_BYTES`` each, mounted as
``SECRETS/BUNDLE_SECRET.000``, ``.001``... (root's, mode 0400), and the datasets are the grader node's own
copy, mounted read-only at ``DATASETS`` and checked against the digests the bundle carries.
"""
from __future__ import annotations

import ast
import threading
from typing import Any, TypedDict

RESULT_PREFIX = "TTGRADE-RESULT "
SUBMISSION = "/submission"  # where the submission's notebooks are mounted, read-only, named <NN_name>.ipynb
DATASET_FILES = {           # what a hidden test file's `datasets = [...]` brings into the bundle
    "mnist": ["mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz",
              "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"],
    "tinyshakespeare": ["tinyshakespeare/input.txt"],
}
DATASETS = "/datasets"      # a Swarm job's read-only copy of the datasets, the grader node's own
SECRETS = "/run/secrets"    # where Docker mounts a service's secrets
BUNDLE_SECRET = "ttgrade-bundle"  # a Swarm job's delivery: SECRETS/ttgrade-bundle.000, .001, ... in order
SECRET_BYTES = 500 * 1024   # the most one Swarm secret may hold (Docker's limit)
GRADER_UID, GRADER_GID = 1000, 100  # who the grader process is (the image's user), and a Swarm job drops to


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
    dataset_digests: dict[str, str]  # a DATASET_FILES path -> sha256 hex of the file the job reads under DATASETS
    visible: Visible | None


class Delivery(TypedDict):
    bundle: Bundle
    submission: dict[str, str]      # "<NN_name>.ipynb" -> base64 of the student's notebook, written to SUBMISSION


# One ast.parse at a time: `autograder grade` builds each job's bundle in its own thread, and CPython 3.11 keeps the
# AST constructor's recursion depth per interpreter, not per thread, so two parses at once can fail with
# "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905; seen once in CI).
_PARSING = threading.Lock()


def declared(source: str, name: str, default: Any) -> Any:
    """A module-level ``name = <literal>`` of a hidden test file, read without running it."""
    with _PARSING:
        tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return default

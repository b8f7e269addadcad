"""What a hidden test file uses (it runs in the grader process, under Otter).

A hidden test file is an Otter exception-format test file (``from otter.test_files import
test_case``) that also declares which tinytorch the student's side imports::

    stack = "module"   # modules < N from the reference, module N from the submission (the default)
    stack = "own"      # every module from the student's own notebooks (milestones)

Code that must run on the student's tinytorch goes in a ``@probe`` function: ``probe(tt, *args)``
returns NumPy arrays, numbers, strings, or tuples/lists/dicts of them.  Probes are shipped, as
source, to a fresh process of their own that imports the submission (``ttgrade.child``); they may
use ``np``, ``peak_bytes`` and other probes of the same file, nothing else from the test file.  The
test then compares what came back with the same probe run on the reference, here:

    same(probe, *args)                  values, shapes and dtypes equal to the reference's
    within_budget(probe, *args, budget=..., what=...)    a tracemalloc peak under a budget
    value, seconds = run_student(probe, *args, timeout=...)   anything else

Failure messages are what students see: say what was checked and what differed, never the code.
"""
from __future__ import annotations

__all__ = ["StudentError", "dataset", "note", "peak_bytes", "probe", "reference", "run_reference", "run_student",
           "same", "within_budget"]


def __getattr__(name: str):
    """``from ttgrade import same`` loads ttgrade.api on first use (PEP 562). The student's process
    (``python -m ttgrade.child``, one per probe) imports this package too and needs none of it: not importing
    the grader's API (subprocess, selectors, tempfile) there saves 10-30 ms of every probe."""
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'ttgrade' has no attribute {name!r}")

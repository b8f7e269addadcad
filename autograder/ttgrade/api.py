"""The helpers hidden tests call (see ttgrade/__init__.py); they run in the grader process."""
from __future__ import annotations

import contextlib
import gc
import os
import shutil
import tempfile
import tracemalloc

import numpy as np

from . import runner
from .runner import PROBE_MARK


class StudentError(AssertionError):
    """The student's side failed: raised, timed out, crashed, or returned something unusable."""


def probe(fn):
    """Mark a function whose source is shipped to the student's process (see ttgrade/__init__.py)."""
    setattr(fn, PROBE_MARK, True)
    return fn


def reference():
    """The reference tinytorch (imported from memory in this process; never written to disk here)."""
    import tinytorch
    return tinytorch


@contextlib.contextmanager
def fresh_directory():
    """Run the reference's side of a probe in a new, empty working directory (probes may write files)."""
    previous = os.getcwd()
    folder = tempfile.mkdtemp(prefix="reference-", dir=runner.CONTEXT.workdir if hasattr(runner, "CONTEXT") else None)
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(previous)
        shutil.rmtree(folder, ignore_errors=True)


def run_reference(fn, *args):
    """``fn(reference, *args)`` here, after the student's processes are gone, in a fresh directory."""
    with fresh_directory():
        return fn(reference(), *args)


def note(text: str) -> None:
    """A line for the feedback of the test that is running (shown whether it passes or fails)."""
    runner.CONTEXT.note(text)


def dataset(name: str):
    """A dataset the grader received with the hidden tests (see ttgrade.parent.DATASETS)."""
    return runner.CONTEXT.dataset(name)


def peak_bytes(fn) -> int:
    """The tracemalloc peak while ``fn()`` runs, here (the reference's side)."""
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - before
    if not was_tracing:
        tracemalloc.stop()
    return max(peak, 0)


def run_student(fn, *args, timeout: float | None = None, memory_mb: int | None = None):
    """Run probe ``fn(tt, *args)`` on the submission's tinytorch; return (value, seconds)."""
    outcome = runner.CONTEXT.run(fn, args, timeout=timeout, memory_mb=memory_mb)
    if outcome.status != "ok":
        raise StudentError(outcome.message)
    return outcome.value, outcome.seconds


def same(fn, *args, rtol: float = 1e-5, atol: float = 1e-6, timeout: float | None = None):
    """``fn(tt, *args)`` on the submission equals ``fn(reference, *args)``: structure, shapes, dtypes, values."""
    got, _ = run_student(fn, *args, timeout=timeout)
    want = run_reference(fn, *args)
    secrets = runner.CONTEXT.secrets(fn, args)
    compare(got, want, "result", rtol, atol, shown=lambda value: runner.scrub(plain(value), secrets))
    return got


RSS_SLACK = 16 * 2**20  # resident-memory noise between two runs of the same probe (allocator, sampling)


def within_budget(fn, *args, budget: int, what: str, timeout: float | None = None) -> int:
    """``fn(tt, *args)`` returns a tracemalloc peak (``peak_bytes``); it must stay within ``budget`` bytes.

    Two measurements: the tracemalloc peak the probe takes inside the student's process, and, from
    outside (which no submission can tamper with), how much that process's resident memory grew while
    the operation ran (sampled every 2 ms), compared with the same probe run on the reference in a
    process of its own. That baseline process (a fresh Python with NumPy and tinytorch, about 0.25 CPU-s)
    is started only when the student's growth alone is over the budget and its slack: a growth is never
    below 0, so under that line no baseline could fail the submission, and over it the check is as before.
    """
    outcome = runner.CONTEXT.run(fn, args, timeout=timeout, sample=True)
    reference_peak = run_reference(fn, *args)
    if outcome.status != "ok":
        note(f"{what}: budget {mb(budget)}; not measured")
        raise StudentError(outcome.message)
    if outcome.tampering:
        note(f"{what}: budget {mb(budget)}; not measured: {'; '.join(sorted(set(outcome.tampering)))}")
        raise StudentError("the memory measurement was tampered with: " + "; ".join(sorted(set(outcome.tampering))))
    peak = outcome.value
    if not isinstance(peak, (int, float, np.integer, np.floating)):
        raise StudentError("the memory probe did not return a number")
    if not outcome.marked:
        note(f"{what}: budget {mb(budget)}; not measured")
        raise StudentError("the memory measurement never started in the process running your code (tampered with?)")
    note(f"{what}: peak {mb(peak)}, budget {mb(budget)} (reference {mb(reference_peak)})")
    if peak > budget:
        raise StudentError(f"{what} allocated {mb(peak)} at its peak, over the budget of {mb(budget)} "
                           f"(the reference needs {mb(reference_peak)})")
    line = budget + RSS_SLACK  # the most its process may grow beyond the reference's
    if outcome.rss_growth <= line:
        return int(peak)
    baseline = runner.CONTEXT.run(fn, args, timeout=timeout, sample=True, reference=True)
    if baseline.status != "ok":  # never "no baseline, so no check": the student's leftovers must not buy a pass
        raise StudentError(f"{what}: the memory used could not be compared with the reference's, whose run in a "
                           f"fresh process failed after yours ({baseline.message})")
    extra = outcome.rss_growth - baseline.rss_growth
    if extra > line:
        raise StudentError(f"{what}: the process running your code held {mb(extra)} more memory than the reference's, "
                           f"beyond the budget of {mb(budget)}, which tracemalloc did not report (was it tampered with?)")
    return int(peak)


def plain(value) -> str:
    """A value as a failure message shows it: NumPy scalars as numbers (``0.5``, not ``np.float32(0.5)``)."""
    return str(value) if isinstance(value, np.generic) else repr(value)


def mb(n) -> str:
    return f"{n / 2**20:.1f} MB"


# -- comparing results ------------------------------------------------------------------------------

def compare(got, want, path: str, rtol: float, atol: float, shown=plain) -> None:
    """Raise StudentError naming the first place where ``got`` differs from ``want``; values (the student's, and the
    reference's, which may repeat a hidden input) are written by ``shown``, which hides the test's inputs and code."""
    if isinstance(want, np.ndarray) or isinstance(want, np.generic):
        want = np.asarray(want)
        if isinstance(got, (int, float)) and not isinstance(got, bool):
            got = np.asarray(got)
        if not isinstance(got, np.ndarray):
            raise StudentError(f"{path}: expected an array, got {type(got).__name__}")
        if got.shape != want.shape:
            raise StudentError(f"{path}: shape {got.shape}, expected {want.shape}")
        if got.dtype != want.dtype:
            raise StudentError(f"{path}: dtype {got.dtype}, expected {want.dtype}")
        if want.dtype.kind == "f":
            ok = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
        else:
            ok = got == want
        if not np.all(ok):
            bad = np.argwhere(~np.asarray(ok))
            first = tuple(int(i) for i in bad[0]) if want.ndim else ()
            message = (f"{path}: {len(bad)} of {max(want.size, 1)} values differ; first at index {first}: "
                       f"got {shown(got[first])}, expected {shown(want[first])}")
            raise StudentError(message)
        return
    if isinstance(want, float):
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            raise StudentError(f"{path}: expected a number, got {type(got).__name__}")
        if not (np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)):
            raise StudentError(f"{path}: got {shown(got)}, expected {shown(want)}")
        return
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            raise StudentError(f"{path}: expected {len(want)} items, got {describe(got, shown)}")
        for index, (g, w) in enumerate(zip(got, want)):
            compare(g, w, f"{path}[{index}]", rtol, atol, shown)
        return
    if isinstance(want, dict):
        if not isinstance(got, dict) or list(got) != list(want):
            raise StudentError(f"{path}: expected {sorted(want)}, got {describe(got, shown)}")
        for key in want:
            compare(got[key], want[key], key if path == "result" else f"{path} / {key}", rtol, atol, shown)
        return
    if type(got) is not type(want) or got != want:
        raise StudentError(f"{path}: got {shown(got)}, expected {shown(want)}")


def describe(value, shown=plain) -> str:
    if isinstance(value, dict):
        return f"keys {shown(sorted(value, key=str))}"
    if isinstance(value, (tuple, list)):
        return f"{len(value)} items"
    return type(value).__name__

# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 01 — Setup: measuring before optimising
#
# Over fifteen modules you will build `tinytorch`, a deep-learning framework
# written in NumPy, from a Tensor to a small GPT. Every module ends the same
# way: you measure what your code costs in **time** and **memory**, compare it
# with PyTorch, and answer a few systems questions. This module gives you the
# two tools for that and checks your set-up.
#
# ## How the course works
#
# * Each module is one notebook and one assignment (`01_setup`, `02_tensor`,
#   ...). Fetch it in the *Assignments* tab; it lands in a folder named after
#   the assignment, next to your other work.
# * Code you write goes where a cell says `YOUR CODE HERE`: replace the
#   `raise NotImplementedError()` below it. The locked cells after it are the
#   tests: run them as you go.
# * Cells marked `#| export` are your framework: together they make up the
#   `tinytorch` package that later modules `import` (module 02's cells become
#   `tinytorch/tensor.py`, module 03's `tinytorch/activations.py`, and so on).
#
# ## Your own tinytorch
#
# The `tinytorch` installed on the hub is a *skeleton*: everything you will
# write raises `NotImplementedError("implement in module 02_tensor: Tensor.__add__
# is still the skeleton's stub ...")` (naming the function and its module) until
# you export your own code. Later modules measure with this module's profiler,
# so finish and export this one first. The **last cell of every
# notebook exports it**: save the notebook (Ctrl+S), then run that cell. It
# copies the notebook's `#| export` cells, as last saved, into one file of
# your *overlay*, `~/.tinytorch/overlay/` (module 02 writes `tensor.py`), and
# `import tinytorch` looks there before the skeleton. So once you have
# finished and exported module 02, module 03's `from tinytorch.tensor import
# Tensor` gives you **your** Tensor; modules you have not exported stay stubs.
#
# * Export again whenever you change your code, then restart the kernel of any
#   other open notebook (*Kernel → Restart*) so it imports the new version.
#   From a terminal: `python -m tinytorch.export 02_tensor.ipynb`.
# * An export that does not compile or import is refused, and your previous
#   export is kept; the message shows the error and its line. To go back to
#   the stub, delete the file it names (`rm ~/.tinytorch/overlay/tensor.py`).
# * Your overlay is yours alone: grading runs the notebook you submit and never
#   exports anything.
# * The milestones run on your exported code too, from a terminal:
#   `python -m course.milestones.xor` once modules 02-07 are exported (XOR
#   learns), `course.milestones.mnist_cnn` after module 12 (a CNN on MNIST),
#   `course.milestones.tinygpt` after module 15 (a GPT writes Shakespeare). A
#   milestone names the first module you have not exported yet, not a crash.
# * `python -m tinytorch.status` shows where you are: each module exported or
#   not, its visible tests, the milestones, and the next step.
#
# ## Before you submit
#
# 1. *Kernel → Restart and Run All*: every test cell passes.
# 2. *Validate* in the Assignments tab runs the notebook top to bottom the way
#    the grader will.
# 3. In a terminal, `python -m tinytorch.check 02` (the module's number) runs
#    the module's tests on your **exported** code and names each failing test,
#    its error and its line: what later modules will build on.
#
# Then *Submit*. You may submit again; the last submission before the
# deadline is graded.

# %%
#| default_exp profiler

# %% [markdown]
# ## Given: the imports and two helpers
#
# `format_bytes` prints a byte count for people; `torch_if_installed` is the
# guard of every module's PyTorch comparison: the comparison runs where
# PyTorch is installed; where it is not, it shows the figures the comparison
# printed on the course's reference machine, labelled as stored.

# %%
#| export
"""Time and memory of a block of code, and a small test runner: the tools of every module (module 01)."""
from __future__ import annotations

import json
import textwrap
import time
import tracemalloc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import DTypeLike


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


# Where PyTorch is missing, a comparison shows what it printed on the course's reference machine, from this
# file beside tinytorch/__init__.py. `python -m course.build comparisons` writes it by running every module's
# comparison cell with PyTorch, and keeps a hash of each cell: a test fails when a cell changed since.
STORED_COMPARISONS = "comparisons.json"


def stored_comparison(module: str) -> str:
    """What module `module`'s ("NN_name") PyTorch comparison printed when it was recorded, labelled as stored."""
    import tinytorch

    try:  # Path(None) is a TypeError: a package served from memory (the grader's) has no file beside it
        stored = json.loads((Path(tinytorch.__file__).parent / STORED_COMPARISONS).read_text(encoding="utf-8"))[module]
    except (TypeError, OSError, ValueError, KeyError):
        return (f"PyTorch is not installed, and tinytorch/{STORED_COMPARISONS} has no stored figures for {module}: "
                f"skipping the comparison")
    figures = textwrap.indent(stored["output"].rstrip("\n"), "  | ")
    return (f"PyTorch is not installed, so nothing is measured here. STORED figures, not measured now: what this\n"
            f"comparison printed with PyTorch {stored['torch']} and NumPy {stored['numpy']} on {stored['recorded']},\n"
            f"on the course's reference machine ({stored['machine']}):\n{figures}")


def torch_if_installed(module: str | None = None) -> ModuleType | None:
    """PyTorch for a notebook's comparison with it. Where it is not installed: None, after printing the figures
    that module `module`'s ("NN_name") comparison printed with PyTorch (or saying the comparison is skipped)."""
    try:
        import torch
    except ImportError:
        print(stored_comparison(module) if module else "PyTorch is not installed: skipping the comparison")
        return None
    return torch


# %% [markdown]
# ## Your turn: the profiler
#
# Every later module measures itself with the two tools you write here.
#
# `Profile` measures a block of code, `with Profile("label") as p: ...`:
#
# * **time**: wall-clock seconds between `__enter__` and `__exit__`, with
#   `time.perf_counter()` (a monotonic clock made for intervals, unlike
#   `time.time()`, which jumps when the system clock is set);
# * **memory**: the **peak** the block allocated above what was already
#   allocated, with Python's `tracemalloc` (NumPy reports its array buffers to
#   it, so array memory is counted). In `__enter__`: start tracing unless it is
#   already on (remember which, so that `__exit__` stops only what it started),
#   note the memory traced so far (`tracemalloc.get_traced_memory()[0]`) as the
#   baseline, and `tracemalloc.reset_peak()`. In `__exit__`: the peak
#   (`get_traced_memory()[1]`) minus the baseline, never below 0.
#
# `measure(fn, *args, repeat=3, label=None, **kwargs)` runs `fn(*args,
# **kwargs)` `repeat` times. The first run is inside a `Profile` (its peak
# memory and its result are kept); the others run **without** tracing, and
# the best (minimum) time of all runs is kept: tracing every allocation slows
# allocation-heavy code down several times, and the minimum is the run the
# rest of the machine disturbed least. So read `Profile` for memory, and time
# with `measure`.

# %% nbgrader={"grade": false, "grade_id": "profiler", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Profile:
    """`with Profile("label") as p: ...` then `p.peak_bytes` and `p.seconds` (timed while tracing: slower)."""

    def __init__(self, label: str = "block"):
        self.label = label
        self.seconds = 0.0
        self.peak_bytes = 0
        self._started_tracing = False  # did __enter__ start tracemalloc (so __exit__ must stop it)?
        self._baseline = 0             # bytes traced when the block began
        self._start = 0.0              # time.perf_counter() when the block began

    def __enter__(self) -> "Profile":
        ### BEGIN SOLUTION
        self._started_tracing = not tracemalloc.is_tracing()
        if self._started_tracing:
            tracemalloc.start()
        self._baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        self._start = time.perf_counter()
        ### END SOLUTION
        return self

    def __exit__(self, *exc: object) -> None:
        ### BEGIN SOLUTION
        self.seconds = time.perf_counter() - self._start
        self.peak_bytes = max(tracemalloc.get_traced_memory()[1] - self._baseline, 0)
        if self._started_tracing:
            tracemalloc.stop()
        ### END SOLUTION

    def __str__(self) -> str:
        return f"{self.label}: {self.seconds * 1e3:.2f} ms, peak {format_bytes(self.peak_bytes)}"


@dataclass
class Measurement:
    label: str
    seconds: float     # best of the repeats
    peak_bytes: int    # peak of the first run (later runs may reuse freed memory)
    result: object = None

    def __str__(self) -> str:
        return f"{self.label}: {self.seconds * 1e3:.2f} ms (best), peak {format_bytes(self.peak_bytes)}"


def measure(fn: Callable[..., Any], *args: Any, repeat: int = 3, label: str | None = None, **kwargs: Any) -> Measurement:
    """Run `fn(*args, **kwargs)` `repeat` times; keep the best time and the first run's peak memory and result."""
    name = label or str(getattr(fn, "__name__", "fn"))
    ### BEGIN SOLUTION
    with Profile(name) as first:
        result = fn(*args, **kwargs)
    best = first.seconds
    for _ in range(repeat - 1):
        start = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return Measurement(name, best, first.peak_bytes, result)
    ### END SOLUTION


# %% [markdown]
# Try it: the peak of allocating a 1000×1000 float32 array should be close to
# 4 MB, and `measure` should report a best time.

# %%
with Profile("ones 1000x1000") as p:
    block = np.ones((1000, 1000), dtype=np.float32)
print(p)
print(measure(np.ones, (1000, 1000), repeat=5))
del block

# %% [markdown]
# ## Your turn: a small test runner
#
# Each module's tests are plain functions that `assert`. A test runner finds
# them, runs every one even when an earlier one fails, and reports what
# failed and why. (`python -m tinytorch.check NN` is the course's own runner,
# built the same way; you will use it from module 02 on.)
#
# * `find_tests(namespace)`: the callables of a namespace (a dict such as
#   `globals()`) whose name starts with `test_`, as `(name, function)` pairs
#   in the namespace's order (definition order).
# * `run_tests(tests)`: call each test; a test passes when it returns, fails
#   when it raises any `Exception`. Record a `CheckResult` per test: its name,
#   whether it passed, its seconds, and for a failure the error as
#   `"TypeName: message"` (e.g. `"AssertionError: got 3, expected 4"`). One
#   failure never stops the run.

# %% nbgrader={"grade": false, "grade_id": "test-runner", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
@dataclass
class CheckResult:
    """One test's outcome (named Check..., not Test..., so that pytest does not take it for a test class)."""
    name: str
    passed: bool
    seconds: float
    error: str = ""   # "TypeName: message" when it failed


def find_tests(namespace: Mapping[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    """The callables in `namespace` whose name starts with "test_", in the namespace's order."""
    ### BEGIN SOLUTION
    return [(name, value) for name, value in namespace.items() if name.startswith("test_") and callable(value)]
    ### END SOLUTION


def run_tests(tests: Iterable[tuple[str, Callable[[], Any]]]) -> list[CheckResult]:
    """Run every test, in order; record each one's outcome. A failing test does not stop the others."""
    ### BEGIN SOLUTION
    results = []
    for name, test in tests:
        start = time.perf_counter()
        try:
            test()
        except Exception as error:
            results.append(CheckResult(name, False, time.perf_counter() - start, f"{type(error).__name__}: {error}"))
        else:
            results.append(CheckResult(name, True, time.perf_counter() - start))
    return results
    ### END SOLUTION


def report(results: list[CheckResult]) -> str:
    """One line per test, then the count: what a runner prints."""
    lines = [f"{'ok  ' if r.passed else 'FAIL'} {r.name} ({r.seconds * 1e3:.1f} ms){'' if r.passed else ': ' + r.error}"
             for r in results]
    failed = sum(not r.passed for r in results)
    return "\n".join(lines + [f"{len(results) - failed} passed, {failed} failed"])


# %% [markdown]
# Try it on three tests, one of them wrong on purpose:

# %%
def test_sum_of_small_numbers():
    assert sum([1, 2, 3]) == 6


def test_float_addition_is_exact():  # it is not: 0.1 + 0.2 == 0.30000000000000004
    assert 0.1 + 0.2 == 0.3, f"got {0.1 + 0.2!r}, expected 0.3"


def test_empty_array_has_no_bytes():
    assert np.zeros((10, 0)).nbytes == 0


print(report(run_tests(find_tests(globals()))))

# %% [markdown]
# ## Your turn: predict, then measure
#
# A systems engineer predicts a cost before measuring it. Write two
# predictions:
#
# * `expected_bytes(shape, dtype)`: the bytes of an array's buffer — the
#   number of elements times the size of one element
#   (`np.dtype(dtype).itemsize`). An empty shape `()` is one element.
# * `matmul_flops(n, k, m)`: the floating-point operations of an (n, k) @ (k, m)
#   product — each of the n·m outputs needs k multiplications and k additions.

# %% nbgrader={"grade": false, "grade_id": "predictions", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def expected_bytes(shape: tuple[int, ...], dtype: DTypeLike = np.float32) -> int:
    """Bytes of the buffer of an array with this shape and dtype."""
    ### BEGIN SOLUTION
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    ### END SOLUTION


def matmul_flops(n: int, k: int, m: int) -> int:
    """Floating-point operations of an (n, k) @ (k, m) matrix product."""
    ### BEGIN SOLUTION
    return 2 * n * k * m
    ### END SOLUTION


# %% [markdown]
# ## Tests

# %% nbgrader={"grade": true, "grade_id": "test-setup-predictions", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""The predictions are right for a few shapes and dtypes."""
assert expected_bytes((1000, 1000)) == 4_000_000, f"got expected_bytes((1000, 1000)) = {expected_bytes((1000, 1000))!r}"
assert expected_bytes((64, 3, 32, 32), np.float64) == 64 * 3 * 32 * 32 * 8, \
    f"got expected_bytes((64, 3, 32, 32), np.float64) = {expected_bytes((64, 3, 32, 32), np.float64)!r}; 64 * 3 * 32 * 32 * 8 = {64 * 3 * 32 * 32 * 8!r}"
assert expected_bytes(()) == 4, f"got expected_bytes(()) = {expected_bytes(())!r}"
assert expected_bytes((10, 0)) == 0, f"got expected_bytes((10, 0)) = {expected_bytes((10, 0))!r}"
assert matmul_flops(2, 3, 4) == 48, f"got matmul_flops(2, 3, 4) = {matmul_flops(2, 3, 4)!r}"

# %% nbgrader={"grade": true, "grade_id": "test-setup-profiler", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""The profiler sees a NumPy allocation of the predicted size."""
with Profile("allocate") as p:
    block = np.ones((500, 500), dtype=np.float32)
assert expected_bytes((500, 500)) <= p.peak_bytes < 2 * expected_bytes((500, 500)), \
    f"got expected_bytes((500, 500)) = {expected_bytes((500, 500))!r}; p.peak_bytes = {p.peak_bytes!r}; 2 * expected_bytes((500, 500)) = {2 * expected_bytes((500, 500))!r}"
assert p.seconds >= 0, f"got p.seconds = {p.seconds!r}"
m = measure(np.ones, (100, 100), repeat=2)
assert m.result.shape == (100, 100), f"got m.result.shape = {m.result.shape!r}"
assert m.seconds > 0, f"got m.seconds = {m.seconds!r}"

# %% nbgrader={"grade": true, "grade_id": "test-setup-profiler-baseline", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""Profile counts only what its block allocates, leaves tracing on when it was on, and measure repeats."""
import tracemalloc as _tracemalloc
_tracemalloc.start()
try:
    before = np.ones((1000, 1000), dtype=np.float32)        # 4 MB allocated before the block: not its cost
    with Profile("small") as p:
        small = np.ones((100, 100), dtype=np.float32)        # 40 KB
    assert p.peak_bytes < 1_000_000, f"peak {p.peak_bytes} bytes for a 40 KB block: subtract the baseline"
    assert _tracemalloc.is_tracing(), \
        f"got is_tracing() = {_tracemalloc.is_tracing()} after the block, expected True: Profile stopped tracing that it did not start"
finally:
    _tracemalloc.stop()
assert not _tracemalloc.is_tracing(), f"got is_tracing() = {_tracemalloc.is_tracing()}, expected False after stop()"
calls = []
m = measure(lambda x, scale=1: calls.append(x * scale) or len(calls), 2, repeat=4, scale=3, label="count")
assert calls == [6, 6, 6, 6], f"measure called fn {len(calls)} times with results {calls}, expected 4 times 6"
assert m.result == 1, f"got result {m.result!r}, expected 1: keep the first run's result"
assert m.label == "count", f"got label {m.label!r}, expected 'count' (the label argument)"

# %% nbgrader={"grade": true, "grade_id": "test-setup-test-runner", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""find_tests keeps test_ callables in order; run_tests runs them all and records each failure's type and message."""
def _ok():
    pass
def _wrong():  # a failing check, raised as it is (pytest would add its own explanation to an `assert` here)
    raise AssertionError(f"got {1 + 1}, expected 3")
def _crash():
    raise KeyError("missing")
namespace = {"test_b": _ok, "helper": _ok, "test_a": _wrong, "test_value": 42, "test_c": _crash}
found = find_tests(namespace)
assert [name for name, _ in found] == ["test_b", "test_a", "test_c"], f"found {[n for n, _ in found]}"
results = run_tests(found)
assert [(r.name, r.passed) for r in results] == [("test_b", True), ("test_a", False), ("test_c", False)], results
assert results[0].error == "", f"got error {results[0].error!r} for the passing test, expected ''"
assert results[1].error == "AssertionError: got 2, expected 3", \
    f"got error {results[1].error!r}, expected 'AssertionError: got 2, expected 3' (\"TypeName: message\")"
assert results[2].error.startswith("KeyError"), results[2].error
assert all(r.seconds >= 0 for r in results), f"got seconds {[r.seconds for r in results]}, expected each >= 0"

# %% [markdown]
# ## Memory and performance analysis
#
# How fast is this machine? Time a matrix product at a few sizes and convert
# to GFLOP/s with your `matmul_flops`. Small products are dominated by the
# fixed cost of a call; large ones approach what the CPU can do.

# %%
rng = np.random.default_rng(0)
for n in (16, 128, 512):
    a = rng.standard_normal((n, n)).astype(np.float32)
    m = measure(np.matmul, a, a, repeat=5, label=f"matmul {n}x{n}")
    print(f"{m}  ->  {matmul_flops(n, n, n) / m.seconds / 1e9:6.1f} GFLOP/s;"
          f" predicted output {expected_bytes((n, n))} bytes")

# %% [markdown]
# ## Comparison with PyTorch
#
# PyTorch calls the same kind of BLAS library for a matrix product, so at
# large sizes the two should be close.

# %%
torch = torch_if_installed("01_setup")

if torch is not None:
    a = rng.standard_normal((512, 512)).astype(np.float32)
    t = torch.from_numpy(a)
    print(measure(np.matmul, a, a, repeat=5, label="numpy 512"))
    print(measure(torch.matmul, t, t, repeat=5, label="torch 512"))

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** Your 512×512 product ran at some GFLOP/s and the 16×16 one at far
# less. Where does the time of a small product go?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-setup-overhead", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Fixed per-call costs (Python dispatch, argument checks, allocating the
# output, BLAS set-up) dwarf the 8 kFLOP of work; only large products
# amortise them.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** Why does `measure` keep the *minimum* of several runs rather than
# the mean, and what does that choice hide?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-setup-minimum", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Noise from other processes only adds time, so the minimum is closest to
# the code's own cost. It hides variance (cache-cold first runs, GC pauses)
# that a user may well experience.
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** tracemalloc reported a peak close to your `expected_bytes`. Name
# one kind of memory a deep-learning program uses that tracemalloc would not
# see.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-setup-tracemalloc", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Memory allocated by libraries outside Python's allocator hooks (BLAS
# workspaces, memory-mapped files, GPU memory), and the interpreter itself.
# === END MARK SCHEME ===

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
# write raises `NotImplementedError("implement in module 02_tensor")` (naming
# the module) until you export your own code. The **last cell of every
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
# ## Given: the profiler
#
# `Profile` measures a block of code: wall-clock seconds with
# `time.perf_counter`, and the **peak** memory the block allocated above what
# was already allocated, with Python's `tracemalloc` (NumPy reports its array
# buffers to tracemalloc, so array memory is counted). `measure` runs a
# function several times and keeps the best time: the minimum is the run the
# rest of the machine disturbed least.
#
# One caveat, itself a systems lesson: tracing every allocation slows
# allocation-heavy code down (several times for small tensors). So read
# `Profile` for **memory**, and time with `measure`, whose repeats run
# without tracing.

# %%
#| export
"""Time and memory of a block of code: the tool of every analysis in the course (module 01)."""
from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
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


class Profile:
    """`with Profile("label") as p: ...` then `p.peak_bytes` and `p.seconds` (timed while tracing: slower)."""

    def __init__(self, label: str = "block"):
        self.label = label
        self.seconds = 0.0
        self.peak_bytes = 0

    def __enter__(self) -> "Profile":
        self._started_tracing = not tracemalloc.is_tracing()
        if self._started_tracing:
            tracemalloc.start()
        self._baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self.peak_bytes = max(tracemalloc.get_traced_memory()[1] - self._baseline, 0)
        if self._started_tracing:
            tracemalloc.stop()

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
    """Run `fn(*args, **kwargs)` `repeat` times; keep the best time and the first run's peak memory."""
    name = label or str(getattr(fn, "__name__", "fn"))
    with Profile(name) as first:
        result = fn(*args, **kwargs)
    best = first.seconds
    for _ in range(repeat - 1):
        start = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return Measurement(name, best, first.peak_bytes, result)


def torch_if_installed() -> ModuleType | None:
    """PyTorch for a notebook's comparison with it; None, saying the comparison is skipped, when it is not installed."""
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: skipping the comparison")
        return None
    return torch


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
torch = torch_if_installed()

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

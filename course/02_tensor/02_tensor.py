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
# # Module 02 — Tensor
#
# Every deep-learning framework is built on one data structure: an
# n-dimensional array of numbers with a shape and a dtype. In this module you
# write `tinytorch.Tensor`, a thin wrapper around a NumPy array that
#
# * stores its numbers in `.data` (a `numpy.ndarray`, float32 by default),
# * supports arithmetic with **broadcasting** (`+ - * / ** @`), reductions
#   (`sum`, `mean`, `max`), shape changes (`reshape`, `transpose`, `.T`),
#   element-wise maths (`exp`, `log`, `sqrt`, `tanh`) and indexing,
# * **remembers how it was made**: every operation records its name and its
#   input tensors. Nothing uses that record yet. In module 05 you will write
#   one gradient rule per operation name, and `loss.backward()` will walk
#   these records backwards. So module 05 *adds* to this Tensor; it never
#   rewrites it.
#
# Why wrap NumPy at all? Because the wrapper is where a framework keeps what
# the array does not know: whether gradients are wanted, where the value came
# from, and (in real frameworks) which device it lives on.

# %%
#| default_exp tensor

# %% [markdown]
# ## Given: construction, the history record, and grad mode
#
# Read this cell; you do not change it. `Tensor(data)` accepts lists, NumPy
# arrays, numbers and other tensors. Python numbers and lists of them, ints
# included, become float32, as `torch.Tensor([1, 2, 3])` does (the dtype of
# deep learning: half the memory of float64 and twice the SIMD width), so
# XOR inputs written `[[0, 0], [0, 1], ...]` compute in float32. **NumPy
# arrays keep their dtype**: `Tensor(np.array([1, 0, 2]))` stays int64 (class
# indices, token ids) and a float64 array stays float64 when you need the
# precision (the finite-difference checks do). `dtype=` overrides both.
#
# `_make(data, op, parents, ctx)` is how every operation builds its result: it
# records `op`, `parents` and `ctx` only when some parent requires gradients
# and grad mode is on. `no_grad()` switches recording off, which is what you
# want at inference time and inside an optimizer's update.
#
# One line at the top talks to the C allocator, not to NumPy: `keep_freed_memory()`.
# Every operation makes a new array, and a new array of more than 128 KB
# normally comes straight from the operating system as fresh pages, each
# zeroed and mapped the first time it is touched; when the array is freed,
# the pages go back. A training step makes and frees the same large arrays
# step after step, so it pays that toll every time. Asking glibc's `malloc`
# to keep freed memory for the next array (up to 256 MB) is what PyTorch's
# caching allocator does on the GPU; the analysis below counts the page faults
# it saves, and it took 10-25% off the CPU time of the milestones' training
# steps. The price: the process keeps the memory of its largest step.

# %%
#| export
"""Tensor: an n-dimensional array that remembers how it was made (module 02)."""
from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Sequence
from typing import Any, TypeAlias, Union, cast

import ctypes

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

# What every operation accepts: a Tensor, or anything NumPy can make an array of (an array, a list, a number).
TensorLike: TypeAlias = Union["Tensor", ArrayLike]
# Which dimensions a reduction runs over: one, several, or (None) all of them.
Axis: TypeAlias = int | tuple[int, ...] | None

DEFAULT_DTYPE = np.float32
_grad_enabled = True
_rng = np.random.default_rng()

# glibc's mallopt parameters (malloc.h): when a freed block goes back to the operating system.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory(keep: bool = True) -> bool:
    """Ask the C allocator to keep freed memory for the next arrays instead of returning it to the operating
    system (`keep=False`: glibc's small default limits again). False where the C library is not glibc."""
    try:  # the C library the interpreter has loaded already (dlopen(NULL)); ctypes.util.find_library would
        mallopt = ctypes.CDLL(None).mallopt  # run ldconfig: 30 ms at every import of tinytorch
    except (OSError, AttributeError, TypeError):  # a C library without mallopt (macOS), or no dlopen (Windows)
        return False
    mb = 1 << 20
    limits = {_M_MMAP_THRESHOLD: 32 * mb, _M_TRIM_THRESHOLD: 256 * mb, _M_TOP_PAD: 64 * mb} if keep else \
        {_M_MMAP_THRESHOLD: 128 * 1024, _M_TRIM_THRESHOLD: 128 * 1024, _M_TOP_PAD: 0}
    return all(mallopt(parameter, value) == 1 for parameter, value in limits.items())


keep_freed_memory()  # every array a training step frees is reused by the next step, not mapped afresh


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Operations inside this block record no history, so no gradient flows through them."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


def manual_seed(seed: int) -> None:
    """Make every random initialisation in tinytorch repeatable."""
    global _rng
    _rng = np.random.default_rng(seed)


def rng() -> np.random.Generator:
    """The generator that layers use for their initial weights."""
    return _rng


def _to_array(data: TensorLike, dtype: DTypeLike | None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        try:
            return np.asarray(data, dtype=dtype)
        except (TypeError, ValueError) as error:
            raise TypeError(f"Tensor data cannot be converted to {np.dtype(dtype)}: {error}") from None
    try:
        array = np.asarray(data)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"Tensor data must be rectangular (every row the same length): {error}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"Tensor data must be numbers, got {type(data).__name__} with dtype {array.dtype}")
    if not isinstance(data, (np.ndarray, np.generic)):
        array = array.astype(DEFAULT_DTYPE)  # Python numbers become float32 (torch.Tensor's rule); arrays keep their dtype
    return array


def _dims(dims: tuple[int | Sequence[int], ...]) -> tuple[int, ...]:
    """`x.reshape(2, 3)` and `x.reshape((2, 3))` both mean the dimensions (2, 3), as in PyTorch."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        return tuple(dims[0])
    return cast(tuple[int, ...], dims)


def _make(data: ArrayLike, op: str, parents: tuple[Tensor, ...], ctx: Any = None) -> Tensor:
    """Wrap an operation's result, recording its history when gradients are wanted."""
    out = Tensor.__new__(Tensor)
    out.data = np.asarray(data)
    out.grad = None
    if _grad_enabled and any(p.requires_grad for p in parents):
        out.requires_grad, out._op, out._parents, out._ctx = True, op, parents, ctx
    else:
        out.requires_grad, out._op, out._parents, out._ctx = False, None, (), None
    return out


# %% [markdown]
# ## The Tensor class
#
# The class below has the plumbing (properties, printing, conversion to
# NumPy) and the arithmetic. Each operation is one line of NumPy plus a call
# to `_make` naming the operation, for example
#
# ```python
# def exp(self):
#     return _make(np.exp(self.data), "exp", (self,))
# ```
#
# That one is done for you. Fill in the others. Three rules:
#
# 1. Use `self._lift(other)` to turn numbers and arrays into tensors of a
#    matching dtype, so `x * 2` stays float32.
# 2. Let NumPy broadcast: `(3, 1) + (1, 4) -> (3, 4)`. Do not copy data.
# 3. Only the *primitives* get an op name (`add`, `mul`, `pow`, `matmul`,
#    `sum`, `max`, `reshape`, `permute`, `getitem`, `exp`, `log`, `tanh`).
#    Everything else — subtraction, division, negation, `mean`, `sqrt`,
#    `transpose` — is written in terms of them, so module 05 needs twelve
#    gradient rules, not twenty.
#
# **The history contract.** Module 05's gradient rules read what you record
# here, and module 05 is graded on the course's module 02, so record exactly
# this (each method's docstring repeats its line; the test
# `test-tensor-ctx-contract` checks it):
#
# | op name | `_parents` | `_ctx` (the 4th argument of `_make`) |
# |---|---|---|
# | `add`, `mul`, `matmul` | `(self, other)` | `None` |
# | `exp`, `log`, `tanh`, `reshape` | `(self,)` | `None` (reshape's rule reads the parent's shape) |
# | `pow` | `(self,)` | the exponent, as given: `x ** 3` stores `3` |
# | `sum`, `max` | `(self,)` | the tuple `(axis, keepdims)`, as given: `x.sum(1)` stores `(1, False)` |
# | `permute` | `(self,)` | the tuple of axes: `x.permute(2, 0, 1)` stores `(2, 0, 1)` |
# | `getitem` | `(self,)` | the index NumPy was given, Tensors replaced by their arrays: `x[1, :]` stores `(1, slice(None))` |

# %% nbgrader={"grade": false, "grade_id": "tensor-class", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Tensor:
    """An n-dimensional array of numbers that remembers how it was made.

    `Tensor(data, requires_grad=False, dtype=None)`: data is a number, a
    (nested) list, a NumPy array or a Tensor. Python numbers (ints too) become
    float32, like `torch.Tensor([1, 2, 3])`; NumPy arrays keep their dtype.
    """

    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__

    def __init__(self, data: TensorLike, requires_grad: bool = False, dtype: DTypeLike | None = None):
        self.data: np.ndarray = _to_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, this one is {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad: np.ndarray | None = None     # filled by backward() (module 05)
        self._op: str | None = None              # name of the operation that made this tensor
        self._parents: tuple[Tensor, ...] = ()   # the tensors it was made from
        self._ctx: Any = None                    # anything else its gradient rule needs

    # -- plumbing ------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self.dtype}{grad})"

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float | int | bool:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """The same numbers, cut off from the history (no gradient flows back)."""
        return _make(self.data, "detach", ())

    def zero_grad(self) -> None:
        self.grad = None

    def backward(self, grad: ArrayLike | None = None) -> None:
        """Fill `.grad` of every tensor this one was computed from (module 05 writes the engine)."""
        from tinytorch.autograd import backward  # module 05; imported here so module 02 stands alone
        backward(self, grad)

    def _lift(self, other: TensorLike) -> Tensor:
        if isinstance(other, Tensor):
            return other
        if isinstance(other, numbers.Number):  # x * 2 keeps x's dtype: float32 stays float32, int64 stays int64
            return Tensor(np.asarray(other, dtype=self.dtype if self.dtype.kind == "f" else None))
        return Tensor(other)

    # -- element-wise primitives ---------------------------------------------
    def __add__(self, other: TensorLike) -> Tensor:
        """Element-wise sum, broadcast. Records op "add", parents (self, other), ctx None."""
        other = self._lift(other)
        ### BEGIN SOLUTION
        return _make(self.data + other.data, "add", (self, other))
        ### END SOLUTION

    def __mul__(self, other: TensorLike) -> Tensor:
        """Element-wise product, broadcast. Records op "mul", parents (self, other), ctx None."""
        other = self._lift(other)
        ### BEGIN SOLUTION
        return _make(self.data * other.data, "mul", (self, other))
        ### END SOLUTION

    def __pow__(self, exponent: float) -> Tensor:
        """Each element to a number's power. Records op "pow", parents (self,), ctx = the exponent."""
        if not isinstance(exponent, numbers.Number):
            raise TypeError("tensor ** exponent needs a number exponent; for a tensor exponent use (b * a.log()).exp()")
        ### BEGIN SOLUTION
        return _make(self.data ** exponent, "pow", (self,), exponent)
        ### END SOLUTION

    def exp(self) -> Tensor:
        """e to each element. Records op "exp", parents (self,), ctx None (the worked example)."""
        return _make(np.exp(self.data), "exp", (self,))

    def log(self) -> Tensor:
        """Natural logarithm of each element. Records op "log", parents (self,), ctx None."""
        ### BEGIN SOLUTION
        return _make(np.log(self.data), "log", (self,))
        ### END SOLUTION

    def tanh(self) -> Tensor:
        """tanh of each element. Records op "tanh", parents (self,), ctx None."""
        ### BEGIN SOLUTION
        return _make(np.tanh(self.data), "tanh", (self,))
        ### END SOLUTION

    # -- composed from the primitives (no gradient rule of their own) -----------
    def __neg__(self) -> Tensor:
        ### BEGIN SOLUTION
        return self * -1
        ### END SOLUTION

    def __sub__(self, other: TensorLike) -> Tensor:
        ### BEGIN SOLUTION
        return self + (-self._lift(other))
        ### END SOLUTION

    def __truediv__(self, other: TensorLike) -> Tensor:
        ### BEGIN SOLUTION
        return self * self._lift(other) ** -1
        ### END SOLUTION

    def sqrt(self) -> Tensor:
        ### BEGIN SOLUTION
        return self ** 0.5
        ### END SOLUTION

    def __radd__(self, other: TensorLike) -> Tensor:
        return self + other

    def __rmul__(self, other: TensorLike) -> Tensor:
        return self * other

    def __rsub__(self, other: TensorLike) -> Tensor:
        return self._lift(other) - self

    def __rtruediv__(self, other: TensorLike) -> Tensor:
        return self._lift(other) / self

    def __rpow__(self, base: float) -> Tensor:
        return (self * float(np.log(base))).exp()  # base ** x == exp(x log base)

    # -- matrix multiplication -----------------------------------------------
    def __matmul__(self, other: TensorLike) -> Tensor:
        other = self._lift(other)
        a, b = self.shape, other.shape
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError(f"matmul needs tensors with at least one dimension, got shapes {a} and {b}")
        if a[-1] != b[-2 if other.ndim > 1 else 0]:
            raise ValueError(f"matmul shapes {a} and {b} do not fit: the first has {a[-1]} columns, "
                             f"the second {b[-2 if other.ndim > 1 else 0]} rows")
        # A vector operand is a one-row (or one-column) matrix, as in NumPy and PyTorch.
        if self.ndim == 1:
            out = self.reshape(1, -1) @ other  # (..., 1, m), or (1,) when both are vectors
            return out.reshape(*out.shape[:-2], out.shape[-1]) if other.ndim > 1 else out.reshape(())
        if other.ndim == 1:
            return (self @ other.reshape(-1, 1)).reshape(*a[:-1])
        # A stack of matrices times one matrix (a Linear layer on (B, T, C) inputs) is one tall
        # matrix product: BLAS does one big call, and the weight's gradient needs no sum over B.
        # What is left is the primitive: op "matmul", parents (self, other), ctx None.
        if self.ndim > 2 and other.ndim == 2:
            return (self.reshape(-1, a[-1]) @ other).reshape(*a[:-1], b[-1])
        ### BEGIN SOLUTION
        try:
            out = np.matmul(self.data, other.data)
        except ValueError:
            raise ValueError(f"matmul batch dimensions of {a} and {b} do not broadcast") from None
        return _make(out, "matmul", (self, other))
        ### END SOLUTION

    def __rmatmul__(self, other: TensorLike) -> Tensor:
        return self._lift(other) @ self

    # -- reductions ------------------------------------------------------------
    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Sum over `axis` (all when None). Records op "sum", parents (self,), ctx = (axis, keepdims) as given."""
        ### BEGIN SOLUTION
        return _make(self.data.sum(axis=axis, keepdims=keepdims), "sum", (self,), (axis, keepdims))
        ### END SOLUTION

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        if self.size == 0:
            raise ValueError(f"mean() of an empty tensor (shape {self.shape}) is undefined")
        ### BEGIN SOLUTION
        total = self.sum(axis=axis, keepdims=keepdims)
        return total / (self.size // total.size)  # divide by how many numbers went into each sum
        ### END SOLUTION

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Largest value over `axis` (all when None). Records op "max", parents (self,), ctx = (axis, keepdims)."""
        ### BEGIN SOLUTION
        return _make(self.data.max(axis=axis, keepdims=keepdims), "max", (self,), (axis, keepdims))
        ### END SOLUTION

    def argmax(self, axis: int | None = None) -> Tensor:
        """Index of the largest value (an integer tensor; no gradient)."""
        return Tensor(self.data.argmax(axis=axis))

    # -- shapes ------------------------------------------------------------------
    def reshape(self, *dims: int | Sequence[int]) -> Tensor:
        """The same numbers in a new shape (-1: inferred). Records op "reshape", parents (self,), ctx None."""
        shape = _dims(dims)
        ### BEGIN SOLUTION
        try:
            out = self.data.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {self.shape} ({self.size} elements) to {shape}") from None
        return _make(out, "reshape", (self,))
        ### END SOLUTION

    def permute(self, *dims: int | Sequence[int]) -> Tensor:
        """Reorder the dimensions: `x.permute(0, 2, 1)` swaps the last two of a 3-D tensor.

        Records op "permute", parents (self,), ctx = the tuple of axes, `(0, 2, 1)` here.
        """
        axes = _dims(dims)
        ### BEGIN SOLUTION
        return _make(self.data.transpose(axes), "permute", (self,), axes)
        ### END SOLUTION

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two dimensions (PyTorch's `transpose(dim0, dim1)`)."""
        ### BEGIN SOLUTION
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(*axes)
        ### END SOLUTION

    @property
    def T(self) -> Tensor:
        """All dimensions reversed; for a matrix, its transpose."""
        return self.permute(*reversed(range(self.ndim)))

    def __getitem__(self, index: Any) -> Tensor:
        """NumPy indexing. Records op "getitem", parents (self,), ctx = the index given to NumPy (Tensors
        replaced by their arrays, as the lines below do): `x[1, :]` records `(1, slice(None))`."""
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        ### BEGIN SOLUTION
        return _make(self.data[index], "getitem", (self,), index)
        ### END SOLUTION


# %% [markdown]
# ## Given: ways to make tensors
#
# The usual factory functions. `randn` draws from tinytorch's own generator,
# so `manual_seed` makes whole experiments repeatable. `as_tensor(x)`, like
# `torch.as_tensor`, returns `x` itself when it is already a Tensor and wraps
# anything else: later modules call it on every input they accept.

# %%
#| export
def tensor(data: TensorLike, requires_grad: bool = False, dtype: DTypeLike | None = None) -> Tensor:
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data: TensorLike) -> Tensor:
    """`data` itself when it is a Tensor (no copy, its history kept), else `Tensor(data)`."""
    return data if isinstance(data, Tensor) else Tensor(data)


def zeros(*shape: int, requires_grad: bool = False, dtype: DTypeLike = DEFAULT_DTYPE) -> Tensor:
    return Tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad)


def ones(*shape: int, requires_grad: bool = False, dtype: DTypeLike = DEFAULT_DTYPE) -> Tensor:
    return Tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad)


def randn(*shape: int, requires_grad: bool = False, dtype: DTypeLike = DEFAULT_DTYPE) -> Tensor:
    return Tensor(_rng.standard_normal(shape).astype(dtype), requires_grad=requires_grad)


def arange(*args: float, dtype: DTypeLike | None = None) -> Tensor:
    return Tensor(np.arange(*args, dtype=dtype))


# %% [markdown]
# ## Try it
#
# Broadcasting lines shapes up from the right; a dimension of size 1
# stretches. A column of 3 plus a row of 4 is a 3×4 grid — without NumPy
# ever writing the stretched copies to memory.

# %%
col = Tensor([[0.0], [10.0], [20.0]])   # (3, 1)
row = Tensor([1.0, 2.0, 3.0, 4.0])      # (4,)
grid = col + row
print(grid.shape, grid.dtype)
print(grid)

# %% [markdown]
# ## Tests
#
# Each cell below is graded. Run them after you finish the class above;
# `python -m tinytorch.check 02` runs the same tests on your exported code.

# %% nbgrader={"grade": true, "grade_id": "test-tensor-creation", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""Tensors keep shape and dtype, also through arithmetic with Python numbers; Python numbers become float32 (ints too, as torch.Tensor); arrays keep their dtype; bad data is refused."""
t = Tensor([[1.0, 2.0], [3.0, 4.0]])
assert t.shape == (2, 2), f"got t.shape = {t.shape!r}"
assert t.dtype == np.float32, f"got t.dtype = {t.dtype!r}"
assert (t + 0.5).dtype == (t * 2).dtype == np.float32, \
    f"got (t + 0.5).dtype = {(t + 0.5).dtype!r}; (t * 2).dtype = {(t * 2).dtype!r}"
assert (t + 0.5).data.tolist() == [[1.5, 2.5], [3.5, 4.5]], f"got (t + 0.5).data.tolist() = {(t + 0.5).data.tolist()!r}"
assert Tensor(np.zeros(3, dtype=np.float64)).dtype == np.float64, \
    f"got Tensor(np.zeros(3, dtype=np.float64)).dtype = {Tensor(np.zeros(3, dtype=np.float64)).dtype!r}"
ints = Tensor([1, 2, 3])
assert ints.dtype == np.float32, f"Tensor([1, 2, 3]) (Python ints) should be float32, got {ints.dtype}"
indices = Tensor(np.array([1, 0, 2]))
assert indices.dtype == np.int64, f"Tensor(np.array([1, 0, 2])) should keep int64, got {indices.dtype}"
assert Tensor(3.5).item() == 3.5, f"got Tensor(3.5).item() = {Tensor(3.5).item()!r}"
assert np.array(t).tolist() == [[1.0, 2.0], [3.0, 4.0]], f"got np.array(t).tolist() = {np.array(t).tolist()!r}"
try:
    Tensor(["a", "b"])
    raise AssertionError("strings should be refused")
except TypeError:
    pass

# %% nbgrader={"grade": true, "grade_id": "test-tensor-arithmetic", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""+ - * / ** and unary minus agree with NumPy, with numbers on either side."""
a = Tensor([[1.0, 2.0], [3.0, 4.0]])
b = Tensor([[0.5, -1.0], [2.0, 8.0]])
assert np.allclose((a + b).data, [[1.5, 1.0], [5.0, 12.0]]), f"got (a + b).data = {(a + b).data!r}"
assert np.allclose((a - b).data, [[0.5, 3.0], [1.0, -4.0]]), f"got (a - b).data = {(a - b).data!r}"
assert np.allclose((a * b).data, [[0.5, -2.0], [6.0, 32.0]]), f"got (a * b).data = {(a * b).data!r}"
assert np.allclose((a / b).data, [[2.0, -2.0], [1.5, 0.5]]), f"got (a / b).data = {(a / b).data!r}"
assert np.allclose((a ** 2).data, [[1.0, 4.0], [9.0, 16.0]]), f"got (a ** 2).data = {(a ** 2).data!r}"
assert np.allclose((-a).data, [[-1.0, -2.0], [-3.0, -4.0]]), f"got (-a).data = {(-a).data!r}"
assert np.allclose((1 - a).data, [[0.0, -1.0], [-2.0, -3.0]]), f"got (1 - a).data = {(1 - a).data!r}"
assert np.allclose((2 / a).data, [[2.0, 1.0], [2 / 3, 0.5]]), \
    f"got (2 / a).data = {(2 / a).data!r}; [[2.0, 1.0], [2 / 3, 0.5]] = {[[2.0, 1.0], [2 / 3, 0.5]]!r}"
assert (a * 2).dtype == np.float32, \
    f"multiplying by a Python number must keep float32: got (a * 2).dtype = {(a * 2).dtype!r}"

# %% nbgrader={"grade": true, "grade_id": "test-tensor-broadcasting", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""Shapes broadcast like NumPy's."""
x = Tensor(np.ones((3, 1), dtype=np.float32))
y = Tensor(np.arange(4, dtype=np.float32))
assert (x + y).shape == (3, 4), f"got (x + y).shape = {(x + y).shape!r}"
assert (x * y).shape == (3, 4), f"got (x * y).shape = {(x * y).shape!r}"
assert np.allclose((x * y).data[2], [0, 1, 2, 3]), f"got (x * y).data[2] = {(x * y).data[2]!r}"

# %% nbgrader={"grade": true, "grade_id": "test-tensor-matmul", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""@ handles matrices, vectors and batches, and names the shapes when they do not fit."""
a = np.arange(6, dtype=np.float32).reshape(2, 3)
b = np.arange(12, dtype=np.float32).reshape(3, 4)
assert np.allclose((Tensor(a) @ Tensor(b)).data, a @ b), \
    f"got (Tensor(a) @ Tensor(b)).data = {(Tensor(a) @ Tensor(b)).data!r}; a @ b = {a @ b!r}"
v = np.arange(3, dtype=np.float32)
assert np.allclose((Tensor(a) @ Tensor(v)).data, a @ v), \
    f"got (Tensor(a) @ Tensor(v)).data = {(Tensor(a) @ Tensor(v)).data!r}; a @ v = {a @ v!r}"
batch = np.ones((5, 2, 3), dtype=np.float32)
assert (Tensor(batch) @ Tensor(b)).shape == (5, 2, 4), \
    f"got (Tensor(batch) @ Tensor(b)).shape = {(Tensor(batch) @ Tensor(b)).shape!r}"
try:
    Tensor(a) @ Tensor(a)
    raise AssertionError("(2,3) @ (2,3) should be refused")
except ValueError as error:
    assert "(2, 3)" in str(error), f"got str(error) = {str(error)!r}"

# %% nbgrader={"grade": true, "grade_id": "test-tensor-reductions-shapes", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""sum/mean/max with axis and keepdims; reshape, transpose, indexing and elementwise maths."""
x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
t = Tensor(x)
assert t.sum().item() == x.sum(), f"got t.sum().item() = {t.sum().item()!r}; x.sum() = {x.sum()!r}"
assert np.allclose(t.sum(axis=1).data, x.sum(axis=1)), \
    f"got t.sum(axis=1).data = {t.sum(axis=1).data!r}; x.sum(axis=1) = {x.sum(axis=1)!r}"
assert t.mean(axis=(0, 2), keepdims=True).shape == (1, 3, 1), \
    f"got t.mean(axis=(0, 2), keepdims=True).shape = {t.mean(axis=(0, 2), keepdims=True).shape!r}"
assert np.allclose(t.mean(axis=-1).data, x.mean(axis=-1)), \
    f"got t.mean(axis=-1).data = {t.mean(axis=-1).data!r}; x.mean(axis=-1) = {x.mean(axis=-1)!r}"
assert np.allclose(t.max(axis=0).data, x.max(axis=0)), \
    f"got t.max(axis=0).data = {t.max(axis=0).data!r}; x.max(axis=0) = {x.max(axis=0)!r}"
assert t.reshape(4, 6).shape == (4, 6), f"got t.reshape(4, 6).shape = {t.reshape(4, 6).shape!r}"
assert t.reshape(-1).shape == (24,), f"got t.reshape(-1).shape = {t.reshape(-1).shape!r}"
assert t.transpose(0, 2).shape == (4, 3, 2), f"got t.transpose(0, 2).shape = {t.transpose(0, 2).shape!r}"
assert t.reshape(6, 4).T.shape == (4, 6), f"got t.reshape(6, 4).T.shape = {t.reshape(6, 4).T.shape!r}"
assert np.allclose(t[1, :, 2].data, x[1, :, 2]), \
    f"got t[1, :, 2].data = {t[1, :, 2].data!r}; x[1, :, 2] = {x[1, :, 2]!r}"
assert np.allclose(t[np.array([1, 0, 1])].data, x[[1, 0, 1]]), \
    f"got t[np.array([1, 0, 1])].data = {t[np.array([1, 0, 1])].data!r}; x[[1, 0, 1]] = {x[[1, 0, 1]]!r}"
assert np.allclose(Tensor([1.0, 4.0]).sqrt().data, [1.0, 2.0]), \
    f"got Tensor([1.0, 4.0]).sqrt().data = {Tensor([1.0, 4.0]).sqrt().data!r}"
assert np.allclose(Tensor([0.0]).exp().data, [1.0]), f"got Tensor([0.0]).exp().data = {Tensor([0.0]).exp().data!r}"
assert np.allclose(Tensor([1.0]).log().data, [0.0]), f"got Tensor([1.0]).log().data = {Tensor([1.0]).log().data!r}"
assert np.allclose(Tensor([0.5]).tanh().data, np.tanh([0.5])), \
    f"got Tensor([0.5]).tanh().data = {Tensor([0.5]).tanh().data!r}; np.tanh([0.5]) = {np.tanh([0.5])!r}"

# %% nbgrader={"grade": true, "grade_id": "test-tensor-history", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""Results remember their operation and parents only when gradients are wanted."""
w = Tensor([1.0, 2.0], requires_grad=True)
x = Tensor([3.0, 4.0])
y = w * x
assert y.requires_grad, f"w * x with w.requires_grad should require gradients, got y.requires_grad = {y.requires_grad}"
assert y._op == "mul", f"got y._op = {y._op!r}"
assert y._parents[0] is w, f"got y._parents[0] = {y._parents[0]!r}; w = {w!r}"
assert (x * x)._parents == (), \
    f"tensors that need no gradient keep no history: got (x * x)._parents = {(x * x)._parents!r}"
with no_grad():
    assert not (w * x).requires_grad, f"under no_grad() nothing requires gradients, got {(w * x).requires_grad}"

# %% nbgrader={"grade": true, "grade_id": "test-tensor-ctx-contract", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Every primitive records the op name, parents and `_ctx` of the history contract (the table above), which module 05's gradient rules read."""
x = Tensor(np.arange(1, 25, dtype=np.float32).reshape(2, 3, 4), requires_grad=True)
a = Tensor(np.ones((3, 4), dtype=np.float32), requires_grad=True)
b = Tensor(np.ones((4, 2), dtype=np.float32))
picks = np.array([1, 0, 1])
expected = [  # (what was computed, the result, op, parents, ctx)
    ("x + a", x + a, "add", (x, a), None),
    ("x * a", x * a, "mul", (x, a), None),
    ("a @ b", a @ b, "matmul", (a, b), None),
    ("x.exp()", x.exp(), "exp", (x,), None),
    ("x.log()", x.log(), "log", (x,), None),
    ("x.tanh()", x.tanh(), "tanh", (x,), None),
    ("x ** 3", x ** 3, "pow", (x,), 3),
    ("x ** -0.5", x ** -0.5, "pow", (x,), -0.5),
    ("x.sum()", x.sum(), "sum", (x,), (None, False)),
    ("x.sum(axis=1, keepdims=True)", x.sum(axis=1, keepdims=True), "sum", (x,), (1, True)),
    ("x.max(axis=(0, 2))", x.max(axis=(0, 2)), "max", (x,), ((0, 2), False)),
    ("x.max()", x.max(), "max", (x,), (None, False)),
    ("x.reshape(6, 4)", x.reshape(6, 4), "reshape", (x,), None),
    ("x.permute(2, 0, 1)", x.permute(2, 0, 1), "permute", (x,), (2, 0, 1)),
    ("x.transpose(0, 2)", x.transpose(0, 2), "permute", (x,), (2, 1, 0)),
    ("x[1, :, 2]", x[1, :, 2], "getitem", (x,), (1, slice(None), 2)),
]
for what, out, op, parents, ctx in expected:
    assert out._op == op, f"{what}: _op should be {op!r}, got {out._op!r}"
    assert len(out._parents) == len(parents), \
        f"{what}: should record {len(parents)} parent(s), got {len(out._parents)}: {out._parents!r}"
    assert all(p is q for p, q in zip(out._parents, parents)), \
        f"{what}: _parents should be the {len(parents)} input tensor(s) themselves, in order; got {out._parents!r}"
    same = isinstance(out._ctx, tuple) == isinstance(ctx, tuple) and bool(np.all(out._ctx == ctx))
    assert same, f"{what}: _ctx should be {ctx!r}, got {out._ctx!r}"
picked = x[Tensor(picks)]
assert picked._op == "getitem", f"x[Tensor(array)]: _op should be 'getitem', got {picked._op!r}"
assert isinstance(picked._ctx, np.ndarray), f"got type of picked._ctx = {type(picked._ctx).__name__}"
assert picked._ctx.tolist() == [1, 0, 1], f"got picked._ctx.tolist() = {picked._ctx.tolist()!r}"

# %% [markdown]
# ## Memory and performance analysis
#
# A Tensor is a NumPy array plus a few attributes, so the costs are NumPy's:
# an element-wise op on float32 allocates one output buffer of
# `4 × size` bytes. Broadcasting does not materialise the stretched operand.
# Reshape and transpose are *views*: they allocate nothing. Let us check with
# the module 01 profiler.

# %%
from tinytorch.profiler import Profile

a = Tensor(np.ones((1000, 1000), dtype=np.float32))
bias = Tensor(np.ones((1000,), dtype=np.float32))
for label, fn in [("a + a", lambda: a + a), ("a + bias (broadcast)", lambda: a + bias),
                  ("a.reshape(100, 10000)", lambda: a.reshape(100, 10000)), ("a.T", lambda: a.T),
                  ("a - a (composed: neg + add)", lambda: a - a)]:
    with Profile(label) as p:
        fn()
    print(p)

# %% [markdown]
# `a - a` costs two output buffers where `a + a` costs one: composing
# subtraction from negation and addition is simple, and this is its price.
# Real frameworks fuse such chains; we keep them composed because each
# primitive then needs exactly one gradient rule.

# %% [markdown]
# ### Where a new array's memory comes from
#
# Count the page faults (`ru_minflt`: pages the operating system had to map
# and zero) and the time of 20 additions of two 4 MB arrays, each making a
# new 4 MB result, with the allocator returning freed memory to the
# operating system (glibc's defaults) and keeping it (`keep_freed_memory()`,
# what `tinytorch` sets when it is imported):

# %%
import resource

from tinytorch.profiler import measure

big = Tensor(np.ones((1000, 1000), dtype=np.float32))


def additions(n=20):
    for _ in range(n):
        big + big                                               # a new 4 MB result, freed at once


for keep in (False, True):
    keep_freed_memory(keep)
    additions(1)                                                # a first result, to warm up
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    additions()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) // 20
    seconds = measure(additions, repeat=5).seconds / 20
    print(f"keep freed memory {keep!s:5}: {faults:5d} page faults per addition, {seconds * 1e3:.2f} ms each")
keep_freed_memory(True)

# %% [markdown]
# ### Memory layout: row-major and column-major
#
# A 2-D array is one flat buffer; its **strides** say how many bytes to skip
# to move one step along each axis. NumPy (like C and PyTorch) stores rows
# one after another by default (*row-major*, `order="C"`); Fortran and
# MATLAB store columns (*column-major*, `order="F"`). The same loop over the
# same numbers then reads memory in order or jumps through it. Time a
# Python loop that sums one row at a time, then one column at a time, on both
# layouts:

# %%
from tinytorch.profiler import measure

n = 2000
c_order = np.ones((n, n), dtype=np.float32)            # rows contiguous
f_order = np.asfortranarray(c_order)                   # the same values, columns contiguous
print(f"C order strides {c_order.strides}, F order strides {f_order.strides} (bytes per step along each axis)")
print(f"a Tensor's transpose is a view with the strides swapped: {Tensor(c_order).T.data.strides}")


def sum_rows(a):
    return sum(float(a[i, :].sum()) for i in range(a.shape[0]))


def sum_columns(a):
    return sum(float(a[:, j].sum()) for j in range(a.shape[1]))


for name, a in (("C order", c_order), ("F order", f_order)):
    rows, cols = measure(sum_rows, a, repeat=3).seconds, measure(sum_columns, a, repeat=3).seconds
    print(f"{name}: row by row {rows * 1e3:6.1f} ms, column by column {cols * 1e3:6.1f} ms "
          f"-> the strided traversal is {max(rows, cols) / min(rows, cols):.1f}x slower")

# %% [markdown]
# A row of a C-order array is 8 KB in a row; a column touches one float in
# every 8 KB, so each cache line fetched serves one number instead of
# sixteen. Which traversal is fast flips with the layout.
#
# ### Views and copies: who sees a write?
#
# `reshape`, transpose and basic slicing return **views**: new shape and
# strides over the *same* buffer. Fancy indexing (a list of indices) and
# `.copy()` return **copies**. Write through one and look at the others:

# %%
base = Tensor(np.zeros((3, 4), dtype=np.float32))
views = {"reshape(4, 3)": base.reshape(4, 3), "transpose": base.T, "slice [::2]": base[::2]}
copies = {"fancy index [[0, 2]]": base[[0, 2]], "Tensor(base.data.copy())": Tensor(base.data.copy())}
base.data[0, 0] = 7.0                                  # one write, through the original
for name, t in {**views, **copies}.items():
    first = t.data.flat[0]
    print(f"{name:26s} shares memory: {str(np.shares_memory(t.data, base.data)):5s}  sees the write: "
          f"{first == 7.0!s:5s} (first element {first})")
views["reshape(4, 3)"].data[3, 2] = -1.0               # and a write through a view reaches the original
print("write through the reshape view -> base[2, 3] =", base.data[2, 3])

# %% [markdown]
# Views cost no memory (the profiler above saw 0 bytes for reshape and
# transpose) but alias: an in-place change through any of them changes all of
# them. That is why module 07's optimizer updates `p.data` in place (every
# view of a weight sees the new value) and why a saved activation must never
# be modified in place before the backward pass reads it.
#
# ### A Python loop against one vectorised call
#
# `a * b + c` on NumPy arrays is one loop in C over contiguous memory. The
# same arithmetic in a Python loop pays for the interpreter on every element:

# %%
size = 100_000
xs, ys, zs = (np.random.default_rng(k).standard_normal(size).astype(np.float32) for k in range(3))
xl, yl, zl = xs.tolist(), ys.tolist(), zs.tolist()


def python_loop():
    return [x * y + z for x, y, z in zip(xl, yl, zl)]


def vectorised():
    return xs * ys + zs


slow, fast = measure(python_loop, repeat=3), measure(vectorised, repeat=3)
assert np.allclose(slow.result, fast.result, atol=1e-5)  # the same numbers
print(f"{size} multiply-adds: Python loop {slow.seconds * 1e3:.2f} ms, NumPy {fast.seconds * 1e3:.3f} ms "
      f"-> {slow.seconds / fast.seconds:.0f}x faster")
t_fast = measure(lambda: Tensor(xs) * Tensor(ys) + Tensor(zs), repeat=3)
print(f"the same with tinytorch Tensors: {t_fast.seconds * 1e3:.3f} ms (a few Python calls, then NumPy)")

# %% [markdown]
# ## Comparison with PyTorch
#
# `torch.Tensor` has the same shape rules. It is faster on small tensors
# because each operation is one C++ call instead of a few Python ones.

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed("02_tensor")

if torch is not None:
    import time
    x = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    tt_x, th_x = Tensor(x), torch.from_numpy(x)
    assert np.allclose((tt_x @ tt_x + 1).data, (th_x @ th_x + 1).numpy(), atol=1e-3)
    for name, op in [("tinytorch", lambda: tt_x @ tt_x + 1), ("torch", lambda: th_x @ th_x + 1)]:
        start = time.perf_counter()
        for _ in range(50):
            op()
        print(f"{name:10s} {(time.perf_counter() - start) / 50 * 1e6:8.1f} µs per (256x256 matmul + 1)")

# %% [markdown]
# ## Systems questions
#
# Answer each in a few sentences, using numbers you measured above.

# %% [markdown]
# **Q1.** A float32 tensor of shape (64, 3, 224, 224) is one batch of
# images. How many bytes does it take, and how many would float64 take? Why
# do frameworks default to float32?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-tensor-dtype", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# 64·3·224·224 = 9,633,792 elements: 38.5 MB in float32, 77 MB in float64.
# float32 halves memory and bandwidth and doubles SIMD width; the precision
# is enough for gradient descent.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** `a - a` allocated twice as much as `a + a` above. Explain why, and
# say what a framework could do about it.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-tensor-composed", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Subtraction is negation (one buffer) then addition (another). A framework
# can make subtraction a primitive or fuse element-wise chains into one
# kernel (as torch.compile does).
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** Why are `reshape` and `.T` nearly free, and when does a later
# operation pay for them after all?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-tensor-views", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# They return views with new shape/strides over the same buffer. A
# non-contiguous view (the transpose) makes later operations read memory
# with large strides, or forces a copy when a contiguous layout is needed.
# === END MARK SCHEME ===

# %% [markdown]
# **Q4.** Every Tensor that requires gradients keeps references to its
# parents. What does that mean for memory while a network computes its loss,
# and why does `no_grad()` matter at inference time?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-tensor-history", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# The history keeps every intermediate result alive until the loss (and its
# graph) is dropped: activation memory grows with depth and batch size.
# Under no_grad nothing is recorded, so intermediates are freed as soon as
# they are no longer used.
# === END MARK SCHEME ===

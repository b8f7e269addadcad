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
# # Module 03 — Activations
#
# A stack of linear layers is still one linear layer:
# `W2 (W1 x + b1) + b2 = (W2 W1) x + (W2 b1 + b2)`. Depth buys nothing until
# something **non-linear** sits between the layers. In this module you write
# the five non-linearities every network in this course uses —
# ReLU, Sigmoid, Tanh, GELU and Softmax — as functions of Tensors, and you
# see with your own eyes that a linear model cannot learn XOR while one hidden
# layer with ReLU can.
#
# `from tinytorch.activations import *` gives these functions: `relu(x)`,
# `sigmoid(x)`, ... The layer forms that go into a network, `ReLU()`,
# `Sigmoid()`, ..., need module 04's `Module`, so they arrive there, built on
# these functions (`from tinytorch.layers import *` gives `Sequential`,
# `Linear` and `ReLU` together), just as `torch.nn.ReLU` is built on
# `torch.nn.functional.relu`.
#
# Each activation is written **only with Tensor operations from module 02**.
# That is a design choice with a pay-off: in module 05 every one of them gets
# its gradient for free, because autograd knows the gradient of every
# primitive they are made of.

# %%
#| default_exp activations

# %%
#| export
"""Activation functions, composed from Tensor operations (module 03)."""
from __future__ import annotations

import numpy as np

from tinytorch.tensor import Tensor, TensorLike, as_tensor

GELU_C = float(np.sqrt(2.0 / np.pi))


# %% [markdown]
# ## Your turn: the broadcasting rule
#
# Activations are element-wise: the output has the input's shape. But the
# Tensor operations they are built from **broadcast**: softmax divides
# `(N, C)` scores by an `(N, 1)` normaliser, a layer adds a `(C,)` bias to
# `(N, C)` activations. NumPy's rule decides the result's shape, and with it
# the result's memory:
#
# 1. line the shapes up **from the right** (a missing leading axis counts
#    as size 1);
# 2. on each axis the sizes must be equal, or one of them 1 (it is
#    stretched, without copying, to the other size);
# 3. the result has, on each axis, the size that is not 1 (or 1).
#
# `(256, 1) + (1, 10)` is `(256, 10)`; `(8, 1, 5) + (3, 1)` is `(8, 3, 5)`;
# `(3,) + (4,)` is an error. Write `broadcast_shape(*shapes)`: the result's
# shape, or a `ValueError` whose message names the shapes that do not fit
# (as NumPy's does). Use plain Python on the tuples, not
# `np.broadcast_shapes` (that is what the tests compare with).

# %% nbgrader={"grade": false, "grade_id": "broadcast-shape", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of an element-wise operation on arrays of these shapes, by NumPy's broadcasting rule.

    Raises ValueError naming the shapes when two sizes on one axis differ and neither is 1."""
    ### BEGIN SOLUTION
    ndim = max((len(shape) for shape in shapes), default=0)
    result = []
    for axis in range(-1, -ndim - 1, -1):                 # from the right
        sizes = {shape[axis] for shape in shapes if len(shape) >= -axis} - {1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {', '.join(map(str, shapes))} do not broadcast: sizes {sorted(sizes)} on axis {axis}")
        result.append(sizes.pop() if sizes else 1)
    return tuple(reversed(result))
    ### END SOLUTION


# %% [markdown]
# Broadcasting copies nothing on the way *in*, but the *result* is a full
# array of the broadcast shape. Adding a `(N, 1)` column to a `(1, N)` row
# reads `2N` numbers and writes `N²`: measure it with module 01's profiler
# against the bytes your `broadcast_shape` predicts.

# %%
from tinytorch.profiler import Profile, expected_bytes

for n in (100, 1000, 3000):
    column = np.ones((n, 1), dtype=np.float32)
    row = np.ones((1, n), dtype=np.float32)
    with Profile(f"({n}, 1) + (1, {n})") as p:
        outer = column + row
    predicted = expected_bytes(broadcast_shape(column.shape, row.shape))
    print(f"{p}   inputs {format(column.nbytes + row.nbytes, ','):>7} B, predicted output {format(predicted, ','):>10} B")
    del outer

# %% [markdown]
# ## The functions
#
# * **ReLU** `max(0, x)`: multiply by the mask `x > 0`. The mask is a plain
#   array (a constant), so the gradient passes exactly where `x > 0`.
# * **Sigmoid** `1 / (1 + e^{-x})` overflows `e^{-x}` for `x < -88` in
#   float32. Use the identity `σ(x) = (1 + tanh(x / 2)) / 2`, which never
#   overflows.
# * **Tanh**: a Tensor primitive already.
# * **GELU** (the activation of GPT), in its tanh approximation:
#   `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`. `GELU_C` holds `√(2/π)`.
# * **Softmax** `e^{x_i} / Σ_j e^{x_j}` along `axis`. Subtract the row
#   maximum first (as a plain array): the result is mathematically the same,
#   and `e^{1000}` never happens.

# %% nbgrader={"grade": false, "grade_id": "activations", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def relu(x: TensorLike) -> Tensor:
    """max(0, x), element-wise."""
    x = as_tensor(x)
    ### BEGIN SOLUTION
    return x * (x.data > 0)
    ### END SOLUTION


def sigmoid(x: TensorLike) -> Tensor:
    """1 / (1 + exp(-x)), computed without overflow."""
    x = as_tensor(x)
    ### BEGIN SOLUTION
    return (x * 0.5).tanh() * 0.5 + 0.5
    ### END SOLUTION


def tanh(x: TensorLike) -> Tensor:
    return as_tensor(x).tanh()


def gelu(x: TensorLike) -> Tensor:
    """Gaussian Error Linear Unit, tanh approximation (PyTorch's GELU(approximate="tanh"))."""
    x = as_tensor(x)
    ### BEGIN SOLUTION
    cube = x * x * x  # not x ** 3: the C library's pow is ~300x slower on negative numbers
    return 0.5 * x * (1 + (GELU_C * (x + 0.044715 * cube)).tanh())
    ### END SOLUTION


def softmax(x: TensorLike, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`; every slice along `axis` sums to 1."""
    x = as_tensor(x)
    ### BEGIN SOLUTION
    shifted = x - x.data.max(axis=axis, keepdims=True)  # a constant shift: same result, no overflow
    e = shifted.exp()
    return e / e.sum(axis=axis, keepdims=True)
    ### END SOLUTION


# %% [markdown]
# ## Your turn: why XOR needs a hidden layer
#
# XOR is 1 when exactly one input is 1. Rather than train a linear model
# and wonder whether training was the problem, compute the **best possible**
# one, `y ≈ f·w + b`, exactly, by least squares: append a column of ones to
# the features (for `b`), solve with `np.linalg.lstsq(A, y, rcond=None)`
# (its first result is the coefficients), and return the model's predictions
# `A @ coef`. Write `best_linear_fit(features, targets)`; it works on
# plain arrays (it is an analysis tool, not a layer).

# %% nbgrader={"grade": false, "grade_id": "best-linear-fit", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def best_linear_fit(features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Predictions of the least-squares linear model targets ≈ features @ w + b, one per row of features."""
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    ### BEGIN SOLUTION
    with_bias = np.hstack([features, np.ones((len(features), 1))])
    coef, *_ = np.linalg.lstsq(with_bias, targets, rcond=None)
    return with_bias @ coef
    ### END SOLUTION


# %%
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
y = np.array([0, 1, 1, 0], dtype=np.float32)

linear_pred = best_linear_fit(X, y)
print("best linear model predicts", linear_pred.round(3), "MSE", float(((linear_pred - y) ** 2).mean()))

# %% [markdown]
# Every prediction is 0.5: the best a line can do is to give up. XOR is not
# linearly separable. Now put a hidden layer of 16 random ReLU units in
# front and fit only the output layer (again by least squares). The random
# hidden layer *bends* the input space so that a linear read-out can
# separate the classes:

# %%
r = np.random.default_rng(0)
W1 = Tensor(r.standard_normal((2, 16)).astype(np.float32))
b1 = Tensor(r.standard_normal(16).astype(np.float32))
hidden = relu(Tensor(X) @ W1 + b1).data
hidden_pred = best_linear_fit(hidden, y)
print("one hidden ReLU layer predicts", hidden_pred.round(3), "MSE", float(((hidden_pred - y) ** 2).mean()))
assert ((linear_pred - y) ** 2).mean() > 0.2 and ((hidden_pred - y) ** 2).mean() < 1e-6

# %% [markdown]
# ## Tests

# %% nbgrader={"grade": true, "grade_id": "test-activations-values", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Each activation matches its formula and keeps the input's shape and float32 dtype."""
x = np.linspace(-4, 4, 17, dtype=np.float32).reshape(1, 17)
assert np.allclose(relu(Tensor(x)).data, np.maximum(x, 0)), \
    f"got relu(Tensor(x)).data = {relu(Tensor(x)).data!r}; np.maximum(x, 0) = {np.maximum(x, 0)!r}"
assert np.allclose(sigmoid(Tensor(x)).data, 1 / (1 + np.exp(-x)), atol=1e-6), \
    f"got sigmoid(Tensor(x)).data = {sigmoid(Tensor(x)).data!r}; 1 / (1 + np.exp(-x)) = {1 / (1 + np.exp(-x))!r}"
assert np.allclose(tanh(Tensor(x)).data, np.tanh(x)), \
    f"got tanh(Tensor(x)).data = {tanh(Tensor(x)).data!r}; np.tanh(x) = {np.tanh(x)!r}"
expected_gelu = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
assert np.allclose(gelu(Tensor(x)).data, expected_gelu, atol=1e-6), \
    f"got gelu(Tensor(x)).data = {gelu(Tensor(x)).data!r}; expected_gelu = {expected_gelu!r}"
for f in (relu, sigmoid, tanh, gelu, softmax):
    out = f(Tensor(x))
    assert out.shape == x.shape, f"got out.shape = {out.shape!r}; x.shape = {x.shape!r}"
    assert out.dtype == np.float32, f"got out.dtype = {out.dtype!r}"

# %% nbgrader={"grade": true, "grade_id": "test-activations-softmax", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Softmax sums to 1 along its axis and survives scores of 1e4."""
s = Tensor(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=np.float32))
p = softmax(s).data
assert np.allclose(p.sum(axis=1), 1.0), f"got p.sum(axis=1) = {p.sum(axis=1)!r}"
assert np.allclose(p[1], 1 / 3), f"got p[1] = {p[1]!r}; 1 / 3 = {1 / 3!r}"
assert np.allclose(softmax(s, axis=0).data.sum(axis=0), 1.0), \
    f"got softmax(s, axis=0).data.sum(axis=0) = {softmax(s, axis=0).data.sum(axis=0)!r}"
big = softmax(Tensor([[1e4, 1e4 + 1.0, -1e4]])).data
assert np.all(np.isfinite(big)), f"got np.isfinite(big) = {np.isfinite(big)!r}"
assert np.isclose(big.sum(), 1.0), f"got big.sum() = {big.sum()!r}"
assert np.allclose(big[0, :2], [1 / (1 + np.e), np.e / (1 + np.e)], atol=1e-6), \
    f"got big[0, :2] = {big[0, :2]!r}; [1 / (1 + np.e), np.e / (1 + np.e)] = {[1 / (1 + np.e), np.e / (1 + np.e)]!r}"

# %% nbgrader={"grade": true, "grade_id": "test-activations-stability", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""Sigmoid and GELU stay finite at extreme inputs, with no overflow warning."""
extreme = Tensor([-1e4, -100.0, 0.0, 100.0, 1e4])
with np.errstate(over="raise", invalid="raise"):
    s = sigmoid(extreme).data
assert np.allclose(s, [0, 0, 0.5, 1, 1]), f"got s = {s!r}"
assert np.all(np.isfinite(gelu(Tensor([-50.0, 50.0])).data)), \
    f"got np.isfinite(gelu(Tensor([-50.0, 50.0])).data) = {np.isfinite(gelu(Tensor([-50.0, 50.0])).data)!r}"

# %% nbgrader={"grade": true, "grade_id": "test-activations-broadcast-shape", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""broadcast_shape follows NumPy's rule (from the right, sizes equal or 1) and names the shapes that do not fit."""
for shapes in [((256, 1), (1, 10)), ((8, 1, 5), (3, 1)), ((5,), (2, 3, 5)), ((), (4, 2)), ((3, 0), (1,)),
               ((2, 1), (1, 3), (4, 1, 1)), ((7,),)]:
    got, want = broadcast_shape(*shapes), np.broadcast_shapes(*shapes)
    assert got == want, f"broadcast_shape{shapes}: got {got!r}, expected {want!r}"
for bad in [((3,), (4,)), ((2, 3), (3, 2)), ((1, 5), (2, 1), (3, 5))]:
    try:
        got = broadcast_shape(*bad)
    except ValueError as error:
        message = str(error)
        assert all(str(shape) in message for shape in bad), f"the error names the shapes {bad}, got {message!r}"
    else:
        raise AssertionError(f"broadcast_shape{bad}: got {got!r}, expected a ValueError (they do not broadcast)")

# %% nbgrader={"grade": true, "grade_id": "test-activations-xor-proof", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""best_linear_fit finds the exact least-squares predictions: 0.5 everywhere on XOR, exact on a linear target."""
X_xor = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
got = best_linear_fit(X_xor, np.array([0, 1, 1, 0], dtype=np.float32))
assert np.shape(got) == (4,), f"got predictions of shape {np.shape(got)}, expected (4,): one per row"
assert np.allclose(got, 0.5, atol=1e-6), f"got {got} on XOR, expected [0.5 0.5 0.5 0.5]: no line does better"
F = np.random.default_rng(3).normal(size=(20, 3))
target = F @ np.array([2.0, -1.0, 0.5]) + 4.0                   # exactly linear, with an offset
got = best_linear_fit(F, target)
assert np.allclose(got, target, atol=1e-8), f"got {got[:3]}..., expected {target[:3]}...: fit the bias too"
noisy = target + np.random.default_rng(4).normal(size=20)
got = best_linear_fit(F, noisy)
tilt = np.c_[F, np.ones(20)].T @ (got - noisy)     # at the optimum the error is orthogonal to every column
assert np.allclose(tilt, 0, atol=1e-6), \
    f"got errors whose products with the features and the ones column are {tilt}, expected 0 (the least-squares optimum)"

# %% [markdown]
# ## Memory and performance analysis
#
# Composition has a cost: every Tensor operation allocates its output. ReLU
# needs a mask (1 byte per element) and an output (4 bytes); GELU is a chain
# of about nine operations. Measure the time and peak memory of each on a
# million float32 numbers (4 MB).

# %%
from tinytorch.profiler import measure

x = Tensor(np.random.default_rng(0).standard_normal((1000, 1000)).astype(np.float32))
for f in (relu, sigmoid, tanh, gelu, softmax):
    m = measure(f, x, repeat=3, label=f.__name__)
    print(f"{m}   = {m.peak_bytes / x.data.nbytes:.1f}x the input")

# %% [markdown]
# ## Comparison with PyTorch
#
# PyTorch's default `GELU` uses the exact `erf` form; ours equals
# `GELU(approximate="tanh")`. PyTorch computes each activation in one fused
# C++ loop, so it allocates only the output.

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed("03_activations")

if torch is not None:
    t = torch.from_numpy(x.data)
    pairs = [(relu, torch.relu), (sigmoid, torch.sigmoid), (tanh, torch.tanh),
             (gelu, lambda v: torch.nn.functional.gelu(v, approximate="tanh")),
             (softmax, lambda v: torch.softmax(v, dim=-1))]
    for ours, theirs in pairs:
        diff = np.abs(ours(x).data - theirs(t).numpy()).max()
        a, b = measure(ours, x, repeat=3), measure(theirs, t, repeat=3)
        print(f"{ours.__name__:8s} max diff {diff:.1e}   tinytorch {a.seconds * 1e3:6.2f} ms"
              f"   torch {b.seconds * 1e3:6.2f} ms")

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** Your GELU allocates several times the input's size, PyTorch's
# about one. Where does the difference come from, and what is the name of the
# technique that removes it?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-activations-fusion", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Each composed Tensor op writes a full temporary (x**3, 0.044715*x**3, the
# sum, the tanh, ...). Kernel fusion (one loop computing the whole formula
# per element) needs only the output.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** Why is subtracting the row maximum in softmax "free" mathematically
# but essential numerically? What happens in float32 without it for a score
# of 100?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-activations-softmax", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# e^{x-m}/Σe^{x_j-m} = e^x/Σe^{x_j}: the factor e^{-m} cancels. float32
# overflows above e^88.7, so e^100 = inf and inf/inf = nan.
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** The least-squares fit showed the best linear model predicts 0.5 for
# every XOR input. Explain geometrically why no line separates XOR, and why
# 16 random ReLU features were enough.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-activations-xor", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# The positive points (0,1),(1,0) and negative (0,0),(1,1) sit on opposite
# diagonals; any half-plane containing both positives contains a negative.
# ReLU features are piecewise linear bends; with enough of them the four
# points become linearly independent in feature space, so a linear read-out
# fits any labels.
# === END MARK SCHEME ===

# %% [markdown]
# **Q4.** ReLU's gradient is exactly 0 for negative inputs. What can go wrong
# during training because of that, and which activation in this module
# avoids it?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-activations-dead", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# "Dead" units: a unit whose input is negative for every example gets no
# gradient and never recovers. GELU (and sigmoid/tanh) have non-zero
# gradient for negative inputs.
# === END MARK SCHEME ===

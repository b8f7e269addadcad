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
# # Module 06 — Losses
#
# Training needs one number that says how wrong the network is: the
# **loss**. Gradient descent then asks how that number changes with every
# weight. In this module you write the losses that cover most of deep
# learning, and a tool that measures the gradient a loss sends back:
#
# | loss | task | network output | target |
# |---|---|---|---|
# | `mse_loss` | regression | any shape | same shape, real numbers |
# | `cross_entropy` | classification into C classes | logits `(N, C)` | class indices `(N,)` |
# | `binary_cross_entropy` | yes/no | probabilities in (0, 1) | 0s and 1s, same shape |
# | `binary_cross_entropy_with_logits` | yes/no | logits (any real number) | 0s and 1s, same shape |
#
# Each is **composed from Tensor operations** you wrote in module 02, so
# module 05 already knows its gradient: no new gradient rule is needed. What
# this module is really about is **numerical stability**: the textbook
# formulas overflow, underflow or take `log(0)` on inputs that real networks
# produce every day.
#
# ## Why cross entropy goes through log-softmax
#
# A classifier outputs one score (a *logit*) per class. Softmax turns scores
# into probabilities, and cross entropy is the negative log-probability of
# the correct class, averaged over the batch:
#
# $$\mathrm{CE} = -\frac1N \sum_n \log \mathrm{softmax}(z_n)_{y_n}, \qquad
# \log \mathrm{softmax}(z)_i = z_i - \log \sum_j e^{z_j}.$$
#
# Computing `softmax(z).log()` literally fails twice in float32:
#
# * `e^{z}` **overflows** to `inf` for `z > 88.7`, and `inf / inf = nan`;
# * a class with a very negative score gets probability `e^{-200} = 0`
#   (**underflow**), and `log(0) = -inf`.
#
# The log-sum-exp trick avoids both. For any constant `m`,
# `log Σ e^{z_j} = m + log Σ e^{z_j - m}`. Choose `m = max_j z_j`: then every
# exponent is ≤ 0 (no overflow), the largest term is `e^0 = 1` (the sum is
# at least 1, so its log is finite), and the result is the log-probability
# directly, never a rounded-to-zero probability:
#
# $$\log \mathrm{softmax}(z)_i = (z_i - m) - \log \sum_j e^{z_j - m}.$$
#
# `m` is taken from `x.data`, a plain array, so it is a **constant** to
# autograd. That is correct, not a shortcut: the result does not depend on
# `m` at all, so its gradient with respect to `m` is zero.
#
# The gradient of cross entropy with respect to the logits is then the
# famously simple `(softmax(z) - onehot(y)) / N`: you will check it below.

# %%
#| default_exp losses

# %%
#| export
"""Loss functions composed from Tensor operations, and their Module wrappers (module 06)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinytorch.layers import Module
from tinytorch.tensor import Tensor, TensorLike, as_tensor

BCE_EPS = 1e-7  # probabilities are clamped to [BCE_EPS, 1 - BCE_EPS] before the log


def _same_shape(loss: str, pred: TensorLike, target: TensorLike,
                names: tuple[str, str] = ("pred", "target")) -> tuple[Tensor, Tensor]:
    """Prediction and target as Tensors of one shape; a plain target takes the prediction's float dtype."""
    pred = as_tensor(pred)
    if not isinstance(target, Tensor):  # numbers and arrays: no float64 upcast of the loss
        target = Tensor(np.asarray(target), dtype=pred.dtype if pred.dtype.kind == "f" else None)
    if pred.shape != target.shape:
        raise ValueError(f"{loss} needs {names[0]} and {names[1]} of the same shape, got {names[0]} {pred.shape} and "
                         f"{names[1]} {target.shape} (reshape one of them; broadcasting here is almost always a bug)")
    return pred, target


# %% [markdown]
# ## Worked example: mean squared error
#
# `mse_loss(pred, target) = mean((pred - target)²)`. It is given, with its
# argument check: PyTorch only *warns* when the shapes differ and then
# broadcasts, which turns `(N, 1) - (N,)` into an `(N, N)` matrix and a loss
# that quietly trains the wrong thing. We refuse instead.

# %%
#| export
def mse_loss(pred: TensorLike, target: TensorLike) -> Tensor:
    """Mean of (pred - target)² over every element; pred and target must have the same shape."""
    pred, target = _same_shape("mse_loss", pred, target)
    return ((pred - target) ** 2).mean()


# %% [markdown]
# ## Your turn: log-softmax and cross entropy
#
# Write `log_softmax(x, axis)` with the formula above, using only Tensor
# operations (`-`, `.exp()`, `.sum(axis, keepdims=True)`, `.log()`), and the
# maximum taken from `x.data` so it is a constant.
#
# Then `cross_entropy(logits, targets)`: the argument checks are given (read
# them: they are most of what makes a loss pleasant to use). Pick, in each
# row `n`, the log-probability of class `targets[n]` with integer-array
# indexing — `logp[np.arange(N), targets]` — and return minus its mean.

# %% nbgrader={"grade": false, "grade_id": "log-softmax-cross-entropy", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def log_softmax(x: TensorLike, axis: int = -1) -> Tensor:
    """log(softmax(x)) along `axis`, computed as (x - m) - log(sum(exp(x - m))) with m the maximum."""
    x = as_tensor(x)
    ### BEGIN SOLUTION
    shifted = x - x.data.max(axis=axis, keepdims=True)  # a constant: every exponent <= 0, no overflow
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()  # the sum is >= 1: log is finite
    ### END SOLUTION


def _class_indices(targets: TensorLike, n: int, classes: int) -> np.ndarray:
    """Check that targets are n integer class indices in [0, classes) and return them as an array."""
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if t.ndim != 1:
        raise ValueError(f"cross_entropy needs targets of shape (N,) = ({n},), one class index per row, "
                         f"got shape {t.shape}")
    if len(t) != n:
        raise ValueError(f"cross_entropy got {n} rows of logits but {len(t)} targets: they must match")
    if t.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy needs integer class indices as targets, got dtype {t.dtype} "
                         f"(values like {t[:3].tolist()}); convert with targets.astype(np.int64)")
    if n and (t.min() < 0 or t.max() >= classes):
        bad = t[(t < 0) | (t >= classes)]
        raise ValueError(f"cross_entropy targets must be class indices in [0, {classes}) for {classes} classes, "
                         f"got {bad[:5].tolist()}")
    return t


def cross_entropy(logits: TensorLike, targets: TensorLike) -> Tensor:
    """Mean over the batch of -log softmax(logits)[n, targets[n]]; logits (N, C), targets (N,) integers."""
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy needs logits of shape (N, C), got shape {logits.shape} "
                         "(for a single example use logits.reshape(1, -1))")
    n, classes = logits.shape
    if n == 0:
        raise ValueError("cross_entropy got an empty batch (logits of shape (0, C)): the mean is undefined")
    targets = _class_indices(targets, n, classes)
    ### BEGIN SOLUTION
    logp = log_softmax(logits, axis=1)         # (N, C)
    picked = logp[np.arange(n), targets]       # (N,): the log-probability of each correct class
    return -picked.mean()
    ### END SOLUTION


# %% [markdown]
# ## Your turn: binary cross entropy
#
# For a yes/no output `p = sigmoid(z)` and a target `y ∈ {0, 1}`:
#
# $$\mathrm{BCE} = -\mathrm{mean}\big(y \log p + (1 - y) \log(1 - p)\big).$$
#
# A saturated sigmoid returns exactly `0.0` or `1.0` in float32, and
# `log(0) = -inf` (and `0 · -inf = nan`). So clamp `p` into
# `[BCE_EPS, 1 - BCE_EPS]` first. A clamp must still let the gradient through
# where it did not clamp: build it from two constant masks,
#
# ```python
# inside = (p.data >= lo) & (p.data <= hi)              # a boolean array: a constant
# clamped = p * inside + np.where(p.data < lo, lo, hi) * ~inside
# ```
#
# which is `p` (gradient 1) inside the interval and a constant (gradient 0)
# outside — exactly `torch.clamp`'s gradient. (PyTorch's `BCELoss` instead
# clamps each `log` at -100; the two agree for any probability between
# `1e-7` and `1 - 1e-7`, and differ only in how large the loss of a
# completely wrong, saturated prediction is.)

# %% nbgrader={"grade": false, "grade_id": "binary-cross-entropy", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def binary_cross_entropy(probs: TensorLike, targets: TensorLike) -> Tensor:
    """-mean(y log p + (1 - y) log(1 - p)) with p clamped to [BCE_EPS, 1 - BCE_EPS]; same shapes."""
    probs, targets = _same_shape("binary_cross_entropy", probs, targets, names=("probs", "targets"))
    if probs.size and (probs.data.min() < 0 or probs.data.max() > 1):
        raise ValueError(f"binary_cross_entropy needs probabilities in [0, 1], got values from "
                         f"{probs.data.min():.4g} to {probs.data.max():.4g} (apply a sigmoid first)")
    lo, hi = BCE_EPS, 1 - BCE_EPS
    ### BEGIN SOLUTION
    inside = (probs.data >= lo) & (probs.data <= hi)
    p = probs * inside + np.where(probs.data < lo, lo, hi).astype(probs.dtype) * ~inside
    return -(targets * p.log() + (1 - targets) * (1 - p).log()).mean()
    ### END SOLUTION


# %% [markdown]
# ## Your turn: binary cross entropy from logits
#
# The clamp above is a patch: a saturated sigmoid has already lost the
# information (in float32, `sigmoid(20)` is exactly `1.0`), and the loss of
# a confidently wrong prediction stops at `-log(1e-7) ≈ 16`. Working from
# the logit `z` itself loses nothing. With `p = σ(z)`,
# `log p = -log(1 + e^{-z})` and `log(1 - p) = -z - log(1 + e^{-z})`, so
#
# $$\mathrm{BCE}(z, y) = \max(z, 0) - z\,y + \log\big(1 + e^{-|z|}\big),$$
#
# written so that the exponent is never positive (no overflow) and the log's
# argument is between 1 and 2 (never `log(0)`). This is PyTorch's
# `BCEWithLogitsLoss`, and the reason networks output logits. Write it with
# Tensor operations and one constant from `z.data`, the side of 0 each
# logit is on, `side = ±1` (take `+1` at `z = 0`): then `max(z, 0)` is
# `z * (side > 0)` (ReLU's trick) and `|z|` is `z * side`. Both must pick
# the same branch at `z = 0` (`np.sign(0)` is `0`: try it and watch the
# gradient test fail there). The gradient comes out as `(σ(z) - y) / N`
# without you writing it.

# %% nbgrader={"grade": false, "grade_id": "bce-with-logits", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def binary_cross_entropy_with_logits(logits: TensorLike, targets: TensorLike) -> Tensor:
    """mean(max(z, 0) - z·y + log(1 + exp(-|z|))): binary cross entropy of sigmoid(z), without overflow."""
    z, y = _same_shape("binary_cross_entropy_with_logits", logits, targets, names=("logits", "targets"))
    ### BEGIN SOLUTION
    side = np.where(z.data >= 0, 1, -1).astype(z.dtype)   # a constant: which branch of max and |.| holds
    positive = z * (side > 0)                               # max(z, 0)
    magnitude = z * side                                    # |z|
    return (positive - z * y + (1 + (-magnitude).exp()).log()).mean()
    ### END SOLUTION


# %% [markdown]
# ## Your turn: measure the gradient a loss sends back
#
# Which loss trains better is a question about gradients: how large is
# `∂loss/∂logits` when the model is right, unsure, confidently wrong? Write
# `logit_gradient(loss_fn, logits, targets)`: make a **fresh leaf** from a
# copy of the logits' data (`requires_grad=True`, so the caller's tensor
# keeps its own `.grad`), compute `loss_fn(leaf, targets)`, call `backward()`
# on it and return the leaf's gradient. `backward()` starts from one number:
# a loss that is not a scalar makes it raise, which is why every loss ends
# in a mean.

# %% nbgrader={"grade": false, "grade_id": "logit-gradient", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def logit_gradient(loss_fn: Callable[[Tensor, Any], Tensor], logits: TensorLike, targets: Any) -> np.ndarray:
    """d loss_fn(logits, targets) / d logits, computed on a fresh leaf (the caller's tensor is not touched)."""
    ### BEGIN SOLUTION
    leaf = Tensor(np.array(as_tensor(logits).data), requires_grad=True)
    loss_fn(leaf, targets).backward()
    return np.zeros_like(leaf.data) if leaf.grad is None else leaf.grad   # None: the loss ignores the logits
    ### END SOLUTION


# %% [markdown]
# ## Given: the losses as Modules
#
# PyTorch code writes `loss_fn = nn.CrossEntropyLoss()` and then
# `loss_fn(logits, targets)`. These wrappers make that work; they hold no
# parameters.

# %%
#| export
class MSELoss(Module):
    """`MSELoss()(pred, target)`: mean squared error."""

    def forward(self, pred: TensorLike, target: TensorLike) -> Tensor:
        return mse_loss(pred, target)


class CrossEntropyLoss(Module):
    """`CrossEntropyLoss()(logits, targets)`: logits (N, C), integer targets (N,), mean over the batch."""

    def forward(self, logits: TensorLike, targets: TensorLike) -> Tensor:
        return cross_entropy(logits, targets)


class BCELoss(Module):
    """`BCELoss()(probs, targets)`: binary cross entropy of probabilities (apply a sigmoid first)."""

    def forward(self, probs: TensorLike, targets: TensorLike) -> Tensor:
        return binary_cross_entropy(probs, targets)


class BCEWithLogitsLoss(Module):
    """`BCEWithLogitsLoss()(logits, targets)`: binary cross entropy of sigmoid(logits), computed from the logits."""

    def forward(self, logits: TensorLike, targets: TensorLike) -> Tensor:
        return binary_cross_entropy_with_logits(logits, targets)


# %% [markdown]
# ## See it work
#
# The naive formula against yours, on logits a trained classifier can easily
# produce:

# %%
logits = Tensor(np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]], dtype=np.float32))
with np.errstate(all="ignore"):
    naive = np.log(np.exp(logits.data) / np.exp(logits.data).sum(axis=1, keepdims=True))
print("naive log(softmax):\n", naive)
print("log_softmax:\n", log_softmax(logits).data)
print("cross entropy for targets [0, 2]:", cross_entropy(logits, np.array([0, 2])).item())

# %% [markdown]
# ## Tests

# %% nbgrader={"grade": true, "grade_id": "test-losses-log-softmax", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""log_softmax matches log(softmax) on small inputs, along either axis, and stays finite at ±1e4."""
z = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
expected = np.log(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))
assert np.allclose(log_softmax(Tensor(z)).data, expected), \
    f"got log_softmax(Tensor(z)).data = {log_softmax(Tensor(z)).data!r}; expected = {expected!r}"
expected0 = np.log(np.exp(z) / np.exp(z).sum(axis=0, keepdims=True))
assert np.allclose(log_softmax(Tensor(z), axis=0).data, expected0), \
    f"got log_softmax(Tensor(z), axis=0).data = {log_softmax(Tensor(z), axis=0).data!r}; expected0 = {expected0!r}"
big = log_softmax(Tensor(np.array([[1e4, 0.0, -1e4]], dtype=np.float32))).data
assert np.all(np.isfinite(big)), f"got np.isfinite(big) = {np.isfinite(big)!r}"
assert np.allclose(big, [[0.0, -1e4, -2e4]]), f"got big = {big!r}"
assert log_softmax(Tensor(np.zeros((2, 3), dtype=np.float32))).dtype == np.float32, \
    f"got log_softmax(Tensor(np.zeros((2, 3), dtype=np.float32))).dtype = {log_softmax(Tensor(np.zeros((2, 3), dtype=np.float32))).dtype!r}"

# %% nbgrader={"grade": true, "grade_id": "test-losses-cross-entropy", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
"""cross_entropy's value is -mean(log p[target]) and its gradient is (softmax - onehot) / N."""
z = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 1.0], [-1.0, 0.0, 3.0]])
y = np.array([0, 1, 2, 0])
p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
logits = Tensor(z, requires_grad=True)
loss = cross_entropy(logits, y)
assert np.isclose(loss.item(), -np.log(p[np.arange(4), y]).mean()), \
    f"got loss.item() = {loss.item()!r}; -np.log(p[np.arange(4), y]).mean() = {-np.log(p[np.arange(4), y]).mean()!r}"
loss.backward()
onehot = np.eye(3)[y]
assert np.allclose(logits.grad, (p - onehot) / 4), \
    f"got logits.grad = {logits.grad!r}; (p - onehot) / 4 = {(p - onehot) / 4!r}"
assert np.isclose(CrossEntropyLoss()(Tensor(z), y).item(), loss.item()), \
    f"got CrossEntropyLoss()(Tensor(z), y).item() = {CrossEntropyLoss()(Tensor(z), y).item()!r}; loss.item() = {loss.item()!r}"

# %% nbgrader={"grade": true, "grade_id": "test-losses-cross-entropy-errors", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""Good targets give the loss; bad targets are refused with a message that names the problem."""
logits = Tensor(np.zeros((2, 3), dtype=np.float32))
assert np.isclose(cross_entropy(logits, np.array([0, 2])).item(), np.log(3)), \
    f"got cross_entropy(logits, np.array([0, 2])).item() = {cross_entropy(logits, np.array([0, 2])).item()!r}; np.log(3) = {np.log(3)!r}"
cases = [(np.array([0, 1, 2]), "3 targets"), (np.array([0.0, 1.0]), "integer"),
         (np.array([0, 3]), "[0, 3)"), (np.array([[0], [1]]), "(2, 1)")]
for bad, phrase in cases:
    try:
        cross_entropy(logits, bad)
        raise AssertionError(f"targets {bad.tolist()} should be refused")
    except ValueError as error:
        assert phrase in str(error), (phrase, str(error))
try:
    cross_entropy(Tensor(np.zeros(3, dtype=np.float32)), np.array([0]))
    raise AssertionError("1-D logits should be refused")
except ValueError as error:
    assert "(N, C)" in str(error), f"got str(error) = {str(error)!r}"
    assert "(3,)" in str(error), f"got str(error) = {str(error)!r}"

# %% nbgrader={"grade": true, "grade_id": "test-losses-mse-bce", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""mse_loss and binary_cross_entropy match their formulas, refuse shape mismatches, and survive p = 0 or 1."""
pred = Tensor(np.array([[0.5], [2.0]], dtype=np.float32), requires_grad=True)
target = np.array([[1.0], [0.0]], dtype=np.float32)
loss = mse_loss(pred, target)
assert np.isclose(loss.item(), (0.25 + 4.0) / 2), \
    f"got loss.item() = {loss.item()!r}; (0.25 + 4.0) / 2 = {(0.25 + 4.0) / 2!r}"
assert loss.dtype == np.float32, f"got loss.dtype = {loss.dtype!r}"
loss.backward()
assert np.allclose(pred.grad, 2 * (pred.data - target) / 2), \
    f"got pred.grad = {pred.grad!r}; 2 * (pred.data - target) / 2 = {2 * (pred.data - target) / 2!r}"
try:
    mse_loss(pred, np.zeros(2, dtype=np.float32))
    raise AssertionError("(2, 1) against (2,) should be refused")
except ValueError as error:
    assert "(2, 1)" in str(error), f"got str(error) = {str(error)!r}"
    assert "(2,)" in str(error), f"got str(error) = {str(error)!r}"
p = np.array([0.9, 0.2, 0.6])
y = np.array([1.0, 0.0, 0.0])
assert np.isclose(binary_cross_entropy(Tensor(p), y).item(), -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), \
    f"got binary_cross_entropy(Tensor(p), y).item() = {binary_cross_entropy(Tensor(p), y).item()!r}; -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)) = {-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))!r}"
saturated = Tensor(np.array([0.0, 1.0, 1.0], dtype=np.float32), requires_grad=True)
loss = BCELoss()(saturated, np.array([1.0, 0.0, 1.0], dtype=np.float32))
loss.backward()
assert np.isfinite(loss.item()), f"got loss.item() = {loss.item()!r}"
assert loss.item() > 5, f"got loss.item() = {loss.item()!r}"
assert np.all(np.isfinite(saturated.grad)), f"got np.isfinite(saturated.grad) = {np.isfinite(saturated.grad)!r}"
assert np.isclose(MSELoss()(Tensor([1.0, 2.0]), Tensor([1.0, 4.0])).item(), 2.0), \
    f"got MSELoss()(Tensor([1.0, 2.0]), Tensor([1.0, 4.0])).item() = {MSELoss()(Tensor([1.0, 2.0]), Tensor([1.0, 4.0])).item()!r}"

# %% nbgrader={"grade": true, "grade_id": "test-losses-bce-with-logits", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""binary_cross_entropy_with_logits matches BCE of sigmoid(z), stays finite and exact at ±1e4, and its gradient is (σ(z) - y) / N."""
z = np.array([[2.0], [-1.0], [0.0], [4.0]], dtype=np.float32)
y = np.array([[1.0], [0.0], [1.0], [0.0]], dtype=np.float32)
p = 1 / (1 + np.exp(-z.astype(np.float64)))
expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
logits = Tensor(z, requires_grad=True)
loss = binary_cross_entropy_with_logits(logits, y)
assert np.isclose(loss.item(), expected, rtol=1e-5), f"got {loss.item()!r}, expected {expected!r} (BCE of sigmoid(z))"
assert loss.dtype == np.float32, f"got dtype {loss.dtype}, expected float32 (float32 logits give a float32 loss)"
loss.backward()
assert np.allclose(logits.grad, (p - y) / 4, atol=1e-6), f"got gradient {logits.grad.ravel()}, expected {((p - y) / 4).ravel()}"
extreme = Tensor(np.array([1e4, -1e4, 1e4, -1e4], dtype=np.float32), requires_grad=True)
with np.errstate(over="raise", invalid="raise", divide="raise"):
    loss = binary_cross_entropy_with_logits(extreme, np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32))
    loss.backward()
assert np.isclose(loss.item(), (1e4 + 1e4) / 4), \
    f"got {loss.item()!r}, expected 5000: two right (loss 0) and two wrong by 1e4 (loss 1e4 each, no clamp)"
assert np.allclose(extreme.grad, [0, 0, 0.25, -0.25]), f"got gradient {extreme.grad}, expected [0, 0, 0.25, -0.25]"
assert np.isclose(BCEWithLogitsLoss()(Tensor(z), y).item(), expected, rtol=1e-5), \
    f"got BCEWithLogitsLoss()(...) = {BCEWithLogitsLoss()(Tensor(z), y).item()!r}, expected {expected!r}"

# %% nbgrader={"grade": true, "grade_id": "test-losses-logit-gradient", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""logit_gradient returns d loss / d logits on a fresh leaf, leaves the caller's tensor alone, and needs a scalar loss."""
z = Tensor(np.array([[1.0, 2.0, 0.5]], dtype=np.float32), requires_grad=True)
grad = logit_gradient(cross_entropy, z, np.array([2]))
p = np.exp(z.data) / np.exp(z.data).sum()
assert np.allclose(grad, p - np.eye(3)[[2]], atol=1e-6), f"got {grad}, expected softmax - onehot = {p - np.eye(3)[[2]]}"
assert z.grad is None, f"got z.grad = {z.grad}: the caller's tensor was touched, expected a fresh leaf"
again = logit_gradient(cross_entropy, z, np.array([2]))
assert np.allclose(again, grad), f"got {again} the second time, expected {grad}: gradients must not pile up across calls"
twice = logit_gradient(lambda t, target: mse_loss(t * 2, target), np.array([1.0, 3.0]), np.array([0.0, 0.0]))
assert np.allclose(twice, [4.0, 12.0]), f"got {twice} for mean((2z)²) at z = [1, 3], expected [4, 12] (plain arrays work too)"
try:
    got = logit_gradient(lambda t, target: t * 2, z, None)
except RuntimeError as error:
    assert "single number" in str(error), f"got {error!r}, expected backward()'s complaint about a non-scalar"
else:
    raise AssertionError(f"a loss of shape (1, 3) gave {got}: expected backward() to refuse a non-scalar loss")

# %% [markdown]
# ## Memory and performance analysis
#
# Cross entropy on a batch of `N` rows and `C` classes creates a handful of
# `(N, C)` temporaries: the shifted logits, their exponentials, the
# log-softmax. With a vocabulary of 50,000 tokens (a GPT's output layer) and
# 8 × 1024 positions, one `(N, C)` float32 array is 1.6 GB — the loss can
# cost more memory than the model. Measure how the cost scales with `C`,
# forward and backward:

# %%
from tinytorch.profiler import measure

r = np.random.default_rng(0)
for classes in (10, 1000, 10_000):
    z = Tensor(r.standard_normal((256, classes)).astype(np.float32), requires_grad=True)
    y = r.integers(0, classes, 256)
    # measure: the best time of a few runs (tracemalloc, which counts the memory, slows the first one)
    fwd = measure(cross_entropy, z, y, repeat=3, label=f"forward           N=256 C={classes:>6}")
    both = measure(lambda z, y: cross_entropy(z, y).backward(), z, y, repeat=3,
                   label=f"forward+backward  N=256 C={classes:>6}")
    for m in (fwd, both):
        print(f"{m}   ({m.peak_bytes / z.data.nbytes:.1f}x the logits)")

# %% [markdown]
# Both cost a small multiple of the logits' `4·N·C` bytes: each
# composed operation writes a full `(N, C)` buffer. PyTorch's
# `cross_entropy` is one fused kernel that keeps only the log-softmax for
# the backward pass.

# %% [markdown]
# ### Gradient magnitudes: MSE against cross entropy
#
# "Loss choice affects convergence" has a number behind it. Take one
# example of class 0 out of 10 and logits that make the model more and more
# confidently **wrong** (class 1 gets a logit of `s`, the rest 0). Compare
# the gradient that reaches the logits through MSE on the softmax
# probabilities (against the one-hot target) and through cross entropy:

# %%
from tinytorch.activations import softmax

one_hot = np.eye(10, dtype=np.float32)[[0]]                   # (1, 10): the target, class 0
def mse_on_probabilities(z, target):
    return mse_loss(softmax(z, axis=1), target)

print(f"{'logit of the wrong class':>25s} {'p(correct)':>11s} {'|grad| MSE':>11s} {'|grad| CE':>10s}")
for s in (0.0, 2.0, 5.0, 10.0, 15.0):
    z = Tensor(np.array([[0.0, s] + [0.0] * 8], dtype=np.float32))
    through_mse = logit_gradient(mse_on_probabilities, z, one_hot)
    through_ce = logit_gradient(cross_entropy, z, np.array([0]))
    p_correct = softmax(z, axis=1).data[0, 0]
    print(f"{s:25.0f} {p_correct:11.2e} {np.linalg.norm(through_mse):11.2e} {np.linalg.norm(through_ce):10.2e}")

# %% [markdown]
# The worse the prediction, the *smaller* the MSE gradient: the softmax
# saturates, and its derivative `p(1 - p)` multiplies the error away, so a
# confidently wrong classifier barely learns. Cross entropy's gradient is
# `softmax(z) - onehot(y)`: its size stays near √2 however wrong the model
# is, which is why classifiers are trained with cross entropy.
#
# The same measurement for a yes/no output, one example of class 1 and a
# logit running from right to confidently wrong: the clamped BCE on
# probabilities against yours on logits.

# %%
from tinytorch.activations import sigmoid

def bce_on_probabilities(z, target):
    return binary_cross_entropy(sigmoid(z), target)

print(f"{'logit':>6s} {'loss (probs)':>13s} {'loss (logits)':>14s} {'|grad| probs':>13s} {'|grad| logits':>14s}")
for z in (5.0, 0.0, -5.0, -20.0, -100.0):
    logit, target = Tensor(np.array([z], dtype=np.float32)), np.array([1.0], dtype=np.float32)
    losses = (bce_on_probabilities(logit, target).item(), binary_cross_entropy_with_logits(logit, target).item())
    grads = (logit_gradient(bce_on_probabilities, logit, target), logit_gradient(binary_cross_entropy_with_logits, logit, target))
    print(f"{z:6.0f} {losses[0]:13.4f} {losses[1]:14.4f} {np.abs(grads[0]).max():13.2e} {np.abs(grads[1]).max():14.2e}")

# %% [markdown]
# Past `z ≈ -16` the clamp takes over: the loss on probabilities stops
# growing and its gradient is **zero** (a clamped value is a constant), so
# a confidently wrong yes/no model gets no signal at all. From the logits,
# the loss keeps growing like `|z|` and the gradient stays `σ(z) - 1 ≈ -1`.

# %% [markdown]
# ## Comparison with PyTorch
#
# Same logits in, same loss and same gradient out — including on logits of
# ±1e4, where the naive formula gives `nan`.

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed("06_losses")

if torch is not None:
    r = np.random.default_rng(1)
    z = r.standard_normal((64, 10)) * 3
    z[0, :3] = [1e4, -1e4, 0.0]
    y = r.integers(0, 10, 64)
    ours = Tensor(z, requires_grad=True)
    theirs = torch.tensor(z, requires_grad=True)
    loss = cross_entropy(ours, y)
    loss.backward()
    ref = torch.nn.functional.cross_entropy(theirs, torch.from_numpy(y))
    ref.backward()
    print(f"cross entropy: ours {loss.item():.10f}  torch {ref.item():.10f}")
    print("max gradient difference:", np.abs(ours.grad - theirs.grad.numpy()).max())
    p = r.uniform(0.01, 0.99, 32)
    t = r.integers(0, 2, 32).astype(np.float64)
    print(f"BCE: ours {binary_cross_entropy(Tensor(p), t).item():.10f}  "
          f"torch {torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(t)).item():.10f}")

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** Your network outputs a logit of 120 for one class in float32. Walk
# through what `softmax(z).log()` computes step by step and where it breaks,
# then what `log_softmax` computes instead.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-losses-stability", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# e^120 overflows float32 (max ≈ 3.4e38 ≈ e^88.7) to inf; inf/inf = nan in
# the softmax, and every later value and gradient becomes nan. Meanwhile a
# class with a much smaller logit gets probability 0 and log(0) = -inf.
# log_softmax subtracts the maximum (120) first: exponents are ≤ 0, the sum
# is between 1 and C, its log is finite, and each log-probability is
# computed as (z_i - m) - log Σ, never via a rounded probability.
# Full marks: overflow + nan, underflow + log(0), why the shift fixes both.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** Why is it correct that no gradient flows through the maximum `m`
# that `log_softmax` subtracts, even though `m` depends on the input?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-losses-constant-shift", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# log_softmax(z - m) = log_softmax(z) for every m: the output does not depend
# on m at all, so ∂output/∂m = 0 and treating m as a constant gives exactly
# the true gradient. (Sending gradient through the max would add a term
# that sums to zero anyway, at extra cost.)
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** From the profile above: how does the memory of cross entropy scale
# with the number of classes, and what does it cost for a language model
# with a 50,257-token vocabulary, batch 8 and context 1024 in float32? What
# do large-model trainers do about it?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-losses-memory", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Linearly in N·C, a small multiple (the measured factor, ~3–6x) of the
# logits. 8·1024·50257·4 B ≈ 1.65 GB per (N, C) buffer, so several GB for
# the loss alone. Remedies: fused cross-entropy kernels that keep only the
# log-softmax (or recompute it), chunking the loss over the sequence,
# mixed precision for the logits.
# === END MARK SCHEME ===

# %% [markdown]
# **Q4.** Why does a classifier output logits and use `cross_entropy`,
# rather than output softmax probabilities and use `mse_loss` against
# one-hot targets? Think about the gradient when the network is confidently
# wrong.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-losses-why-ce", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# The cross-entropy gradient w.r.t. logits is softmax - onehot: large (≈1)
# when confidently wrong, so learning is fast exactly when it should be.
# MSE through a softmax multiplies by the softmax Jacobian p(1-p), which is
# ≈0 when saturated: a confidently wrong network barely learns. Also CE is
# the maximum-likelihood loss for a categorical model; MSE on probabilities
# is not.
# === END MARK SCHEME ===

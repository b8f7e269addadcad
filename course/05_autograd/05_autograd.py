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
# # Module 05 — Autograd
#
# Since module 02 every Tensor that requires gradients has remembered how it
# was made: `out._op` names the operation, `out._parents` are its inputs and
# `out._ctx` holds anything else the operation knew (an axis, an exponent, an
# index). That record is a graph, and reverse-mode automatic differentiation
# is a walk over it:
#
# 1. order the graph so every tensor comes after the tensors it was made from
#    (a *topological order*);
# 2. start from the output with gradient 1 and visit the tensors in reverse
#    order; for each one, apply the **gradient rule** of its operation to turn
#    the gradient of the output into gradients of its inputs;
# 3. when a tensor was used twice, **add** the gradients that reach it;
# 4. store the total in `.grad` of every leaf (a tensor made by you, not by an
#    operation) that requires gradients.
#
# **How this extends module 02 without rewriting it.** The Tensor class does
# not change. Its `backward()` method calls `tinytorch.autograd.backward`, the
# function you write here, and the rules live in a table keyed by the
# operation names module 02 recorded. Later modules that add operations of
# their own (convolution in module 09) register one more rule with
# `@gradient_rule("conv2d")`. This is the design of PyTorch too: the forward
# function and its derivative formula are written separately and joined by
# the operation's name.

# %%
#| default_exp autograd

# %%
#| export
"""Reverse-mode automatic differentiation over the history Tensors record (module 05)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np

from tinytorch.tensor import Tensor, TensorLike, is_grad_enabled, no_grad  # noqa: F401  (re-exported)

# One gradient per parent, None for a parent that needs none.
Gradients: TypeAlias = tuple[np.ndarray | None, ...]
# rule(out, grad): the gradients of out's parents, given `grad`, the gradient with respect to `out`.
GradientRule: TypeAlias = Callable[[Tensor, np.ndarray], Gradients]

GRADIENT_RULES: dict[str, GradientRule] = {}


def gradient_rule(op: str) -> Callable[[GradientRule], GradientRule]:
    """Register `fn(out, grad) -> tuple of gradients, one per parent` as the rule for `op`."""
    def register(fn: GradientRule) -> GradientRule:
        GRADIENT_RULES[op] = fn
        return fn
    return register


# %% [markdown]
# ## Undoing broadcasting
#
# If `a` has shape (3, 1) and `b` has shape (4,), then `a + b` has shape
# (3, 4): `a` was copied across 4 columns and `b` down 3 rows. Each copy
# contributed to the output, so the gradient of `a` is the output gradient
# **summed** over the dimensions broadcasting stretched. Write `unbroadcast`,
# which sums `grad` down to `shape`.

# %% nbgrader={"grade": false, "grade_id": "unbroadcast", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the dimensions that broadcasting added or stretched, giving `shape`."""
    ### BEGIN SOLUTION
    added = grad.ndim - len(shape)  # leading dimensions that did not exist in `shape`
    stretched = tuple(added + i for i, n in enumerate(shape) if n == 1 and grad.shape[added + i] != 1)
    axes = tuple(range(added)) + stretched
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)
    ### END SOLUTION


# %% [markdown]
# ## Gradient rules
#
# A rule receives the output tensor `out` (with `out._parents`, `out._ctx`
# and its value `out.data`) and `grad`, the gradient of the final result
# with respect to `out`. It returns one gradient per parent, each with that
# parent's shape, or `None` for a parent that needs none (skipping work that
# nobody will use). Two are written for you: `add` and `exp`.

# %%
#| export
@gradient_rule("add")
def add_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    a, b = out._parents  # a constant operand (no requires_grad) gets None: no work for nobody
    return (unbroadcast(grad, a.shape) if a.requires_grad else None,
            unbroadcast(grad, b.shape) if b.requires_grad else None)


@gradient_rule("exp")
def exp_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    return (grad * out.data,)  # d/dx e^x = e^x, which is the output we already have


# %% nbgrader={"grade": false, "grade_id": "gradient-rules", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
@gradient_rule("mul")
def mul_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    ### BEGIN SOLUTION
    a, b = out._parents
    return (unbroadcast(grad * b.data, a.shape) if a.requires_grad else None,
            unbroadcast(grad * a.data, b.shape) if b.requires_grad else None)
    ### END SOLUTION


@gradient_rule("pow")
def pow_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    ### BEGIN SOLUTION
    (x,), p = out._parents, out._ctx
    return (grad * p * x.data ** (p - 1),)
    ### END SOLUTION


@gradient_rule("log")
def log_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    ### BEGIN SOLUTION
    (x,) = out._parents
    return (grad / x.data,)
    ### END SOLUTION


@gradient_rule("tanh")
def tanh_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    ### BEGIN SOLUTION
    return (grad * (1 - out.data * out.data),)
    ### END SOLUTION


@gradient_rule("matmul")
def matmul_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    ### BEGIN SOLUTION
    a, b = out._parents  # both at least 2-D: module 02 reshapes vectors first
    grad_a = unbroadcast(grad @ np.swapaxes(b.data, -1, -2), a.shape) if a.requires_grad else None
    grad_b = unbroadcast(np.swapaxes(a.data, -1, -2) @ grad, b.shape) if b.requires_grad else None
    return grad_a, grad_b
    ### END SOLUTION


@gradient_rule("sum")
def sum_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    ### BEGIN SOLUTION
    (x,), (axis, keepdims) = out._parents, out._ctx
    if axis is not None and not keepdims:
        grad = np.expand_dims(grad, axis)  # put back the summed axes as size 1
    return (np.broadcast_to(grad, x.shape),)
    ### END SOLUTION


@gradient_rule("max")
def max_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    ### BEGIN SOLUTION
    (x,), (axis, keepdims) = out._parents, out._ctx
    if axis is not None and not keepdims:
        grad = np.expand_dims(grad, axis)
        top = np.expand_dims(out.data, axis)
    else:
        top = out.data
    winners = x.data == top  # ties share the gradient equally, as in torch.amax
    return (winners * (grad / winners.sum(axis=axis, keepdims=True)),)
    ### END SOLUTION


@gradient_rule("reshape")
def reshape_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    ### BEGIN SOLUTION
    (x,) = out._parents
    return (grad.reshape(x.shape),)
    ### END SOLUTION


@gradient_rule("permute")
def permute_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    ### BEGIN SOLUTION
    return (grad.transpose(np.argsort(out._ctx)),)  # the inverse permutation
    ### END SOLUTION


def _is_basic_index(index: object) -> bool:
    """True for an index made only of ints, slices, None and Ellipsis (NumPy's basic indexing)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in parts)


@gradient_rule("getitem")
def getitem_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    ### BEGIN SOLUTION
    (x,), index = out._parents, out._ctx
    full = np.zeros_like(x.data)
    if _is_basic_index(index):
        full[index] = grad        # ints and slices pick each element at most once
    else:
        np.add.at(full, index, grad)  # add, not assign: an index array may pick the same element twice
    return (full,)
    ### END SOLUTION


# %% [markdown]
# ## The backward pass
#
# `topological_order(root)` lists every tensor `root` depends on, parents
# before children. Write it **without recursion**: a recursive depth-first
# search fails with `RecursionError` on a graph 10,000 operations deep (an
# RNN unrolled over a long sequence is such a graph). Use an explicit stack.
#
# `backward(root, grad)` then walks that list in reverse, keeping a
# dictionary from each tensor to the sum of the gradients that reached it.

# %% nbgrader={"grade": false, "grade_id": "backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor `root` was computed from, each listed after all of its parents."""
    ### BEGIN SOLUTION
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in visited:
            visited.add(id(node))
            stack.append((node, True))  # come back to it once its parents are listed
            stack.extend((p, False) for p in node._parents if id(p) not in visited)
    return order
    ### END SOLUTION


def backward(root: Tensor, grad: TensorLike | None = None) -> None:
    """Accumulate d(root)/d(leaf) into `.grad` of every leaf that requires gradients."""
    if not root.requires_grad:
        raise RuntimeError("backward() was called on a tensor that does not require gradients: "
                           "create the inputs with requires_grad=True (or use Parameters)")
    if grad is None:
        if root.size != 1:
            raise RuntimeError(f"backward() needs a grad argument for a tensor of shape {root.shape}: "
                               "gradients start from a single number (call .sum() or .mean() first)")
        grad = np.ones_like(root.data)
    grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=root.dtype)
    if grad.shape != root.shape:
        raise ValueError(f"backward() got grad of shape {grad.shape} for a tensor of shape {root.shape}")
    ### BEGIN SOLUTION
    grads = {id(root): grad}
    for node in reversed(topological_order(root)):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if node._op is None:  # a leaf: keep the gradient (a fresh array: rules may share theirs)
            total = g if node.grad is None else node.grad + g
            node.grad = np.array(total, dtype=node.dtype)
            continue
        for parent, parent_grad in zip(node._parents, GRADIENT_RULES[node._op](node, g)):
            if parent_grad is None or not parent.requires_grad:
                continue
            key = id(parent)
            grads[key] = parent_grad if key not in grads else grads[key] + parent_grad
    ### END SOLUTION


# %% [markdown]
# ## Given: checking gradients with finite differences
#
# The independent oracle for every gradient in this course:
# `(f(x + h) - f(x - h)) / 2h` in float64. `gradcheck` compares it with
# what `backward` computes and names the input that disagrees.

# %%
#| export
def numerical_grad(f: Callable[..., Tensor], inputs: list[Tensor], h: float = 1e-6) -> list[np.ndarray]:
    """Central differences of the scalar `f(*inputs)` with respect to each input's data."""
    grads = []
    for x in inputs:
        g = np.zeros_like(x.data, dtype=np.float64)
        for i in np.ndindex(x.shape):
            original = x.data[i]
            x.data[i] = original + h
            up = float(f(*inputs).data.sum())
            x.data[i] = original - h
            down = float(f(*inputs).data.sum())
            x.data[i] = original
            g[i] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def gradcheck(f: Callable[..., Tensor], inputs: list[Tensor], atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Raise AssertionError naming the first input whose gradient disagrees with finite differences."""
    for x in inputs:
        x.grad = None
    backward(f(*inputs).sum())
    for n, (x, expected) in enumerate(zip(inputs, numerical_grad(f, inputs))):
        got = np.zeros_like(expected) if x.grad is None else x.grad
        if not np.allclose(got, expected, atol=atol, rtol=rtol):
            worst = np.abs(got - expected).max()
            raise AssertionError(f"gradient of input {n} (shape {x.shape}) is off by up to {worst:.3g}:\n"
                                 f"backward: {got}\nfinite differences: {expected}")


# %% [markdown]
# ## See it work
#
# `y = x² + 3x` at `x = 2` has slope `2x + 3 = 7`.

# %%
x = Tensor([2.0], requires_grad=True)
y = x * x + 3 * x
backward(y)
print(x.grad)

# %% [markdown]
# ## Tests
#
# The tests call `backward(z)`, the function in this notebook, so they check
# the code you just wrote. `z.backward()` calls the same function from your
# exported `tinytorch.autograd` and is what later modules use.

# %% nbgrader={"grade": true, "grade_id": "test-autograd-unbroadcast", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""unbroadcast sums over added and stretched dimensions."""
g = np.ones((2, 3, 4), dtype=np.float32)
assert unbroadcast(g, (2, 3, 4)).shape == (2, 3, 4), \
    f"got unbroadcast(g, (2, 3, 4)).shape = {unbroadcast(g, (2, 3, 4)).shape!r}"
assert np.allclose(unbroadcast(g, (4,)), 6.0), f"got unbroadcast(g, (4,)) = {unbroadcast(g, (4,))!r}"
assert np.allclose(unbroadcast(g, (3, 1)), 8.0), f"got unbroadcast(g, (3, 1)) = {unbroadcast(g, (3, 1))!r}"
assert unbroadcast(g, (3, 1)).shape == (3, 1), f"got unbroadcast(g, (3, 1)).shape = {unbroadcast(g, (3, 1)).shape!r}"
assert np.allclose(unbroadcast(g, ()), 24.0), f"got unbroadcast(g, ()) = {unbroadcast(g, ())!r}"

# %% nbgrader={"grade": true, "grade_id": "test-autograd-simple", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Gradients of small expressions match the hand-derived ones."""
x = Tensor([2.0, -1.0], requires_grad=True)
y = Tensor([3.0, 4.0], requires_grad=True)
z = (x * y + x ** 2).sum()
backward(z)
assert np.allclose(x.grad, [3.0 + 4.0, 4.0 - 2.0]), \
    f"got x.grad = {x.grad!r}; [3.0 + 4.0, 4.0 - 2.0] = {[3.0 + 4.0, 4.0 - 2.0]!r}"
assert np.allclose(y.grad, [2.0, -1.0]), f"got y.grad = {y.grad!r}"
w = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
backward((w @ Tensor([1.0, 1.0])).sum())
assert np.allclose(w.grad, np.ones((2, 2))), f"got w.grad = {w.grad!r}; np.ones((2, 2)) = {np.ones((2, 2))!r}"

# %% nbgrader={"grade": true, "grade_id": "test-autograd-finite-differences", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
"""Every primitive agrees with finite differences (float64), broadcasting included."""
r = np.random.default_rng(0)
def t(*shape, positive=False):
    data = r.random(shape) + 0.5 if positive else r.standard_normal(shape)
    return Tensor(data, requires_grad=True, dtype=np.float64)
gradcheck(lambda a, b: a * b + a, [t(3, 1), t(4)])
gradcheck(lambda a, b: a / b - b, [t(2, 3), t(1, 3, positive=True)])
gradcheck(lambda a: (a ** 3).log() + a.sqrt(), [t(5, positive=True)])
gradcheck(lambda a: a.exp().tanh(), [t(2, 2)])
gradcheck(lambda a, b: a @ b, [t(2, 3, 4), t(4, 5)])
gradcheck(lambda a: a.sum(axis=1) * a.mean(axis=0, keepdims=True).sum(), [t(3, 4)])
gradcheck(lambda a: a.max(axis=-1), [t(3, 5)])
gradcheck(lambda a: a.reshape(6, 2).T[1:, np.array([0, 2, 2])], [t(3, 4)])

# %% nbgrader={"grade": true, "grade_id": "test-autograd-graph", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Reused tensors accumulate, deep graphs need no recursion, mistakes get clear errors."""
a = Tensor([3.0], requires_grad=True)
b = a * a * a            # a is used three times
backward(b)
assert np.allclose(a.grad, [27.0]), f"got a.grad = {a.grad!r}"
x = Tensor([1.0], requires_grad=True)
y = x
for _ in range(10_000):
    y = y * 1.0001
backward(y)
assert np.isclose(x.grad[0], 1.0001 ** 10_000, rtol=1e-3), \
    f"got x.grad[0] = {x.grad[0]!r}; 1.0001 ** 10_000 = {1.0001 ** 10_000!r}"
try:
    backward(Tensor([1.0, 2.0], requires_grad=True).exp())
    raise AssertionError("backward on a non-scalar without grad must fail")
except RuntimeError as error:
    assert "grad" in str(error), f"got str(error) = {str(error)!r}"
with no_grad():
    assert not (x * 2).requires_grad, f"under no_grad() nothing requires gradients, got {(x * 2).requires_grad}"

# %% [markdown]
# ## Memory and performance analysis
#
# Reverse mode keeps every intermediate result alive until `backward` has
# used it. Let us watch the cost grow with the depth of a chain of
# operations on a (256, 256) tensor, and compare with the same chain under
# `no_grad()`.

# %%
from tinytorch.profiler import Profile

def chain(depth):
    x = Tensor(np.ones((256, 256), dtype=np.float32), requires_grad=True)
    y = x
    for _ in range(depth):
        y = (y * 0.5).tanh()
    return y

for depth in (10, 40):
    with Profile(f"forward, depth {depth}, recording") as p:
        out = chain(depth)
    with Profile(f"backward, depth {depth}") as q:
        backward(out.sum())
    with no_grad(), Profile(f"forward, depth {depth}, no_grad") as unrecorded:
        chain(depth)
    print(p, q, unrecorded, sep="\n")

# %% [markdown]
# ## Comparison with PyTorch

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed("05_autograd")

if torch is not None:
    data = np.random.default_rng(1).standard_normal((4, 3))
    a = Tensor(data, requires_grad=True, dtype=np.float64)
    ta = torch.tensor(data, requires_grad=True)
    backward(((a @ a.T).tanh() * a.sum(axis=1, keepdims=True)).mean())
    ((ta @ ta.T).tanh() * ta.sum(dim=1, keepdim=True)).mean().backward()
    print("max difference from torch.autograd:", np.abs(a.grad - ta.grad.numpy()).max())

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** From the profile above: how does the memory of the recorded forward
# pass grow with depth, and why is the `no_grad` forward pass so much
# cheaper?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-autograd-memory", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Linearly: every op's output (and the scalar-multiply intermediates) is kept
# for the backward pass. Without recording, each intermediate is freed when
# the next op has used it, so the peak is a couple of buffers.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** Why must gradients be *added* when a tensor is used more than once?
# Give a two-line example where assigning instead of adding gives a wrong
# answer.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-autograd-accumulate", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# By the multivariate chain rule the total derivative sums over every path.
# y = x * x: each factor contributes x, so dy/dx = 2x; assigning gives x.
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** Reverse mode costs about one extra forward pass to get the gradient
# of one output with respect to *all* inputs. When would forward mode be the
# better choice?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-autograd-modes", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Forward mode costs one pass per input; reverse one per output. With few
# inputs and many outputs (a Jacobian-vector product, sensitivity of many
# outputs to one parameter) forward mode wins.
# === END MARK SCHEME ===

# %% [markdown]
# **Q4.** The matmul rule skips the gradient of an operand that does not
# require one. For the first layer of a network, which gradient is skipped,
# and roughly what fraction of the backward cost does that save?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-autograd-skip", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# The gradient with respect to the input batch: one of the layer's two
# backward matmuls, about half of that layer's backward FLOPs.
# === END MARK SCHEME ===

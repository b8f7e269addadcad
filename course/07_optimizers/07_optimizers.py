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
# # Module 07 — Optimizers
#
# After `loss.backward()` every parameter `p` holds `p.grad`, the direction
# in which the loss grows fastest. An **optimizer** turns gradients into
# updates. The simplest is plain stochastic gradient descent:
#
# $$p \leftarrow p - \eta\, g.$$
#
# `η` (the learning rate) is how far to step. Too small and training crawls;
# too large and the loss diverges. Gradients from mini-batches are noisy,
# and plain SGD zig-zags across narrow valleys of the loss surface. Two
# classic additions fix most of that.
#
# ## Momentum: a ball rolling downhill
#
# Picture the loss surface as a landscape and the parameters as a heavy
# ball. Plain SGD has no mass: at every step it moves exactly along the
# local slope, so in a narrow valley it bounces from wall to wall. A heavy
# ball has **velocity**: it keeps moving in the direction it was already
# going, the slope only *accelerates* it, and friction slowly takes speed
# away. Bounces across the valley cancel out; the steady push along the
# valley floor adds up.
#
# In formulas (exactly PyTorch's `torch.optim.SGD`), with momentum `μ`,
# dampening `τ` and weight decay `λ`, at step `t`:
#
# $$
# \begin{aligned}
# g_t &= \nabla L(p_{t-1}) + \lambda\, p_{t-1} &&\text{(weight decay: a pull towards 0)}\\
# b_t &= \begin{cases} g_t & t = 1\\ \mu\, b_{t-1} + (1 - \tau)\, g_t & t > 1\end{cases}
#      &&\text{(velocity; } \mu \text{ is 1 − friction)}\\
# d_t &= \begin{cases} g_t + \mu\, b_t & \text{Nesterov}\\ b_t & \text{otherwise}\end{cases}\\
# p_t &= p_{t-1} - \eta\, d_t
# \end{aligned}
# $$
#
# * The **momentum buffer** `b` is the velocity. It starts as the first
#   gradient (not zero), so step 1 is a plain SGD step.
# * With a constant gradient `g`, the velocity approaches `g / (1 - μ)`:
#   momentum 0.9 moves up to 10× faster along a consistent slope.
# * **Nesterov** momentum "looks ahead": it corrects with the gradient where
#   the velocity is about to carry the ball, which damps overshooting.
# * **Weight decay** adds `λ p` to the gradient, the gradient of
#   `λ/2 · ‖p‖²`: an L2 penalty that keeps weights small.
#
# ## Systems view
#
# An optimizer is pure bookkeeping over arrays: it updates every parameter
# **in place** (`p.data -= ...`), so the model, its `state_dict` and any
# view of the weights see the new values, and no new arrays pile up per
# step. Its *state* (one momentum buffer per parameter: as much memory as the
# model itself; Adam keeps two) must be saved in checkpoints with the model,
# or a resumed run starts with zero velocity and behaves differently.

# %%
#| default_exp optimizers

# %%
#| export
"""Optimizers: the base class and SGD with momentum, Nesterov and weight decay (module 07)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeAlias

import numpy as np

from tinytorch.tensor import Tensor, no_grad

# What an optimizer takes: the parameters (`model.parameters()`), or groups of them, each a dict with
# its own "params" and hyperparameters.
Params: TypeAlias = Iterable[Tensor] | Iterable[dict[str, Any]]


# %% [markdown]
# ## Given: the Optimizer base class
#
# It collects the parameters (a list, or the generator that
# `model.parameters()` may be), keeps the hyperparameters in
# `param_groups` as PyTorch does — so `optimizer.param_groups[0]["lr"] = 0.01`
# changes the learning rate mid-training, which is how schedulers work — and
# keeps per-parameter state (the momentum buffers) in `self.state`.
#
# `state_dict()` turns all of that into plain numbers and arrays, with
# parameters named by their position, and `load_state_dict()` checks every
# shape before it changes anything. Parameter groups are supported (pass a
# list of dicts, each with its own `"params"` and hyperparameters), but this
# course mostly uses one.

# %%
#| export
class Optimizer:
    """Holds parameters and hyperparameters; subclasses define `step()`."""

    def __init__(self, params: Params, defaults: dict[str, Any]):
        listed: list[Any] = list(params)  # a generator would be used up after one pass
        if not listed:
            raise ValueError(f"{type(self).__name__} got an empty parameter list: "
                             "pass model.parameters() of a model that has parameters")
        groups = listed if isinstance(listed[0], dict) else [{"params": listed}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, np.ndarray]] = {}  # id(parameter) -> its buffers
        seen: set[int] = set()
        for g, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"{type(self).__name__}: parameter group {g} must be a dict with a 'params' list")
            unknown = set(group) - set(defaults) - {"params"}
            if unknown:
                raise TypeError(f"{type(self).__name__}: parameter group {g} has unknown settings "
                                f"{sorted(unknown)}; allowed: {sorted(defaults)}")
            members = list(group["params"])
            for i, p in enumerate(members):
                if not isinstance(p, Tensor):
                    raise TypeError(f"{type(self).__name__} optimizes Tensors, parameter {i} of group {g} "
                                    f"is a {type(p).__name__}")
                if not p.requires_grad:
                    raise ValueError(f"{type(self).__name__}: parameter {i} of group {g} (shape {p.shape}) "
                                     "does not require gradients, so it would never change")
                if id(p) in seen:
                    raise ValueError(f"{type(self).__name__}: parameter {i} of group {g} (shape {p.shape}) "
                                     "appears twice; each parameter may be optimized once")
                seen.add(id(p))
            self.param_groups.append({**self.defaults, **group, "params": members})

    def parameters(self) -> Iterator[Tensor]:
        """Every parameter, in order (group by group)."""
        for group in self.param_groups:
            yield from group["params"]

    def zero_grad(self) -> None:
        """Forget the gradients of every parameter (set them to None, as PyTorch does by default)."""
        for p in self.parameters():
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers and array copies: {"state": {index: {name: array}}, "param_groups": [...]}."""
        index = {id(p): i for i, p in enumerate(self.parameters())}
        state = {index[key]: {name: np.array(value, copy=True) for name, value in buffers.items()}
                 for key, buffers in self.state.items() if key in index}
        groups, start = [], 0
        for group in self.param_groups:
            settings = {k: v for k, v in group.items() if k != "params"}
            groups.append({**settings, "params": list(range(start, start + len(group["params"])))})
            start += len(group["params"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and buffers saved by state_dict(); check everything before changing anything."""
        name = type(self).__name__
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise KeyError(f"{name}.load_state_dict: the state dict has no {key!r} entry "
                               f"(it has {sorted(state_dict)}); was it saved by an optimizer's state_dict()?")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: saved {len(saved_groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        for g, (saved, own) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"{name}.load_state_dict: group {g} saved {len(saved['params'])} parameters, "
                                 f"this optimizer has {len(own['params'])} there")
            unknown = set(saved) - set(self.defaults) - {"params"}
            if unknown:
                raise ValueError(f"{name}.load_state_dict: group {g} has settings {sorted(unknown)} "
                                 f"that {name} does not know")
        params = list(self.parameters())
        buffers: dict[int, dict[str, np.ndarray]] = {}
        for i, saved in state_dict["state"].items():
            i = int(i)
            if not 0 <= i < len(params):
                raise ValueError(f"{name}.load_state_dict: state for parameter {i}, but there are {len(params)}")
            buffers[id(params[i])] = {}
            for key, value in saved.items():
                array = np.asarray(value)
                if array.shape not in (params[i].shape, ()):  # a buffer like the parameter, or a count
                    raise ValueError(f"{name}.load_state_dict: state[{i}][{key!r}] has shape {array.shape}, "
                                     f"parameter {i} has shape {params[i].shape}")
                dtype = params[i].dtype if array.shape else array.dtype
                buffers[id(params[i])][key] = array.astype(dtype, copy=True)
        for saved, own in zip(saved_groups, self.param_groups):
            own.update({k: v for k, v in saved.items() if k != "params"})
        self.state = buffers


# %% [markdown]
# ## Your turn: SGD
#
# The constructor is given: it checks the hyperparameters the way
# `torch.optim.SGD` does and hands them to `Optimizer`. Write `step()`,
# following the formulas above for every parameter of every group:
#
# * skip a parameter whose `.grad` is `None` (it took no part in the loss);
# * keep the momentum buffer in `self.state[id(p)]["momentum_buffer"]`,
#   created as a **copy** of the first `g` (the gradient array belongs to
#   the parameter, and `zero_grad` or the next backward replaces it);
# * update the buffer and the parameter **in place** (`buf *= μ`,
#   `p.data -= ...`), so no new arrays are allocated for them.
#
# `step()` already runs under `no_grad()`: an update is not part of any
# model's computation and must not be recorded.

# %% nbgrader={"grade": false, "grade_id": "sgd", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and weight decay.

    Matches torch.optim.SGD: g = grad + weight_decay * p; buf = g (first step) or
    momentum * buf + (1 - dampening) * g; d = g + momentum * buf (Nesterov) or buf; p -= lr * d.
    """

    def __init__(self, params: Params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, dampening: float = 0.0):
        if not lr >= 0:
            raise ValueError(f"SGD: invalid learning rate lr={lr}, it must be >= 0")
        if not momentum >= 0:
            raise ValueError(f"SGD: invalid momentum={momentum}, it must be >= 0")
        if not weight_decay >= 0:
            raise ValueError(f"SGD: invalid weight_decay={weight_decay}, it must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"SGD: Nesterov momentum needs momentum > 0 and dampening = 0, "
                             f"got momentum={momentum}, dampening={dampening}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      nesterov=nesterov, dampening=dampening))

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        with no_grad():
            for group in self.param_groups:
                lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
                nesterov, dampening = group["nesterov"], group["dampening"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    ### BEGIN SOLUTION
                    g = p.grad
                    if weight_decay != 0:
                        g = g + weight_decay * p.data  # a new array: never change p.grad itself
                    if momentum != 0:
                        state = self.state.setdefault(id(p), {})
                        buf = state.get("momentum_buffer")
                        if buf is None:
                            buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype, copy=True)
                        else:
                            buf *= momentum
                            buf += (1 - dampening) * g
                        g = g + momentum * buf if nesterov else buf
                    p.data -= lr * g
                    ### END SOLUTION


# %% [markdown]
# ## Watch momentum roll
#
# Minimise the narrow valley `f(x, y) = x² + 25 y²` from `(-4, 1)` with the
# same learning rate, with and without momentum. Without momentum the steep
# `y` direction limits the learning rate and the shallow `x` direction
# crawls; with momentum the velocity along `x` builds up.

# %%
def valley_descent(steps: int, **settings) -> list:
    point = Tensor(np.array([-4.0, 1.0]), requires_grad=True)
    opt = SGD([point], **settings)
    path = [point.data.copy()]
    for _ in range(steps):
        opt.zero_grad()
        (point * point * Tensor(np.array([1.0, 25.0]))).sum().backward()
        opt.step()
        path.append(point.data.copy())
    return path

for settings in (dict(lr=0.02), dict(lr=0.02, momentum=0.8), dict(lr=0.02, momentum=0.8, nesterov=True)):
    end = valley_descent(30, **settings)[-1]
    value = end[0] ** 2 + 25 * end[1] ** 2
    print(f"{str(settings):50s} after 30 steps at ({end[0]:+.4f}, {end[1]:+.4f}), f = {value:.2e}")

# %% [markdown]
# Momentum gets orders of magnitude closer in the same 30 steps. Now try
# `lr=0.03` in all three: plain SGD and momentum still converge, Nesterov
# blows up. Its look-ahead adds `μ·b` on top of the gradient, so its steps
# along the steep `y` direction are larger and its largest stable learning
# rate is smaller — momentum methods trade speed for a narrower range of
# safe learning rates.

# %% [markdown]
# ## Tests

# %% nbgrader={"grade": true, "grade_id": "test-optimizers-sgd-plain", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""Plain SGD moves p by -lr * grad in place, skips parameters without a gradient, and zero_grad clears."""
p = Tensor(np.array([1.0, -2.0]), requires_grad=True)
q = Tensor(np.array([5.0]), requires_grad=True)
buffer = p.data
opt = SGD([p, q], lr=0.1)
p.grad = np.array([10.0, -10.0])
opt.step()
assert np.allclose(p.data, [0.0, -1.0]), f"update p.data in place: got p.data = {p.data!r}"
assert p.data is buffer, f"update p.data in place: got p.data = {p.data!r}; buffer = {buffer!r}"
assert np.allclose(q.data, [5.0]), f"q has no gradient and must not move: got q.data = {q.data!r}"
opt.zero_grad()
assert p.grad is None, f"got p.grad = {p.grad!r}"
assert q.grad is None, f"got q.grad = {q.grad!r}"

# %% nbgrader={"grade": true, "grade_id": "test-optimizers-sgd-momentum", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
"""Momentum, dampening, Nesterov and weight decay follow torch.optim.SGD's formulas, checked by hand."""
def run(grads, **settings):
    p = Tensor(np.array([1.0]), requires_grad=True)
    opt = SGD([p], **settings)
    values = []
    for g in grads:
        p.grad = np.array([g])
        opt.step()
        values.append(p.data[0])
    return values
# momentum 0.5: buffers 1, 1.5, 1.75 -> p = 1 - 0.1 * (1, 2.5, 4.25)
assert np.allclose(run([1, 1, 1], lr=0.1, momentum=0.5), [0.9, 0.75, 0.575]), \
    f"got run([1, 1, 1], lr=0.1, momentum=0.5) = {run([1, 1, 1], lr=0.1, momentum=0.5)!r}"
# Nesterov: d = g + 0.5 * buf = 1.5, 1.75 -> p = 0.85, 0.675
assert np.allclose(run([1, 1], lr=0.1, momentum=0.5, nesterov=True), [0.85, 0.675]), \
    f"got run([1, 1], lr=0.1, momentum=0.5, nesterov=True) = {run([1, 1], lr=0.1, momentum=0.5, nesterov=True)!r}"
# dampening 0.5: buffers 1 (the first gradient, undampened), 0.5 + 0.5 = 1
assert np.allclose(run([1, 1], lr=0.1, momentum=0.5, dampening=0.5), [0.9, 0.8]), \
    f"got run([1, 1], lr=0.1, momentum=0.5, dampening=0.5) = {run([1, 1], lr=0.1, momentum=0.5, dampening=0.5)!r}"
# weight decay 0.1: g = 1 + 0.1 * 1 = 1.1 -> p = 0.89
assert np.allclose(run([1], lr=0.1, weight_decay=0.1), [0.89]), \
    f"got run([1], lr=0.1, weight_decay=0.1) = {run([1], lr=0.1, weight_decay=0.1)!r}"

# %% nbgrader={"grade": true, "grade_id": "test-optimizers-errors-state", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Generators are accepted, bad settings are refused by name, and state_dict round-trips the momentum."""
params = [Tensor(np.ones(2), requires_grad=True) for _ in range(2)]
opt = SGD((p for p in params), lr=0.1, momentum=0.9)
assert len(list(opt.parameters())) == 2, f"got len(list(opt.parameters())) = {len(list(opt.parameters()))!r}"
for bad, phrase in [(dict(params=[], lr=0.1), "empty"), (dict(params=params, lr=-1.0), "lr"),
                    (dict(params=params, lr=0.1, nesterov=True), "Nesterov")]:
    try:
        SGD(**bad)
        raise AssertionError(f"{bad} should be refused")
    except ValueError as error:
        assert phrase in str(error), (phrase, str(error))
for p in params:
    p.grad = np.array([1.0, 2.0])
opt.step()
saved = opt.state_dict()
assert np.allclose(saved["state"][0]["momentum_buffer"], [1.0, 2.0]), \
    f'got saved["state"][0]["momentum_buffer"] = {saved["state"][0]["momentum_buffer"]!r}'
assert saved["param_groups"][0]["lr"] == 0.1, f'got saved["param_groups"][0]["lr"] = {saved["param_groups"][0]["lr"]!r}'
fresh = SGD(params, lr=0.5, momentum=0.9)
fresh.load_state_dict(saved)
assert fresh.param_groups[0]["lr"] == 0.1, f'got fresh.param_groups[0]["lr"] = {fresh.param_groups[0]["lr"]!r}'
fresh.step()
opt.step()
assert np.allclose(fresh.state_dict()["state"][1]["momentum_buffer"], opt.state_dict()["state"][1]["momentum_buffer"]), \
    f'got fresh.state_dict()["state"][1]["momentum_buffer"] = {fresh.state_dict()["state"][1]["momentum_buffer"]!r}; opt.state_dict()["state"][1]["momentum_buffer"] = {opt.state_dict()["state"][1]["momentum_buffer"]!r}'

# %% [markdown]
# ## Memory and performance analysis
#
# How much memory does the optimizer add, and how long does a step take,
# for a 1M-parameter model? A step should allocate only small temporaries:
# the parameter and the momentum buffer are updated in place.

# %%
from tinytorch.profiler import Profile, measure, format_bytes

shapes = [(1000, 784), (1000,), (200, 1000), (200,)]
params = [Tensor(np.zeros(s, dtype=np.float32), requires_grad=True) for s in shapes]
for p in params:
    p.grad = np.ones(p.shape, dtype=np.float32)
model_bytes = sum(p.data.nbytes for p in params)
print(f"model: {sum(p.size for p in params):,} parameters, {format_bytes(model_bytes)}")
for settings in (dict(lr=0.01), dict(lr=0.01, momentum=0.9), dict(lr=0.01, momentum=0.9, weight_decay=1e-4)):
    opt = SGD(params, **settings)
    with Profile("first step") as first:
        opt.step()
    m = measure(opt.step, repeat=5, label=str(settings))
    state = sum(b.nbytes for buffers in opt.state.values() for b in buffers.values())
    print(f"{m}; first step peak {format_bytes(first.peak_bytes)}, optimizer state {format_bytes(state)}")

# %% [markdown]
# The first step with momentum allocates the buffers (as much as the model);
# later steps only allocate a temporary the size of the largest parameter
# for `lr * g` (and `weight_decay * p`).

# %% [markdown]
# ### The forgotten `zero_grad`, by its numbers
#
# The course's design document shows this training loop for XOR, written as
# is (`net`, `X`, `y`, `mse_loss` and `optimizer` as in modules 04–07):
#
# ```python
# for epoch in range(100):
#     pred = net(X)
#     loss = mse_loss(pred, y)
#     loss.backward()  # Autograd magic!
#     optimizer.step()  # Parameters update!
#     print(f"Epoch {epoch}: Loss = {loss.data}")
# ```
#
# It has no `optimizer.zero_grad()`. `backward` **adds** into `.grad`
# (module 05: a node used twice gets the sum), so every step uses the sum of
# all gradients so far. Run the loop exactly as written (printing every
# 10th epoch instead of all 100), and again with `zero_grad()` first, from
# the same weights, and watch the gradient norm:

# %%
from tinytorch.layers import Linear, ReLU, Sequential
from tinytorch.losses import mse_loss
from tinytorch.tensor import manual_seed

X = Tensor(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32))
y = Tensor(np.array([[0], [1], [1], [0]], dtype=np.float32))


def design_loop(zero_grad: bool, epochs: int = 100, lr: float = 0.1):
    manual_seed(1)
    net = Sequential(Linear(2, 4), ReLU(), Linear(4, 1))
    optimizer = SGD(net.parameters(), lr=lr)
    for epoch in range(epochs):
        if zero_grad:
            optimizer.zero_grad()                     # the line the design's loop leaves out
        pred = net(X)
        loss = mse_loss(pred, y)
        loss.backward()
        optimizer.step()
        if epoch % 10 == 0 or epoch == epochs - 1:
            norm = np.sqrt(sum(float((p.grad ** 2).sum()) for p in net.parameters()))
            print(f"  Epoch {epoch:2d}: Loss = {float(loss.data):10.4g}   gradient norm used by the step {norm:10.4g}")
    return float(loss.data)


print("as written (no zero_grad):")
without = design_loop(zero_grad=False)
print("with optimizer.zero_grad() first:")
with_zero = design_loop(zero_grad=True)
print(f"final loss {without:.4g} without zero_grad, {with_zero:.4g} with it")

# %% [markdown]
# Without `zero_grad`, the step at epoch `t` uses the sum of all `t`
# gradients so far: compare the two gradient-norm columns, an order of
# magnitude apart after a few epochs. It acts like momentum with no friction —
# old gradients never fade — so the weights overshoot, the loss swings up and
# down instead of settling, and a larger learning rate or a longer run makes
# it diverge. Check the accumulation directly: two backward passes without
# clearing give exactly the sum of the two gradients.

# %%
manual_seed(2)
layer = Linear(2, 1)
mse_loss(layer(X), y).backward()
first = layer.weight.grad.copy()
mse_loss(layer(X * 2), y).backward()                 # no zero_grad in between
after_two = layer.weight.grad.copy()
layer.zero_grad()
mse_loss(layer(X * 2), y).backward()
second = layer.weight.grad.copy()
print("first gradient          ", first.ravel())
print("second gradient alone   ", second.ravel())
print("after two backward calls", after_two.ravel(), "= first + second:", np.allclose(after_two, first + second))

# %% [markdown]
# ## Comparison with PyTorch
#
# Same starting weights, same gradients every step, 100 steps: the
# parameters agree with `torch.optim.SGD` to rounding error.

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed("07_optimizers")

if torch is not None:
    r = np.random.default_rng(0)
    start = r.standard_normal((5, 3))
    settings = dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True)
    ours = Tensor(start.copy(), requires_grad=True)
    theirs = torch.tensor(start.copy(), requires_grad=True)
    opt_ours, opt_theirs = SGD([ours], **settings), torch.optim.SGD([theirs], **settings)
    for _ in range(100):
        g = r.standard_normal((5, 3))
        ours.grad, theirs.grad = g.copy(), torch.from_numpy(g.copy())
        opt_ours.step()
        opt_theirs.step()
    print("after 100 steps, max |ours - torch| =", np.abs(ours.data - theirs.detach().numpy()).max())
    m_ours = measure(opt_ours.step, repeat=20, label="tinytorch SGD step (5x3)")
    m_theirs = measure(opt_theirs.step, repeat=20, label="torch SGD step (5x3)")
    print(m_ours, m_theirs, sep="\n")

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** With momentum μ and a gradient that stays constant at `g`, what
# does the velocity (the momentum buffer) converge to, and how much larger
# is the effective step than plain SGD's for μ = 0.9 and μ = 0.99? What does
# that mean for choosing the learning rate when you add momentum?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-optimizers-terminal-velocity", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# b = μ b + g has fixed point b = g / (1 - μ): 10x for 0.9, 100x for 0.99
# (with dampening τ: (1-τ) g / (1-μ)). The effective learning rate is
# η / (1 - μ), so adding momentum usually needs a smaller η (or the run
# diverges); "terminal velocity" of the physics analogy.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** A model has 100 M float32 parameters. How much memory do the
# parameters, the gradients and the SGD-with-momentum state take? How does
# that change with Adam (two buffers per parameter)?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-optimizers-memory", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# 400 MB each: parameters 400 MB + gradients 400 MB + momentum 400 MB =
# 1.2 GB (3x the model). Adam: two buffers, 1.6 GB (4x). Activations come
# on top. This is why optimizer-state sharding (ZeRO) exists.
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** Why does `step()` update `p.data` in place instead of assigning
# `p.data = p.data - lr * g`? Name one thing that would break or cost more
# with the assignment.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-optimizers-in-place", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Assignment allocates a new array for every parameter every step (more
# allocator work and peak memory) and breaks anything holding the old
# array: views of the weights, tied/shared parameters stored as views,
# arrays handed to other code. In place keeps one buffer whose identity
# never changes. (Any one well-argued point gets full marks.)
# === END MARK SCHEME ===

# %% [markdown]
# **Q4.** You resume training from a checkpoint that saved the model but not
# the optimizer's state_dict. What is different in the first steps after
# resuming with momentum 0.9, and why can it matter?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-optimizers-resume", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# The momentum buffers restart from the first new gradient instead of the
# accumulated velocity: the effective step drops from ~η/(1-μ) to η and
# builds back up over ~1/(1-μ) = 10 steps, and the direction loses its
# smoothing. The loss curve shows a kink; a schedule's or run's results are
# not reproducible. Save optimizer state (and step counters) with the model.
# === END MARK SCHEME ===

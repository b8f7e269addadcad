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
# # Module 11 — Adam and AdamW
#
# SGD takes the same step size for every parameter. That hurts when some
# parameters get large, noisy gradients and others small, rare ones — the
# embedding of a rare word, the last layer of a deep network. **Adam**
# (Kingma & Ba, 2015) keeps two running averages per parameter:
#
# * `m`, the mean of recent gradients (momentum: which way to go), and
# * `v`, the mean of recent *squared* gradients (how large and noisy they are),
#
# and steps by `m / (√v + ε)`: a parameter with consistently large gradients
# takes steps of about `lr`, and so does one with consistently tiny
# gradients. Both averages start at zero, so early on they are biased towards
# zero; dividing by `1 - β^t` corrects that.
#
# ```
# g = grad (+ weight_decay · p, for Adam)
# m = β1 m + (1 - β1) g
# v = β2 v + (1 - β2) g²
# m̂ = m / (1 - β1^t),   v̂ = v / (1 - β2^t)
# p = p - lr · m̂ / (√v̂ + ε)
# ```
#
# **AdamW** (Loshchilov & Hutter, 2019) fixes how Adam does weight decay.
# Adding `λp` to the gradient lets `v` rescale the decay too, so heavily
# updated weights are barely decayed. AdamW instead shrinks the weights
# directly, `p = p - lr · λ · p`, before the Adam step. It is the optimizer
# of nearly every transformer, including the GPT of module 14.
#
# Both build on module 07's `Optimizer`: parameter groups, `zero_grad`,
# `state_dict`. The cost is memory: two extra buffers the size of every
# parameter.

# %%
#| default_exp adam

# %%
#| export
"""Adam and AdamW, built on module 07's Optimizer (module 11)."""
from __future__ import annotations

import numpy as np

from tinytorch.optimizers import Optimizer, Params
from tinytorch.tensor import Tensor, no_grad  # noqa: F401  (Tensor: for the tests and users)


def _check_adam_settings(name: str, lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> None:
    if not lr >= 0:
        raise ValueError(f"{name}: invalid learning rate lr={lr}, it must be >= 0")
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas}")
    if not eps >= 0:
        raise ValueError(f"{name}: invalid eps={eps}, it must be >= 0")
    if not weight_decay >= 0:
        raise ValueError(f"{name}: invalid weight_decay={weight_decay}, it must be >= 0")


# %% [markdown]
# ## Your turn: one Adam update
#
# `adam_update` changes `p` (an array) in place given its gradient `g`, its
# running averages `m` and `v` (arrays, also changed in place) and the step
# number `t` (1 for the first step). Use in-place operations (`m *= β1`,
# `m += ...`): the point of an optimizer's buffers is that they are
# allocated once, not every step.

# %% nbgrader={"grade": false, "grade_id": "adam-update", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def adam_update(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int,
                lr: float, betas: tuple[float, float], eps: float) -> None:
    """One bias-corrected Adam step on `p`, updating `m` and `v` in place."""
    beta1, beta2 = betas
    ### BEGIN SOLUTION
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    m_hat_scale = 1 / (1 - beta1 ** t)               # bias corrections
    v_hat_sqrt_scale = 1 / np.sqrt(1 - beta2 ** t)
    p -= (lr * m_hat_scale) * m / (np.sqrt(v) * v_hat_sqrt_scale + eps)
    ### END SOLUTION


# %% [markdown]
# ## Given: the optimizers
#
# `Adam` adds `weight_decay · p` to the gradient (the classic L2 penalty);
# `AdamW` decays the weights directly. Everything else is `adam_update`.

# %%
#| export
class Adam(Optimizer):
    """Adam with bias correction; weight_decay adds weight_decay * p to the gradient (as torch.optim.Adam)."""

    decoupled = False

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        _check_adam_settings(type(self).__name__, lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def step(self) -> None:
        with no_grad():
            for group in self.param_groups:
                lr, wd = group["lr"], group["weight_decay"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state.setdefault(id(p), {})
                    if not state:
                        state.update(step=np.array(0), exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
                    state["step"] += 1
                    g = p.grad
                    if wd and self.decoupled:
                        p.data *= 1 - lr * wd          # AdamW: shrink the weights themselves
                    elif wd:
                        g = g + wd * p.data            # Adam: L2 penalty through the gradient
                    adam_update(p.data, g, state["exp_avg"], state["exp_avg_sq"], int(state["step"]),
                                lr, group["betas"], group["eps"])


class AdamW(Adam):
    """Adam with decoupled weight decay (as torch.optim.AdamW, whose default weight_decay is 0.01)."""

    decoupled = True

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


# %% [markdown]
# ## See it work: a badly scaled problem
#
# Minimise `f(a, b) = 100 a² + b²/100`. The two parameters' gradients differ
# by a factor of 10,000: SGD with a learning rate small enough not to blow up
# on `a` barely moves `b`. Adam takes similar steps on both.

# %%
from tinytorch.optimizers import SGD


def minimise(make_optimizer, steps=200):
    a, b = Tensor([1.0], requires_grad=True), Tensor([1.0], requires_grad=True)
    opt = make_optimizer([a, b])
    for _ in range(steps):
        opt.zero_grad()
        (100 * a * a + b * b / 100).sum().backward()
        opt.step()
    return float(a.data[0]), float(b.data[0])


print("SGD  lr=0.009 :", minimise(lambda ps: SGD(ps, lr=0.009)))
print("Adam lr=0.01  :", minimise(lambda ps: Adam(ps, lr=0.01)))

# %% [markdown]
# ## Tests

# %% nbgrader={"grade": true, "grade_id": "test-adam-first-step", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""The first Adam step moves every parameter by about lr against its gradient's sign, whatever its scale."""
p = np.array([1.0, 1.0, 1.0])
g = np.array([1e3, -1e-3, 2.0])
m, v = np.zeros(3), np.zeros(3)
adam_update(p, g, m, v, t=1, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
assert np.allclose(p, [0.9, 1.1, 0.9], atol=1e-4), p
assert np.allclose(m, 0.1 * g), f"got m = {m!r}; 0.1 * g = {0.1 * g!r}"
assert np.allclose(v, 0.001 * g * g), f"got v = {v!r}; 0.001 * g * g = {0.001 * g * g!r}"

# %% nbgrader={"grade": true, "grade_id": "test-adam-optimizer", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Adam and AdamW reduce a quadratic; AdamW decays weights even with a zero gradient."""
w = Tensor(np.array([3.0, -2.0]), requires_grad=True)
opt = Adam([w], lr=0.1)
for _ in range(300):
    opt.zero_grad()
    ((w - 1.0) ** 2).sum().backward()
    opt.step()
assert np.allclose(w.data, [1.0, 1.0], atol=0.05), w.data
z = Tensor(np.array([2.0]), requires_grad=True)
decay = AdamW([z], lr=0.1, weight_decay=0.5)
z.grad = np.zeros(1)
decay.step()
assert np.isclose(z.data[0], 2.0 * (1 - 0.1 * 0.5)), z.data

# %% [markdown]
# ## Memory and performance analysis
#
# Adam keeps `m` and `v` for every parameter: three times the parameter
# memory in all (SGD with momentum: two). For the GPT of module 14 that is the
# difference between fitting in memory or not. Measure it on a layer's worth
# of parameters.

# %%
from tinytorch.profiler import Profile, measure, format_bytes

weights = [Tensor(np.zeros((512, 512), dtype=np.float32), requires_grad=True) for _ in range(4)]
for w in weights:
    w.grad = np.ones_like(w.data)
for name, make in [("SGD", lambda: SGD(weights, lr=0.01)), ("SGD+momentum", lambda: SGD(weights, lr=0.01, momentum=0.9)),
                   ("Adam", lambda: Adam(weights))]:
    opt = make()
    with Profile(name) as p:
        opt.step()  # the first step allocates the buffers
    print(f"{name:13s} first step allocates {format_bytes(p.peak_bytes)}; "
          f"parameters: {format_bytes(sum(w.data.nbytes for w in weights))}; "
          f"later steps: {measure(opt.step, repeat=5).seconds * 1e3:.2f} ms")

# %% [markdown]
# ## Comparison with PyTorch
#
# Same starting point, same gradients, 100 steps: the parameters must agree.

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed()

if torch is not None:
    r = np.random.default_rng(0)
    start = r.standard_normal(5)
    ours = Tensor(start.copy(), requires_grad=True, dtype=np.float64)
    theirs = torch.tensor(start.copy(), requires_grad=True)
    opt_ours, opt_theirs = AdamW([ours], lr=0.01), torch.optim.AdamW([theirs], lr=0.01)
    for _ in range(100):
        grad = r.standard_normal(5)
        ours.grad, theirs.grad = grad.copy(), torch.from_numpy(grad.copy())
        opt_ours.step()
        opt_theirs.step()
    print("max difference after 100 AdamW steps:", np.abs(ours.data - theirs.detach().numpy()).max())

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** A model has 10 million float32 parameters. How much memory do the
# parameters, gradients and optimizer state take with SGD, SGD with momentum
# and Adam?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-adam-memory", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# 40 MB each for parameters and gradients. SGD: 80 MB; momentum adds one
# buffer: 120 MB; Adam adds two: 160 MB.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** Why does Adam need bias correction? What would its first step be
# without it, with β1 = 0.9 and β2 = 0.999?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-adam-bias", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# m and v start at 0, so early averages are shrunk towards 0: m1 = 0.1 g,
# v1 = 0.001 g², giving a step of lr·0.1/√0.001 ≈ 3.16·lr instead of lr.
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** With Adam, weight decay through the gradient is divided by `√v`. Why
# does that make it a weaker regulariser for exactly the weights that change
# most, and how does AdamW avoid it?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-adam-decoupled", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Weights with large gradient history have large v, so their λp term is
# scaled down by 1/√v. AdamW applies p -= lr·λ·p outside the adaptive
# scaling, so every weight decays at the same rate.
# === END MARK SCHEME ===

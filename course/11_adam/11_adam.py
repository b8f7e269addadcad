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
"""Adam and AdamW on module 07's Optimizer, the image training loop and validation metrics (module 11)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from tinytorch.layers import Module
from tinytorch.losses import cross_entropy
from tinytorch.optimizers import Optimizer, Params
from tinytorch.tensor import Tensor, no_grad

# What a loader yields: (inputs, integer class targets), e.g. a DataLoader over MNIST (module 10).
Batches = Iterable[tuple[Tensor, ...]]
# loss_fn(logits (N, C), targets (N,)) -> a scalar Tensor; transform(inputs) -> what the model takes.
LossFn = Callable[[Tensor, Tensor], Tensor]
Transform = Callable[[Tensor], Tensor]


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
#
# The last line, `p -= lr·m̂ / (√v̂ + ε)`, is worth the same care: written as
# one expression it makes four new arrays the size of `p`; computed in one
# new array updated in place (`step = np.sqrt(v)`, then `step *= ...`,
# `np.divide(m, step, out=step)`) it makes one. On the 52 parameters of the
# milestone's GPT that took an AdamW step from 4.2-8.8 ms to 2.7 ms.
# (We also tried PyTorch's `foreach` idea — every parameter and moment as a
# view into one flat array, one `adam_update` per step instead of 52: 3.6 ms,
# slower. NumPy's per-call cost is small next to the memory traffic, and the
# flat version's temporaries are 3 MB each, fresh pages from the operating
# system every step. Measure before you fuse.)

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
    step = np.sqrt(v)                                # one new array, then in place: the update itself
    step *= v_hat_sqrt_scale
    step += eps
    np.divide(m, step, out=step)
    step *= lr * m_hat_scale
    p -= step
    ### END SOLUTION


# %% [markdown]
# ## Your turn: the Adam optimizer
#
# The constructor is given: it checks the settings the way `torch.optim.Adam`
# does and hands them to module 07's `Optimizer`. Write `step()`, for every
# parameter of every group that has a gradient:
#
# * its state lives in `self.state[id(p)]`, created on its first step with
#   PyTorch's names: `"step"` (a 0-d integer array counting its steps),
#   `"exp_avg"` (m) and `"exp_avg_sq"` (v), both zeros like `p.data`. The names
#   matter: module 12's checkpoints save and restore this dict, and a parameter
#   that skipped steps (no gradient) must keep its own count `t`;
# * weight decay: `Adam` (`self.decoupled` False) adds `weight_decay · p` to
#   the gradient (a new array: never change `p.grad`); `AdamW`
#   (`self.decoupled` True) first shrinks the weights themselves,
#   `p.data *= 1 - lr · weight_decay`, and leaves the gradient alone;
# * then one `adam_update` on `p.data` in place.

# %% nbgrader={"grade": false, "grade_id": "adam-optimizer", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Adam(Optimizer):
    """Adam with bias correction; weight_decay adds weight_decay * p to the gradient (as torch.optim.Adam)."""

    decoupled = False  # AdamW: True

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        _check_adam_settings(type(self).__name__, lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def step(self) -> None:
        """One Adam (or AdamW) step on every parameter that has a gradient, in place."""
        with no_grad():
            for group in self.param_groups:
                lr, wd = group["lr"], group["weight_decay"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    ### BEGIN SOLUTION
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
                    ### END SOLUTION


class AdamW(Adam):
    """Adam with decoupled weight decay (as torch.optim.AdamW, whose default weight_decay is 0.01)."""

    decoupled = True

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


# %% [markdown]
# ## Your turn: the image training loop and validation metrics
#
# Module 08's `fit` took whole arrays. Images come from a `DataLoader`
# (module 10) one batch at a time, and a model is judged on data it never
# trained on. Write:
#
# * `train_epoch(model, batches, optimizer, loss_fn=cross_entropy,
#   transform=None)`: one pass over `batches` (pairs of input and target
#   Tensors). For each batch: apply `transform` to the inputs if one is given
#   (normalisation), forward, loss, `optimizer.zero_grad()`, backward,
#   `optimizer.step()`. Put the model in training mode first. Return the mean
#   of the batch losses (floats: keep `loss.item()`, never the Tensor, or
#   every batch's graph stays in memory).
# * `evaluate_classifier(model, batches, num_classes, loss_fn=cross_entropy,
#   transform=None)`: under `no_grad()` and in eval mode, restoring the mode
#   the model was in afterwards (also when something raises). Return
#   `ClassifierMetrics`: the loss averaged over **examples** (a smaller last
#   batch weighs less), the accuracy (argmax of the logits equals the
#   target), and the accuracy of each class over the examples of that class
#   (`nan` for a class that has none): a 97% model that gets every "8"
#   wrong is not a good digit reader.

# %% nbgrader={"grade": false, "grade_id": "image-training", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
@dataclass
class ClassifierMetrics:
    loss: float                      # mean loss per example
    accuracy: float                  # fraction of examples whose argmax is the target
    per_class_accuracy: np.ndarray   # (num_classes,): accuracy over each class's examples, nan where there are none

    def __str__(self) -> str:
        worst = int(np.nanargmin(self.per_class_accuracy)) if not np.all(np.isnan(self.per_class_accuracy)) else -1
        return (f"loss {self.loss:.4f}, accuracy {self.accuracy:.2%}, worst class {worst} "
                f"({self.per_class_accuracy[worst]:.2%})")


def train_epoch(model: Module, batches: Batches, optimizer: Optimizer, loss_fn: LossFn = cross_entropy,
                transform: Transform | None = None) -> float:
    """One pass of training over `batches`; returns the mean of the batch losses."""
    ### BEGIN SOLUTION
    model.train()
    losses = []
    for inputs, targets in batches:
        if transform is not None:
            inputs = transform(inputs)
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))
    ### END SOLUTION


def evaluate_classifier(model: Module, batches: Batches, num_classes: int, loss_fn: LossFn = cross_entropy,
                        transform: Transform | None = None) -> ClassifierMetrics:
    """Loss, accuracy and per-class accuracy over `batches`, without gradients, in eval mode (then restored)."""
    ### BEGIN SOLUTION
    was_training = model.training
    model.eval()
    total_loss, count = 0.0, 0
    correct = np.zeros(num_classes)
    seen = np.zeros(num_classes)
    try:
        with no_grad():
            for inputs, targets in batches:
                if transform is not None:
                    inputs = transform(inputs)
                logits = model(inputs)
                labels = np.asarray(targets.data if isinstance(targets, Tensor) else targets).astype(np.int64).ravel()
                total_loss += loss_fn(logits, targets).item() * len(labels)
                count += len(labels)
                hits = logits.data.argmax(axis=1) == labels
                np.add.at(seen, labels, 1)
                np.add.at(correct, labels, hits)
    finally:
        model.train(was_training)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(seen > 0, correct / np.maximum(seen, 1), np.nan)
    return ClassifierMetrics(total_loss / count, float(correct.sum() / count), per_class)
    ### END SOLUTION


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
# ## See it work: images, and why we validate
#
# A small network on 1,000 MNIST training images, validated each epoch on
# 1,000 images it never trains on. Watch the two accuracies: the training
# accuracy keeps climbing towards 100% while the validation accuracy levels
# off. The gap is **overfitting**: what the model memorised about these
# 1,000 images does not carry over. Validation is how you notice (and, in
# module 12, when early stopping halts training).

# %%
import os
from pathlib import Path

from tinytorch.data import MNIST, DataLoader, TensorDataset
from tinytorch.layers import Linear, ReLU, Sequential
from tinytorch.tensor import manual_seed

try:
    import course
    _default_datasets = Path(course.__file__).resolve().parent.parent.parent / "shared" / "datasets"
except ImportError:  # the course package is not installed: assume the notebook runs from the repository root
    _default_datasets = Path("..") / "shared" / "datasets"
DATASETS = Path(os.environ.get("TINYTORCH_DATASETS", _default_datasets))

manual_seed(0)
mnist = MNIST(DATASETS, train=True)
flat = mnist.images.reshape(len(mnist), -1)                       # (60000, 784) pixels in [0, 1]
train_images = DataLoader(TensorDataset(flat[:1000], mnist.labels[:1000]), batch_size=50, shuffle=True, seed=0)
train_check = DataLoader(TensorDataset(flat[:1000], mnist.labels[:1000]), batch_size=500)
val_images = DataLoader(TensorDataset(flat[50000:51000], mnist.labels[50000:51000]), batch_size=500)
net = Sequential(Linear(784, 128), ReLU(), Linear(128, 10))
opt = Adam(net.parameters(), lr=2e-3)
for epoch in range(1, 7):
    train_loss = train_epoch(net, train_images, opt)
    on_train = evaluate_classifier(net, train_check, 10)
    on_val = evaluate_classifier(net, val_images, 10)
    print(f"epoch {epoch}: train loss {train_loss:.3f}, train accuracy {on_train.accuracy:.1%}, "
          f"validation accuracy {on_val.accuracy:.1%} (gap {on_train.accuracy - on_val.accuracy:+.1%})")
print("validation:", on_val)
print("per-class validation accuracy:", np.round(on_val.per_class_accuracy, 2))

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

# %% nbgrader={"grade": true, "grade_id": "test-adam-state", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Adam's state uses PyTorch's names and counts each parameter's own steps; Adam and AdamW decay differently."""
a = Tensor(np.array([1.0, -1.0]), requires_grad=True)
b = Tensor(np.array([2.0]), requires_grad=True)
opt = Adam([a, b], lr=0.1)
a.grad = np.array([0.5, -0.5])
opt.step()
assert id(b) not in opt.state, f"got state {opt.state.get(id(b))!r} for b, which had no gradient: expected none (and no move)"
assert b.data[0] == 2.0, b.data
a.grad, b.grad = np.array([0.5, -0.5]), np.array([1.0])
opt.step()
assert set(opt.state[id(a)]) == {"step", "exp_avg", "exp_avg_sq"}, sorted(opt.state[id(a)])
assert int(opt.state[id(a)]["step"]) == 2, f"got step {opt.state[id(a)]['step']!r} for a, expected 2 (two steps with a gradient)"
assert int(opt.state[id(b)]["step"]) == 1, \
    f"got step {opt.state[id(b)]['step']!r} for b, expected 1 (its first gradient came at the second step)"
assert np.isclose(b.data[0], 1.9), f"b's first step must be bias-corrected to lr: got {b.data[0]}, expected 1.9"
grad = np.array([0.2])
coupled, decoupled = Tensor(np.array([3.0]), requires_grad=True), Tensor(np.array([3.0]), requires_grad=True)
coupled.grad, decoupled.grad = grad.copy(), grad.copy()
Adam([coupled], lr=0.1, weight_decay=0.5).step()
AdamW([decoupled], lr=0.1, weight_decay=0.5).step()
assert np.isclose(coupled.data[0], 2.9), f"Adam: decay enters the gradient (sign unchanged): got {coupled.data[0]}, expected 2.9"
assert np.isclose(decoupled.data[0], 3.0 * 0.95 - 0.1), f"AdamW: shrink then step: got {decoupled.data[0]}, expected 2.75"
assert np.array_equal(coupled.grad, grad), f"got p.grad = {coupled.grad} after the step, expected {grad}: never change p.grad itself"

# %% nbgrader={"grade": true, "grade_id": "test-adam-train-epoch", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""train_epoch runs forward, loss, zero_grad, backward, step on each batch and returns the mean batch loss."""
from tinytorch.layers import Linear
from tinytorch.losses import cross_entropy
from tinytorch.tensor import manual_seed
manual_seed(0)
X = np.array([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]] * 4, dtype=np.float32)
y = np.array([0, 1, 1, 0] * 4)                    # class 1 where y > x: linearly separable
batches = [(Tensor(X[i:i + 4]), Tensor(y[i:i + 4])) for i in range(0, 16, 4)]
model, twin = Linear(2, 2), Linear(2, 2)
twin.load_state_dict(model.state_dict())
twin_opt, expected = Adam(twin.parameters(), lr=0.05), []
for xb, yb in batches:                                   # the loop by hand, on a copy of the model
    loss = cross_entropy(twin(xb * 0.5), yb)
    twin_opt.zero_grad()
    loss.backward()
    twin_opt.step()
    expected.append(loss.item())
calls = []
def halve(x):
    calls.append(x.shape)
    return x * 0.5
model.eval()
opt = Adam(model.parameters(), lr=0.05)
first = train_epoch(model, batches, opt, transform=halve)
assert model.training, f"got model.training = {model.training} after train_epoch, expected True: put the model in training mode"
assert calls == [(4, 2)] * 4, f"the transform ran on {calls}, expected once per batch"
assert isinstance(first, float), f"got a {type(first).__name__} ({first!r}), expected a float (.item())"
assert np.isclose(first, np.mean(expected)), \
    f"returned {first!r}, expected the mean of the batch losses {np.mean(expected):.6f}"
assert np.allclose(model.weight.data, twin.weight.data), \
    f"after one epoch the weight differs by {np.abs(model.weight.data - twin.weight.data).max():.3g} " \
    "from four steps of forward, loss, zero_grad, backward, step"
assert np.allclose(model.bias.data, twin.bias.data), \
    f"after one epoch the bias is {model.bias.data}, expected {twin.bias.data} (four steps of forward, loss, zero_grad, backward, step)"
losses = [train_epoch(model, batches, opt, transform=halve) for _ in range(30)]
assert losses[-1] < 0.5 * first, f"the loss went from {first:.3f} to {losses[-1]:.3f}: the parameters barely learn"

# %% nbgrader={"grade": true, "grade_id": "test-adam-validation-metrics", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""evaluate_classifier: loss per example, accuracy, per-class accuracy (nan for absent classes), no graph, mode restored."""
from tinytorch.layers import Linear
from tinytorch.losses import cross_entropy
model = Linear(2, 4)
model.weight.data[...] = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
model.bias.data[...] = 0.0
X = np.array([[3.0, 0.0], [0.0, 3.0], [-3.0, 0.0], [0.0, 3.0], [3.0, 0.1]], dtype=np.float32)
y = np.array([0, 1, 1, 1, 2])    # correct: 0 -> 0, 1 -> 1, x -> 2 (target 1: wrong), 1 -> 1, x -> 0 (target 2: wrong)
batches = [(Tensor(X[:4]), Tensor(y[:4])), (Tensor(X[4:]), Tensor(y[4:]))]      # batches of 4 and 1
model.train()
metrics = evaluate_classifier(model, batches, num_classes=4)
expected_loss = cross_entropy(model(Tensor(X)), y).item()
assert np.isclose(metrics.loss, expected_loss, rtol=1e-5), \
    f"loss {metrics.loss}, expected {expected_loss} (weigh each batch by its size)"
assert np.isclose(metrics.accuracy, 3 / 5), f"accuracy {metrics.accuracy}, expected 0.6"
per_class = metrics.per_class_accuracy
assert per_class.shape == (4,), f"got per_class_accuracy of shape {per_class.shape}, expected (4,): one per class"
assert np.allclose(per_class[:3], [1.0, 2 / 3, 0.0]), f"got {per_class[:3]} for classes 0-2, expected [1, 0.667, 0]"
assert np.isnan(per_class[3]), f"got {per_class[3]} for class 3 (no example of it), expected nan"
assert model.training, f"got model.training = {model.training}; the model was training before: restore it"
model.eval()
evaluate_classifier(model, batches, num_classes=4)
assert not model.training, f"got model.training = {model.training}; the model was in eval mode before: leave it there"
assert model.weight.grad is None, f"got weight.grad = {model.weight.grad}, expected None: evaluation must not compute gradients"

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

torch = torch_if_installed("11_adam")

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

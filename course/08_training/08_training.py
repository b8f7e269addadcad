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
# # Module 08 — Training
#
# You have every part of a deep-learning framework: tensors (02), layers
# (04), gradients (05), losses (06) and optimizers (07). Training is the loop
# that joins them. Its heart is five lines, always in this order:
#
# ```python
# optimizer.zero_grad()         # 1. forget the previous batch's gradients
# out = model(x_batch)          # 2. forward: compute the predictions (and record the graph)
# loss = loss_fn(out, y_batch)  # 3. one number that says how wrong they are
# loss.backward()               # 4. backward: d loss / d every parameter, into .grad
# optimizer.step()              # 5. move every parameter against its gradient
# ```
#
# Why this order?
#
# * `backward()` **adds** into `.grad` (module 05: a tensor used twice gets
#   the sum). Without step 1, each batch's gradient piles on top of all the
#   previous ones and the steps grow without bound. (Accumulating on
#   purpose, over several small batches before one `step()`, is a real
#   technique for when a big batch does not fit in memory.)
# * `step()` must come after `backward()` of the *same* batch, and
#   `zero_grad()` before the next `backward()`; putting `zero_grad()` between
#   backward and step would update with no gradient at all.
#
# Around those five lines sit the parts that make training trustworthy:
#
# * **Mini-batches.** One epoch visits every training example once, in
#   batches of `batch_size`, in a new random order each epoch (so the
#   gradient noise differs from epoch to epoch). Batches are *index
#   selections* of the arrays you already have: the dataset is never copied.
# * **Validation and overfitting.** The training loss measures how well the
#   model fits the examples it learns from — a big enough model can drive it
#   to zero by memorising them, noise included. What we want is performance
#   on *new* data. So we hold out a **validation set** the optimizer never
#   sees and evaluate on it after every epoch. When the training loss keeps
#   falling but the validation loss turns upward, the model has started to
#   **overfit**: stop there (*early stopping*), or use more data, a smaller
#   model, or regularisation (weight decay from module 07).
# * **Evaluation mode.** Validation runs under `no_grad()` (no graph, so much
#   less memory) and with `model.eval()` (layers such as dropout behave
#   differently at test time), and then puts the model back in training mode.
# * **A history and a progress bar**, so you can see what is happening.
#
# You write the pieces: `train_val_split`, `iterate_minibatches`,
# `accuracy`, `evaluate` and the loop inside `fit`.

# %%
#| default_exp training

# %%
#| export
"""Training loop helpers: validation split, mini-batches, accuracy, evaluation and fit (module 08)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np

from tinytorch.layers import Module
from tinytorch.losses import BCELoss, binary_cross_entropy
from tinytorch.optimizers import Optimizer
from tinytorch.tensor import Tensor, TensorLike, no_grad

# loss_fn(model output, targets of the batch) -> a scalar Tensor: a loss function or a loss Module.
LossFn: TypeAlias = Callable[[Tensor, np.ndarray], Tensor]
# A seed for a fresh generator, or the generator itself (None: an unpredictable seed).
Seed: TypeAlias = int | np.random.Generator | None


def _array(data: TensorLike) -> np.ndarray:
    return data.data if isinstance(data, Tensor) else np.asarray(data)


def _check_pair(X: np.ndarray, y: np.ndarray, where: str) -> None:
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{where} needs arrays with one row per example, got X of shape {X.shape} and y of shape {y.shape}")
    if len(X) != len(y):
        raise ValueError(f"{where} got {len(X)} examples in X but {len(y)} targets in y: they must match")


# %% [markdown]
# ## Your turn: the data side
#
# * `train_val_split(X, y, val_fraction, seed)` shuffles the example indices
#   with `np.random.default_rng(seed).permutation(n)`, takes the first
#   `round(n * val_fraction)` for validation and the rest for training, and
#   returns `X_train, y_train, X_val, y_val`. (Shuffle first: datasets are
#   often sorted by class, and the last 20% would then be one class only.)
# * `iterate_minibatches(X, y, batch_size, shuffle, seed)` is a generator of
#   `(X_batch, y_batch)`. Without shuffling, batch `k` is the slice
#   `X[k*b:(k+1)*b]` — a *view*, no copy. With shuffling, draw one
#   permutation of the indices and take consecutive pieces of it: each batch
#   is gathered from the original arrays, and nothing the size of the
#   dataset is copied. The last batch may be smaller.
#
# `seed` may be a number, `None` (fresh randomness) or a
# `np.random.Generator`; `np.random.default_rng(seed)` accepts all three, and
# passing the same Generator every epoch gives a new, reproducible order
# each time.

# %% nbgrader={"grade": false, "grade_id": "data-side", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def train_val_split(X: TensorLike, y: TensorLike, val_fraction: float = 0.2,
                    seed: Seed = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split into (X_train, y_train, X_val, y_val), round(n * val_fraction) for validation."""
    X, y = _array(X), _array(y)
    _check_pair(X, y, "train_val_split")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    n = len(X)
    n_val = int(round(n * val_fraction))
    if n_val == 0 or n_val == n:
        raise ValueError(f"val_fraction={val_fraction} of {n} examples leaves {n - n_val} for training and "
                         f"{n_val} for validation: each needs at least one")
    ### BEGIN SOLUTION
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:n_val], order[n_val:]
    return X[train], y[train], X[val], y[val]
    ### END SOLUTION


def iterate_minibatches(X: TensorLike, y: TensorLike, batch_size: int, shuffle: bool = True,
                        seed: Seed = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (X_batch, y_batch) covering every example once; slices (views) when not shuffling."""
    X, y = _array(X), _array(y)
    _check_pair(X, y, "iterate_minibatches")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = len(X)
    ### BEGIN SOLUTION
    if not shuffle:
        for start in range(0, n, batch_size):
            yield X[start:start + batch_size], y[start:start + batch_size]
        return
    order = np.random.default_rng(seed).permutation(n)  # n integers: the only per-epoch allocation
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        yield X[index], y[index]
    ### END SOLUTION


# %% [markdown]
# ## Your turn: measuring
#
# `accuracy(logits, targets)` is the fraction of examples predicted
# correctly. For `(N, C)` scores with `C > 1` the prediction is the class
# with the largest score (`argmax` along axis 1) and targets are class
# indices. A single column (`(N,)` or `(N, 1)`) is a yes/no output: it
# predicts 1 where it exceeds `threshold` — 0.5 for probabilities from a
# sigmoid; pass `threshold=0.0` for raw logits.
#
# `evaluate(model, loss_fn, X, y, batch_size)` returns the mean loss over
# all examples and the accuracy (or `None` when the task is not
# classification). Batches may differ in size (the last one), so weight each
# batch's mean loss by its size. Run it under `no_grad()`, with
# `model.eval()`, and put the model back in the mode it was in — even if an
# error interrupts (the `try/finally` is given).

# %% nbgrader={"grade": false, "grade_id": "measuring", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def accuracy(logits: TensorLike, targets: TensorLike, threshold: float = 0.5) -> float:
    """Fraction correct: argmax of (N, C) scores vs class indices, or a single column > threshold vs 0/1 targets."""
    scores, targets = _array(logits), _array(targets)
    if len(scores) == 0 or len(scores) != len(targets):
        raise ValueError(f"accuracy needs one target per prediction, got scores of shape {scores.shape} "
                         f"and targets of shape {targets.shape}")
    ### BEGIN SOLUTION
    if scores.ndim == 2 and scores.shape[1] > 1:
        if targets.ndim != 1:
            raise ValueError(f"accuracy of (N, C) scores needs class indices of shape (N,), got {targets.shape}")
        predicted = scores.argmax(axis=1)
    else:
        predicted = scores.reshape(len(scores)) > threshold
        targets = targets.reshape(len(targets)) > 0.5
    return float(np.mean(predicted == targets))
    ### END SOLUTION


def evaluate(model: Module, loss_fn: LossFn, X: TensorLike, y: TensorLike, batch_size: int = 256,
             classification: bool | None = None) -> tuple[float, float | None]:
    """(mean loss, accuracy or None) over (X, y), under no_grad() and model.eval(); the mode is restored."""
    X, y = _array(X), _array(y)
    _check_pair(X, y, "evaluate")
    classify = is_classification(loss_fn, y) if classification is None else classification
    was_training = model.training
    model.eval()
    try:
        ### BEGIN SOLUTION
        total_loss, correct, count = 0.0, 0.0, 0
        with no_grad():
            for xb, yb in iterate_minibatches(X, y, batch_size, shuffle=False):
                out = model(Tensor(xb))
                total_loss += loss_fn(out, yb).item() * len(xb)
                if classify:
                    correct += accuracy(out, yb) * len(xb)
                count += len(xb)
        return total_loss / count, (correct / count if classify else None)
        ### END SOLUTION
    finally:
        model.train(was_training)


def is_classification(loss_fn: LossFn, y: TensorLike) -> bool:
    """A guess good for this course: integer class targets, or a binary cross-entropy loss."""
    return (_array(y).dtype.kind in "iu" and _array(y).ndim == 1) or isinstance(loss_fn, BCELoss) \
        or loss_fn is binary_cross_entropy


# %% [markdown]
# ## Your turn: the loop
#
# `fit` is given except for the five lines at its heart: write them (in the
# order explained at the top). Everything else — the split, the
# per-epoch shuffle, the running loss and accuracy weighted by batch size,
# validation, the tqdm bar, stopping with a clear message when the loss
# becomes `nan` — is bookkeeping you should read once.
#
# The training accuracy is measured on the fly, on each batch's predictions
# *before* that batch's update — cheap, and what PyTorch tutorials and Keras
# report; the validation numbers are measured after the epoch.

# %% nbgrader={"grade": false, "grade_id": "fit", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
@dataclass
class History:
    """Per-epoch means: losses always, accuracies only for classification, validation only with val data."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def best_epoch(self) -> int:
        """1-based epoch with the lowest validation loss (training loss when there was no validation)."""
        losses = self.val_loss or self.train_loss
        return int(np.argmin(losses)) + 1


def fit(model: Module, loss_fn: LossFn, optimizer: Optimizer, X: TensorLike, y: TensorLike, epochs: int = 10,
        batch_size: int = 32, val_data: tuple[TensorLike, TensorLike] | None = None,
        val_fraction: float | None = None, seed: Seed = 0, progress: bool = True,
        classification: bool | None = None) -> History:
    """Train `model` on (X, y) for `epochs` epochs of shuffled mini-batches; validate after each epoch.

    val_data=(X_val, y_val) or val_fraction=0.2 (split off with train_val_split) or neither.
    Returns a History; shows a tqdm bar unless progress=False.
    """
    X, y = _array(X), _array(y)
    _check_pair(X, y, "fit")
    if val_data is not None and val_fraction is not None:
        raise ValueError("fit takes val_data or val_fraction, not both")
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    val: tuple[np.ndarray, np.ndarray] | None = None  # (X_val, y_val)
    if val_fraction is not None:
        X, y, X_val, y_val = train_val_split(X, y, val_fraction, seed)
        val = X_val, y_val
    elif val_data is not None:
        if len(val_data) != 2:
            raise ValueError(f"val_data must be a pair (X_val, y_val), got {len(val_data)} items")
        val = _array(val_data[0]), _array(val_data[1])
        _check_pair(*val, "fit's val_data")
    classify = is_classification(loss_fn, y) if classification is None else classification
    order = np.random.default_rng(seed)  # one generator: a new, reproducible order every epoch
    history = History()
    started = time.perf_counter()
    # Imported here, not at the top: a top-level import is paid by every process that imports tinytorch,
    # and the grader starts a fresh one per test (tqdm alone takes about 70 ms to import on a 2-core machine).
    from tqdm import tqdm
    bar = tqdm(range(1, epochs + 1), desc="fit", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        total_loss, correct, count = 0.0, 0.0, 0
        for batch, (xb, yb) in enumerate(iterate_minibatches(X, y, batch_size, shuffle=True, seed=order)):
            ### BEGIN SOLUTION
            optimizer.zero_grad()
            out = model(Tensor(xb))
            loss = loss_fn(out, yb)
            loss.backward()
            optimizer.step()
            ### END SOLUTION
            value = loss.item()
            if not math.isfinite(value):
                bar.close()
                raise FloatingPointError(f"the training loss became {value} in epoch {epoch}, batch {batch}: "
                                         "lower the learning rate or check the data for nan/inf")
            total_loss += value * len(xb)
            if classify:
                correct += accuracy(out, yb) * len(xb)
            count += len(xb)
        history.train_loss.append(total_loss / count)
        if classify:
            history.train_accuracy.append(correct / count)
        if val is not None:
            val_loss, val_acc = evaluate(model, loss_fn, *val, max(batch_size, 256), classify)
            history.val_loss.append(val_loss)
            if val_acc is not None:  # classification
                history.val_accuracy.append(val_acc)
        shown = {"loss": f"{history.train_loss[-1]:.4f}"}
        if history.val_loss:
            shown["val_loss"] = f"{history.val_loss[-1]:.4f}"
        if history.val_accuracy:
            shown["val_acc"] = f"{history.val_accuracy[-1]:.3f}"
        bar.set_postfix(shown)
    bar.close()
    history.seconds = time.perf_counter() - started
    return history


# %% [markdown]
# ## Your turn: gradient accumulation
#
# Training memory is activations + gradients, and the activations grow with
# the batch (measured below). When the batch you want does not fit, split it
# into **micro-batches** and let `backward` do what it always does: *add*
# into `.grad`. Clear the gradients once, run forward and backward on each
# micro-batch, then take one step. Because the losses are means over
# examples, weigh each micro-batch's loss by its share of the batch,
# `len(micro-batch) / len(batch)`: the summed gradients are then exactly the
# gradient of the mean loss over the whole batch, and the step is the same
# step (up to float rounding) with the memory of one micro-batch.
#
# `accumulated_step(model, loss_fn, optimizer, X, y, micro_batch_size)` takes
# one step on the batch `(X, y)` that way (the last micro-batch may be
# smaller) and returns the batch's mean loss as a float.

# %% nbgrader={"grade": false, "grade_id": "accumulation", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def accumulated_step(model: Module, loss_fn: LossFn, optimizer: Optimizer, X: TensorLike, y: TensorLike,
                     micro_batch_size: int) -> float:
    """One optimizer step on the batch (X, y) from gradients accumulated over micro-batches; the batch's mean loss."""
    X, y = _array(X), _array(y)
    _check_pair(X, y, "accumulated_step")
    if int(micro_batch_size) != micro_batch_size or micro_batch_size < 1:
        raise ValueError(f"micro_batch_size must be a positive integer, got {micro_batch_size!r}")
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    total = 0.0
    for start in range(0, len(X), micro_batch_size):
        xb, yb = X[start:start + micro_batch_size], y[start:start + micro_batch_size]
        loss = loss_fn(model(Tensor(xb)), yb) * (len(xb) / len(X))
        loss.backward()                      # adds into .grad: the micro-batches' gradients sum up
        total += loss.item()
    optimizer.step()
    return total
    ### END SOLUTION


# %% [markdown]
# ## See it work: learning, then overfitting
#
# Three classes of points in the plane, on interleaved spirals, with 20% of
# the labels redrawn at random (noise no model should learn). A small
# training set (84 points) and a wide network make overfitting easy to see:
# watch the training loss keep falling while the validation loss reaches its
# minimum early and then climbs, as the network starts memorising the noisy
# labels.

# %%
from tinytorch.layers import Linear, ReLU, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD
import tinytorch


def spirals(n_per_class: int, noise: float, flip: float, seed: int):
    r = np.random.default_rng(seed)
    X, y = [], []
    for k in range(3):
        t = np.linspace(0.1, 1, n_per_class)
        angle = 4 * t + 2 * np.pi * k / 3 + r.normal(0, noise, n_per_class)
        X.append(np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1))
        y.append(np.full(n_per_class, k))
    X, y = np.concatenate(X).astype(np.float32), np.concatenate(y)
    flipped = r.random(len(y)) < flip
    y[flipped] = r.integers(0, 3, flipped.sum())
    return X, y


X, y = spirals(40, noise=0.2, flip=0.2, seed=0)
tinytorch.manual_seed(0)
model = Sequential(Linear(2, 128), ReLU(), Linear(128, 128), ReLU(), Linear(128, 3))
history = fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1, momentum=0.9), X, y,
              epochs=300, batch_size=16, val_fraction=0.3, seed=0, progress=False)
for epoch in (1, 10, 40, 100, 200, 300):
    i = epoch - 1
    print(f"epoch {epoch:3d}  train loss {history.train_loss[i]:.3f} acc {history.train_accuracy[i]:.2f}"
          f"   val loss {history.val_loss[i]:.3f} acc {history.val_accuracy[i]:.2f}")
print(f"lowest validation loss at epoch {history.best_epoch()}; {history.seconds:.1f} s in total")

# %%
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
    print("matplotlib is not installed: skipping the plot")

if plt is not None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, history.epochs + 1), history.train_loss, label="training loss")
    ax.plot(range(1, history.epochs + 1), history.val_loss, label="validation loss")
    ax.axvline(history.best_epoch(), color="grey", linestyle=":", label="best validation epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross entropy")
    ax.legend()
    plt.show()

# %% [markdown]
# ## Tests
#
# The tests give `fit` and `evaluate` a tiny hand-made model and optimizer:
# the loop only relies on `model(x)`, `train()`/`eval()`/`training`,
# `optimizer.zero_grad()` and `optimizer.step()`.

# %% nbgrader={"grade": true, "grade_id": "test-training-data", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""train_val_split and iterate_minibatches cover every example exactly once, reproducibly, without copying."""
X = np.arange(20, dtype=np.float32).reshape(10, 2)
y = np.arange(10)
X_train, y_train, X_val, y_val = train_val_split(X, y, val_fraction=0.3, seed=1)
assert len(X_val) == 3, f"got len(X_val) = {len(X_val)!r}"
assert len(X_train) == 7, f"got len(X_train) = {len(X_train)!r}"
assert sorted(np.concatenate([y_train, y_val]).tolist()) == list(range(10)), \
    f"got sorted(np.concatenate([y_train, y_val]).tolist()) = {sorted(np.concatenate([y_train, y_val]).tolist())!r}; list(range(10)) = {list(range(10))!r}"
assert np.array_equal(X_train[:, 0], 2 * y_train), \
    f"rows of X and y stay together: got X_train[:, 0] = {X_train[:, 0]!r}; 2 * y_train = {2 * y_train!r}"
assert np.array_equal(train_val_split(X, y, 0.3, seed=1)[3], y_val), \
    f"the same seed gives the same split: got train_val_split(X, y, 0.3, seed=1)[3] = {train_val_split(X, y, 0.3, seed=1)[3]!r}; y_val = {y_val!r}"
batches = list(iterate_minibatches(X, y, batch_size=4, shuffle=False))
assert [len(b) for b, _ in batches] == [4, 4, 2], f"got batch sizes {[len(b) for b, _ in batches]}"
assert np.shares_memory(batches[0][0], X), \
    f"unshuffled batches are views: got batches[0][0] = {batches[0][0]!r}; X = {X!r}"
seen = np.concatenate([yb for _, yb in iterate_minibatches(X, y, 3, shuffle=True, seed=0)])
assert sorted(seen.tolist()) == list(range(10)), \
    f"got sorted(seen.tolist()) = {sorted(seen.tolist())!r}; list(range(10)) = {list(range(10))!r}"
assert seen.tolist() != list(range(10)), f"got seen.tolist() = {seen.tolist()!r}; list(range(10)) = {list(range(10))!r}"
try:
    train_val_split(X, y[:9], 0.2)
    raise AssertionError("10 examples and 9 targets should be refused")
except ValueError as error:
    assert "10" in str(error), f"got str(error) = {str(error)!r}"
    assert "9" in str(error), f"got str(error) = {str(error)!r}"

# %% nbgrader={"grade": true, "grade_id": "test-training-accuracy-evaluate", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""accuracy reads argmax or a threshold; evaluate averages over examples under no_grad and restores the mode."""
assert accuracy(np.array([[0.1, 0.9], [2.0, 1.0], [0.0, 3.0]]), np.array([1, 0, 0])) == 2 / 3, \
    f"got accuracy(np.array([[0.1, 0.9], [2.0, 1.0], [0.0, 3.0]]), np.array([1, 0, 0])) = {accuracy(np.array([[0.1, 0.9], [2.0, 1.0], [0.0, 3.0]]), np.array([1, 0, 0]))!r}; 2 / 3 = {2 / 3!r}"
assert accuracy(np.array([[0.9], [0.2], [0.6]]), np.array([[1.0], [0.0], [0.0]])) == 2 / 3, \
    f"got accuracy(np.array([[0.9], [0.2], [0.6]]), np.array([[1.0], [0.0], [0.0]])) = {accuracy(np.array([[0.9], [0.2], [0.6]]), np.array([[1.0], [0.0], [0.0]]))!r}; 2 / 3 = {2 / 3!r}"
assert accuracy(np.array([1.5, -0.5]), np.array([1, 0]), threshold=0.0) == 1.0, \
    f"got accuracy(np.array([1.5, -0.5]), np.array([1, 0]), threshold=0.0) = {accuracy(np.array([1.5, -0.5]), np.array([1, 0]), threshold=0.0)!r}"

class Doubler(Module):
    def __init__(self):
        self.scale = Tensor([2.0], requires_grad=True)
        self.calls = []

    def forward(self, x):
        out = x * self.scale
        self.calls.append((self.training, out.requires_grad))
        return out

model = Doubler()
X = np.arange(5, dtype=np.float32).reshape(5, 1)
y = np.zeros((5, 1), dtype=np.float32)
loss, acc = evaluate(model, lambda out, t: (out * out).mean(), X, y, batch_size=2, classification=False)
assert np.isclose(loss, np.mean((2 * np.arange(5)) ** 2)), \
    f"weight each batch by its size: got loss = {loss!r}; np.mean((2 * np.arange(5)) ** 2) = {np.mean((2 * np.arange(5)) ** 2)!r}"
assert acc is None, f"got acc = {acc!r}"
assert len(model.calls) == 3, f"got len(model.calls) = {len(model.calls)!r}"
assert all(not training and not recorded for training, recorded in model.calls), \
    f"every batch should run in eval mode without history; got (training, recorded) = {model.calls}"
assert model.training, f"evaluate puts the model back in training mode, got model.training = {model.training}"

# %% nbgrader={"grade": true, "grade_id": "test-training-fit", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
"""fit runs zero_grad/forward/backward/step per batch, lowers the loss and fills the history."""
class Line(Module):
    def __init__(self):
        self.w = Tensor(np.zeros((1, 1)), requires_grad=True)

    def forward(self, x):
        return x @ self.w

class PlainSGD:
    def __init__(self, params, lr):
        self.params, self.lr, self.steps = params, lr, 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.steps += 1
        for p in self.params:
            p.data -= self.lr * p.grad

r = np.random.default_rng(0)
X = r.uniform(-1, 1, (50, 1))
y = 3 * X
model = Line()
opt = PlainSGD([model.w], lr=0.2)
mse = lambda out, t: ((out - Tensor(t)) ** 2).mean()
history = fit(model, mse, opt, X, y, epochs=20, batch_size=8, val_fraction=0.2, seed=0, progress=False)
assert opt.steps == 20 * 5, \
    f"40 training examples in batches of 8: 5 steps per epoch: got opt.steps = {opt.steps!r}; 20 * 5 = {20 * 5!r}"
assert history.epochs == 20, f"got history.epochs = {history.epochs!r}"
assert len(history.val_loss) == 20, f"got len(history.val_loss) = {len(history.val_loss)!r}"
assert history.train_accuracy == [], \
    f"regression has no accuracy: got history.train_accuracy = {history.train_accuracy!r}"
assert history.val_accuracy == [], f"regression has no accuracy: got history.val_accuracy = {history.val_accuracy!r}"
assert history.train_loss[-1] < 0.01 * history.train_loss[0], \
    f"got history.train_loss[-1] = {history.train_loss[-1]!r}; 0.01 * history.train_loss[0] = {0.01 * history.train_loss[0]!r}"
assert np.isclose(model.w.data[0, 0], 3.0, atol=0.05), f"got model.w.data[0, 0] = {model.w.data[0, 0]!r}"
classes = fit(model, mse, opt, X, (X[:, 0] > 0).astype(np.int64).reshape(-1, 1) * 1.0, epochs=1, batch_size=50,
              progress=False, classification=True)
assert len(classes.train_accuracy) == 1, f"got len(classes.train_accuracy) = {len(classes.train_accuracy)!r}"
assert classes.val_loss == [], f"got classes.val_loss = {classes.val_loss!r}"

# %% nbgrader={"grade": true, "grade_id": "test-training-accumulation", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""accumulated_step over micro-batches of 3, 4, 1 and 10 makes the same update, and reports the same loss, as one step on all 10."""
from tinytorch.layers import Linear, ReLU, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD
from tinytorch.tensor import manual_seed
manual_seed(0)
reference_net = Sequential(Linear(3, 5), ReLU(), Linear(5, 3))
start = reference_net.state_dict()
Xb = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
yb = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 2])
one_step = SGD(reference_net.parameters(), lr=0.5, momentum=0.9)
one_step.zero_grad()
full_loss = CrossEntropyLoss()(reference_net(Tensor(Xb)), yb)
full_loss.backward()
one_step.step()
for micro in (3, 4, 1, 10):
    net = Sequential(Linear(3, 5), ReLU(), Linear(5, 3))
    net.load_state_dict(start)
    for p in net.parameters():
        p.grad = np.full_like(p.data, 100.0)          # stale gradients from an earlier step: must not count
    loss = accumulated_step(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.5, momentum=0.9), Xb, yb, micro)
    assert isinstance(loss, float), f"micro-batches of {micro}: got a {type(loss).__name__} ({loss!r}), expected a float (.item())"
    assert np.isclose(loss, full_loss.item(), rtol=1e-5), \
        f"micro-batches of {micro}: loss {loss!r}, expected the batch's mean loss {full_loss.item():.6f}"
    for (name, got), want in zip(net.state_dict().items(), reference_net.state_dict().values()):
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), \
            f"micro-batches of {micro}: {name} after the step differs from one step on the whole batch by " \
            f"{np.abs(got - want).max():.3g}"

# %% [markdown]
# ## Memory and performance analysis
#
# Two questions a training loop must answer: does an epoch copy the dataset
# (it should not), and how does the batch size trade time per epoch against
# the number of updates? Train one epoch on 8,192 examples of 64 features
# with an MLP, for several batch sizes.

# %%
from tinytorch.profiler import Profile, format_bytes, measure

r = np.random.default_rng(0)
X_big = r.standard_normal((8192, 64)).astype(np.float32)
y_big = r.integers(0, 10, 8192)
print(f"dataset: {format_bytes(X_big.nbytes + y_big.nbytes)}")
with Profile("one shuffled pass of iterate_minibatches(batch 64)") as p:
    for xb, yb in iterate_minibatches(X_big, y_big, 64, shuffle=True, seed=0):
        pass
print(p)
for batch_size in (16, 64, 256, 1024):
    tinytorch.manual_seed(0)
    net = Sequential(Linear(64, 128), ReLU(), Linear(128, 10))
    opt = SGD(net.parameters(), lr=0.05)
    # measure keeps the best of 2 epochs: the first runs under tracemalloc (for the peak), which slows it
    m = measure(fit, net, CrossEntropyLoss(), opt, X_big, y_big, epochs=1, batch_size=batch_size,
                progress=False, repeat=2, label=f"1 epoch, batch {batch_size:4d}")
    steps = -(-len(X_big) // batch_size)
    print(f"{m}; {steps:4d} steps, {m.seconds / steps * 1e3:.2f} ms per step")

# %% [markdown]
# The shuffled pass allocates only the index permutation and one batch at a
# time, not the dataset. Small batches pay Python's per-step overhead (a few
# dozen Tensor operations, each a Python call and an allocation) many times:
# the time per epoch falls steeply with the batch size until the matrix
# products dominate. Larger batches mean fewer, less noisy updates per
# epoch, so the fastest epoch is not always the fastest training.

# %% [markdown]
# ### What gradient accumulation saves
#
# One step on a batch of 2,048 examples of an MLP with 1,024 hidden units,
# in one piece and accumulated over micro-batches: the peak memory follows
# the micro-batch (the activations), while the parameters and gradients stay
# the same, and the resulting weights agree.

# %%
X_acc = r.standard_normal((2048, 64)).astype(np.float32)
y_acc = r.integers(0, 10, 2048)
results = {}
for micro in (2048, 512, 128):
    tinytorch.manual_seed(0)
    net = Sequential(Linear(64, 1024), ReLU(), Linear(1024, 10))
    opt = SGD(net.parameters(), lr=0.05)
    with Profile(f"batch 2048 as micro-batches of {micro:4d}") as p:
        loss = accumulated_step(net, CrossEntropyLoss(), opt, X_acc, y_acc, micro)
    results[micro] = net.state_dict()
    params = sum(q.data.nbytes for q in net.parameters())
    print(f"{p}; loss {loss:.5f}; parameters {format_bytes(params)}")
drift = max(np.abs(results[128][name] - results[2048][name]).max() for name in results[2048])
print(f"largest weight difference between 128 and 2048: {drift:.2e} (float32 rounding)")

# %% [markdown]
# ## Comparison with PyTorch
#
# The same network, the same initial weights, the same batches in the same
# order (no shuffling), one epoch of SGD with momentum in each framework:
# the losses and the final weights agree, and we time both.

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed("08_training")

if torch is not None:
    import time
    tinytorch.manual_seed(1)
    ours = Sequential(Linear(64, 128), ReLU(), Linear(128, 10))
    theirs = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    with torch.no_grad():
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            q.copy_(torch.from_numpy(p.data))
    opt_ours = SGD(ours.parameters(), lr=0.05, momentum=0.9)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9)
    losses_ours, losses_theirs = [], []
    started = time.perf_counter()
    for xb, yb in iterate_minibatches(X_big, y_big, 64, shuffle=False):
        opt_ours.zero_grad()
        loss = CrossEntropyLoss()(ours(Tensor(xb)), yb)
        loss.backward()
        opt_ours.step()
        losses_ours.append(loss.item())
    seconds_ours, started = time.perf_counter() - started, time.perf_counter()
    for xb, yb in iterate_minibatches(X_big, y_big, 64, shuffle=False):
        opt_theirs.zero_grad()
        loss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(xb)), torch.from_numpy(yb))
        loss.backward()
        opt_theirs.step()
        losses_theirs.append(loss.item())
    seconds_theirs = time.perf_counter() - started
    print(f"one epoch, batch 64: tinytorch {seconds_ours * 1e3:.0f} ms, torch {seconds_theirs * 1e3:.0f} ms")
    print("max loss difference over the epoch:", np.abs(np.array(losses_ours) - np.array(losses_theirs)).max())
    print("max weight difference after the epoch:",
          max(np.abs(p.data - q.detach().numpy()).max() for p, q in zip(ours.parameters(), theirs.parameters())))

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** A student moves `optimizer.zero_grad()` to the end of the loop
# body, after `optimizer.step()`. Another deletes it. What happens in each
# case, and why?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-training-order", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# After step() it is still correct: gradients are cleared before the next
# backward (only the very first batch relies on .grad starting empty).
# Deleted: backward adds into .grad, so each step uses the sum of all
# gradients so far; the effective step grows every batch and training
# oscillates or diverges. Mention accumulation (module 05's "add, don't
# assign") for full marks.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** Read the spiral run above. At which epoch did the validation loss
# stop improving, what did the training loss do after that, and what would
# you change? Why must the validation examples never be used for the
# gradient steps?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-training-overfitting", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Uses the measured best epoch; training loss keeps falling (memorising the
# flipped labels) while validation loss rises: overfitting. Remedies: early
# stopping at the best epoch (keep that checkpoint), more data, smaller
# model, weight decay. Validation data must stay unseen so it estimates
# performance on new data; training on it (or tuning too much on it) makes
# the estimate optimistic.
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** From the batch-size table: how did time per epoch and time per
# step change from batch 16 to batch 1024, and why is tinytorch's time per
# step nearly constant for small batches?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-training-batch-size", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Epoch time drops sharply (many fewer steps); time per step grows only
# slowly until the matmuls dominate. For small batches each step costs the
# fixed Python/NumPy overhead of dozens of Tensor ops and allocations
# (tens of µs each), independent of the batch size. Bigger batches amortise
# it, but give fewer updates per epoch (a trade-off, not a free win).
# === END MARK SCHEME ===

# %% [markdown]
# **Q4.** `evaluate` runs under `no_grad()` and `model.eval()`. What does
# each one change, and what goes wrong (memory, results) if you forget each?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-training-eval-mode", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# no_grad: no graph is recorded, so intermediates are freed at once; without
# it every validation batch keeps its activations alive until the output is
# dropped (memory grows, slower), though results are the same. eval(): layers
# with train/test behaviour (dropout, batch norm) switch to inference mode;
# without it validation numbers are noisy/wrong (dropout still active,
# batch norm statistics updated by validation data).
# === END MARK SCHEME ===

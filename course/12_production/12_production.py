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
# # Module 12 — Production training
#
# A training run that takes hours must survive the things that happen in
# hours: the machine reboots, the job is pre-empted, the loss stops
# improving, the learning rate is too high at the start and too high at the
# end. This module gives your training loop the four tools every real one
# has:
#
# * **checkpoints** — model, optimizer state, epoch and metrics in one file,
#   so a run can resume exactly where it stopped. Two properties matter:
#   the file is written **atomically** (a crash mid-write leaves the old
#   checkpoint intact, never a half-written one), and loading it **cannot run
#   code** (Python's pickle, which `torch.save` uses by default, can: a
#   checkpoint downloaded from the internet is a program). We store plain
#   arrays in NumPy's `.npz` and the rest as JSON;
# * **early stopping** — stop when the validation loss has not improved for
#   `patience` epochs, and remember the best epoch;
# * **learning-rate schedules** — step decay, cosine annealing, linear
#   warm-up, with PyTorch's formulas;
# * **metrics and plots** — a confusion matrix, and the training history as a
#   PNG;
# * **data parallelism** (given) — each batch's gradient computed on every
#   CPU the server gives you, one slice of the batch per CPU.

# %%
#| default_exp production

# %%
#| export
"""Checkpoints, early stopping, learning-rate schedules, confusion matrix, history plots (module 12)."""
from __future__ import annotations

import copy
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from tinytorch.tensor import Tensor
from tinytorch.threads import default_workers

if TYPE_CHECKING:  # for the signatures only: checkpoints and schedules work with any model and optimizer
    from tinytorch.layers import Module
    from tinytorch.optimizers import Optimizer
    from tinytorch.training import History

CHECKPOINT_FORMAT = "tinytorch-checkpoint-1"


def _at_least_one(owner: str, name: str, value: int) -> int:
    """`value`, checked: it counts epochs or steps, so it is at least 1."""
    if value < 1:
        raise ValueError(f"{owner} needs {name} >= 1, got {value}")
    return value


class CheckpointError(Exception):
    """A checkpoint file is missing, damaged, unsafe, or does not fit the model."""


# %% [markdown]
# ## Checkpoints
#
# Layout of the `.npz`: `model/<name>` for each entry of
# `model.state_dict()`, `optim/<i>/<key>` for each optimizer buffer, and one
# `meta` entry holding a JSON string (format, epoch, metrics, config, the
# optimizer's hyperparameters). Writing goes to a temporary file in the same
# folder, which is flushed to disk and then renamed over the target with
# `os.replace` — an atomic operation on POSIX file systems.
#
# Write `save_checkpoint`'s atomic part and `load_checkpoint`'s validation.

# %% nbgrader={"grade": false, "grade_id": "checkpoints", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _atomic_write_npz(path: Path, arrays: dict[str, Any]) -> None:
    """Write `arrays` to `path` so that readers see the old file or the complete new one, nothing between."""
    ### BEGIN SOLUTION
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    ### END SOLUTION


def save_checkpoint(path: str | os.PathLike[str], model: Module, optimizer: Optimizer | None = None, epoch: int = 0,
                    metrics: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> Path:
    """Save model, optimizer state, epoch, metrics and config to `path` (.npz), atomically, without pickle."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    optim = optimizer.state_dict() if optimizer is not None else None
    if optim is not None:
        for i, buffers in optim["state"].items():
            arrays.update({f"optim/{i}/{key}": np.asarray(value) for key, value in buffers.items()})
    meta = {"format": CHECKPOINT_FORMAT, "epoch": int(epoch), "metrics": metrics or {}, "config": config or {},
            "optimizer": None if optim is None else {"type": type(optimizer).__name__,
                                                     "param_groups": optim["param_groups"]}}
    try:
        arrays["meta"] = np.array(json.dumps(meta))
    except TypeError as error:
        raise CheckpointError(f"metrics and config must be JSON values (numbers, strings, lists, dicts): {error}") from None
    _atomic_write_npz(path, arrays)
    return path


def load_checkpoint(path: str | os.PathLike[str], model: Module, optimizer: Optimizer | None = None) -> dict[str, Any]:
    """Restore `model` (and `optimizer`) from `path`; return {"epoch", "metrics", "config"}.

    Nothing is changed unless the whole checkpoint fits: a bad file raises CheckpointError.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    ### BEGIN SOLUTION
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or not an .npz)")
    try:
        with np.load(path, allow_pickle=False) as npz:  # allow_pickle=False: loading never runs code
            arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or not an .npz): {error}") from None
    except ValueError as error:
        raise CheckpointError(f"{path} holds pickled objects, which tinytorch refuses to load: {error}") from None
    if "meta" not in arrays:
        raise CheckpointError(f"{path} has no 'meta' entry: it was not written by save_checkpoint")
    meta = json.loads(str(arrays.pop("meta")))
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    state = {name[len("model/"):]: value for name, value in arrays.items() if name.startswith("model/")}
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path} does not fit this model: {error}") from None
    if optimizer is not None:
        if meta["optimizer"] is None:
            raise CheckpointError(f"{path} has no optimizer state to restore")
        buffers: dict = {}
        for name, value in arrays.items():
            if name.startswith("optim/"):
                _, i, key = name.split("/", 2)
                buffers.setdefault(int(i), {})[key] = value
        try:
            optimizer.load_state_dict({"state": buffers, "param_groups": meta["optimizer"]["param_groups"]})
        except (KeyError, ValueError) as error:
            raise CheckpointError(f"{path}: optimizer state does not fit: {error}") from None
    return {"epoch": meta["epoch"], "metrics": meta["metrics"], "config": meta["config"]}
    ### END SOLUTION


# %% [markdown]
# ## Early stopping
#
# `EarlyStopping(patience=3)`; call `step(val_loss)` after each epoch: it
# returns `True` when the value has not improved by more than `min_delta`
# for `patience` epochs in a row. `best` and `best_epoch` (1-based) say
# which epoch to restore.

# %% nbgrader={"grade": false, "grade_id": "early-stopping", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class EarlyStopping:
    """Stop when a monitored value has not improved for `patience` epochs."""

    def __init__(self, patience: int = 3, min_delta: float = 0.0, mode: str = "min"):
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'min' (a loss) or 'max' (an accuracy), got {mode!r}")
        self.patience, self.min_delta, self.mode = _at_least_one("EarlyStopping", "patience", patience), min_delta, mode
        self.best: float | None = None
        self.best_epoch, self.epoch, self.bad_epochs = 0, 0, 0

    def step(self, value: float) -> bool:
        """Record this epoch's value; True means: stop now."""
        self.epoch += 1
        ### BEGIN SOLUTION
        if self.best is None:
            improved = True
        else:
            gain = self.best - value if self.mode == "min" else value - self.best
            improved = gain > self.min_delta
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, self.epoch, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience
        ### END SOLUTION


# %% [markdown]
# ## Learning-rate schedules
#
# A scheduler sets `lr` in each of the optimizer's parameter groups from the
# group's starting value and the number of `step()` calls so far
# (`last_epoch`). The base class is given; write each schedule's factor:
#
# * `StepLR`: multiply by `gamma` every `step_size` epochs;
# * `CosineAnnealingLR`: from the base down to `eta_min` along half a
#   cosine over `T_max` epochs: `eta_min + (base - eta_min)(1 + cos(π t / T_max)) / 2`;
# * `LinearWarmup` (PyTorch's `LinearLR`): from `start_factor · base` up to
#   `base` linearly over `total_iters` epochs, then constant.

# %% nbgrader={"grade": false, "grade_id": "schedules", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class LRScheduler:
    """Sets each parameter group's lr from its base lr and the number of step() calls."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must define lr_at()")

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(base, self.last_epoch)

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        self.step_size, self.gamma = _at_least_one("StepLR", "step_size", step_size), gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        ### BEGIN SOLUTION
        return base_lr * self.gamma ** (epoch // self.step_size)
        ### END SOLUTION


class CosineAnnealingLR(LRScheduler):
    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max, self.eta_min = _at_least_one("CosineAnnealingLR", "T_max", T_max), eta_min
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        ### BEGIN SOLUTION
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        ### END SOLUTION


class LinearWarmup(LRScheduler):
    def __init__(self, optimizer: Optimizer, start_factor: float = 1 / 3, total_iters: int = 5):
        if not 0 < start_factor <= 1 or total_iters < 1:
            raise ValueError(f"LinearWarmup needs 0 < start_factor <= 1 and total_iters >= 1, "
                             f"got start_factor={start_factor}, total_iters={total_iters}")
        self.start_factor, self.total_iters = start_factor, total_iters
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        ### BEGIN SOLUTION
        progress = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (1 - self.start_factor) * progress)
        ### END SOLUTION


# %% [markdown]
# ## Given: data parallelism on the CPU's cores
#
# A batch's loss is the mean of its examples' losses, so its gradient is the
# mean of their gradients. Cut the batch into slices, compute each slice's
# gradient on its own core, weight each by its share of the batch and add
# them: the same gradient, in a fraction of the time. This is **data
# parallelism**, what PyTorch's `DistributedDataParallel` does across
# processes and machines (its "all-reduce" is our sum).
#
# Our workers are threads of one Python process. Python runs one thread's
# *Python* code at a time (the GIL), but NumPy lets go of it inside its
# loops, where nearly all of a training step's time is: two threads keep two
# cores busy. Each thread builds its own graph, so it gets its own
# **replica** of the model: a deep copy whose parameters are then pointed at
# the model's own arrays before every step, so the weights exist once and
# every replica sees the optimizer's updates; only the gradients are per
# replica. (Dropout draws from one random generator for all threads, so with
# dropout the masks depend on which thread draws first.)
#
# Why not let NumPy's BLAS use the cores instead? BLAS threads speed up the
# matrix products only; everything between two products (element-wise
# work, reductions, copies) runs on the one Python thread. A worker per core
# runs the products *and* that work in parallel, each on a slice. So
# `import tinytorch` gives BLAS one thread, and `DataParallel` one worker per
# CPU of your server's quota (`tinytorch.threads.default_workers()`).
# Measured below; the milestones train this way.

# %%
#| export
LossFn = Callable[..., Tensor]   # (model, inputs, targets) -> the slice's mean loss: a Tensor


def _rows(batch: Any, rows: slice) -> Any:
    """Rows of a batch of data (a Tensor, an array or a list): a slice of its first axis."""
    if isinstance(batch, Tensor):
        if batch.requires_grad:
            raise ValueError("DataParallel splits data: give it inputs that need no gradient")
        return Tensor(batch.data[rows])
    return batch[rows]


class DataParallel:
    """A batch's gradients computed by `workers` threads, each on one slice of the batch with its own replica.

    `parallel.backward(loss_fn, inputs, targets)` does what `optimizer.zero_grad(); loss.backward()` do for
    `loss = loss_fn(model, inputs, targets)` (a mean over the batch), and returns that loss as a float.
    """

    def __init__(self, model: Module, workers: int | None = None):
        self.model = model
        self.workers = default_workers() if workers is None else _at_least_one("DataParallel", "workers", workers)
        self.replicas = [model] + [copy.deepcopy(model) for _ in range(self.workers - 1)]
        self.pool = ThreadPoolExecutor(self.workers - 1) if self.workers > 1 else None

    def share_weights(self) -> None:
        """Point every replica's parameters at the model's arrays (an optimizer may have replaced them),
        drop their gradients, and give every replica the model's train/eval mode."""
        params, modules = self.model.parameters(), list(self.model.modules())
        for replica in self.replicas[1:]:
            for mine, theirs in zip(replica.parameters(), params):
                mine.data, mine.grad = theirs.data, None
            for mine_m, theirs_m in zip(replica.modules(), modules):
                mine_m.training = theirs_m.training

    def backward(self, loss_fn: LossFn, inputs: Any, targets: Any) -> float:
        n = len(targets)
        if n == 0:
            raise ValueError("DataParallel.backward got an empty batch")
        params = self.model.parameters()
        for p in params:
            p.grad = None
        if self.pool is None or n == 1:
            loss = loss_fn(self.model, inputs, targets)
            loss.backward()
            return loss.item()
        self.share_weights()
        bounds = np.linspace(0, n, min(self.workers, n) + 1).astype(int)
        slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

        def slice_backward(replica: Module, rows: slice) -> float:
            loss = loss_fn(replica, _rows(inputs, rows), _rows(targets, rows)) * ((rows.stop - rows.start) / n)
            loss.backward()
            return loss.item()

        others = [self.pool.submit(slice_backward, replica, rows)
                  for replica, rows in zip(self.replicas[1:], slices[1:])]
        total = slice_backward(self.model, slices[0])       # this thread takes the first slice
        total += sum(future.result() for future in others)
        for replica in self.replicas[1:len(slices)]:        # the all-reduce: add the replicas' gradients
            for p, q in zip(params, replica.parameters()):
                if q.grad is not None:
                    p.grad = q.grad if p.grad is None else np.add(p.grad, q.grad, out=p.grad)
        return total


# %% [markdown]
# ## Given: confusion matrix and history plot
#
# Accuracy hides *which* classes are confused; the confusion matrix
# `C[true, predicted]` shows it. The plot uses matplotlib's file-only
# backend, so it works on a server with no screen.

# %%
#| export
def confusion_matrix(predicted: ArrayLike, targets: ArrayLike, num_classes: int) -> np.ndarray:
    """C[i, j] = how many examples of class i were predicted as class j."""
    predicted, targets = np.asarray(predicted).reshape(-1), np.asarray(targets).reshape(-1)
    if predicted.shape != targets.shape:
        raise ValueError(f"confusion_matrix needs one prediction per target, got {predicted.shape} and {targets.shape}")
    for name, values in (("predicted", predicted), ("targets", targets)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} must be class indices in [0, {num_classes})")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (targets, predicted), 1)
    return matrix


def plot_history(history: History, path: str | os.PathLike[str], title: str = "training history") -> Path:
    """Loss (and accuracy, when recorded) per epoch, saved as a PNG."""
    # A Figure of its own, not pyplot: matplotlib.use("Agg") would switch a notebook's inline backend off.
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    has_accuracy = bool(history.train_accuracy or history.val_accuracy)
    fig = Figure(figsize=(10 if has_accuracy else 5, 3.5))
    axes = fig.subplots(1, 2 if has_accuracy else 1, squeeze=False)
    epochs = range(1, history.epochs + 1)
    axes[0, 0].plot(epochs, history.train_loss, label="train")
    if history.val_loss:
        axes[0, 0].plot(epochs, history.val_loss, label="validation")
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title=title)
    axes[0, 0].legend()
    if has_accuracy:
        for name in ("train_accuracy", "val_accuracy"):
            if getattr(history, name):
                axes[0, 1].plot(epochs, getattr(history, name), label=name.split("_")[0])
        axes[0, 1].set(xlabel="epoch", ylabel="accuracy")
        axes[0, 1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


# %% [markdown]
# ## See it work: resume a run from a checkpoint

# %%
import tinytorch as tt
from tinytorch.layers import Linear, ReLU, Sequential
from tinytorch.losses import cross_entropy
from tinytorch.adam import AdamW
from tinytorch.training import fit

tt.manual_seed(0)
r = np.random.default_rng(0)
X = r.standard_normal((600, 2)).astype(np.float32)
y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)           # XOR of the signs: needs a hidden layer
model = Sequential(Linear(2, 16), ReLU(), Linear(16, 2))
optimizer = AdamW(model.parameters(), lr=0.02)
history = fit(model, cross_entropy, optimizer, X, y, epochs=15, batch_size=32, val_fraction=0.2, progress=False)
save_checkpoint("checkpoints/demo.npz", model, optimizer, epoch=15, metrics={"val_loss": history.val_loss[-1]})
print(plot_history(history, "checkpoints/demo.png"), "val accuracy", round(history.val_accuracy[-1], 3))

restored = Sequential(Linear(2, 16), ReLU(), Linear(16, 2))
restored_opt = AdamW(restored.parameters(), lr=0.02)
print(load_checkpoint("checkpoints/demo.npz", restored, restored_opt))

# %% [markdown]
# ## Tests

# %% nbgrader={"grade": true, "grade_id": "test-production-checkpoint", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
"""A checkpoint round-trips model, optimizer and metadata; a model of another shape is refused unchanged."""
import tempfile as _tempfile
from tinytorch.layers import Linear, Sequential
from tinytorch.optimizers import SGD

folder = Path(_tempfile.mkdtemp())
net = Sequential(Linear(3, 4), Linear(4, 2))
opt = SGD(net.parameters(), lr=0.1, momentum=0.9)
for p in net.parameters():
    p.grad = np.ones_like(p.data)
opt.step()
save_checkpoint(folder / "ck.npz", net, opt, epoch=7, metrics={"val_loss": 0.5})
twin = Sequential(Linear(3, 4), Linear(4, 2))
twin_opt = SGD(twin.parameters(), lr=0.1, momentum=0.9)
info = load_checkpoint(folder / "ck.npz", twin, twin_opt)
assert info["epoch"] == 7, f'got info["epoch"] = {info["epoch"]!r}'
assert info["metrics"] == {"val_loss": 0.5}, f'got info["metrics"] = {info["metrics"]!r}'
differ = [k for k, v in net.state_dict().items() if not np.array_equal(v, twin.state_dict()[k])]
assert not differ, f"the loaded model should equal the saved one, but {differ} differ"
assert len(twin_opt.state_dict()["state"]) == 4, \
    f'got len(twin_opt.state_dict()["state"]) = {len(twin_opt.state_dict()["state"])!r}'
other = Sequential(Linear(3, 5), Linear(5, 2))
before = other.state_dict()
try:
    load_checkpoint(folder / "ck.npz", other)
    raise AssertionError("a checkpoint of another shape must be refused")
except CheckpointError as error:
    assert "0.weight" in str(error), f"got str(error) = {str(error)!r}"
changed = [k for k, v in other.state_dict().items() if not np.array_equal(before[k], v)]
assert not changed, f"a refused checkpoint may change nothing, but {changed} changed"
assert [p.name for p in folder.iterdir()] == ["ck.npz"], \
    f"no temporary files are left behind, got {sorted(p.name for p in folder.iterdir())}"

# %% nbgrader={"grade": true, "grade_id": "test-production-early-stopping", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""Early stopping stops after `patience` epochs without improvement and remembers the best epoch."""
stopper = EarlyStopping(patience=2)
decisions = [stopper.step(v) for v in [1.0, 0.8, 0.85, 0.79, 0.9, 0.95]]
assert decisions == [False, False, False, False, False, True], f"got decisions = {decisions!r}"
assert stopper.best == 0.79, f"got stopper.best = {stopper.best!r}"
assert stopper.best_epoch == 4, f"got stopper.best_epoch = {stopper.best_epoch!r}"
up = EarlyStopping(patience=1, mode="max")
decisions = [up.step(v) for v in [0.5, 0.6, 0.6]]
assert decisions == [False, False, True], f"mode='max', patience=1 on 0.5, 0.6, 0.6: got {decisions}"

# %% nbgrader={"grade": true, "grade_id": "test-production-schedules", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Schedules follow PyTorch's formulas."""
from tinytorch.layers import Linear
from tinytorch.optimizers import SGD

def lrs(make, steps):
    opt = SGD(Linear(2, 2).parameters(), lr=1.0)
    sched = make(opt)
    out = [sched.get_last_lr()[0]]
    for _ in range(steps):
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out

assert np.allclose(lrs(lambda o: StepLR(o, step_size=2, gamma=0.5), 5), [1, 1, 0.5, 0.5, 0.25, 0.25]), \
    f"got lrs(lambda o: StepLR(o, step_size=2, gamma=0.5), 5) = {lrs(lambda o: StepLR(o, step_size=2, gamma=0.5), 5)!r}"
assert np.allclose(lrs(lambda o: CosineAnnealingLR(o, T_max=4), 4), [1, 0.853553, 0.5, 0.146447, 0]), \
    f"got lrs(lambda o: CosineAnnealingLR(o, T_max=4), 4) = {lrs(lambda o: CosineAnnealingLR(o, T_max=4), 4)!r}"
assert np.allclose(lrs(lambda o: LinearWarmup(o, start_factor=0.25, total_iters=3), 4), [0.25, 0.5, 0.75, 1, 1]), \
    f"got lrs(lambda o: LinearWarmup(o, start_factor=0.25, total_iters=3), 4) = {lrs(lambda o: LinearWarmup(o, start_factor=0.25, total_iters=3), 4)!r}"
assert confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3).tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]], \
    f"got confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3).tolist() = {confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3).tolist()!r}"

# %% [markdown]
# ## Memory and performance analysis
#
# A checkpoint holds the parameters plus the optimizer's buffers: with
# AdamW, three times the model. Measure the file size and the time to save
# and load for a model of 1.3 million parameters.

# %%
from tinytorch.profiler import Profile, measure, format_bytes

big = Sequential(Linear(1024, 1024), ReLU(), Linear(1024, 256))
big_opt = AdamW(big.parameters())
for p in big.parameters():
    p.grad = np.ones_like(p.data)
big_opt.step()
n = sum(p.size for p in big.parameters())
saved = measure(save_checkpoint, "checkpoints/big.npz", big, big_opt, repeat=3)
with Profile("load") as p:
    load_checkpoint("checkpoints/big.npz", big, big_opt)
print(f"{n} parameters = {format_bytes(4 * n)}; checkpoint file {format_bytes(Path('checkpoints/big.npz').stat().st_size)}")
print(f"save {saved.seconds * 1e3:.1f} ms, load {p.seconds * 1e3:.1f} ms (peak {format_bytes(p.peak_bytes)})")

# %% [markdown]
# Data parallelism, measured: the gradients of one batch of 64 images for a
# small CNN (module 09's layers), by one worker and by one worker per CPU of
# this server. The two give the same gradient up to float32 rounding (the
# slices' sums are added in another order). On a server with one CPU there
# is no second core to run on: the workers take turns, and the replica and
# the threads cost a little. Outside the course's image, where NumPy may be
# imported before tinytorch with no `OPENBLAS_NUM_THREADS` set, BLAS starts
# a thread per core and the workers queue for them: two workers are then
# slower than one.

# %%
from tinytorch.layers import Linear, ReLU, Sequential
from tinytorch.spatial import Conv2d, Flatten, MaxPool2d

tt.manual_seed(0)
cnn = Sequential(Conv2d(1, 8, 3, padding=1), ReLU(), MaxPool2d(2), Conv2d(8, 16, 3, padding=1), ReLU(),
                 MaxPool2d(2), Flatten(), Linear(16 * 7 * 7, 10))
images = Tensor(r.standard_normal((64, 1, 28, 28)).astype(np.float32))
labels = r.integers(0, 10, 64)


def classify(model, inputs, targets):
    return cross_entropy(model(inputs), targets)


gradients, times = {}, {}
for workers in sorted({1, max(2, default_workers())}):
    parallel = DataParallel(cnn, workers)
    times[workers] = measure(parallel.backward, classify, images, labels, repeat=20).seconds
    gradients[workers] = [p.grad.copy() for p in cnn.parameters()]
    print(f"{workers} worker(s): {times[workers] * 1e3:.1f} ms per batch's gradients")
many = max(times)
print(f"CPUs this server may use: {default_workers()}; {many} workers: {times[1] / times[many]:.2f}x "
      f"the speed of one; largest gradient difference "
      f"{max(float(np.abs(a - b).max()) for a, b in zip(gradients[1], gradients[many])):.1e}")

# %% [markdown]
# ## Comparison with PyTorch
#
# PyTorch's schedulers give the same learning rates. (Its `torch.save` uses
# pickle; `torch.load(weights_only=True)` is its safe mode.)

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed("12_production")

if torch is not None:
    param = torch.nn.Parameter(torch.zeros(1))
    theirs = torch.optim.SGD([param], lr=1.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=10, eta_min=0.01)
    torch_lrs = []
    for _ in range(10):
        torch_lrs.append(sched.get_last_lr()[0])
        theirs.step()
        sched.step()
    ours_sched = CosineAnnealingLR(SGD(Linear(2, 2).parameters(), lr=1.0), T_max=10, eta_min=0.01)
    ours = []
    for _ in range(10):
        ours.append(ours_sched.get_last_lr()[0])
        ours_sched.step()
    print("max difference from torch's cosine schedule:", max(abs(a - b) for a, b in zip(ours, torch_lrs)))

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** Why write a checkpoint to a temporary file and rename it, rather
# than writing the target directly? What does a crash at the wrong moment
# leave behind in each case?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-production-atomic", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Writing in place truncates the old checkpoint first; a crash leaves a
# partial file and no good checkpoint. The rename is atomic: a crash leaves
# the old complete file (plus a stray temp file at worst).
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** Why must loading a checkpoint not use pickle? Describe what a
# malicious checkpoint could do otherwise.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-production-pickle", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Unpickling calls constructors named in the file (__reduce__), so it can
# run arbitrary code: delete files, steal credentials, open a shell. Plain
# arrays plus JSON carry data only.
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** The AdamW checkpoint above is about three times the size of the
# parameters. Where does the factor come from, and what could you drop if
# you only want to *use* the model, not resume training?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-production-size", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# exp_avg and exp_avg_sq are each the size of the parameters. For inference
# only the model's state_dict is needed (one third).
# === END MARK SCHEME ===

# %% [markdown]
# **Q4.** Why do transformers train with a warm-up at the start and a
# decaying learning rate at the end?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-production-schedules", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Early on Adam's second-moment estimates are poor and gradients large, so
# full-size steps diverge; warm-up lets the statistics settle. Late in
# training a smaller lr reduces the noise of SGD around the minimum.
# === END MARK SCHEME ===

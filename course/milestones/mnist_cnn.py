"""Milestone 3: a small CNN, written with tinytorch, learns MNIST.

    python -m course.milestones.mnist_cnn [--data DATASETS] [--epochs 2] [--batch-size 64] [--lr 1e-3]
                                          [--seed 0] [--out results/milestones] [--design] [--cosine]

Trains Conv2d(1,8,3,p=1)+ReLU+MaxPool2d(2) -> Conv2d(8,16,3,p=1)+ReLU+MaxPool2d(2) -> Flatten ->
Linear(784,64)+ReLU -> Linear(64,10) with Adam on the 60,000 training images, reports test accuracy after
every epoch, saves a checkpoint (model + optimizer, resumable) and a plot of the history. The datasets
folder (holding mnist/) is --data, else $TINYTORCH_DATASETS. Exits 1 below --target accuracy (default 0.95).

--design trains the course design's own CNN instead (Conv2d(1,16,3), Conv2d(16,32,3), pools,
Linear(32*5*5,10)); --cosine lowers the learning rate along a cosine from --lr to 0 over the epochs
(module 12's CosineAnnealingLR, one step per epoch). The run that reaches 99%: `make mnist-design`.
"""
from __future__ import annotations

import argparse
import sys
import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from course.milestones import run, show_plot
import tinytorch as tt
from tinytorch.adam import Adam, evaluate_classifier
from tinytorch.data import MNIST, DataLoader, TensorDataset
from tinytorch.layers import ReLU, Sequential
from tinytorch.losses import cross_entropy
from tinytorch.production import CosineAnnealingLR, DataParallel, plot_history, save_checkpoint
from tinytorch.spatial import Conv2d, Flatten, FusedLinear, MaxPool2d
from tinytorch.training import History

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of the training pixels: inputs centred near 0 train faster


def make_cnn() -> Sequential:
    return Sequential(
        Conv2d(1, 8, 3, padding=1), ReLU(), MaxPool2d(2),    # (B, 8, 14, 14)
        Conv2d(8, 16, 3, padding=1), ReLU(), MaxPool2d(2),   # (B, 16, 7, 7)
        Flatten(),                                            # (B, 784)
        FusedLinear(784, 64), ReLU(),                         # module 04's Linear as one primitive (module 09)
        FusedLinear(64, 10),                                  # (B, 10) class scores
    )


def make_design_cnn() -> Sequential:
    """The course design's milestone CNN: no padding, so 28 -> 26 -> 13 -> 11 -> 5 pixels a side."""
    return Sequential(
        Conv2d(1, 16, 3), ReLU(), MaxPool2d(2),               # (B, 16, 13, 13)
        Conv2d(16, 32, 3), ReLU(), MaxPool2d(2),              # (B, 32, 5, 5): pooling drops the 11th row and column
        Flatten(),                                            # (B, 800)
        FusedLinear(32 * 5 * 5, 10),                          # (B, 10) class scores
    )


def normalise(images: tt.Tensor) -> tt.Tensor:
    return tt.Tensor((images.data - MNIST_MEAN) / MNIST_STD)


def classify(model: Sequential, images: tt.Tensor, labels: np.ndarray) -> tt.Tensor:
    """The loss each worker computes on its slice of a batch."""
    return cross_entropy(model(images), labels)


def train_epoch(parallel: DataParallel, batches: Iterable, optimizer: Adam) -> float:
    """Module 11's train_epoch, with each batch's gradients computed on every CPU by module 12's DataParallel."""
    parallel.model.train()
    losses = []
    for images, labels in batches:
        losses.append(parallel.backward(classify, normalise(images), labels))
        optimizer.step()
    return float(np.mean(losses))


def evaluate(model: Sequential, loader: DataLoader) -> tuple[float, float]:
    """Mean loss and accuracy over a loader, without recording history (module 11's evaluate_classifier)."""
    metrics = evaluate_classifier(model, loader, num_classes=10, loss_fn=cross_entropy, transform=normalise)
    return metrics.loss, metrics.accuracy


def train(data: str | os.PathLike[str] | None = None, epochs: int = 2, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
          out: Path = Path("results/milestones"), progress: bool = True, limit: int | None = None,
          design: bool = False, cosine: bool = False) -> dict:
    """Train the CNN (the design's with `design`; lr on a cosine to 0 with `cosine`);
    return {"test_accuracy": [...per epoch], "epoch_seconds": [...], "checkpoint", "plot"}."""
    tt.manual_seed(seed)
    full_train, test_set = MNIST(data, train=True), MNIST(data, train=False)
    # with `limit`, a smaller run for quick checks: the first `limit` training images
    train_set = TensorDataset(full_train.images[:limit], full_train.labels[:limit]) if limit else full_train
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed)
    test_loader = DataLoader(test_set, batch_size=1000)
    # the model, its checkpoint's and plot's file names, and the plot's title
    model, name, title = ((make_design_cnn(), "mnist_cnn_design", "the design's MNIST CNN") if design
                          else (make_cnn(), "mnist_cnn", "MNIST CNN"))
    optimizer = Adam(model.parameters(), lr=lr)
    parallel = DataParallel(model)                      # one worker per CPU of the quota (tinytorch.threads)
    schedule = CosineAnnealingLR(optimizer, T_max=epochs) if cosine else None
    history, test_accuracy, epoch_seconds = History(), [], []
    out = Path(out)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{epochs}", disable=not progress, leave=True)
        train_loss = train_epoch(parallel, bar, optimizer)
        epoch_seconds.append(time.perf_counter() - start)
        if schedule:
            schedule.step()
        test_loss, accuracy = evaluate(model, test_loader)
        history.train_loss.append(train_loss)
        history.val_loss.append(test_loss)
        history.val_accuracy.append(accuracy)
        test_accuracy.append(accuracy)
        print(f"epoch {epoch}: train loss {history.train_loss[-1]:.4f}, test loss {test_loss:.4f}, "
              f"test accuracy {accuracy:.4f} ({epoch_seconds[-1]:.1f} s)", flush=True)
        checkpoint = save_checkpoint(out / f"{name}.npz", model, optimizer, epoch=epoch,
                                     metrics={"test_accuracy": accuracy, "test_loss": test_loss},
                                     config={"batch_size": batch_size, "lr": lr, "seed": seed, "design": design,
                                             "cosine": cosine})
    plot = plot_history(history, out / f"{name}.png", title=f"{title} (validation = test set)")
    return {"test_accuracy": test_accuracy, "epoch_seconds": epoch_seconds, "checkpoint": checkpoint, "plot": plot}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.milestones.mnist_cnn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="datasets folder holding mnist/ (default: $TINYTORCH_DATASETS)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/milestones"))
    parser.add_argument("--target", type=float, default=0.95, help="fail below this final test accuracy")
    parser.add_argument("--design", action="store_true", help="the course design's CNN (16 and 32 channels, Linear(800,10))")
    parser.add_argument("--cosine", action="store_true", help="lr along a cosine from --lr to 0 over the epochs")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    try:
        result = train(args.data, args.epochs, args.batch_size, args.lr, args.seed, args.out,
                       design=args.design, cosine=args.cosine)
    except (FileNotFoundError, ValueError) as error:  # no or damaged dataset: say so, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    final = result["test_accuracy"][-1]
    minutes = sum(result["epoch_seconds"]) / 60
    print(f"test accuracy after {args.epochs} epoch(s): {final:.4f} in {minutes:.1f} minutes of training; "
          f"checkpoint {result['checkpoint']}, plot {result['plot']}")
    show_plot(result["plot"])
    if final < args.target:
        print(f"below the target accuracy {args.target}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "mnist_cnn"))

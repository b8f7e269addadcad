"""Milestones 1 and 2: XOR with tinytorch.

Milestone 1 runs a 2-2-1 sigmoid network whose weights are set by hand (one
hidden unit computes OR, the other NAND, the output ANDs them) and prints its
four predictions. Milestone 2 trains Linear(2, 8) + Tanh + Linear(8, 1) +
Sigmoid with binary cross entropy and SGD with momentum until the loss is
below 0.01, prints the loss curve, the steps and seconds it took, and saves a
plot of the curve.

    python -m course.milestones.xor [--seed 0] [--max-steps 5000] [--lr 0.5] [--plot results/xor_loss.png]

Exits 1 if either milestone fails (a wrong prediction, or loss 0.01 not reached).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course.milestones import run, show_plot
import tinytorch
from tinytorch.layers import Linear, Sequential, Sigmoid, Tanh
from tinytorch.losses import BCELoss
from tinytorch.optimizers import SGD
from tinytorch.tensor import Tensor, no_grad

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)  # (4, 2): every input pair
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)              # (4, 1): their XOR

TARGET_LOSS = 0.01
DEFAULT_PLOT = Path("results") / "milestones" / "xor_loss.png"

# Milestone 1: sigmoid(20·(x1 + x2) - 10) is OR, sigmoid(30 - 20·(x1 + x2)) is NAND,
# sigmoid(20·(h1 + h2) - 30) is AND of the two: XOR = OR and NAND.
HAND_SET_WEIGHTS = {
    "0.weight": np.array([[20.0, 20.0], [-20.0, -20.0]], dtype=np.float32),  # (hidden 2, in 2)
    "0.bias": np.array([-10.0, 30.0], dtype=np.float32),
    "2.weight": np.array([[20.0, 20.0]], dtype=np.float32),                  # (out 1, hidden 2)
    "2.bias": np.array([-30.0], dtype=np.float32),
}


def xor_inference() -> np.ndarray:
    """Milestone 1: the (4, 1) outputs of the hand-set 2-2-1 network on the four XOR inputs."""
    model = Sequential(Linear(2, 2), Sigmoid(), Linear(2, 1), Sigmoid())
    model.load_state_dict(HAND_SET_WEIGHTS)
    with no_grad():
        return model(Tensor(X)).data


@dataclass
class TrainingResult:
    losses: list          # loss before each update (losses[i] is measured after i updates)
    steps: int            # updates made when the loss first fell below the target (or max_steps)
    seconds: float        # wall time of the training loop
    reached: bool         # whether the loss fell below the target
    predictions: np.ndarray


def train_xor(seed: int = 0, max_steps: int = 5000, lr: float = 0.5, momentum: float = 0.9,
              hidden: int = 8, target_loss: float = TARGET_LOSS) -> TrainingResult:
    """Milestone 2: full-batch training of a 2-hidden-1 tanh network until the BCE loss < target_loss."""
    tinytorch.manual_seed(seed)
    model = Sequential(Linear(2, hidden), Tanh(), Linear(hidden, 1), Sigmoid())
    loss_fn = BCELoss()
    optimizer = SGD(model.parameters(), lr=lr, momentum=momentum)
    inputs = Tensor(X)
    losses, reached = [], False
    started = time.perf_counter()
    for step in range(max_steps + 1):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), Y)
        losses.append(loss.item())
        if losses[-1] < target_loss:
            reached = True
            break
        if step == max_steps:
            break
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    with no_grad():
        predictions = model(inputs).data
    return TrainingResult(losses, step, seconds, reached, predictions)


def save_plot(losses: list, path: Path, title: str) -> Path:
    """Write the loss curve (log scale) as a PNG, creating the folder if needed."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
    except ImportError:
        raise SystemExit("the plot needs matplotlib: pip install 'tinytorch-classroom[course]'") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot(range(len(losses)), losses, label="training loss (BCE)")
    ax.axhline(TARGET_LOSS, color="grey", linestyle=":", label=f"target {TARGET_LOSS}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.milestones.xor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    parser.add_argument("--max-steps", type=int, default=5000, help="give up after this many updates (default 5000)")
    parser.add_argument("--lr", type=float, default=0.5, help="SGD learning rate (default 0.5)")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    parser.add_argument("--print-every", type=int, default=5, help="print the loss every N steps (default 5)")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help=f"PNG of the loss curve (default {DEFAULT_PLOT})")
    args = parser.parse_args(argv)
    if args.max_steps < 0 or args.print_every < 1:
        parser.error("--max-steps must be >= 0 and --print-every >= 1")

    print("Milestone 1: XOR inference with hand-set weights (2-2-1 sigmoid network)")
    outputs = xor_inference()
    inference_ok = True
    for (a, b), out, want in zip(X.astype(int), outputs[:, 0], Y[:, 0].astype(int)):
        correct = int(out > 0.5) == want
        inference_ok &= correct
        print(f"  {a} xor {b} -> {out:.4f}  (predicts {int(out > 0.5)}, expected {want}) {'ok' if correct else 'WRONG'}")

    print(f"\nMilestone 2: training Linear(2, 8) + Tanh + Linear(8, 1) + Sigmoid, BCE, "
          f"SGD(lr={args.lr}, momentum={args.momentum}), seed {args.seed}, until loss < {TARGET_LOSS}")
    result = train_xor(seed=args.seed, max_steps=args.max_steps, lr=args.lr, momentum=args.momentum)
    for step in range(0, len(result.losses), args.print_every):
        print(f"  step {step:5d}  loss {result.losses[step]:.5f}")
    if (len(result.losses) - 1) % args.print_every:
        print(f"  step {len(result.losses) - 1:5d}  loss {result.losses[-1]:.5f}")
    print("  predictions for (0,0) (0,1) (1,0) (1,1):", " ".join(f"{p:.4f}" for p in result.predictions[:, 0]))
    if result.reached:
        print(f"loss {result.losses[-1]:.5f} < {TARGET_LOSS} after {result.steps} steps in {result.seconds:.3f} s")
    else:
        print(f"loss {result.losses[-1]:.5f} did not reach {TARGET_LOSS} in {args.max_steps} steps "
              f"({result.seconds:.3f} s): try another --lr or more --max-steps", file=sys.stderr)
    title = f"XOR: {result.steps} steps, {'reached' if result.reached else 'did not reach'} loss < {TARGET_LOSS}"
    plot = save_plot(result.losses, args.plot, title)
    print(f"plot: {plot}")
    show_plot(plot)
    if not inference_ok:
        print("milestone 1 failed: a hand-set prediction is wrong", file=sys.stderr)
    return 0 if inference_ok and result.reached else 1


if __name__ == "__main__":
    sys.exit(run(main, "xor"))

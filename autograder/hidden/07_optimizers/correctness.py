"""Module 07 (optimizers), hidden correctness: SGD step for step with every option at once, frozen
parameters, and several parameter groups of updates."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe, same

name = "07_optimizers correctness"
kind = "correctness"

START = np.random.default_rng(71).normal(size=(3, 4)).astype(np.float32)
TARGET = np.random.default_rng(72).normal(size=(3, 4)).astype(np.float32)


@probe
def trajectory(tt, start, target, options):
    from tinytorch.layers import Parameter
    from tinytorch.optimizers import SGD
    w, frozen = Parameter(start.copy()), Parameter(start.copy())
    optimizer = SGD([w, frozen], **options)
    path = []
    for _ in range(6):
        optimizer.zero_grad()
        ((w - tt.Tensor(target)) ** 2).sum().backward()  # frozen never gets a gradient
        optimizer.step()
        path.append(w.data.copy())
    return {"weights after each step": np.stack(path), "untouched parameter": frozen.data}


@test_case(points=1)
def test_plain_sgd():
    """Six steps of SGD(lr=0.05) on a quadratic; a parameter without gradient stays put."""
    same(trajectory, START, TARGET, {"lr": 0.05}, rtol=1e-5)


@test_case(points=2)
def test_momentum_with_dampening_and_weight_decay():
    """SGD(lr=0.03, momentum=0.8, dampening=0.3, weight_decay=0.1), six steps."""
    same(trajectory, START, TARGET, {"lr": 0.03, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1}, rtol=1e-5)


@test_case(points=2)
def test_nesterov():
    """SGD(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.01), six steps."""
    same(trajectory, START, TARGET, {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, rtol=1e-5)

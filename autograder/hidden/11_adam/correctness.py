"""Module 11 (adam), hidden correctness: Adam and AdamW step for step with unusual betas, weight decay
and a parameter that only sometimes has a gradient."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe, same

name = "11_adam correctness"
kind = "correctness"

START = np.random.default_rng(111).normal(size=(4, 3)).astype(np.float32)
TARGET = np.random.default_rng(112).normal(size=(4, 3)).astype(np.float32)


@probe
def trajectory(tt, start, target, kind, options):
    from tinytorch.adam import Adam, AdamW
    from tinytorch.layers import Parameter
    w, sometimes = Parameter(start.copy()), Parameter(start[:1].copy())
    optimizer = {"Adam": Adam, "AdamW": AdamW}[kind]([w, sometimes], **options)
    path = []
    for step in range(7):
        optimizer.zero_grad()
        loss = ((w - tt.Tensor(target)) ** 2).sum()
        if step % 3 == 0:
            loss = loss + (sometimes * sometimes).sum()
        loss.backward()
        optimizer.step()
        path.append(np.concatenate([w.data.ravel(), sometimes.data.ravel()]))
    return {"parameters after each step": np.stack(path)}


@test_case(points=2)
def test_adam_step_for_step():
    """Adam(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1): 7 steps, one parameter with gaps."""
    same(trajectory, START, TARGET, "Adam", {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}, rtol=1e-4)


@test_case(points=2)
def test_adamw_step_for_step():
    """AdamW(lr=0.02, betas=(0.9, 0.99), weight_decay=0.3): decoupled decay, bias correction, 7 steps."""
    same(trajectory, START, TARGET, "AdamW", {"lr": 0.02, "betas": (0.9, 0.99), "weight_decay": 0.3}, rtol=1e-4)

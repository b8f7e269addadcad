"""Adam and AdamW (module 11): step-for-step equal to torch.optim for 100 steps, state round trip, errors."""
from __future__ import annotations

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.adam import Adam, AdamW


def run_pair(torch, ours_cls, torch_cls, steps=100, **settings):
    r = np.random.default_rng(0)
    starts = [r.standard_normal((3, 4)), r.standard_normal(4)]
    ours = [tt.Tensor(s.copy(), requires_grad=True, dtype=np.float64) for s in starts]
    theirs = [torch.tensor(s.copy(), requires_grad=True) for s in starts]
    opt_ours, opt_theirs = ours_cls(ours, **settings), torch_cls(theirs, **settings)
    for step in range(steps):
        for a, b in zip(ours, theirs):
            grad = r.standard_normal(a.shape) * (10.0 if step % 7 == 0 else 0.1)
            a.grad, b.grad = grad.copy(), torch.from_numpy(grad.copy())
        if step % 10 == 3:  # a parameter without a gradient is skipped by both
            ours[1].grad, theirs[1].grad = None, None
        opt_ours.step()
        opt_theirs.step()
        for a, b in zip(ours, theirs):
            assert np.allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12), f"step {step}"


@pytest.mark.torch
@pytest.mark.parametrize("settings", [
    {}, {"lr": 0.05, "betas": (0.8, 0.99)}, {"weight_decay": 0.1}, {"eps": 1e-3, "weight_decay": 0.01},
], ids=repr)
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_matches_torch_step_for_step_for_100_steps(torch, name, settings):
    ours_cls = {"Adam": Adam, "AdamW": AdamW}[name]
    run_pair(torch, ours_cls, getattr(torch.optim, name), **settings)


def test_adamw_defaults_match_torch():
    opt = AdamW([tt.Tensor([1.0], requires_grad=True)])
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (1e-3, (0.9, 0.999), 1e-8, 0.01)


def test_state_dict_round_trip_continues_identically():
    def make():
        return tt.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    a, b = make(), make()
    opt_a = AdamW([a], lr=0.1)
    for _ in range(5):
        a.grad = np.array([0.5, -1.0, 2.0])
        opt_a.step()
    b.data[...] = a.data
    opt_b = AdamW([b], lr=0.1)
    opt_b.load_state_dict(opt_a.state_dict())
    for _ in range(5):
        a.grad = b.grad = np.array([1.0, 1.0, -1.0])
        opt_a.step()
        opt_b.step()
    assert np.array_equal(a.data, b.data)


def test_buffers_are_allocated_once_and_float32_stays_float32():
    w = tt.Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
    opt = Adam([w])
    w.grad = np.ones(4, dtype=np.float32)
    opt.step()
    m = opt.state[id(w)]["exp_avg"]
    opt.step()
    assert opt.state[id(w)]["exp_avg"] is m and w.dtype == np.float32 and m.dtype == np.float32


@pytest.mark.parametrize("settings, words", [
    ({"lr": -1}, "learning rate"), ({"betas": (0.9, 1.0)}, "betas"), ({"betas": (0.9,)}, "betas"),
    ({"eps": -1e-8}, "eps"), ({"weight_decay": -0.1}, "weight_decay"),
])
def test_bad_settings_are_refused_by_name(settings, words):
    with pytest.raises(ValueError, match=words):
        Adam([tt.Tensor([1.0], requires_grad=True)], **settings)

"""Optimizers (module 07): SGD step for step against torch.optim.SGD, state_dict, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.layers import Linear, ReLU, Sequential
from tinytorch.losses import cross_entropy
from tinytorch.optimizers import SGD, Optimizer
from tinytorch.tensor import Tensor

SETTINGS = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "weight_decay": dict(lr=0.1, weight_decay=0.01),
    "everything": dict(lr=0.02, momentum=0.8, weight_decay=0.05, nesterov=True),
}


def run_both(torch, settings: dict, steps: int, dtype=np.float64, seed: int = 0, skip_every: int = 0):
    """Same start, same gradients each step (parameter 1 gets none every `skip_every` steps); final values."""
    r = np.random.default_rng(seed)
    starts = [r.standard_normal((4, 3)).astype(dtype), r.standard_normal(5).astype(dtype)]
    ours = [Tensor(s.copy(), requires_grad=True) for s in starts]
    theirs = [torch.tensor(s.copy(), requires_grad=True) for s in starts]
    opt_ours, opt_theirs = SGD(ours, **settings), torch.optim.SGD(theirs, **settings)
    for step in range(steps):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            if i == 1 and skip_every and step % skip_every == 0:
                a.grad, b.grad = None, None
                continue
            g = r.standard_normal(a.shape).astype(dtype)
            a.grad, b.grad = g.copy(), torch.from_numpy(g.copy())
        opt_ours.step()
        opt_theirs.step()
    return ours, theirs, opt_ours, opt_theirs


@pytest.mark.torch
@pytest.mark.parametrize("name", SETTINGS)
def test_sgd_matches_torch_step_for_step_for_100_steps(torch, name):
    r = np.random.default_rng(1)
    start = r.standard_normal((6, 4))
    ours, theirs = Tensor(start.copy(), requires_grad=True), torch.tensor(start.copy(), requires_grad=True)
    opt_ours, opt_theirs = SGD([ours], **SETTINGS[name]), torch.optim.SGD([theirs], **SETTINGS[name])
    for step in range(100):
        g = r.standard_normal(start.shape)
        ours.grad, theirs.grad = g.copy(), torch.from_numpy(g.copy())
        opt_ours.step()
        opt_theirs.step()
        assert np.allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-12), f"{name}: step {step}"
    if SETTINGS[name].get("momentum"):
        assert np.allclose(opt_ours.state[id(ours)]["momentum_buffer"],
                           opt_theirs.state[theirs]["momentum_buffer"].numpy(), rtol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("name", SETTINGS)
def test_sgd_matches_torch_in_float32_and_skips_missing_gradients(torch, name):
    ours, theirs, _, _ = run_both(torch, SETTINGS[name], steps=100, dtype=np.float32, skip_every=3)
    for a, b in zip(ours, theirs):
        assert a.dtype == np.float32
        assert np.allclose(a.data, b.detach().numpy(), rtol=1e-5, atol=1e-5), name


@pytest.mark.torch
@settings(max_examples=25)
@given(lr=st.floats(1e-4, 0.5), momentum=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
       dampening=st.sampled_from([0.0, 0.1, 0.5]), weight_decay=st.sampled_from([0.0, 1e-4, 0.1]),
       nesterov=st.booleans(), seed=st.integers(0, 1000))
def test_sgd_matches_torch_for_random_hyperparameters(torch, lr, momentum, dampening, weight_decay, nesterov, seed):
    if nesterov and (momentum == 0 or dampening != 0):
        nesterov = False  # an invalid combination, tested on its own below
    settings = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
    ours, theirs, _, _ = run_both(torch, settings, steps=30, seed=seed, skip_every=4)
    for a, b in zip(ours, theirs):
        assert np.allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-10), settings


@pytest.mark.torch
def test_training_an_mlp_matches_torch_for_100_steps(torch):
    ours = Sequential(Linear(8, 16), ReLU(), Linear(16, 3))
    theirs = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    for p in ours.parameters():  # float64 copies for a tight comparison
        p.data = p.data.astype(np.float64)
    settings = dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True)
    opt_ours, opt_theirs = SGD(ours.parameters(), **settings), torch.optim.SGD(theirs.parameters(), **settings)
    r = np.random.default_rng(0)
    x, y = r.standard_normal((32, 8)), r.integers(0, 3, 32)
    for step in range(100):
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        loss = cross_entropy(ours(Tensor(x)), y)
        ref = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        ref.backward()
        opt_ours.step()
        opt_theirs.step()
        assert np.isclose(loss.item(), ref.item(), rtol=1e-9), f"step {step}"
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert np.allclose(p.data, reference[name].detach().numpy(), rtol=1e-9, atol=1e-12), name


def test_step_updates_in_place_and_keeps_its_own_momentum_buffer():
    p = Tensor(np.ones(3), requires_grad=True)
    storage = p.data
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.full(3, 2.0)
    opt.step()
    assert p.data is storage and np.allclose(p.data, 0.8)
    buffer = opt.state[id(p)]["momentum_buffer"]
    p.grad[...] = 100.0  # changing the gradient array afterwards must not change the velocity
    assert np.allclose(buffer, 2.0) and buffer is not p.grad
    assert np.allclose(p.grad, 100.0), "weight decay and momentum must never write into p.grad"


def test_zero_grad_clears_every_parameter_and_step_skips_missing_gradients():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    opt = SGD([a, b], lr=1.0, momentum=0.5, weight_decay=0.1)
    a.grad = np.ones(2)
    opt.step()
    assert np.allclose(b.data, 1.0) and id(b) not in opt.state, "no gradient: no update, no weight decay, no state"
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_learning_rate_can_change_between_steps_and_groups_have_their_own():
    a, b = Tensor(np.zeros(1), requires_grad=True), Tensor(np.zeros(1), requires_grad=True)
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = np.ones(1), np.ones(1)
    opt.step()
    assert np.allclose(a.data, -0.1) and np.allclose(b.data, -1.0)
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    assert np.allclose(a.data, -0.6)


@pytest.mark.parametrize("make, error, phrase", [
    (lambda ps: SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda ps: SGD((p for p in []), lr=0.1), ValueError, "empty parameter list"),
    (lambda ps: SGD(ps, lr=-0.1), ValueError, r"learning rate lr=-0.1"),
    (lambda ps: SGD(ps, lr=0.1, momentum=-0.5), ValueError, r"momentum=-0.5"),
    (lambda ps: SGD(ps, lr=0.1, weight_decay=-1.0), ValueError, r"weight_decay=-1.0"),
    (lambda ps: SGD(ps, lr=0.1, nesterov=True), ValueError, r"Nesterov.*momentum=0"),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, r"Nesterov.*dampening=0.1"),
    (lambda ps: SGD([np.zeros(3)], lr=0.1), TypeError, r"parameter 0 of group 0 is a ndarray"),
    (lambda ps: SGD([Tensor(np.zeros(3))], lr=0.1), ValueError, r"parameter 0 .*\(3,\).*does not require gradients"),
    (lambda ps: SGD([ps[0], ps[0]], lr=0.1), ValueError, r"parameter 1 .*appears twice"),
    (lambda ps: SGD([{"params": ps, "lr": 0.1, "betas": (0.9, 0.99)}], lr=0.1), TypeError, r"unknown settings \['betas'\]"),
])
def test_bad_settings_are_refused_with_a_message_naming_them(make, error, phrase):
    params = [Tensor(np.zeros(2), requires_grad=True)]
    with pytest.raises(error, match=phrase):
        make(params)


def test_base_optimizer_step_names_the_subclass():
    class Lazy(Optimizer):
        pass
    with pytest.raises(NotImplementedError, match="Lazy must define step"):
        Lazy([Tensor(np.zeros(1), requires_grad=True)], {}).step()


def _train(opt, params, grads):
    for g in grads:
        for p, gp in zip(params, g):
            p.grad = gp.copy()
        opt.step()


def test_state_dict_resumes_training_exactly_and_holds_plain_values():
    r = np.random.default_rng(0)
    grads = [[r.standard_normal((3, 2)), r.standard_normal(2)] for _ in range(10)]
    start = [r.standard_normal((3, 2)), r.standard_normal(2)]
    straight = [Tensor(s.copy(), requires_grad=True) for s in start]
    opt = SGD(straight, lr=0.1, momentum=0.9, nesterov=True)
    _train(opt, straight, grads)

    first = [Tensor(s.copy(), requires_grad=True) for s in start]
    opt_first = SGD(first, lr=0.1, momentum=0.9, nesterov=True)
    _train(opt_first, first, grads[:5])
    saved = opt_first.state_dict()
    assert set(saved) == {"state", "param_groups"} and sorted(saved["state"]) == [0, 1]
    assert all(isinstance(v, np.ndarray) for s in saved["state"].values() for v in s.values())
    assert saved["param_groups"] == [dict(lr=0.1, momentum=0.9, weight_decay=0.0, nesterov=True, dampening=0.0,
                                          params=[0, 1])]
    saved_copy = {k: v.copy() for k, v in saved["state"][0].items()}
    _train(opt_first, first, grads[5:6])
    assert np.array_equal(saved["state"][0]["momentum_buffer"], saved_copy["momentum_buffer"]), "state_dict copies"

    # a new run, as after a restart: the parameters after 5 steps (a model checkpoint) plus the optimizer state
    resumed = [Tensor(p.copy(), requires_grad=True) for p in _five_step_params(start, grads)]
    opt_resumed = SGD(resumed, lr=0.5)  # different settings: load_state_dict restores them
    opt_resumed.load_state_dict(saved)
    assert opt_resumed.param_groups[0]["momentum"] == 0.9 and opt_resumed.param_groups[0]["nesterov"]
    _train(opt_resumed, resumed, grads[5:])
    for a, b in zip(resumed, straight):
        assert np.allclose(a.data, b.data, rtol=1e-12)


def _five_step_params(start, grads):
    params = [Tensor(s.copy(), requires_grad=True) for s in start]
    _train(SGD(params, lr=0.1, momentum=0.9, nesterov=True), params, grads[:5])
    return [p.data for p in params]


def test_load_state_dict_errors_name_the_problem_and_change_nothing():
    params = [Tensor(np.zeros((2, 2)), requires_grad=True), Tensor(np.zeros(3), requires_grad=True)]
    opt = SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = np.ones(p.shape)
    opt.step()
    good = opt.state_dict()
    before = opt.state_dict()
    bad_shape = {"state": {0: good["state"][0], 1: {"momentum_buffer": np.zeros(4)}}, "param_groups": good["param_groups"]}
    with pytest.raises(ValueError, match=r"state\[1\]\['momentum_buffer'\] has shape \(4,\), parameter 1 has shape \(3,\)"):
        opt.load_state_dict({**bad_shape, "param_groups": [{**good["param_groups"][0], "lr": 9.0}]})
    with pytest.raises(ValueError, match="group 0 saved 1 parameters, this optimizer has 2"):
        opt.load_state_dict({"state": {}, "param_groups": [{**good["param_groups"][0], "params": [0]}]})
    with pytest.raises(ValueError, match="saved 2 parameter groups, this optimizer has 1"):
        opt.load_state_dict({"state": {}, "param_groups": good["param_groups"] * 2})
    with pytest.raises(ValueError, match="state for parameter 7, but there are 2"):
        opt.load_state_dict({"state": {7: {"momentum_buffer": np.zeros(3)}}, "param_groups": good["param_groups"]})
    with pytest.raises(KeyError, match="no 'param_groups' entry"):
        opt.load_state_dict({"state": {}})
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    assert all(np.array_equal(after["state"][i]["momentum_buffer"], before["state"][i]["momentum_buffer"]) for i in (0, 1))


@pytest.mark.torch
def test_state_dict_buffers_equal_torchs_after_the_same_steps(torch):
    _, _, opt_ours, opt_theirs = run_both(torch, SETTINGS["everything"], steps=20)
    ours, theirs = opt_ours.state_dict(), opt_theirs.state_dict()
    assert sorted(ours["state"]) == sorted(theirs["state"])
    for i in ours["state"]:
        assert np.allclose(ours["state"][i]["momentum_buffer"], theirs["state"][i]["momentum_buffer"].numpy())
    for key in ("lr", "momentum", "weight_decay", "nesterov", "dampening", "params"):
        assert ours["param_groups"][0][key] == theirs["param_groups"][0][key], key

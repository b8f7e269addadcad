"""Layers (module 04): Linear/Sequential vs PyTorch with copied weights, gradients, init, state_dict."""
from __future__ import annotations

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import nn
from tinytorch.autograd import gradcheck


def test_linear_gradients_match_finite_differences():
    layer = nn.Linear(3, 2)
    layer.weight = nn.Parameter(np.random.default_rng(0).standard_normal((2, 3)))  # float64 for the check
    layer.bias = nn.Parameter(np.random.default_rng(1).standard_normal(2))
    x = tt.Tensor(np.random.default_rng(2).standard_normal((4, 3)), requires_grad=True)
    gradcheck(lambda inp, w, b: layer(inp).tanh(), [x, layer.weight, layer.bias])


def test_linear_init_matches_pytorch_distribution():
    tt.manual_seed(0)
    w = nn.Linear(400, 300).weight.data
    bound = 1 / np.sqrt(400)
    assert w.dtype == np.float32 and np.abs(w).max() <= bound
    assert np.isclose(w.std(), bound / np.sqrt(3), rtol=0.02)  # the std of U(-b, b)


def test_manual_seed_makes_init_repeatable():
    tt.manual_seed(42)
    a = nn.Linear(5, 5).weight.data.copy()
    tt.manual_seed(42)
    assert np.array_equal(a, nn.Linear(5, 5).weight.data)


@pytest.mark.torch
def test_mlp_forward_and_backward_match_torch_with_copied_weights(torch):
    ours = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 32), nn.GELU(), nn.Linear(32, 10), nn.Tanh())
    theirs = torch.nn.Sequential(torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32),
                                 torch.nn.GELU(approximate="tanh"), torch.nn.Linear(32, 10), torch.nn.Tanh())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((64, 784)).astype(np.float32)
    out, ref = ours(tt.Tensor(x)), theirs(torch.from_numpy(x))
    assert np.allclose(out.data, ref.detach().numpy(), atol=1e-5)
    out.sum().backward()
    ref.sum().backward()
    for name, p in ours.named_parameters():
        expected = dict(theirs.named_parameters())[name].grad.numpy()
        assert np.allclose(p.grad, expected, rtol=1e-4, atol=1e-5), name


def test_state_dict_is_a_copy_and_shared_parameters_appear_under_both_names():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    net[1].weight = net[0].weight
    state = net.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    state["0.weight"][...] = 99
    assert not np.any(net[0].weight.data == 99)
    assert len(net.parameters()) == 3


def test_load_state_dict_errors_name_the_key_and_change_nothing():
    net = nn.Sequential(nn.Linear(3, 2))
    before = net.state_dict()
    with pytest.raises(KeyError, match="unexpected.*extra"):
        net.load_state_dict({**before, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"0\.bias.*\(3,\).*\(2,\)"):
        net.load_state_dict({"0.weight": np.ones((2, 3)), "0.bias": np.ones(3)})
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())
    net.load_state_dict({"0.weight": np.ones((2, 3))}, strict=False)
    assert np.all(net[0].weight.data == 1)


def test_module_lists_and_nested_modules_are_found():
    class Net(nn.Module):
        def __init__(self):
            self.blocks = [nn.Linear(2, 2), nn.Linear(2, 2)]
            self.head = nn.Sequential(nn.Linear(2, 1))

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(x)

    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
                     "head.0.weight", "head.0.bias"]
    net.eval()
    assert not net.head[0].training
    assert net(np.ones((1, 2), dtype=np.float32)).shape == (1, 1)


def test_bad_construction_and_input_errors():
    with pytest.raises(ValueError, match="in_features=0"):
        nn.Linear(0, 3)
    with pytest.raises(TypeError, match="argument 1"):
        nn.Sequential(nn.Linear(2, 2), "relu")
    with pytest.raises(ValueError, match=r"last dimension is 4.*\(8, 5\)"):
        nn.Linear(4, 2)(tt.ones(8, 5))
    with pytest.raises(NotImplementedError, match="must define forward"):
        nn.Module()(1)

"""Spatial (module 09): conv2d and pooling vs PyTorch and finite differences, shapes, errors, layers."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.autograd import gradcheck
from tinytorch.spatial import (AvgPool2d, Conv2d, Flatten, FusedLinear, MaxPool2d, avg_pool2d, conv2d, conv2d_naive,
                               linear, max_pool2d)

# stride 1/2, padding 0/1/2, odd and even sizes and kernels, batch > 1
CONV_GRID = [
    (stride, padding, size, kernel)
    for stride, padding, size, kernel in itertools.product((1, 2), (0, 1, 2), ((7, 7), (8, 6)), (3, 2))
]


def _data(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.torch
@pytest.mark.parametrize("stride,padding,size,kernel", CONV_GRID)
def test_conv2d_forward_and_backward_match_torch(torch, rng, stride, padding, size, kernel):
    x, w, b = _data(rng, 3, 4, *size), _data(rng, 5, 4, kernel, kernel), _data(rng, 5)
    ours = [tt.Tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = conv2d(*ours, stride=stride, padding=padding)
    ref = torch.nn.functional.conv2d(*theirs, stride=stride, padding=padding)
    assert out.shape == tuple(ref.shape) and out.dtype == np.float32
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-4, atol=1e-4)
    g = _data(rng, *out.shape)
    out.backward(g)
    ref.backward(torch.from_numpy(g))
    for name, mine, other in zip(("x", "weight", "bias"), ours, theirs):
        assert mine.grad.shape == mine.shape, name
        np.testing.assert_allclose(mine.grad, other.grad.numpy(), rtol=1e-4, atol=1e-3, err_msg=name)


@pytest.mark.torch
@pytest.mark.parametrize("kernel,stride,size", [(2, None, (8, 8)), (2, None, (7, 9)), (3, 2, (7, 8)),
                                                (3, 1, (5, 6)), ((2, 3), (1, 2), (6, 7))])
def test_pooling_matches_torch(torch, rng, kernel, stride, size):
    x = _data(rng, 2, 3, *size)
    for ours_fn, torch_fn in [(max_pool2d, torch.nn.functional.max_pool2d),
                              (avg_pool2d, torch.nn.functional.avg_pool2d)]:
        ours, theirs = tt.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, ref = ours_fn(ours, kernel, stride), torch_fn(theirs, kernel, stride)
        np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-6, atol=1e-6)
        g = _data(rng, *out.shape)
        out.backward(g)
        ref.backward(torch.from_numpy(g))
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=ours_fn.__name__)


@pytest.mark.torch
def test_max_pool_ties_go_to_the_first_maximum_like_torch(torch):
    x = np.ones((1, 1, 4, 4), dtype=np.float32)
    ours, theirs = tt.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    max_pool2d(ours, 2).sum().backward()
    torch.nn.functional.max_pool2d(theirs, 2).sum().backward()
    assert np.array_equal(ours.grad, theirs.grad.numpy())


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), (2, 2), (1, (0, 2))])
def test_conv2d_gradients_match_finite_differences(stride, padding):
    rng = np.random.default_rng(stride * 10 + (padding if isinstance(padding, int) else 7))
    x = tt.Tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True, dtype=np.float64)
    w = tt.Tensor(rng.standard_normal((3, 2, 3, 2)), requires_grad=True, dtype=np.float64)
    b = tt.Tensor(rng.standard_normal(3), requires_grad=True, dtype=np.float64)
    gradcheck(lambda x, w, b: conv2d(x, w, b, stride=stride, padding=padding).tanh(), [x, w, b])


def test_pool_gradients_match_finite_differences():
    rng = np.random.default_rng(5)
    x = tt.Tensor(rng.standard_normal((2, 2, 5, 6)), requires_grad=True, dtype=np.float64)
    gradcheck(lambda v: max_pool2d(v, 2, 1) * max_pool2d(v, 2, 1), [x])
    gradcheck(lambda v: avg_pool2d(v, (2, 3), (2, 1)).exp(), [x])


def test_gradcheck_catches_a_wrong_conv_rule(monkeypatch):
    """The finite-difference oracle can fail: a rule that forgets the bias gradient is caught."""
    from tinytorch import autograd
    real = autograd.GRADIENT_RULES["conv2d"]
    monkeypatch.setitem(autograd.GRADIENT_RULES, "conv2d", lambda out, g: (*real(out, g)[:2], None))
    rng = np.random.default_rng(0)
    args = [tt.Tensor(rng.standard_normal(s), requires_grad=True, dtype=np.float64) for s in [(1, 1, 3, 3), (1, 1, 2, 2), (1,)]]
    with pytest.raises(AssertionError, match="input 2"):
        gradcheck(lambda x, w, b: conv2d(x, w, b), args)


def test_vectorized_conv_equals_naive_loops(rng):
    x, w, b = _data(rng, 2, 3, 9, 8), _data(rng, 4, 3, 3, 3), _data(rng, 4)
    for stride, padding in [(1, 0), (2, 1), (3, 2)]:
        np.testing.assert_allclose(conv2d(x, w, b, stride, padding).data, conv2d_naive(x, w, b, stride, padding),
                                   rtol=1e-5, atol=1e-4)


def test_float32_in_float32_out_and_no_gradient_for_a_data_input(rng):
    x = tt.Tensor(_data(rng, 2, 1, 6, 6))
    conv = Conv2d(1, 2, 3)
    out = conv(x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad is None and conv.weight.grad.dtype == np.float32


def test_shape_errors_name_the_shapes():
    conv = Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"\(2, 1, 5, 5\).*\(4, 3, 3, 3\)"):
        conv(tt.Tensor(np.zeros((2, 1, 5, 5), np.float32)))
    with pytest.raises(ValueError, match=r"kernel \(3, 3\) is larger than the padded input \(2, 2\)"):
        conv(tt.Tensor(np.zeros((1, 3, 2, 2), np.float32)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*\(3, 5, 5\)"):
        conv(tt.Tensor(np.zeros((3, 5, 5), np.float32)))
    with pytest.raises(ValueError, match=r"kernel \(4, 4\).*\(3, 3\)"):
        max_pool2d(tt.Tensor(np.zeros((1, 1, 3, 3), np.float32)), 4)
    with pytest.raises(TypeError, match="kernel_size"):
        Conv2d(1, 1, "3")


@pytest.mark.torch
def test_conv2d_layer_loads_a_torch_state_dict_and_matches(torch, rng):
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                 torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
                                 torch.nn.Flatten(), torch.nn.Linear(16 * 7 * 7, 10))
    ours = tt.nn.Sequential(Conv2d(1, 8, 3, padding=1), tt.nn.ReLU(), MaxPool2d(2),
                            Conv2d(8, 16, 3, padding=1), tt.nn.ReLU(), AvgPool2d(2),
                            Flatten(), tt.nn.Linear(16 * 7 * 7, 10))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = _data(rng, 4, 1, 28, 28)
    out, ref = ours(tt.Tensor(x)), theirs(torch.from_numpy(x))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    out.sum().backward()
    ref.sum().backward()
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, dict(theirs.named_parameters())[name].grad.numpy(),
                                   rtol=1e-3, atol=1e-4, err_msg=name)


@pytest.mark.torch
def test_the_batch_last_memory_format_flows_through_relu_and_pooling_with_torchs_numbers(torch, rng):
    """conv2d hands back a view with the batch innermost in memory; ReLU and pooling keep that order, and the
    gradients (a C-order one arriving from Flatten included, ties in the pooling windows included) match PyTorch."""
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                 torch.nn.Conv2d(4, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                 torch.nn.Flatten(), torch.nn.Linear(6 * 2 * 2, 3))
    ours = tt.nn.Sequential(Conv2d(1, 4, 3, padding=1), tt.nn.ReLU(), MaxPool2d(2),
                            Conv2d(4, 6, 3, padding=1), tt.nn.ReLU(), MaxPool2d(2),
                            Flatten(), FusedLinear(6 * 2 * 2, 3))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.round(_data(rng, 5, 1, 8, 8))                 # whole numbers: ties inside pooling windows
    out = tt.Tensor(x)
    for layer in [ours[i] for i in range(6)]:
        out = layer(out)
        assert out.data.strides[0] == out.data.itemsize, f"{type(layer).__name__} lost the batch-last order"
    got, ref = ours(tt.Tensor(x)), theirs(torch.from_numpy(x))
    np.testing.assert_allclose(got.data, ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = _data(rng, *got.shape)
    got.backward(g)
    ref.backward(torch.from_numpy(g))
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, dict(theirs.named_parameters())[name].grad.numpy(),
                                   rtol=1e-4, atol=1e-5, err_msg=name)


def test_conv2d_init_matches_pytorch_bound():
    tt.manual_seed(0)
    conv = Conv2d(16, 32, 5)
    bound = 1 / np.sqrt(16 * 25)
    w = conv.weight.data
    assert w.shape == (32, 16, 5, 5) and np.abs(w).max() <= bound
    assert np.isclose(w.std(), bound / np.sqrt(3), rtol=0.03)
    assert np.abs(conv.bias.data).max() <= bound


def test_flatten_keeps_the_batch_axis():
    x = tt.Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2), requires_grad=True)
    out = Flatten()(x)
    assert out.shape == (2, 12)
    out.sum().backward()
    assert np.array_equal(x.grad, np.ones((2, 3, 2, 2)))


def test_im2col_buffer_is_the_only_large_allocation(rng):
    """The forward pass allocates about the column buffer (9x the input) plus the reordered input and output."""
    import tracemalloc
    x = tt.Tensor(_data(rng, 64, 8, 14, 14))
    w = tt.Tensor(_data(rng, 16, 8, 3, 3))
    conv2d(x, w, padding=1)  # warm up
    tracemalloc.start()
    conv2d(x, w, padding=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    cols = 8 * 9 * 14 * 14 * 64 * 4
    out = 64 * 16 * 14 * 14 * 4
    padded = 8 * 16 * 16 * 64 * 4
    assert peak <= cols + 2 * out + padded + 64 * 1024, f"peak {peak} bytes for a {cols}-byte column buffer"


@pytest.mark.torch
@pytest.mark.parametrize("shape", [(64, 784), (3, 4, 784)])
def test_fused_linear_is_one_float32_node_matching_torch(torch, rng, shape):
    """The CNN's classifier as one `linear` node: float32 values and gradients within float32 precision of
    PyTorch's F.linear, the weight's gradient in the weight's own (out, in) layout."""
    fc = FusedLinear(784, 64)
    x = _data(rng, *shape)
    ours_x = tt.Tensor(x, requires_grad=True)
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, fc.weight.data, fc.bias.data)]
    out = fc(ours_x)
    assert out._op == "linear" and out._parents == (ours_x, fc.weight, fc.bias) and out.dtype == np.float32
    ref = torch.nn.functional.linear(*theirs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = _data(rng, *out.shape)
    out.backward(g)
    ref.backward(torch.from_numpy(g))
    for name, mine, other in zip(("x", "weight", "bias"), (ours_x, fc.weight, fc.bias), theirs):
        assert mine.grad.dtype == np.float32, name
        np.testing.assert_allclose(mine.grad, other.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
    assert fc.weight.data.flags.f_contiguous and fc.weight.grad.flags.f_contiguous, \
        "FusedLinear keeps its (out, in) weight column-major, and the weight's gradient in the same memory order"
    row_major = tt.Tensor(np.ascontiguousarray(fc.weight.data), requires_grad=True)   # module 04's layout
    linear(ours_x, row_major).backward(g)
    np.testing.assert_allclose(row_major.grad, fc.weight.grad, rtol=1e-6, atol=1e-6)
    assert row_major.grad.flags.c_contiguous, "a row-major weight gets a row-major gradient"


def test_fused_linear_gradients_match_finite_differences(rng):
    x, w, b = (tt.Tensor(rng.standard_normal(shape), requires_grad=True, dtype=np.float64)
               for shape in ((3, 5), (4, 5), (4,)))
    gradcheck(lambda x, w, b: linear(x, w, b), [x, w, b])
    gradcheck(lambda x, w: linear(x, w), [x, w])
    with pytest.raises(ValueError, match=r"expects inputs \(\.\.\., 5\)"):
        linear(tt.Tensor(np.ones((2, 4))), w)

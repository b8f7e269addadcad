"""Tensor ops (module 02) and autograd (module 05): values vs NumPy, gradients vs finite
differences in float64 on random broadcasting shapes, and vs PyTorch on the same inputs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinytorch as tt
from tinytorch.autograd import gradcheck, numerical_grad
from tests.strategies import broadcast_pairs, seeds, small_shapes, tensor_of

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@pytest.mark.parametrize("name", BINARY)
@given(shapes=broadcast_pairs, seed=seeds)
def test_binary_ops_broadcast_values_and_gradients(name, shapes, seed):
    (shape_a, shape_b), _ = shapes.input_shapes, shapes.result_shape
    a = tensor_of(shape_a, seed=seed)
    b = tensor_of(shape_b, low=0.5, high=2.0, seed=seed + 1)  # away from 0 for division
    op = BINARY[name]
    assert np.allclose(op(a, b).data, op(a.data, b.data))
    gradcheck(op, [a, b])


@pytest.mark.parametrize("name, fn, low", [
    ("exp", lambda x: x.exp(), -2.0),
    ("log", lambda x: x.log(), 0.5),
    ("sqrt", lambda x: x.sqrt(), 0.5),
    ("tanh", lambda x: x.tanh(), -2.0),
    ("neg", lambda x: -x, -2.0),
    ("pow3", lambda x: x ** 3, -2.0),
    ("pow-1.5", lambda x: x ** -1.5, 0.5),
    ("rsub", lambda x: 3.0 - x, -2.0),
    ("rdiv", lambda x: 2.0 / x, 0.5),
    ("rpow", lambda x: 2.0 ** x, -2.0),
])
@given(shape=small_shapes, seed=seeds)
def test_unary_ops_gradients(name, fn, low, shape, seed):
    gradcheck(fn, [tensor_of(shape, low=low, seed=seed)])


@given(shape=st.sampled_from([(3,), (2, 3), (2, 3, 4), (1, 4, 1)]), seed=seeds,
       keepdims=st.booleans(), data=st.data())
def test_reductions_values_and_gradients(shape, seed, keepdims, data):
    x = tensor_of(shape, seed=seed)
    axis = data.draw(st.sampled_from([None] + list(range(-len(shape), len(shape))) + [tuple(range(len(shape)))]))
    for name in ("sum", "mean", "max"):
        out = getattr(x, name)(axis=axis, keepdims=keepdims)
        assert np.allclose(out.data, getattr(x.data, name)(axis=axis, keepdims=keepdims)), name
        gradcheck(lambda t, name=name: getattr(t, name)(axis=axis, keepdims=keepdims), [x])


def test_max_shares_gradient_between_ties_like_torch_amax():
    x = tt.Tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    assert np.allclose(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


@given(seed=seeds)
def test_shape_ops_gradients(seed):
    x = tensor_of((2, 3, 4), seed=seed)
    gradcheck(lambda t: t.reshape(4, 6) * tt.Tensor(np.arange(24.0).reshape(4, 6)), [x])
    gradcheck(lambda t: t.transpose(0, 2) * tt.Tensor(np.arange(24.0).reshape(4, 3, 2)), [x])
    gradcheck(lambda t: t.permute(1, 2, 0).reshape(-1) * tt.Tensor(np.arange(24.0)), [x])
    gradcheck(lambda t: t.reshape(6, 4).T @ tt.Tensor(np.ones((6, 2))), [x])


@pytest.mark.parametrize("index", [
    1, -1, slice(0, 2), (0, slice(None), 2), (Ellipsis, 1), np.array([1, 1, 0]),
    (np.array([0, 1, 1]), np.array([2, 2, 0])), (slice(None), np.array([0, 2, 2, 2])),
], ids=repr)
def test_indexing_values_and_gradients_with_repeated_indices(index):
    x = tensor_of((2, 3, 4))
    assert np.allclose(x[index].data, x.data[index])
    weights = tt.Tensor(np.random.default_rng(1).standard_normal(x.data[index].shape))
    gradcheck(lambda t: t[index] * weights, [x])


@pytest.mark.parametrize("shape_a, shape_b", [
    ((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
    ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((1, 3, 4), (2, 4, 5)),
])
def test_matmul_batched_and_vector_operands(shape_a, shape_b):
    a, b = tensor_of(shape_a), tensor_of(shape_b, seed=3)
    assert np.allclose((a @ b).data, a.data @ b.data)
    gradcheck(lambda x, y: x @ y, [a, b])


def test_gradcheck_can_fail():
    """The oracle itself: a deliberately wrong gradient is caught and the input is named."""
    from tinytorch.autograd import GRADIENT_RULES
    original = GRADIENT_RULES["tanh"]
    GRADIENT_RULES["tanh"] = lambda out, grad: (grad * 2.0,)
    try:
        with pytest.raises(AssertionError, match="input 0"):
            gradcheck(lambda t: t.tanh(), [tensor_of((3,))])
    finally:
        GRADIENT_RULES["tanh"] = original


# ---- autograd engine ------------------------------------------------------------

def test_reused_node_accumulates():
    x = tt.Tensor([2.0], requires_grad=True)
    y = x * x          # x reused
    z = y + y * x      # y reused
    z.backward()
    assert np.allclose(x.grad, [2 * 2 + 3 * 4])  # d(x^2 + x^3) = 2x + 3x^2


def test_grad_accumulates_across_backward_calls_and_zero_grad_clears():
    w = tt.Tensor([1.0, 2.0], requires_grad=True)
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    assert np.allclose(w.grad, [6.0, 6.0])
    w.zero_grad()
    assert w.grad is None


def test_leaf_gradients_are_independent_arrays():
    a, b = tt.Tensor([1.0], requires_grad=True), tt.Tensor([2.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad += 10
    assert np.allclose(b.grad, [1.0])


def test_deep_chain_of_10000_ops_has_no_recursion_limit():
    x = tt.Tensor([0.5], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y + 0.0001 * y
    y.backward()
    assert np.isclose(x.grad[0], 1.0001 ** 10_000, rtol=1e-3)


def test_no_grad_records_nothing_and_is_a_decorator():
    w = tt.Tensor([1.0], requires_grad=True)
    with tt.no_grad():
        y = w * 2
    assert not y.requires_grad and y._parents == ()

    @tt.no_grad()
    def infer(t):
        return t * 2
    assert not infer(w).requires_grad
    assert (w * 2).requires_grad, "grad mode is restored after the block"


def test_backward_errors_are_clear():
    with pytest.raises(RuntimeError, match=r"shape \(2,\)"):
        tt.Tensor([1.0, 2.0], requires_grad=True).exp().backward()
    with pytest.raises(RuntimeError, match="does not require gradients"):
        tt.Tensor([1.0]).sum().backward()
    with pytest.raises(ValueError, match="grad of shape"):
        tt.Tensor([1.0, 2.0], requires_grad=True).exp().backward(np.ones(3))


def test_backward_with_explicit_grad_on_non_scalar():
    x = tt.Tensor([1.0, 2.0], requires_grad=True)
    (x * x).backward(np.array([1.0, 0.5]))
    assert np.allclose(x.grad, [2.0, 2.0])


def test_detach_cuts_the_graph():
    x = tt.Tensor([3.0], requires_grad=True)
    y = x * x.detach()
    y.backward()
    assert np.allclose(x.grad, [3.0])


def test_gradients_skip_inputs_that_need_none():
    x = tt.Tensor(np.ones((4, 3)))  # data: no gradient wanted
    w = tt.Tensor(np.ones((3, 2)), requires_grad=True)
    (x @ w).sum().backward()
    assert x.grad is None and np.allclose(w.grad, 4.0)


def test_float32_stays_float32_through_forward_and_backward():
    x = tt.Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    y = ((x * 2 + 1) / 3 - x ** 2).exp().mean()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32


# ---- bad input -------------------------------------------------------------------

@pytest.mark.parametrize("data, error, words", [
    (["a", "b"], TypeError, "numbers"),
    ({"a": 1}, TypeError, "numbers"),
    (None, TypeError, "numbers"),
    ([[1.0, 2.0], [3.0]], ValueError, "rectangular"),
])
def test_non_numeric_or_ragged_data_is_refused(data, error, words):
    with pytest.raises(error, match=words):
        tt.Tensor(data)


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        tt.Tensor(np.array([1, 2]), requires_grad=True)


def test_python_numbers_become_float32_and_arrays_keep_their_dtype():
    """As torch.Tensor([1, 2]): a list of Python ints is float32 (and may require gradients); arrays keep theirs."""
    assert tt.Tensor([1, 2], requires_grad=True).dtype == np.float32
    assert tt.Tensor(3).dtype == tt.Tensor(True).dtype == np.float32
    assert tt.Tensor(np.array([1, 2])).dtype == np.int64 and tt.Tensor(np.float64(2.0)).dtype == np.float64
    assert (tt.Tensor(np.array([1, 2])) * 2).dtype == np.int64, "an int tensor times a Python int stays int"
    assert tt.Tensor([1, 2], dtype=np.int32).dtype == np.int32


@pytest.mark.parametrize("shape_a, shape_b", [((2, 3), (2, 3)), ((3,), (4,)), ((2, 3, 4), (3, 4, 5))])
def test_matmul_shape_errors_name_both_shapes(shape_a, shape_b):
    with pytest.raises(ValueError) as info:
        tt.ones(*shape_a) @ tt.ones(*shape_b)
    assert str(shape_a) in str(info.value) and str(shape_b) in str(info.value)


def test_reshape_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        tt.ones(2, 3).reshape(4)


def test_item_needs_one_element():
    with pytest.raises(ValueError, match=r"\(2,\)"):
        tt.Tensor([1.0, 2.0]).item()


def test_numpy_interop():
    x = tt.Tensor([[1.0, 2.0]])
    assert isinstance(np.asarray(x), np.ndarray) and np.asarray(x).dtype == np.float32
    assert isinstance(np.ones(2) + x, tt.Tensor), "ndarray + Tensor must give a Tensor"
    assert x.numpy() is x.data


def test_numerical_grad_matches_a_known_derivative():
    x = tt.Tensor([1.0, 2.0], dtype=np.float64)
    (g,) = numerical_grad(lambda t: t * t * t, [x])
    assert np.allclose(g, 3 * x.data ** 2)


# ---- against PyTorch ----------------------------------------------------------------

@pytest.mark.torch
def test_ops_forward_and_backward_match_torch(torch):
    r = np.random.default_rng(0)
    a_np = r.standard_normal((2, 3, 4)).astype(np.float32)
    b_np = r.uniform(0.5, 2.0, (4, 5)).astype(np.float32)
    c_np = r.standard_normal((3, 1)).astype(np.float32)

    def compute(lib, a, b, c):
        if lib == "tt":
            h = (a @ b).tanh() * 2 - (a.sum(axis=-1, keepdims=True) / 3) ** 2
            h = h + c * h.max(axis=-1, keepdims=True)
            return (h.exp().mean(axis=0) + h[1, :, ::2].sum().tanh() + 2).log().sum() + a.T.reshape(-1)[np.array([0, 5, 5])].sum()
        h = (a @ b).tanh() * 2 - (a.sum(dim=-1, keepdim=True) / 3) ** 2
        h = h + c * h.amax(dim=-1, keepdim=True)
        return (h.exp().mean(dim=0) + h[1, :, ::2].sum().tanh() + 2).log().sum() + a.permute(2, 1, 0).reshape(-1)[[0, 5, 5]].sum()

    ours = [tt.Tensor(v, requires_grad=True) for v in (a_np, b_np, c_np)]
    theirs = [torch.tensor(v, requires_grad=True) for v in (a_np, b_np, c_np)]
    out, ref = compute("tt", *ours), compute("torch", *theirs)
    out.backward()
    ref.backward()
    assert np.allclose(out.item(), ref.item(), rtol=1e-5)
    for mine, expected in zip(ours, theirs):
        assert np.allclose(mine.grad, expected.grad.numpy(), rtol=1e-4, atol=1e-5)

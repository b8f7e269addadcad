"""Attention (module 13): masked softmax, scaled dot-product attention and positional encodings,
against finite differences and PyTorch, with the fully-masked-row rule and the error messages."""
from __future__ import annotations

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.attention import (LearnedPositionalEncoding, SinusoidalPositionalEncoding, attention_weights,
                                 causal_mask, masked_softmax, scaled_dot_product_attention, sinusoidal_positions)
from tinytorch.autograd import gradcheck


def _f64(rng, *shape):
    return tt.Tensor(rng.standard_normal(shape), requires_grad=True, dtype=np.float64)


@pytest.mark.torch
@pytest.mark.parametrize("shape,mask_kind", [((2, 4, 16, 8), "causal"), ((3, 5, 8), None),
                                             ((1, 2, 7, 4), "random"), ((2, 1, 1, 6), "causal")])
def test_attention_matches_torch_values_and_gradients(torch, rng, shape, mask_kind):
    arrays = [rng.standard_normal(shape) for _ in range(3)]
    T = shape[-2]
    mask = {"causal": causal_mask(T), None: None,
            "random": (rng.random((T, T)) < 0.6) | np.eye(T, dtype=bool)}[mask_kind]
    ours = [tt.Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = scaled_dot_product_attention(*ours, mask)
    ref = torch.nn.functional.scaled_dot_product_attention(
        *theirs, attn_mask=None if mask is None else torch.from_numpy(mask))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.from_numpy(g))
    for name, a, b in zip("qkv", ours, theirs):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)


def test_attention_gradients_match_finite_differences_with_cross_attention_shapes(rng):
    """T_q != T_k and d_v != d: the shapes attention must keep apart."""
    q, k, v = _f64(rng, 2, 3, 4), _f64(rng, 2, 5, 4), _f64(rng, 2, 5, 6)
    mask = rng.random((3, 5)) < 0.7
    gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask).tanh(), [q, k, v])


def test_fully_masked_rows_give_zero_output_and_zero_gradient_not_nan(rng):
    q, k, v = _f64(rng, 1, 4, 3), _f64(rng, 1, 4, 3), _f64(rng, 1, 4, 3)
    mask = causal_mask(4)
    mask[2] = False
    out = scaled_dot_product_attention(q, k, v, mask)
    assert np.isfinite(out.data).all() and np.array_equal(out.data[0, 2], np.zeros(3))
    out.sum().backward()
    for t in (q, k, v):
        assert np.isfinite(t.grad).all()
    assert np.array_equal(q.grad[0, 2], np.zeros(3))      # that query's output is constant


def test_masked_softmax_never_overflows_on_huge_masked_scores():
    scores = tt.Tensor(np.array([[1e30, 0.0, 1.0]], dtype=np.float32), requires_grad=True)
    w = masked_softmax(scores, np.array([[False, True, True]]))
    assert np.isfinite(w.data).all() and w.data[0, 0] == 0
    np.testing.assert_allclose(w.data[0, 1:], np.exp([0, 1]) / np.exp([0, 1]).sum(), rtol=1e-6)
    w.sum().backward()
    assert np.isfinite(scores.grad).all()


def test_attention_on_float32_stays_float32(rng):
    q = tt.Tensor(rng.standard_normal((2, 2, 5, 4)).astype(np.float32))
    assert scaled_dot_product_attention(q, q, q, causal_mask(5)).dtype == np.float32
    assert attention_weights(q, q).data.sum(-1) == pytest.approx(np.ones((2, 2, 5)), abs=1e-5)


@pytest.mark.parametrize("make,message", [
    (lambda: causal_mask(0), "at least one position"),
    (lambda: masked_softmax(np.zeros((2, 3)), np.ones((2, 3))), "booleans"),
    (lambda: masked_softmax(np.zeros((2, 3)), np.ones((4, 3), bool)), "does not broadcast"),
    (lambda: scaled_dot_product_attention(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 4))), "same d"),
    (lambda: scaled_dot_product_attention(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros((5, 3))), "same number of positions"),
    (lambda: sinusoidal_positions(4, 5), "even d"),
    (lambda: SinusoidalPositionalEncoding(8, 4)(np.zeros((1, 9, 4))), "at most 8 positions"),
    (lambda: LearnedPositionalEncoding(8, 4)(np.zeros((1, 3, 5))), "expects inputs"),
])
def test_bad_inputs_raise_clear_errors(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_learned_positions_train_and_sinusoidal_ones_do_not(rng):
    x = tt.Tensor(rng.standard_normal((2, 6, 4)).astype(np.float32))
    learned, fixed = LearnedPositionalEncoding(8, 4), SinusoidalPositionalEncoding(8, 4)
    assert [p.shape for p in learned.parameters()] == [(8, 4)] and fixed.parameters() == []
    learned(x).sum().backward()
    assert np.array_equal(learned.weight.grad[:6], np.full((6, 4), 2.0)) and not learned.weight.grad[6:].any()


@pytest.mark.torch
def test_sinusoidal_table_matches_the_formula_in_float64(torch):
    T, d = 30, 16
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-np.log(10000.0) / d))
    ref = torch.zeros(T, d, dtype=torch.float64)
    ref[:, 0::2], ref[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    np.testing.assert_allclose(sinusoidal_positions(T, d), ref.numpy(), atol=1e-6)


def test_fused_masked_softmax_matches_the_composed_one_values_and_gradients():
    from tinytorch.attention import fused_masked_softmax, masked_softmax
    r = np.random.default_rng(5)
    scores = r.standard_normal((2, 3, 6, 6))
    mask = causal_mask(6)
    mask[2] = False                                   # a fully masked row
    upstream = r.standard_normal((2, 3, 6, 6))
    results = []
    for fn in (masked_softmax, fused_masked_softmax):
        s = tt.Tensor(scores, requires_grad=True, dtype=np.float64)
        out = fn(s, mask)
        (out * tt.Tensor(upstream)).sum().backward()
        results.append((out.data, s.grad))
    assert np.allclose(results[0][0], results[1][0], atol=1e-12)
    assert np.allclose(results[0][1], results[1][1], atol=1e-12)
    assert not results[1][0][:, :, 2].any() and not results[1][1][:, :, 2].any()


def test_fused_masked_softmax_keeps_the_scores_memory_order():
    """Module 14 hands it keys-major scores (computed as k qᵀ, viewed transposed); the weights keep that order."""
    from tinytorch.attention import fused_masked_softmax
    scores = np.random.default_rng(6).standard_normal((2, 3, 6, 6)).astype(np.float32)
    keys_major = np.ascontiguousarray(scores.swapaxes(-1, -2)).swapaxes(-1, -2)   # same numbers, other order
    mask = causal_mask(6)
    mask[2] = False                                   # a fully masked row
    for m in (mask, None):
        weights = fused_masked_softmax(keys_major, m).data
        assert weights.swapaxes(-1, -2).flags.c_contiguous, "the weights lost the scores' memory order"
        np.testing.assert_allclose(weights, fused_masked_softmax(scores, m).data, rtol=1e-6, atol=1e-7)
    assert not fused_masked_softmax(keys_major, mask).data[:, :, 2].any()

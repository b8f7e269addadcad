"""Module 13 (attention), hidden correctness: masks with fully masked rows, batched multi-head shapes,
gradients through attention, cross-attention lengths, odd table sizes."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe, same

name = "13_attention correctness"
kind = "correctness"

R = np.random.default_rng(131)
Q = R.normal(size=(2, 3, 5, 4)).astype(np.float32)      # (B, H, T_q, d)
K = R.normal(size=(2, 3, 6, 4)).astype(np.float32)      # (B, H, T_k, d)
V = R.normal(size=(2, 3, 6, 7)).astype(np.float32)      # (B, H, T_k, d_v)
SCORES = (R.normal(size=(2, 4, 4)) * 50).astype(np.float32)


@probe
def masks(tt, scores):
    from tinytorch.attention import causal_mask, masked_softmax
    mask = np.array([[True, False, True, False], [False, False, False, False],
                     [True, True, True, True], [False, False, False, True]])
    s = tt.Tensor(scores, requires_grad=True)
    weights = masked_softmax(s, mask)
    (weights * tt.Tensor(np.arange(32, dtype=np.float32).reshape(2, 4, 4))).sum().backward()
    return {"causal_mask(1)": causal_mask(1), "causal_mask(6)": causal_mask(6), "weights (a fully masked row)": weights.data,
            "gradient of the scores": s.grad}


@probe
def attention(tt, q, k, v):
    from tinytorch.attention import attention_weights, causal_mask, scaled_dot_product_attention
    qs, ks, vs = (tt.Tensor(a, requires_grad=True) for a in (q, k, v))
    out = scaled_dot_product_attention(qs, ks, vs)        # cross-attention: 5 queries, 6 keys
    (out * out).sum().backward()
    square = tt.Tensor(k[:, :, :6])
    causal = attention_weights(square, square, causal_mask(6))
    return {"output": out.data, "grad of q": qs.grad, "grad of k": ks.grad, "grad of v": vs.grad,
            "causal self-attention weights": causal.data}


@probe
def positions(tt):
    from tinytorch.attention import sinusoidal_positions
    return {"sinusoidal_positions(1, 2)": sinusoidal_positions(1, 2), "sinusoidal_positions(50, 6)": sinusoidal_positions(50, 6),
            "sinusoidal_positions(3, 128)": sinusoidal_positions(3, 128)}


@test_case(points=2)
def test_masked_softmax_with_a_fully_masked_row():
    """Scores up to +-150 with a mask that blocks a whole row: zeros there, not nan; gradients too."""
    same(masks, SCORES, rtol=1e-4, atol=1e-6)


@test_case(points=3)
def test_attention_shapes_and_gradients():
    """(B, H, T, d) cross-attention with 5 queries and 6 keys, d_v != d: output and three gradients; causal weights."""
    same(attention, Q, K, V, rtol=1e-4, atol=1e-5)


@test_case(points=1)
def test_sinusoidal_tables():
    """Position tables for one position, long sequences and wide models."""
    same(positions, rtol=1e-5, atol=1e-6)

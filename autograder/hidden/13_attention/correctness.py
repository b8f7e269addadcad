"""Module 13 (attention), hidden correctness: masks with fully masked rows, batched multi-head shapes,
gradients through attention, cross-attention lengths, odd table sizes."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "13_attention correctness"
kind = "correctness"

R = np.random.default_rng(131)
Q = R.normal(size=(2, 3, 5, 4)).astype(np.float32)      # (B, H, T_q, d)
K = R.normal(size=(2, 3, 6, 4)).astype(np.float32)      # (B, H, T_k, d)
V = R.normal(size=(2, 3, 6, 7)).astype(np.float32)      # (B, H, T_k, d_v)
SCORES = (R.normal(size=(2, 4, 4)) * 50).astype(np.float32)


@test_case(name="test_masked_softmax_with_a_fully_masked_row", points=2)
@same_as_reference(SCORES, rtol=1e-4, atol=1e-6)
@probe
def masks(tt, scores):
    """Scores up to +-150 with a mask that blocks a whole row: zeros there, not nan; gradients too."""
    from tinytorch.attention import causal_mask, masked_softmax
    mask = np.array([[True, False, True, False], [False, False, False, False],
                     [True, True, True, True], [False, False, False, True]])
    s = tt.Tensor(scores, requires_grad=True)
    weights = masked_softmax(s, mask)
    (weights * tt.Tensor(np.arange(32, dtype=np.float32).reshape(2, 4, 4))).sum().backward()
    return {"causal_mask(1)": causal_mask(1), "causal_mask(6)": causal_mask(6), "weights (a fully masked row)": weights.data,
            "gradient of the scores": s.grad}


@test_case(name="test_attention_shapes_and_gradients", points=3)
@same_as_reference(Q, K, V, rtol=1e-4, atol=1e-5)
@probe
def attention(tt, q, k, v):
    """(B, H, T, d) cross-attention with 5 queries and 6 keys, d_v != d: output and three gradients; causal weights."""
    from tinytorch.attention import attention_weights, causal_mask, scaled_dot_product_attention
    qs, ks, vs = (tt.Tensor(a, requires_grad=True) for a in (q, k, v))
    out = scaled_dot_product_attention(qs, ks, vs)        # cross-attention: 5 queries, 6 keys
    (out * out).sum().backward()
    square = tt.Tensor(k[:, :, :6])
    causal = attention_weights(square, square, causal_mask(6))
    return {"output": out.data, "grad of q": qs.grad, "grad of k": ks.grad, "grad of v": vs.grad,
            "causal self-attention weights": causal.data}


@test_case(name="test_sinusoidal_tables", points=1)
@same_as_reference(rtol=1e-5, atol=1e-6)
@probe
def positions(tt):
    """Position tables for one position, long sequences and wide models."""
    from tinytorch.attention import sinusoidal_positions
    return {"sinusoidal_positions(1, 2)": sinusoidal_positions(1, 2), "sinusoidal_positions(50, 6)": sinusoidal_positions(50, 6),
            "sinusoidal_positions(3, 128)": sinusoidal_positions(3, 128)}

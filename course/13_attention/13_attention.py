# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 13 — Attention
#
# A convolution looks at a fixed neighbourhood. A sentence needs more: the
# word "it" may refer to a noun twenty words back. **Attention** lets every
# position look at every other position and decide, from the data, how much
# each one matters.
#
# Each position produces three vectors (module 14 makes them with Linear
# layers): a **query** `q` (what am I looking for?), a **key** `k` (what do I
# contain?) and a **value** `v` (what do I pass on?). Position `i` scores
# every position `j` by the dot product `q_i · k_j`, turns the scores into
# weights with a softmax, and returns the weighted average of the values:
#
# ```
# Attention(Q, K, V) = softmax(Q Kᵀ / √d) V        Q, K, V: (B, H, T, d)
# ```
#
# * `B` batch, `H` heads (module 14), `T` positions, `d` numbers per head.
# * Dividing by `√d` keeps the scores' spread near 1 whatever `d` is: a dot
#   product of `d` random unit-variance numbers has variance `d`, and a
#   softmax of large scores is nearly one-hot, with nearly zero gradients.
# * A **mask** says which positions may be looked at. A language model that
#   predicts the next character must not peek at it: position `i` may only
#   attend to `j <= i`, the **causal** mask.
#
# Attention has no notion of order: shuffle the positions and the outputs
# shuffle the same way. **Positional encodings** add where a token is to what
# it is: fixed sine waves (the original Transformer) or a learned vector per
# position (GPT).
#
# The systems view: the score matrix is `T × T` per head. Everything else in
# a transformer grows linearly with the sequence length; this grows with its
# square. You will measure it.

# %%
#| default_exp attention

# %%
#| export
"""Scaled dot-product attention, masks and positional encodings (module 13)."""
from __future__ import annotations

import math

import numpy as np

from tinytorch.activations import softmax
from tinytorch.autograd import Gradients, gradient_rule
from tinytorch.layers import Module, Parameter
from tinytorch.tensor import Tensor, TensorLike, _make, as_tensor, rng


# %% [markdown]
# ## Masks
#
# A mask is a boolean array that broadcasts against the scores `(B, H, T, T)`:
# `True` where query `i` **may** attend to key `j` (PyTorch's convention for
# boolean `attn_mask`). The causal mask is the lower triangle, diagonal
# included: every position sees itself and the past.

# %% nbgrader={"grade": false, "grade_id": "causal-mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def causal_mask(T: int) -> np.ndarray:
    """(T, T) booleans, True where query i may attend to key j, that is j <= i."""
    if T < 1:
        raise ValueError(f"causal_mask needs at least one position, got T={T}")
    ### BEGIN SOLUTION
    return np.tril(np.ones((T, T), dtype=bool))
    ### END SOLUTION


# %% [markdown]
# ## A softmax that respects the mask
#
# The usual trick fills masked scores with `-inf` before the softmax, so
# their weights become `exp(-inf) = 0`. It has a trap: a row where *every*
# key is masked (a padded query, or a mask built wrong) becomes
# `-inf - (-inf) = NaN`, and the NaN spreads through every later layer and
# every gradient. Our rule instead: **a fully masked row gets all-zero
# weights**, so that query's output is zero and no gradient flows through it.
#
# Build it from Tensor operations so that autograd handles the gradient:
#
# 1. the row maximum over the *allowed* scores only (a constant, as in module
#    03's softmax; use 0 for a fully masked row);
# 2. `e = exp((scores - max) * keep) * keep` with `keep` the mask as 0/1
#    floats: masked entries are set to 0 before the `exp` (so a huge masked
#    score cannot overflow) and to 0 after it;
# 3. divide by the row sum, plus 1 for a fully masked row (whose sum is 0).

# %% nbgrader={"grade": false, "grade_id": "masked-softmax", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _boolean_mask(mask: TensorLike, shape: tuple[int, ...]) -> np.ndarray:
    """The mask as booleans of the scores' shape (a broadcast view), or an error naming what is wrong."""
    mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if mask.dtype != bool:
        raise TypeError(f"an attention mask must be booleans (True = may attend), got dtype {mask.dtype}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(f"mask of shape {mask.shape} does not broadcast to the scores' shape {shape}") from None


def masked_softmax(scores: TensorLike, mask: TensorLike | None = None) -> Tensor:
    """Softmax over the last axis using only the positions where `mask` is True.

    Rows with no allowed position get all-zero weights (not NaN). `mask=None` is a plain softmax.
    """
    scores = as_tensor(scores)
    if mask is None:
        return softmax(scores, axis=-1)
    mask = _boolean_mask(mask, scores.shape)
    ### BEGIN SOLUTION
    row_max = np.where(mask, scores.data, -np.inf).max(axis=-1, keepdims=True)
    row_max[~np.isfinite(row_max)] = 0           # fully masked rows: any finite shift will do
    keep = mask.astype(scores.dtype)
    e = ((scores - row_max) * keep).exp() * keep  # masked entries: 0 before exp (no overflow), 0 after
    empty = (~mask.any(axis=-1, keepdims=True)).astype(scores.dtype)
    return e / (e.sum(axis=-1, keepdims=True) + empty)
    ### END SOLUTION


# %% [markdown]
# ## Fusing the softmax: one primitive, one saved array
#
# `masked_softmax` above is correct, and autograd differentiates it for free.
# But it is eight Tensor operations on `(B, H, T, T)` arrays, and autograd
# keeps each intermediate alive for the backward pass and walks back through
# each. Attention calls it in every layer, on the largest arrays of the model.
#
# The softmax has a short gradient of its own. With `p = softmax(s)` along a
# row and `g` the gradient of the weights:
#
# ```
# ds = p * (g - sum(g * p))          the sum along the row, one number per row
# ```
#
# It needs only `p`, the output, which the graph keeps anyway. So
# `fused_masked_softmax` computes the same numbers straight in NumPy (masked
# entries set to `-inf` before the `exp`, so they come out 0; a fully masked
# row divides by 1 instead of 0), records one op, `"softmax"`, and registers
# the rule above: a primitive, as module 09 made `conv2d` and module 14 will
# make GELU. Its weights keep the scores' memory order (`np.empty_like`), so a
# caller that lays its scores out differently keeps that layout (module 14
# does, for speed). Masked and fully masked positions need no special case
# in the backward pass: their `p` is 0. The analysis below measures what it saves;
# the tests check it against the composed `masked_softmax`, values and
# gradients. This one is given: read it, it is the pattern of every fused
# primitive.

# %%
#| export
def fused_masked_softmax(scores: TensorLike, mask: TensorLike | None = None) -> Tensor:
    """masked_softmax's numbers as one primitive (op "softmax"): one saved array, the weights themselves."""
    scores = as_tensor(scores)
    weights = np.empty_like(scores.data, dtype=np.result_type(scores.dtype, np.float32))  # the scores' memory order
    if mask is None:
        np.copyto(weights, scores.data)                                           # then everything in place
    else:
        weights.fill(-np.inf)                                                     # masked: exp gives 0
        np.copyto(weights, scores.data, where=_boolean_mask(mask, scores.shape))
    row_max = weights.max(axis=-1, keepdims=True)
    row_max[~np.isfinite(row_max)] = 0                                            # fully masked rows
    weights -= row_max
    np.exp(weights, out=weights)
    total = weights.sum(axis=-1, keepdims=True)
    total[total == 0] = 1                                                         # fully masked rows stay 0
    weights /= total
    return _make(weights, "softmax", (scores,))


@gradient_rule("softmax")
def softmax_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    p = out.data
    d = grad * p                                       # g * p, then in place: p * (g - sum(g * p))
    d -= p * d.sum(axis=-1, keepdims=True)
    return (d,)


# %% [markdown]
# ## Scaled dot-product attention
#
# Two functions, one idea each: `attention_weights` gives the `(…, T_q, T_k)`
# weights (useful to look at), `scaled_dot_product_attention` applies them
# to the values. Any number of leading (batch, head) dimensions works,
# because `@` batches over them.

# %% nbgrader={"grade": false, "grade_id": "attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def attention_weights(q: TensorLike, k: TensorLike, mask: TensorLike | None = None) -> Tensor:
    """softmax(q kᵀ / √d) with the mask applied: shape (..., T_q, T_k)."""
    q, k = as_tensor(q), as_tensor(k)
    if q.ndim < 2 or k.ndim < 2 or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries and keys need shapes (..., T, d) with the same d, got {q.shape} and {k.shape}")
    ### BEGIN SOLUTION
    # Scale q (T × d numbers) rather than the scores (T × T): same result, one T × T array fewer to keep.
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    return fused_masked_softmax(scores, mask)          # masked_softmax's numbers, one primitive
    ### END SOLUTION


def scaled_dot_product_attention(q: TensorLike, k: TensorLike, v: TensorLike, mask: TensorLike | None = None) -> Tensor:
    """Attention(q, k, v) = softmax(q kᵀ / √d) v over the last two axes; mask True = may attend.

    q: (..., T_q, d), k: (..., T_k, d), v: (..., T_k, d_v) -> (..., T_q, d_v).
    """
    k, v = as_tensor(k), as_tensor(v)
    if v.ndim < 2 or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"keys and values need the same number of positions, got {k.shape} and {v.shape}")
    ### BEGIN SOLUTION
    return attention_weights(q, k, mask) @ v
    ### END SOLUTION


# %% [markdown]
# ## Positional encodings
#
# **Sinusoidal** (Vaswani et al., 2017): position `pos` gets, for each pair of
# dimensions `2i, 2i+1`,
#
# ```
# PE[pos, 2i]   = sin(pos / 10000^(2i/d))
# PE[pos, 2i+1] = cos(pos / 10000^(2i/d))
# ```
#
# Low dimensions oscillate fast, high ones slowly, like the hands of a clock;
# nothing is learned and any length can be encoded. **Learned** encodings
# (GPT) are simply a `(max_len, d)` Parameter: more flexible, but they know
# nothing about positions beyond `max_len`.

# %% nbgrader={"grade": false, "grade_id": "sinusoidal", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def sinusoidal_positions(T: int, d: int) -> np.ndarray:
    """The (T, d) float32 table of sinusoidal position encodings; d must be even."""
    if T < 1 or d < 2 or d % 2:
        raise ValueError(f"sinusoidal_positions needs T >= 1 and an even d >= 2, got T={T}, d={d}")
    ### BEGIN SOLUTION
    position = np.arange(T)[:, None]                       # (T, 1)
    frequency = 10000.0 ** (-np.arange(0, d, 2) / d)      # (d/2,)
    table = np.empty((T, d))
    table[:, 0::2] = np.sin(position * frequency)
    table[:, 1::2] = np.cos(position * frequency)
    return table.astype(np.float32)
    ### END SOLUTION


# %%
#| export
class SinusoidalPositionalEncoding(Module):
    """x + PE[:T] for inputs (B, T, d): fixed, nothing to learn."""

    def __init__(self, max_len: int, d: int):
        self.max_len, self.d = max_len, d
        self.table = sinusoidal_positions(max_len, d)  # an array, not a Parameter: not trained

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        _check_positions(self, x)
        return x + self.table[: x.shape[-2]]


class LearnedPositionalEncoding(Module):
    """x + P[:T] with P a (max_len, d) Parameter (GPT-2's choice), initialised with std 0.02."""

    def __init__(self, max_len: int, d: int):
        self.max_len, self.d = max_len, d
        self.weight = Parameter((rng().standard_normal((max_len, d)) * 0.02).astype(np.float32))

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        _check_positions(self, x)
        return x + self.weight[: x.shape[-2]]


def _check_positions(encoding: SinusoidalPositionalEncoding | LearnedPositionalEncoding, x: Tensor) -> None:
    if x.ndim < 2 or x.shape[-1] != encoding.d:
        raise ValueError(f"{type(encoding).__name__} expects inputs (..., T, {encoding.d}), got {x.shape}")
    if x.shape[-2] > encoding.max_len:
        raise ValueError(f"{type(encoding).__name__} encodes at most {encoding.max_len} positions, "
                         f"got a sequence of {x.shape[-2]}")


# %% [markdown]
# ## See it work: attention as a soft dictionary lookup
#
# Three keys point in three directions; a query close to the second key
# gets (almost) the second value. Scale the query up and the softmax becomes
# a hard lookup.

# %%
keys = np.eye(3, dtype=np.float32)                       # three orthogonal keys
values = np.array([[0.0], [10.0], [100.0]], dtype=np.float32)
for strength in (1.0, 5.0, 20.0):
    query = np.array([[0.0, strength, 0.0]], dtype=np.float32)
    w = attention_weights(query, keys)
    print(f"query strength {strength:4}: weights {np.round(w.data, 3)} -> output "
          f"{scaled_dot_product_attention(query, keys, values).data.ravel()}")
print("causal mask for T=4:\n", causal_mask(4).astype(int))

# %% [markdown]
# ## Tests

# %% nbgrader={"grade": true, "grade_id": "test-causal-mask", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""The causal mask lets position i see positions 0..i and nothing later."""
m = causal_mask(4)
assert m.shape == (4, 4), f"got m.shape = {m.shape!r}"
assert m.dtype == bool, f"got m.dtype = {m.dtype!r}; bool = {bool!r}"
assert m[2].tolist() == [True, True, True, False], f"got m[2].tolist() = {m[2].tolist()!r}"
assert m[0].tolist() == [True, False, False, False], f"got m[0].tolist() = {m[0].tolist()!r}"
assert m[3].all(), f"the last position sees every position, got m[3] = {m[3].tolist()}"

# %% nbgrader={"grade": true, "grade_id": "test-masked-softmax", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Masked softmax: rows sum to 1 over allowed positions, masked weights are 0, a fully masked row is all 0 (no NaN)."""
scores = Tensor(np.array([[1.0, 2.0, 3.0], [1.0, 1000.0, 3.0], [5.0, 6.0, 7.0]]), dtype=np.float64)
mask = np.array([[True, True, False], [True, False, True], [False, False, False]])
w = masked_softmax(scores, mask).data
assert np.isfinite(w).all(), w
assert np.allclose(w[0], [np.exp(1) / (np.exp(1) + np.exp(2)), np.exp(2) / (np.exp(1) + np.exp(2)), 0]), \
    f"got w[0] = {w[0]!r}; [np.exp(1) / (np.exp(1) + np.exp(2)), np.exp(2) / (np.exp(1) + np.exp(2)), 0] = {[np.exp(1) / (np.exp(1) + np.exp(2)), np.exp(2) / (np.exp(1) + np.exp(2)), 0]!r}"
assert np.allclose(w[1], [np.exp(1) / (np.exp(1) + np.exp(3)), 0, np.exp(3) / (np.exp(1) + np.exp(3))]), \
    f"got w[1] = {w[1]!r}; [np.exp(1) / (np.exp(1) + np.exp(3)), 0, np.exp(3) / (np.exp(1) + np.exp(3))] = {[np.exp(1) / (np.exp(1) + np.exp(3)), 0, np.exp(3) / (np.exp(1) + np.exp(3))]!r}"
assert np.array_equal(w[2], [0, 0, 0]), f"got w[2] = {w[2]!r}"
assert np.allclose(masked_softmax(scores, np.ones((3, 3), bool)).data, softmax(scores).data), \
    f"got masked_softmax(scores, np.ones((3, 3), bool)).data = {masked_softmax(scores, np.ones((3, 3), bool)).data!r}; softmax(scores).data = {softmax(scores).data!r}"
assert np.allclose(fused_masked_softmax(scores, mask).data, w, atol=1e-12), \
    f"the fused softmax (given) and yours differ: got {fused_masked_softmax(scores, mask).data!r} and {w!r}"

# %% nbgrader={"grade": true, "grade_id": "test-attention-values", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Attention returns the softmax-weighted average of the values, batched over leading dimensions."""
r = np.random.default_rng(0)
q, k, v = r.standard_normal((2, 3, 5, 4)), r.standard_normal((2, 3, 6, 4)), r.standard_normal((2, 3, 6, 7))
out = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v)).data
scores = q @ k.swapaxes(-1, -2) / 2.0
expected = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True) @ v
assert out.shape == (2, 3, 5, 7), f"got out.shape = {out.shape!r}"
assert np.allclose(out, expected), f"got out = {out!r}; expected = {expected!r}"

# %% nbgrader={"grade": true, "grade_id": "test-attention-causal", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""With the causal mask, changing a later position's key or value never changes an earlier output."""
r = np.random.default_rng(1)
q, k, v = (r.standard_normal((1, 5, 4)) for _ in range(3))
before = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), causal_mask(5)).data
k[0, 3:] += 100.0
v[0, 3:] -= 100.0
after = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), causal_mask(5)).data
assert np.allclose(before[0, :3], after[0, :3]), \
    f"got before[0, :3] = {before[0, :3]!r}; after[0, :3] = {after[0, :3]!r}"
assert not np.allclose(before[0, 3:], after[0, 3:]), \
    f"got before[0, 3:] = {before[0, 3:]!r}; after[0, 3:] = {after[0, 3:]!r}"

# %% nbgrader={"grade": true, "grade_id": "test-attention-gradients", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Gradients of masked attention with respect to q, k and v agree with finite differences."""
from tinytorch.autograd import gradcheck
r = np.random.default_rng(2)
q, k, v = (Tensor(r.standard_normal((2, 4, 3)), requires_grad=True, dtype=np.float64) for _ in range(3))
mask = causal_mask(4)
mask[1, :] = False          # a fully masked row: zero output, zero gradient, no NaN
gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask), [q, k, v])

# %% nbgrader={"grade": true, "grade_id": "test-positions", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""Sinusoidal encodings: position 0 is (0, 1, 0, 1, ...), values match the formula, every position differs."""
pe = sinusoidal_positions(50, 8)
assert pe.shape == (50, 8), f"got pe.shape = {pe.shape!r}"
assert pe.dtype == np.float32, f"got pe.dtype = {pe.dtype!r}"
assert np.allclose(pe[0], [0, 1, 0, 1, 0, 1, 0, 1]), f"got pe[0] = {pe[0]!r}"
assert np.isclose(pe[7, 2], np.sin(7 / 10000 ** (2 / 8))), \
    f"got pe[7, 2] = {pe[7, 2]!r}; np.sin(7 / 10000 ** (2 / 8)) = {np.sin(7 / 10000 ** (2 / 8))!r}"
assert np.isclose(pe[7, 3], np.cos(7 / 10000 ** (2 / 8))), \
    f"got pe[7, 3] = {pe[7, 3]!r}; np.cos(7 / 10000 ** (2 / 8)) = {np.cos(7 / 10000 ** (2 / 8))!r}"
assert len({row.tobytes() for row in pe}) == 50, \
    f"every position should get its own encoding, got {len({row.tobytes() for row in pe})} distinct rows of 50"
x = Tensor(np.zeros((2, 10, 8), dtype=np.float32))
assert np.allclose(SinusoidalPositionalEncoding(16, 8)(x).data[1], pe[:10]), \
    f"got SinusoidalPositionalEncoding(16, 8)(x).data[1] = {SinusoidalPositionalEncoding(16, 8)(x).data[1]!r}; pe[:10] = {pe[:10]!r}"
assert LearnedPositionalEncoding(16, 8)(x).shape == (2, 10, 8), \
    f"got LearnedPositionalEncoding(16, 8)(x).shape = {LearnedPositionalEncoding(16, 8)(x).shape!r}"

# %% [markdown]
# ## Memory and performance analysis
#
# Predict first: for one head and one sequence, the scores are `T × T`
# float32 numbers, and the softmax keeps a few arrays of that size alive for
# the backward pass. Double `T` and that memory quadruples, while `q`, `k`,
# `v` only double. Measure the peak of a forward pass with 4 heads of 32
# dimensions.

# %%
from tinytorch.profiler import Profile, format_bytes, measure

r = np.random.default_rng(0)
print(f"{'T':>5} {'q,k,v bytes':>12} {'one T×T array':>14} {'peak (fwd)':>12} {'time':>9}")
for T in (64, 128, 256, 512):
    q, k, v = (Tensor(r.standard_normal((1, 4, T, 32)).astype(np.float32), requires_grad=True) for _ in range(3))
    mask = causal_mask(T)
    with Profile(f"T={T}") as p:
        out = scaled_dot_product_attention(q, k, v, mask)
    seconds = measure(scaled_dot_product_attention, q, k, v, mask, repeat=3).seconds
    print(f"{T:5d} {format_bytes(3 * q.data.nbytes):>12} {format_bytes(4 * 4 * T * T):>14} "
          f"{format_bytes(p.peak_bytes):>12} {seconds * 1e3:7.2f} ms")

# %% [markdown]
# The peak grows about 4x per doubling of `T` once the `T × T` arrays
# dominate: the scores and the weights stay alive for the backward pass.
# With the composed `masked_softmax`, autograd would keep every intermediate
# too (the shifted scores, `e`, the masked copies). What fusing saved, forward
# and backward at `T = 256`:

# %%
def attention_step(softmax_fn, q, k, v, mask):
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    out = softmax_fn(scores, mask) @ v
    out.backward(np.ones(out.shape, dtype=np.float32))


q, k, v = (Tensor(r.standard_normal((4, 4, 256, 32)).astype(np.float32), requires_grad=True) for _ in range(3))
mask = causal_mask(256)
for softmax_fn in (masked_softmax, fused_masked_softmax):
    m = measure(attention_step, softmax_fn, q, k, v, mask, repeat=5, label=softmax_fn.__name__)
    print(f"{softmax_fn.__name__:21s} forward + backward: {m.seconds * 1e3:6.1f} ms, peak {format_bytes(m.peak_bytes)}")

# %% [markdown]
# FlashAttention goes further and stores no `T × T` array at all: it
# computes the softmax tile by tile with a running maximum and recomputes the
# tiles in the backward pass, trading arithmetic for memory.

# %% [markdown]
# ## Comparison with PyTorch
#
# `torch.nn.functional.scaled_dot_product_attention` with a boolean mask uses
# the same convention (True = may attend). Compare outputs and gradients on
# rows that are not fully masked (PyTorch returns NaN for a fully masked row
# in some of its kernels; we return zeros).

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed("13_attention")

if torch is not None:
    r = np.random.default_rng(0)
    arrays = [r.standard_normal((2, 4, 16, 8)) for _ in range(3)]
    ours = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    mask = causal_mask(16)
    out = scaled_dot_product_attention(*ours, mask)
    ref = torch.nn.functional.scaled_dot_product_attention(*theirs, attn_mask=torch.from_numpy(mask))
    (out * out).sum().backward()
    (ref * ref).sum().backward()
    print("max output difference:", np.abs(out.data - ref.detach().numpy()).max())
    for name, a, b in zip("qkv", ours, theirs):
        print(f"max gradient difference for {name}:", np.abs(a.grad - b.grad.numpy()).max())

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** How does attention's memory grow with the sequence length `T`?
# Estimate the bytes of one float32 score matrix for a batch of 8, 12 heads
# and `T = 4096`, per layer. What would you change to train at that length?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-attention-memory", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Quadratically: B·H·T² numbers. 8·12·4096²·4 bytes ≈ 6.4 GB per layer for the
# scores alone, and the softmax keeps several such arrays for backward.
# Remedies: tile the computation and never store the T×T matrix
# (FlashAttention: running max/sum, recompute in backward), activation
# checkpointing, smaller batches, or sparse/local/sliding-window attention.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** Why divide the scores by `√d`? What happens to the softmax and to
# its gradient if you do not, for `d = 512`?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-attention-scale", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# q·k is a sum of d products: with unit-variance entries its variance is d,
# so std ≈ 22.6 for d = 512. The softmax of such scores is almost one-hot and
# its gradient (y(g - Σ g y)) is almost zero: training stalls. Dividing by √d
# brings the variance back to 1 whatever d is.
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** With a causal mask, a transformer is trained on all `T` positions
# of a sequence in one forward pass, yet it generates text one token at a
# time. Explain both halves.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-attention-causal", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# In training the whole sequence is known: the mask ensures position i's
# output depends only on tokens <= i, so all T next-token predictions are
# computed in parallel as matrix products. In generation token i+1 is not
# known until it has been sampled from position i's output, so each step
# needs the previous one: inherently sequential.
# === END MARK SCHEME ===

# %% [markdown]
# **Q4.** Why give a fully masked row zero weights instead of letting the
# `-inf` trick produce NaN? Where can fully masked rows occur in practice?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-attention-masked-row", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# One NaN propagates through every later layer, the loss and all gradients,
# destroying the whole model after one optimizer step, and is hard to trace.
# Fully masked rows occur with padding masks (a padded query position in a
# batch of variable-length sequences) or combined padding + causal masks.
# Zero output is defined, harmless for padded positions, and gives no gradient.
# === END MARK SCHEME ===

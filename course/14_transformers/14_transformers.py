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
# # Module 14 — Transformers
#
# Module 13's attention mixes information *between* positions. A transformer
# block alternates it with an MLP that works on each position alone, and
# wraps both in the two tricks that make deep networks trainable:
#
# ```
# x = x + Attention(LayerNorm(x))     # communicate
# x = x + MLP(LayerNorm(x))           # compute
# ```
#
# * **Residual connections** (`x + ...`): the gradient reaches early layers
#   through the additions untouched, however deep the stack.
# * **LayerNorm** rescales each position's vector to mean 0 and variance 1
#   (then a learned scale and shift), keeping activations in a range where
#   the next layer learns well. GPT-2 puts it *before* each sub-layer
#   ("pre-LN"), which trains without a warm-up.
# * **Multi-head attention** runs `H` attentions of `d = C/H` dimensions side
#   by side, each free to look for something different, computed in one
#   batched matrix product: heads are a tensor dimension, not a Python loop.
#
# A **GPT** is: token embeddings + position embeddings, `N` blocks, a final
# LayerNorm, and a linear "LM head" that turns each position's vector into
# one score per vocabulary entry, the prediction of the next token. Its
# weight is the token embedding matrix itself (**weight tying**): the same
# vectors read tokens in and write them out.
#
# Everything here is built from modules 02–13; the parameter names and shapes
# are those of nanoGPT (minus its `transformer.` prefix), so weights can be
# copied across from PyTorch to check every number.

# %%
#| default_exp transformer

# %%
#| export
"""Embedding, LayerNorm, Dropout, multi-head attention, the transformer block and GPT (module 14)."""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tinytorch.activations import GELU_C
from tinytorch.attention import causal_mask, fused_masked_softmax, scaled_dot_product_attention, softmax_backward
from tinytorch.autograd import Gradients, gradient_rule
from tinytorch.layers import Module, Parameter
from tinytorch.losses import cross_entropy
from tinytorch.spatial import FusedLinear
from tinytorch.tensor import Tensor, TensorLike, _make, as_tensor, rng


# %% [markdown]
# ## Embedding: a lookup table with a gradient
#
# `Embedding(num_embeddings, embedding_dim)` holds a `(num, dim)` weight; the
# input is integer ids of any shape and the output has one row of the weight
# per id. Indexing a Tensor with an integer array is already a primitive
# (module 02's `getitem`), and its gradient rule *adds* into the rows that
# were picked, so an id used twice gets both gradients.

# %% nbgrader={"grade": false, "grade_id": "embedding", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Embedding(Module):
    """Rows of a (num_embeddings, embedding_dim) weight, looked up by integer ids; N(0, 1) init as PyTorch."""

    def __init__(self, num_embeddings: int, embedding_dim: int):
        if num_embeddings < 1 or embedding_dim < 1:
            raise ValueError(f"Embedding needs positive sizes, got {num_embeddings} and {embedding_dim}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(rng().standard_normal((num_embeddings, embedding_dim)).astype(np.float32))

    def forward(self, ids: TensorLike) -> Tensor:
        ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding needs integer ids, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise IndexError(f"Embedding ids must be in [0, {self.num_embeddings}), "
                             f"got values from {ids.min()} to {ids.max()}")
        ### BEGIN SOLUTION
        return self.weight[ids]
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


# %% [markdown]
# ## LayerNorm
#
# For each position (the last axis, `C` numbers):
#
# ```
# y = (x - mean) / sqrt(var + eps) * weight + bias      var: the biased variance (divide by C)
# ```
#
# Write it from Tensor operations; autograd gives the gradient.

# %% nbgrader={"grade": false, "grade_id": "layer-norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def layer_norm(x: TensorLike, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """Normalise the last axis to mean 0, variance 1, then scale by `weight` and shift by `bias`."""
    x = as_tensor(x)
    ### BEGIN SOLUTION
    centred = x - x.mean(axis=-1, keepdims=True)
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred * (variance + eps) ** -0.5 * weight + bias
    ### END SOLUTION


# %% [markdown]
# ### The same LayerNorm as one primitive
#
# Composed, `layer_norm` is nine Tensor operations on `(B, T, C)` arrays,
# each kept for the backward pass and each walked back through — in every
# block, twice. Like module 13's softmax, it has a compact gradient of its
# own. With `x̂ = (x - mean) · rstd`, `rstd = 1/√(var + eps)` and `g` the
# output's gradient:
#
# ```
# grad_weight = sum of g · x̂             over every axis but the last
# grad_bias   = sum of g
# grad_x      = rstd · (ĝ - mean(ĝ) - x̂ · mean(ĝ · x̂))      with ĝ = g · weight, means along the row
# ```
#
# `fused_layer_norm` (given) keeps `x̂` and `rstd` and nothing else, and
# `LayerNorm` uses it; the tests check it against your `layer_norm`. On the
# milestone's `(12, 64, 128)` activations it took forward + backward from
# 1.05 ms to 0.68 ms and the memory at its peak from 3.4 MB to 1.9 MB
# (measured in the analysis below).
#
# **Sums along a row as matrix-vector products.** Every statistic above is a
# sum over a row of `C = 128` numbers, or over a column of `B·T` rows, and
# NumPy's `mean(axis=-1)` pays a small start-up cost for each of the 768
# rows. Written as a product with a vector, the same sum is one call to
# BLAS's matrix-vector routine (`gemv`), which streams the whole array once:
# `x @ (1/C, …, 1/C)` is every row's mean, `ones @ g` every column's sum,
# and `g @ weight` every row's `sum(g · weight)` without making the array
# `g · weight` first. The variance is `np.vecdot(x̂, x̂)`, each row's dot
# product with itself, with no `x̂²` array. On the milestone's batch a row
# mean went from 26 µs to 6 µs, and forward + backward from 0.47 ms to
# 0.34 ms (one thread; PyTorch's LayerNorm: 0.17 ms), about 1 ms of a
# TinyGPT training step's nine LayerNorms. `float32` in, `float32` out, and
# the only arrays made are the output, `x̂` and, in the backward pass,
# `grad_x` and one scratch array.

# %%
#| export
def fused_layer_norm(x: TensorLike, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """layer_norm's numbers as one primitive (op "layer_norm"), keeping x̂ and rstd for the gradient."""
    x, weight, bias = as_tensor(x), as_tensor(weight), as_tensor(bias)
    if x.dtype.kind != "f":
        raise TypeError(f"layer_norm needs floating-point inputs, got dtype {x.dtype}: convert them first")
    C = x.shape[-1]
    mean = x.data @ np.full(C, 1 / C, dtype=x.dtype)                      # (...,): each row's mean, one gemv
    x_hat = x.data - mean[..., None]                                      # a new array, then in place
    rstd = 1 / np.sqrt(np.vecdot(x_hat, x_hat) / C + eps)                 # (...,): row · row, no x̂² array
    x_hat *= rstd[..., None]
    out = x_hat * weight.data
    out += bias.data
    return _make(out, "layer_norm", (x, weight, bias), (x_hat, rstd))


@gradient_rule("layer_norm")
def layer_norm_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    (x, weight, bias), (x_hat, rstd) = out._parents, out._ctx
    C = x_hat.shape[-1]
    g, x_hat = grad.reshape(-1, C), x_hat.reshape(-1, C)                 # (N, C): every position a row
    ones = np.ones(len(g), dtype=g.dtype)
    g_x_hat = g * x_hat                                                   # (N, C): the one scratch array
    grad_weight = ones @ g_x_hat if weight.requires_grad else None       # column sums, one gemv each
    grad_bias = ones @ g if bias.requires_grad else None
    if not x.requires_grad:
        return None, grad_weight, grad_bias
    mean_g_hat = (g @ weight.data) / C                                    # (N,): mean(ĝ), ĝ = g · weight
    mean_g_hat_x_hat = (g_x_hat @ weight.data) / C                        # (N,): mean(ĝ · x̂)
    grad_x = g * weight.data                                              # ĝ: a new array, then in place
    grad_x -= mean_g_hat[:, None]
    grad_x -= np.multiply(x_hat, mean_g_hat_x_hat[:, None], out=g_x_hat)  # the scratch array reused
    grad_x *= rstd.reshape(-1, 1)
    return grad_x.reshape(x.shape), grad_weight, grad_bias


# %%
#| export
class LayerNorm(Module):
    """layer_norm over the last axis of size `normalized_shape`; weight 1, bias 0 at the start."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5):
        self.normalized_shape, self.eps = normalized_shape, eps
        self.weight = Parameter(np.ones(normalized_shape, dtype=np.float32))
        self.bias = Parameter(np.zeros(normalized_shape, dtype=np.float32))

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        if x.ndim == 0 or x.shape[-1] != self.normalized_shape:
            raise ValueError(f"LayerNorm({self.normalized_shape}) expects inputs (..., {self.normalized_shape}), "
                             f"got {x.shape}")
        return fused_layer_norm(x, self.weight, self.bias, self.eps)     # layer_norm's numbers, one primitive

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


# %% [markdown]
# ## Dropout
#
# In training, zero each number with probability `p` and scale the survivors
# by `1/(1-p)`, so the expected value is unchanged and evaluation needs no
# rescaling. In `eval()` mode it does nothing. The mask comes from
# `tinytorch.rng()`, so `manual_seed` makes it repeatable.

# %% nbgrader={"grade": false, "grade_id": "dropout", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Dropout(Module):
    """Zero each element with probability p in training, scaling the rest by 1/(1-p); identity in eval."""

    def __init__(self, p: float = 0.5):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout probability must be in [0, 1), got p={p}")
        self.p = p

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        if not self.training or self.p == 0:
            return x
        ### BEGIN SOLUTION
        keep = rng().random(x.shape) >= self.p
        return x * (keep / (1 - self.p)).astype(x.dtype)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"p={self.p}"


# %% [markdown]
# ## The Linear layers as one primitive
#
# The layers below use module 09's `FusedLinear`: module 04's `Linear` (same
# parameters, names and initialisation) computed by one primitive, `linear`,
# as PyTorch's `F.linear` calls one BLAS `addmm` (the bias added in place, the
# weight's gradient made in its own layout: no transposed copy). Measured
# (one thread, on a busy machine): on the MLP's `Linear(128, 512)` with the
# milestone's `(12, 64, 128)` input, forward + backward 3.2 ms -> 3.0 ms and
# the peak memory 4.0 MB -> 2.9 MB (the analysis below); in a whole training
# step of the milestone's GPT, whose 17 Linear layers do most of its
# arithmetic, about 6% of the step.

# %% [markdown]
# ## Multi-head causal self-attention
#
# One Linear layer `c_attn` makes queries, keys and values for every head at
# once: `(B, T, C) -> (B, T, 3C)`. Reshape to `(B, T, 3, H, d)` and permute to
# `(3, B, H, T, d)`: now `qkv[0]` is every head's queries, a batch of
# `(T, d)` matrices, and module 13's attention handles all heads in one call.
# Put the heads back side by side, `(B, H, T, d) -> (B, T, H, d) -> (B, T, C)`,
# and mix them with a last Linear layer `c_proj`.

# %% nbgrader={"grade": false, "grade_id": "multi-head-attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class MultiHeadAttention(Module):
    """Causal self-attention with n_head heads of n_embd // n_head dimensions, computed as one batch."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, causal: bool = True):
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be a multiple of n_head={n_head}")
        self.n_embd, self.n_head, self.causal = n_embd, n_head, causal
        self.c_attn = FusedLinear(n_embd, 3 * n_embd)     # module 04's Linear, one primitive (above)
        self.c_proj = FusedLinear(n_embd, n_embd)
        self.resid_dropout = Dropout(dropout)

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        if x.ndim != 3 or x.shape[-1] != self.n_embd:
            raise ValueError(f"MultiHeadAttention expects (B, T, {self.n_embd}), got {x.shape}")
        B, T, C = x.shape
        mask = causal_mask(T) if self.causal else None
        ### BEGIN SOLUTION
        qkv = self.c_attn(x).reshape(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        heads = scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], mask)      # (B, H, T, d)
        y = heads.permute(0, 2, 1, 3).reshape(B, T, C)                           # heads side by side
        return self.resid_dropout(self.c_proj(y))
        ### END SOLUTION


# %% [markdown]
# ## Fusing attention: from the packed projections to the heads in one primitive
#
# Your `forward` is clear, and autograd walks back through every step of it:
# a `reshape` and a `permute` of the packed `(B, T, 3C)` projections, three
# `getitem`s for `q`, `k` and `v`, the scaling, two matrix products and the
# softmax, then a `permute` and a `reshape`. The three `getitem`s cost most
# for what they do: each one's gradient is a zero-filled array of the whole
# `(3, B, H, T, d)` with one third written, and the three are then added
# together — five passes over an array to put three blocks side by side.
#
# `fused_attention(qkv, n_head, mask)` (given) is the same numbers as one
# primitive, as PyTorch's `scaled_dot_product_attention` is one kernel. Its
# forward pass takes `q`, `k`, `v` as *views* into the packed array (no
# copy), runs module 13's fused masked softmax and keeps only the weights
# `p`. Its gradient rule writes `dq`, `dk`, `dv` straight into the three
# blocks of one `np.empty` array of the packed shape — every number written
# once, nothing zero-filled, nothing added up:
#
# ```
# dv = pᵀ dy            dp = dy vᵀ            ds = p (dp - sum(dp p))  (module 13's softmax rule)
# dq = ds k / √d        dk = dsᵀ q / √d
# ```
#
# `CausalSelfAttention` (nanoGPT's name) is your `MultiHeadAttention` with
# `forward` running it; the block below uses it. The tests check it against
# yours, values and gradients. Measured (one thread, on a busy machine): on
# the milestone's `(12, 64, 128)` batch, forward + backward 6.2 ms -> 5.4 ms
# and the peak memory 8.3 MB -> 6.5 MB (the analysis below); in a whole
# training step of the milestone's GPT, about 9% of the step.
#
# Two more savings count most in generation (module 15), which runs the
# model on one sequence of at most `block_size` positions per new token:
#
# * The scores are computed as `k qᵀ`, shape `(B, H, T_k, T_q)`, and viewed
#   transposed: the same numbers, stored keys-major. The softmax reduces
#   along the keys; with the keys as the outer axis in memory, NumPy takes
#   each row's maximum and sum as vector operations across many queries at
#   once, instead of one short row at a time (on a `(1, 4, 64, 64)` array,
#   the row maxima took 19 µs against 37-42 µs in C order). Module 13's
#   fused softmax keeps the memory order it is given, and the product with
#   `v` reads the transposed weights in place.
# * The causal mask is built once per length and shared, read-only
#   (`shared_causal_mask`), as nanoGPT keeps its mask as a buffer: a new
#   `np.tril` per layer cost about 25 µs, four times per token.
#
# Together, measured on the milestone's attention over one sequence of 64
# (one thread, three runs each): forward 0.49-0.53 ms -> 0.42-0.45 ms.

# %%
#| export
def fused_attention(qkv: TensorLike, n_head: int, mask: TensorLike | None = None) -> Tensor:
    """Multi-head attention from packed (B, T, 3C) projections to the heads side by side (B, T, C), as one
    primitive (op "attention"): MultiHeadAttention's reshape, permute, attention, permute, reshape."""
    qkv = as_tensor(qkv)
    if qkv.ndim != 3 or n_head < 1 or qkv.shape[-1] % (3 * n_head):
        raise ValueError(f"fused_attention expects packed projections (B, T, 3 x n_embd) with n_embd a multiple of "
                         f"n_head, got shape {qkv.shape} and n_head={n_head}")
    B, T, C3 = qkv.shape
    d = C3 // 3 // n_head
    q, k, v = qkv.data.reshape(B, T, 3, n_head, d).transpose(2, 0, 3, 1, 4)   # views, (B, H, T, d) each
    scores_kq = k @ (q * (1.0 / math.sqrt(d))).swapaxes(-1, -2)               # (B, H, T_k, T_q): keys-major
    weights = fused_masked_softmax(scores_kq.swapaxes(-1, -2), mask)          # module 13's numbers, same layout
    heads = (weights.data @ v).transpose(0, 2, 1, 3)                          # (B, T, H, d), a view
    return _make(heads.reshape(B, T, C3 // 3), "attention", (qkv,), (n_head, weights))


@gradient_rule("attention")
def attention_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    (qkv,), (n_head, weights) = out._parents, out._ctx
    B, T, C3 = qkv.shape
    d = C3 // 3 // n_head
    q, k, v = qkv.data.reshape(B, T, 3, n_head, d).transpose(2, 0, 3, 1, 4)   # views, (B, H, T, d) each
    d_heads = grad.reshape(B, T, n_head, d).transpose(0, 2, 1, 3)             # (B, H, T, d), a view
    d_qkv = np.empty((B, T, 3, n_head, d), dtype=grad.dtype)                  # every number written below
    dq, dk, dv = d_qkv.transpose(2, 0, 3, 1, 4)                               # views into it, (B, H, T, d)
    np.matmul(weights.data.swapaxes(-1, -2), d_heads, out=dv)                 # dv = pᵀ dy
    d_weights = (v @ d_heads.swapaxes(-1, -2)).swapaxes(-1, -2)               # dp = dy vᵀ, keys-major as p is
    (d_scores,) = softmax_backward(weights, d_weights)                        # ds
    assert d_scores is not None                                               # (for mypy: the rule always gives it)
    d_scores *= 1.0 / math.sqrt(d)
    np.matmul(d_scores, k, out=dq)                                            # dq = ds k / √d
    np.matmul(d_scores.swapaxes(-1, -2), q, out=dk)                           # dk = dsᵀ q / √d
    return (d_qkv.reshape(B, T, C3),)


class CausalSelfAttention(MultiHeadAttention):
    """MultiHeadAttention (same parameters, names and numbers) with the attention as one primitive."""

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        if x.ndim != 3 or x.shape[-1] != self.n_embd:
            raise ValueError(f"CausalSelfAttention expects (B, T, {self.n_embd}), got {x.shape}")
        mask = shared_causal_mask(x.shape[1]) if self.causal else None
        return self.resid_dropout(self.c_proj(fused_attention(self.c_attn(x), self.n_head, mask)))


@functools.lru_cache(maxsize=256)
def shared_causal_mask(T: int) -> np.ndarray:
    """causal_mask(T), built once per length and shared read-only (nanoGPT keeps it as a buffer)."""
    mask = causal_mask(T)
    mask.flags.writeable = False
    return mask


# %% [markdown]
# ## Fusing GELU: one primitive instead of nine operations
#
# Module 03's `gelu` is composed of nine Tensor operations, and autograd keeps
# every intermediate result alive until the backward pass. In the MLP below
# GELU works on the widest activations of the model, `(B, T, 4C)`: measured
# on the milestone's GPT, those nine arrays were over 40% of a training
# step's memory, and a sizeable share of its time.
#
# **Fusion** computes the whole formula in one go and keeps only what the
# gradient needs. That needs a primitive with its own gradient rule, made the
# way module 09 made `conv2d`: build the result with `_make`, register the
# rule with `@gradient_rule`. With `t = tanh(u)`, `u = √(2/π)(x + 0.044715 x³)`:
#
# ```
# gelu(x)  = 0.5 x (1 + t)
# gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t²) √(2/π) (1 + 3 · 0.044715 x²)
# ```
#
# Store `t` as the context: the backward pass then needs no second `tanh`.
# The tests check it against module 03's composed `gelu`, values and
# gradients, so the two can never drift apart.
#
# **Reuse the buffer.** Written as one expression, the gradient makes a new
# `(B, T, 4C)` array for every operation — ten of them — and a new array of
# 1.5 MB is not free: the operating system hands it over as fresh pages, each
# zeroed and mapped on first touch, which costs more than the arithmetic.
# Allocate one array and update it in place (`d *= ...`, `np.tanh(t, out=t)`):
# on the milestone's `(12, 64, 512)` activations the backward pass went from
# 3.6 ms to 1.1 ms, and the forward from 2.7 ms to 0.9 ms (CPU time, one thread).
# PyTorch keeps freed blocks in a caching allocator for the same reason.

# %% nbgrader={"grade": false, "grade_id": "fused-gelu", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def fused_gelu(x: TensorLike) -> Tensor:
    """GELU (tanh approximation) as one primitive: module 03's numbers, with one saved array instead of nine."""
    x = as_tensor(x)
    ### BEGIN SOLUTION
    t = x.data * x.data                      # one new array, then in place: x², x³ (not x ** 3: module 03)
    t *= x.data
    t *= 0.044715
    t += x.data
    t *= GELU_C
    np.tanh(t, out=t)                        # t = tanh(u), kept for the backward pass
    out = t + 1                              # the second new array: 0.5 x (1 + t)
    out *= x.data
    out *= 0.5
    return _make(out, "gelu", (x,), t)
    ### END SOLUTION


@gradient_rule("gelu")
def gelu_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    ### BEGIN SOLUTION
    (x,), t = out._parents, out._ctx
    d = x.data * x.data                      # one new array, reused for every step of the formula
    d *= 3 * 0.044715 * GELU_C
    d += GELU_C                              # du/dx
    d *= x.data
    d *= 1 - t * t                           # x (1 - t²) du/dx  (1 - t * t: a temporary, freed at once)
    d += t
    d += 1
    d *= 0.5                                 # 0.5 (1 + t) + 0.5 x (1 - t²) du/dx
    d *= grad
    return (d,)
    ### END SOLUTION


# %% [markdown]
# ## The block
#
# The MLP widens each position to `4C`, applies the fused GELU and narrows
# back. The block is the two residual lines from the top of this notebook.

# %% nbgrader={"grade": false, "grade_id": "block", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class MLP(Module):
    """Linear(C, 4C) -> GELU -> Linear(4C, C) -> Dropout, applied to every position."""

    def __init__(self, n_embd: int, dropout: float = 0.0):
        self.c_fc = FusedLinear(n_embd, 4 * n_embd)
        self.c_proj = FusedLinear(4 * n_embd, n_embd)
        self.dropout = Dropout(dropout)

    def forward(self, x: TensorLike) -> Tensor:
        return self.dropout(self.c_proj(fused_gelu(self.c_fc(x))))


class TransformerBlock(Module):
    """Pre-LayerNorm block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        self.ln_1 = LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout)   # your MultiHeadAttention, fused (above)
        self.ln_2 = LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout)

    def forward(self, x: TensorLike) -> Tensor:
        ### BEGIN SOLUTION
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))
        ### END SOLUTION


# %% [markdown]
# ## GPT
#
# Given: the configuration, the initialisation (GPT-2's: normal with
# std 0.02, and the two projections that feed the residual stream scaled by
# `1/√(2 N)` so the stream's variance does not grow with depth) and the
# loss. You write `forward`: embeddings, blocks, final LayerNorm, LM head.

# %%
#| export
@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64      # the longest context the model sees
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd={self.n_embd} must be a multiple of n_head={self.n_head}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# %% nbgrader={"grade": false, "grade_id": "gpt", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class GPT(Module):
    """A decoder-only transformer language model (GPT-2 style, nanoGPT's names and shapes)."""

    def __init__(self, config: GPTConfig):
        self.config = config
        C = config.n_embd
        self.wte = Embedding(config.vocab_size, C)      # token embeddings
        self.wpe = Embedding(config.block_size, C)      # learned position embeddings
        self.drop = Dropout(config.dropout)
        self.h = [TransformerBlock(C, config.n_head, config.dropout) for _ in range(config.n_layer)]
        self.ln_f = LayerNorm(C)
        self.lm_head = FusedLinear(C, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight           # weight tying: one matrix, two uses
        self._init_weights()

    def _init_weights(self) -> None:
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                p.data[...] = rng().standard_normal(p.shape) * residual_std
            elif p.ndim == 2:
                p.data[...] = rng().standard_normal(p.shape) * 0.02
            elif name.endswith("bias"):
                p.data[...] = 0.0                       # LayerNorm weights stay 1

    def num_parameters(self) -> int:
        """Every parameter once (the tied LM head is the token embedding)."""
        return sum(p.size for p in self.parameters())

    def forward(self, idx: TensorLike, targets: TensorLike | None = None) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, vocab) for ids (B, T); with targets (B, T), also the mean cross-entropy loss."""
        idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
        if idx.ndim != 2:
            raise ValueError(f"GPT expects token ids of shape (B, T), got {idx.shape}")
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} is longer than block_size={self.config.block_size}: "
                             "crop the context to the last block_size tokens")
        ### BEGIN SOLUTION
        x = self.drop(self.wte(idx) + self.wpe(np.arange(T)))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        ### END SOLUTION
        if targets is None:
            return logits, None
        targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
        if targets.shape != (B, T):
            raise ValueError(f"targets must have the ids' shape {(B, T)}, got {targets.shape}")
        return logits, cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1))

    def generate(self, idx: TensorLike, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Sample `max_new_tokens` ids after `idx` (module 15 writes the sampler)."""
        from tinytorch.generation import generate  # module 15; imported here so module 14 stands alone
        return generate(self, idx, max_new_tokens, temperature=temperature, top_k=top_k, seed=seed)


# %% [markdown]
# ## Gradient clipping
#
# One bad batch can produce a gradient a thousand times the usual size, and
# one such step can wreck a transformer. Clipping by the **global norm**
# rescales *all* gradients together when their combined length exceeds
# `max_norm`, keeping the direction. It returns the norm before clipping
# (worth logging: spikes show trouble early), as `torch.nn.utils.clip_grad_norm_`.
#
# The weights of `FusedLinear` and their gradients are column-major (module
# 09). A sum of squares does not care about order, so read each gradient in
# its memory order: `g.ravel(order="K")` is a view, while `np.vdot(g, g)`
# first copies a column-major `g` into C order (on a `(512, 128)` gradient,
# 150 µs against 7 µs; sixteen of them per step of the milestone's GPT).

# %% nbgrader={"grade": false, "grade_id": "clip-grad-norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def clip_grad_norm_(parameters: Iterable[Tensor], max_norm: float) -> float:
    """Scale every gradient by min(1, max_norm / total_norm) in place; return the total L2 norm."""
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    grads = [p.grad for p in parameters if p.grad is not None]
    ### BEGIN SOLUTION
    flat = [g.ravel(order="K") for g in grads]   # each in its memory order: a view, also of column-major weights
    total = math.sqrt(sum(float(np.vdot(f, f)) for f in flat))
    scale = max_norm / (total + 1e-6)     # the 1e-6, as in PyTorch: no division by zero for zero gradients
    if scale < 1:
        for g in grads:
            g *= scale
    return total
    ### END SOLUTION


# %% [markdown]
# ## See it work
#
# The reference configuration of the milestone: how many parameters, and
# what loss does an untrained model give? Every one of 65 characters is about
# equally likely, so the loss should be near `ln 65 ≈ 4.17`.

# %%
from tinytorch.tensor import manual_seed

manual_seed(0)
config = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
model = GPT(config)
ids, targets = rng().integers(0, 65, (2, 64)), rng().integers(0, 65, (2, 64))
logits, loss = model(ids, targets)
print(f"{model.num_parameters():,} parameters; logits {logits.shape}; initial loss {loss.item():.3f} "
      f"(ln 65 = {math.log(65):.3f})")

# %% [markdown]
# ## Tests

# %% nbgrader={"grade": true, "grade_id": "test-embedding", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""Embedding returns one weight row per id, and an id used twice receives both gradients."""
emb = Embedding(5, 3)
out = emb(np.array([[4, 1, 4]]))
assert out.shape == (1, 3, 3), f"got out.shape = {out.shape!r}"
assert np.array_equal(out.data[0, 0], emb.weight.data[4]), \
    f"got out.data[0, 0] = {out.data[0, 0]!r}; emb.weight.data[4] = {emb.weight.data[4]!r}"
(out * Tensor(np.arange(9, dtype=np.float32).reshape(1, 3, 3))).sum().backward()
assert np.allclose(emb.weight.grad[4], [0 + 6, 1 + 7, 2 + 8]), \
    f"got emb.weight.grad[4] = {emb.weight.grad[4]!r}; [0 + 6, 1 + 7, 2 + 8] = {[0 + 6, 1 + 7, 2 + 8]!r}"
assert np.allclose(emb.weight.grad[1], [3, 4, 5]), f"got emb.weight.grad[1] = {emb.weight.grad[1]!r}"
assert np.all(emb.weight.grad[[0, 2, 3]] == 0), \
    f"got emb.weight.grad[[0, 2, 3]] == 0 = {emb.weight.grad[[0, 2, 3]] == 0!r}"

# %% nbgrader={"grade": true, "grade_id": "test-layer-norm", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""layer_norm gives each row mean 0 and variance 1 before scale and shift; gradients match finite differences."""
from tinytorch.autograd import gradcheck
r = np.random.default_rng(0)
x = Tensor(r.standard_normal((2, 3, 6)) * 5 + 3, requires_grad=True, dtype=np.float64)
w = Tensor(r.standard_normal(6), requires_grad=True, dtype=np.float64)
b = Tensor(r.standard_normal(6), requires_grad=True, dtype=np.float64)
plain = layer_norm(x, np.ones(6), np.zeros(6)).data
assert np.allclose(plain.mean(-1), 0, atol=1e-9), f"got plain.mean(-1) = {plain.mean(-1)!r}"
assert np.allclose(plain.var(-1), 1, atol=1e-4), f"got plain.var(-1) = {plain.var(-1)!r}"
gradcheck(lambda x, w, b: layer_norm(x, w, b), [x, w, b])
gradcheck(lambda x, w, b: fused_layer_norm(x, w, b), [x, w, b])
assert np.allclose(fused_layer_norm(x, w, b).data, layer_norm(x, w, b).data, atol=1e-12), \
    f"the fused LayerNorm (given) and your layer_norm differ: got {fused_layer_norm(x, w, b).data!r} and {layer_norm(x, w, b).data!r}"

# %% nbgrader={"grade": true, "grade_id": "test-fused-gelu", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""fused_gelu gives module 03's gelu values, and its gradient matches finite differences and the composed one."""
from tinytorch.activations import gelu
from tinytorch.autograd import gradcheck
r = np.random.default_rng(3)
x = Tensor(r.standard_normal((4, 5)) * 3, requires_grad=True, dtype=np.float64)
assert np.allclose(fused_gelu(x).data, gelu(x).data, atol=1e-12), \
    f"got fused_gelu(x).data = {fused_gelu(x).data!r}; gelu(x).data = {gelu(x).data!r}"
gradcheck(fused_gelu, [x])
composed = Tensor(x.data, requires_grad=True, dtype=np.float64)
gelu(composed).sum().backward()
x.grad = None
fused_gelu(x).sum().backward()
assert np.allclose(x.grad, composed.grad, atol=1e-12), f"got x.grad = {x.grad!r}; composed.grad = {composed.grad!r}"
assert fused_gelu(Tensor(np.ones(3, dtype=np.float32))).dtype == np.float32, \
    f"got fused_gelu(Tensor(np.ones(3, dtype=np.float32))).dtype = {fused_gelu(Tensor(np.ones(3, dtype=np.float32))).dtype!r}"

# %% nbgrader={"grade": true, "grade_id": "test-dropout", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""Dropout keeps about 1-p of the values, scaled by 1/(1-p), in training, and is the identity in eval."""
drop = Dropout(0.25)
x = Tensor(np.ones((200, 100), dtype=np.float32))
y = drop(x).data
assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}, \
    f"dropout p=0.25 keeps values 0 or x / 0.75, got the values {set(np.unique(y))!r}"
assert abs((y == 0).mean() - 0.25) < 0.02, f"got abs((y == 0).mean() - 0.25) = {abs((y == 0).mean() - 0.25)!r}"
assert abs(y.mean() - 1) < 0.03, f"got abs(y.mean() - 1) = {abs(y.mean() - 1)!r}"
assert drop.eval()(x) is x, f"got drop.eval()(x) = {drop.eval()(x)!r}; x = {x!r}"

# %% nbgrader={"grade": true, "grade_id": "test-attention-heads", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Multi-head attention keeps the shape and is causal: later tokens never change earlier outputs."""
from tinytorch.tensor import manual_seed
manual_seed(1)
mha = MultiHeadAttention(16, 4)
x = np.random.default_rng(1).standard_normal((2, 7, 16)).astype(np.float32)
y = mha(Tensor(x)).data
x[:, 4:] += 10.0
y2 = mha(Tensor(x)).data
assert y.shape == (2, 7, 16), f"got y.shape = {y.shape!r}"
assert np.allclose(y[:, :4], y2[:, :4], atol=1e-5), f"got y[:, :4] = {y[:, :4]!r}; y2[:, :4] = {y2[:, :4]!r}"
assert not np.allclose(y[:, 4:], y2[:, 4:]), f"got y[:, 4:] = {y[:, 4:]!r}; y2[:, 4:] = {y2[:, 4:]!r}"

# %% nbgrader={"grade": true, "grade_id": "test-fused-linear-attention", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""The given fused primitives: CausalSelfAttention gives your MultiHeadAttention's values and gradients, FusedLinear module 04's Linear's; their gradients match finite differences."""
from tinytorch.autograd import gradcheck
from tinytorch.layers import Linear
from tinytorch.spatial import linear
from tinytorch.tensor import manual_seed
r = np.random.default_rng(6)
qkv = Tensor(r.standard_normal((2, 5, 12)), requires_grad=True, dtype=np.float64)
mask = causal_mask(5)
mask[2, :] = False          # a fully masked row: zero output, zero gradient
gradcheck(lambda qkv: fused_attention(qkv, 2, mask), [qkv])
gradcheck(lambda qkv: fused_attention(qkv, 1), [qkv])
for causal in (True, False):
    manual_seed(7)
    yours = MultiHeadAttention(8, 2, causal=causal)
    manual_seed(7)
    fused = CausalSelfAttention(8, 2, causal=causal)
    x = r.standard_normal((3, 6, 8))
    x_yours, x_fused = Tensor(x, requires_grad=True, dtype=np.float64), Tensor(x, requires_grad=True, dtype=np.float64)
    y_yours, y_fused = yours(x_yours), fused(x_fused)
    assert np.allclose(y_fused.data, y_yours.data, atol=1e-10), f"got {y_fused.data!r}; yours gives {y_yours.data!r}"
    (y_yours * y_yours).sum().backward()
    (y_fused * y_fused).sum().backward()
    assert np.allclose(x_fused.grad, x_yours.grad, atol=1e-10), f"got x.grad = {x_fused.grad!r}; yours gives {x_yours.grad!r}"
    assert np.allclose(fused.c_attn.weight.grad, yours.c_attn.weight.grad, atol=1e-5), \
        f"got c_attn.weight.grad = {fused.c_attn.weight.grad!r}; yours gives {yours.c_attn.weight.grad!r}"
r = np.random.default_rng(4)
x = Tensor(r.standard_normal((2, 3, 5)), requires_grad=True, dtype=np.float64)
w = Tensor(r.standard_normal((4, 5)), requires_grad=True, dtype=np.float64)
b = Tensor(r.standard_normal(4), requires_grad=True, dtype=np.float64)
gradcheck(lambda x, w, b: linear(x, w, b), [x, w, b])
gradcheck(lambda x, w: linear(x, w), [x, w])
for bias in (True, False):
    manual_seed(5)
    plain = Linear(5, 4, bias=bias)
    manual_seed(5)
    fused = FusedLinear(5, 4, bias=bias)
    x_plain, x_fused = Tensor(x.data, requires_grad=True), Tensor(x.data, requires_grad=True)
    y_plain, y_fused = plain(x_plain), fused(x_fused)
    assert np.allclose(y_plain.data, y_fused.data, atol=1e-10), f"got {y_fused.data!r}, Linear gives {y_plain.data!r}"
    (y_plain * y_plain).sum().backward()
    (y_fused * y_fused).sum().backward()
    for name in ("weight", "bias") if bias else ("weight",):
        got, expected = getattr(fused, name).grad, getattr(plain, name).grad
        assert np.allclose(got, expected, atol=1e-5), f"{name} gradient: got {got!r}, Linear gives {expected!r}"
        own = getattr(fused, name).data
        assert (got.flags.c_contiguous, got.flags.f_contiguous) == (own.flags.c_contiguous, own.flags.f_contiguous), \
            f"the {name} gradient should be in the parameter's own memory order"
    assert np.allclose(x_fused.grad, x_plain.grad, atol=1e-10), f"got x.grad = {x_fused.grad!r}; Linear gives {x_plain.grad!r}"

# %% nbgrader={"grade": true, "grade_id": "test-gpt", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""GPT gives (B, T, vocab) logits, a loss near ln(vocab) at initialisation, ties its LM head, and learns."""
from tinytorch.tensor import manual_seed
from tinytorch.adam import AdamW
manual_seed(2)
small = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16))
ids = np.random.default_rng(2).integers(0, 11, (3, 8))
logits, loss = small(ids, ids)
assert logits.shape == (3, 8, 11), f"got logits.shape = {logits.shape!r}"
assert abs(loss.item() - math.log(11)) < 0.2, \
    f"got abs(loss.item() - math.log(11)) = {abs(loss.item() - math.log(11))!r}"
assert small.lm_head.weight is small.wte.weight, \
    f"got small.lm_head.weight = {small.lm_head.weight!r}; small.wte.weight = {small.wte.weight!r}"
assert small.num_parameters() == sum(p.size for p in small.parameters()) < sum(a.size for a in small.state_dict().values()), \
    f"got small.num_parameters() = {small.num_parameters()!r}; sum(p.size for p in small.parameters()) = {sum(p.size for p in small.parameters())!r}; sum(a.size for a in small.state_dict().values()) = {sum(a.size for a in small.state_dict().values())!r}"
opt = AdamW(small.parameters(), lr=1e-2)
for _ in range(30):    # memorise one batch: predict each id from itself
    opt.zero_grad()
    loss = small(ids, ids)[1]
    loss.backward()
    opt.step()
assert loss.item() < 0.5, loss.item()

# %% nbgrader={"grade": true, "grade_id": "test-clip", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""clip_grad_norm_ returns the global norm and rescales all gradients to max_norm only when above it."""
a, b = Tensor([0.0, 0.0], requires_grad=True), Tensor([0.0], requires_grad=True)
a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
assert np.isclose(clip_grad_norm_([a, b], 1.0), 5.0), \
    f"got clip_grad_norm_([a, b], 1.0) = {clip_grad_norm_([a, b], 1.0)!r}"
assert np.allclose(a.grad, [0.6, 0.0], atol=1e-6), f"got a.grad = {a.grad!r}"
assert np.allclose(b.grad, [0.8], atol=1e-6), f"got b.grad = {b.grad!r}"
assert np.isclose(clip_grad_norm_([a, b], 10.0), 1.0, atol=1e-5), \
    f"got clip_grad_norm_([a, b], 10.0) = {clip_grad_norm_([a, b], 10.0)!r}"
assert np.allclose(b.grad, [0.8], atol=1e-6), f"got b.grad = {b.grad!r}"

# %% [markdown]
# ## Memory and performance analysis
#
# Where do a GPT's parameters live? Each block has `12 C²` weights (attention
# `4 C²`, MLP `8 C²`). And where does a training step's memory go? The
# activations autograd keeps grow with `B·T·C·N` (plus `B·H·T²·N` for the
# attention scores), independent of the parameter count.

# %%
from tinytorch.profiler import Profile, format_bytes, measure

C, N = config.n_embd, config.n_layer
print(f"blocks: {N} x 12 C^2 = {N * 12 * C * C:,}; embeddings: {(config.vocab_size + config.block_size) * C:,}; "
      f"counted: {model.num_parameters():,}")
opt = AdamW(model.parameters(), lr=1e-3)


def train_step(ids):
    opt.zero_grad()
    loss = model(ids, ids)[1]
    loss.backward()
    opt.step()


for B in (4, 12):
    ids = rng().integers(0, 65, (B, 64))
    train_step(ids)                       # allocate the optimizer's buffers first
    with Profile(f"B={B}") as p:
        train_step(ids)
    print(f"batch {B:2d} x 64 tokens: peak {format_bytes(p.peak_bytes)} per step; "
          f"{measure(train_step, ids, repeat=3).seconds * 1e3:.0f} ms per step")

# %% [markdown]
# What fusing GELU bought, on the MLP's hidden activations of one milestone
# batch `(12, 64, 512)`: the memory held for the backward pass, and the time
# of forward + backward.

# %%
from tinytorch.activations import gelu

hidden = Tensor(rng().standard_normal((12, 64, 512)).astype(np.float32), requires_grad=True)
for name, f in (("composed gelu (module 03)", gelu), ("fused_gelu", fused_gelu)):
    with Profile(name) as p:
        kept = f(hidden)             # everything the graph keeps stays alive while `kept` does
    seconds = measure(lambda fn: fn(hidden).sum().backward(), f, repeat=5).seconds
    print(f"{name:26s}: {format_bytes(p.peak_bytes):>9} held, {seconds * 1e3:6.2f} ms forward + backward")
    del kept

# %% [markdown]
# And fusing LayerNorm, on one milestone batch `(12, 64, 128)`:

# %%
ln_in = Tensor(rng().standard_normal((12, 64, 128)).astype(np.float32), requires_grad=True)
ln_w = Tensor(np.ones(128, dtype=np.float32), requires_grad=True)
ln_b = Tensor(np.zeros(128, dtype=np.float32), requires_grad=True)
upstream = rng().standard_normal((12, 64, 128)).astype(np.float32)    # the gradient the next layer sends back
for name, f in (("composed layer_norm", layer_norm), ("fused_layer_norm", fused_layer_norm)):
    m = measure(lambda fn: fn(ln_in, ln_w, ln_b).backward(upstream), f, repeat=10)
    print(f"{name:20s}: {m.seconds * 1e3:5.2f} ms forward + backward, peak {format_bytes(m.peak_bytes)}")

# the technique inside it: each row's mean by NumPy's reduction, and as one matrix-vector product (gemv)
rows, ones_over_c = ln_in.data, np.full(128, 1 / 128, dtype=np.float32)
for name, f in (("rows.mean(axis=-1)", lambda: rows.mean(axis=-1)), ("rows @ (1/C, ..., 1/C)", lambda: rows @ ones_over_c)):
    print(f"{name:22s}: {measure(f, repeat=200).seconds * 1e6:5.1f} µs for the 768 row means")

# %% [markdown]
# And fusing Linear, on the MLP's `Linear(128, 512)` over one milestone batch
# `(12, 64, 128)`: module 04's composed `Linear` against `FusedLinear`, the
# same weights.

# %%
from tinytorch.layers import Linear

manual_seed(0)
plain_fc = Linear(128, 512)
manual_seed(0)
fused_fc = FusedLinear(128, 512)
fc_in = Tensor(rng().standard_normal((12, 64, 128)).astype(np.float32), requires_grad=True)
for name, layer in (("Linear (module 04)", plain_fc), ("FusedLinear", fused_fc)):
    m = measure(lambda f: f(fc_in).sum().backward(), layer, repeat=10)
    print(f"{name:18s}: {m.seconds * 1e3:5.2f} ms forward + backward, peak {format_bytes(m.peak_bytes)}, "
          f"weight gradient in the weight's memory order: "
          f"{layer.weight.grad.flags.f_contiguous == layer.weight.data.flags.f_contiguous}")

# %% [markdown]
# And fusing attention, on the milestone's first block: your
# `MultiHeadAttention` against `CausalSelfAttention`, the same weights, on
# one batch `(12, 64, 128)`.

# %%
manual_seed(0)
yours = MultiHeadAttention(128, 4)
manual_seed(0)
fused = CausalSelfAttention(128, 4)
attn_in = Tensor(rng().standard_normal((12, 64, 128)).astype(np.float32), requires_grad=True)
for name, layer in (("MultiHeadAttention", yours), ("CausalSelfAttention", fused)):
    m = measure(lambda f: f(attn_in).sum().backward(), layer, repeat=10)
    print(f"{name:19s}: {m.seconds * 1e3:5.2f} ms forward + backward, peak {format_bytes(m.peak_bytes)}")

# %% [markdown]
# ### LayerNorm against BatchNorm
#
# Both subtract a mean and divide by a standard deviation; they differ in
# **which axis** the statistics are taken over. For activations of shape
# `(B, T, C)`:
#
# * LayerNorm: over the `C` features of each token, one mean per `(b, t)`;
# * BatchNorm: over the batch (and the positions), one mean per feature `c`.
#
# BatchNorm is not part of tinytorch (the design leaves it out); its
# training-mode statistics are two NumPy lines, enough to measure the
# difference that matters: what happens to one example when the rest of the
# batch changes.

# %%
def batch_norm_train(x, eps=1e-5):
    mean = x.mean(axis=(0, 1), keepdims=True)                  # (1, 1, C): one per feature, over batch and time
    var = x.var(axis=(0, 1), keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


r = np.random.default_rng(0)
C = 16
ln = LayerNorm(C)
example = r.normal(2.0, 3.0, size=(1, 8, C)).astype(np.float32)          # the example we follow
print(f"{'batch size':>10s} {'LayerNorm output change':>24s} {'BatchNorm output change':>24s}")
alone_ln = ln(Tensor(example)).data
alone_bn = batch_norm_train(np.concatenate([example, example]))[:1]   # a batch of two copies of the example
for batch in (2, 4, 16, 64):
    others = r.normal(0.0, 1.0, size=(batch - 1, 8, C)).astype(np.float32)  # other examples, other statistics
    batched = np.concatenate([example, others])
    ln_change = np.abs(ln(Tensor(batched)).data[:1] - alone_ln).max()
    bn_change = np.abs(batch_norm_train(batched)[:1] - alone_bn).max()
    print(f"{batch:10d} {ln_change:24.2e} {bn_change:24.2e}")
out_ln = ln(Tensor(batched)).data
out_bn = batch_norm_train(batched)
print("after LayerNorm, per-token means (first 3):", np.round(out_ln.mean(axis=-1).ravel()[:3], 4),
      " stats shape", out_ln.mean(axis=-1, keepdims=True).shape)
print("after BatchNorm, per-feature means (first 3):", np.round(out_bn.mean(axis=(0, 1))[:3], 4),
      " stats shape", out_bn.mean(axis=(0, 1), keepdims=True).shape)

# %% [markdown]
# LayerNorm's output for an example does not depend on the rest of the batch
# (the change is zero), so it behaves the same at batch size 1, at
# generation time one token at a time, and across machines that split a
# batch. BatchNorm's output for the very same example moves with its
# batch-mates; at inference it must switch to running averages collected in
# training, and with small or variable batches (or sequences of different
# lengths) its statistics are noisy. That is why transformers use LayerNorm.

# %% [markdown]
# ## Comparison with PyTorch
#
# A nanoGPT-style model in PyTorch with the same names (plus nanoGPT's
# `transformer.` prefix) and shapes: copy our weights across and compare the
# logits, the loss and every gradient.

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed("14_transformers")

if torch is not None:
    F = torch.nn.functional

    class TorchBlock(torch.nn.Module):
        def __init__(self, C, H):
            super().__init__()
            self.H = H
            self.ln_1, self.ln_2 = torch.nn.LayerNorm(C), torch.nn.LayerNorm(C)
            self.attn = torch.nn.Module()
            self.attn.c_attn, self.attn.c_proj = torch.nn.Linear(C, 3 * C), torch.nn.Linear(C, C)
            self.mlp = torch.nn.Module()
            self.mlp.c_fc, self.mlp.c_proj = torch.nn.Linear(C, 4 * C), torch.nn.Linear(4 * C, C)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.attn.c_attn(self.ln_1(x)).view(B, T, 3, self.H, C // self.H).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
            x = x + self.attn.c_proj(y)
            return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))

    class TorchGPT(torch.nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.transformer = torch.nn.ModuleDict(dict(
                wte=torch.nn.Embedding(cfg.vocab_size, cfg.n_embd), wpe=torch.nn.Embedding(cfg.block_size, cfg.n_embd),
                h=torch.nn.ModuleList([TorchBlock(cfg.n_embd, cfg.n_head) for _ in range(cfg.n_layer)]),
                ln_f=torch.nn.LayerNorm(cfg.n_embd)))
            self.lm_head = torch.nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
            self.lm_head.weight = self.transformer.wte.weight

        def forward(self, idx):
            t = self.transformer
            x = t.wte(idx) + t.wpe(torch.arange(idx.shape[1]))
            for block in t.h:
                x = block(x)
            return self.lm_head(t.ln_f(x))

    theirs = TorchGPT(config).double()
    ours = {name: p for name, p in model.named_parameters()}
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.from_numpy(ours[name.removeprefix("transformer.")].data.astype(np.float64)))
    for p in ours.values():
        p.data = p.data.astype(np.float64)
    ids = rng().integers(0, 65, (2, 64))
    model.zero_grad()
    logits, loss = model(ids, ids)
    loss.backward()
    ref_logits = theirs(torch.from_numpy(ids))
    ref_loss = F.cross_entropy(ref_logits.reshape(-1, 65), torch.from_numpy(ids).reshape(-1))
    ref_loss.backward()
    print("max logit difference:", np.abs(logits.data - ref_logits.detach().numpy()).max())
    print("loss:", loss.item(), "vs", ref_loss.item())
    worst = max(np.abs(ours[n.removeprefix("transformer.")].grad - p.grad.numpy()).max() for n, p in theirs.named_parameters())
    print("max gradient difference over every parameter:", worst)

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** Count the parameters of one transformer block with `C = 768` (GPT-2
# small), biases aside. How much memory do they, their gradients and AdamW's
# state take in float32 for 12 blocks?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-transformer-params", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# 12·C² = 12·768² ≈ 7.08 M per block (c_attn 3C², c_proj C², c_fc 4C², mlp c_proj 4C²);
# 12 blocks ≈ 85 M. Params + grads + 2 Adam buffers = 4 × 4 bytes × 85 M ≈ 1.36 GB.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** What does weight tying save in our milestone model, and in GPT-2
# with a 50,257-token vocabulary and `C = 768`? Why is it reasonable to use
# the same matrix for input and output?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-transformer-tying", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# V·C numbers: 65·128 = 8,320 here (about 1%); 50,257·768 ≈ 38.6 M in GPT-2
# (about 30% of 124 M). Both matrices map between token identity and the same
# C-dimensional space: similar tokens should have similar input vectors and
# similar output scores, so sharing is a useful prior and halves their gradient noise.
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** Training memory: for batch `B`, context `T`, width `C`, `N` blocks
# and `H` heads, which activations does autograd keep, and how do they scale?
# Which grows fastest if you double the context?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-transformer-activations", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Per block: several B·T·C arrays (LayerNorm outputs, q/k/v, residuals),
# B·T·4C for the MLP hidden layer and its GELU pieces, and B·H·T² for the
# attention scores/weights. Total ~ N·B·T·(c1·C + c2·H·T). Doubling T doubles
# the linear terms and quadruples the attention term, which dominates at long
# contexts. Activation checkpointing or FlashAttention reduce it.
# === END MARK SCHEME ===

# %% [markdown]
# **Q4.** Why pre-LayerNorm (`x + f(LN(x))`) rather than the original
# post-LayerNorm (`LN(x + f(x))`) for deep stacks? What does gradient
# clipping protect against that LayerNorm does not?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-transformer-preln", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Pre-LN leaves an identity path from output to input through the residual
# additions, so gradients reach early layers unchanged and training is stable
# without long learning-rate warm-up; post-LN normalises the residual stream
# itself and its gradients shrink/grow with depth. LayerNorm controls
# activations, not gradients: a rare batch can still give a huge gradient,
# and clipping bounds the size of that one update.
# === END MARK SCHEME ===

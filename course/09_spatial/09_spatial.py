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
# # Module 09 — Spatial: convolution and pooling
#
# A `Linear` layer on a 28×28 image treats pixel (3, 4) and pixel (3, 5) as
# unrelated inputs and learns a separate weight for each. A **convolution**
# slides one small kernel (3×3, say) over the whole image instead: the same
# weights look at every position. That builds in two facts about images:
#
# * **locality**: a pixel is explained by its neighbours, so each output looks
#   at a small window, its *receptive field*;
# * **translation equivariance**: a "7" shifted two pixels right is still a
#   "7", so a feature detector should work everywhere.
#
# For an input of shape `(N, C, H, W)` (batch, channels, height, width) and a
# weight of shape `(O, C, kh, kw)` (PyTorch's layout), output pixel `(n, o, i, j)`
# is
#
# ```
# out[n, o, i, j] = b[o] + Σ_c Σ_u Σ_v  w[o, c, u, v] · xpad[n, c, i·s + u, j·s + v]
# ```
#
# with stride `s` and `xpad` the input surrounded by `padding` zeros. The
# output is `Ho = (H + 2p − kh) // s + 1` rows high (the same for the width).
#
# **Receptive fields grow with depth.** One 3×3 convolution sees 3×3 input
# pixels; a second one on top sees 5×5; a 2×2 pooling with stride 2 in
# between doubles every later step, so the MNIST network of the milestone
# (conv 3×3, pool 2, conv 3×3, pool 2) ends with features that each see a
# 10×10 patch of the digit. **Pooling** (max or average over a window)
# shrinks the feature maps: 4× fewer pixels for every later layer's FLOPs and
# memory, and a little tolerance to small shifts.
#
# This module is about doing the sum above *fast*: it is the hot path of the
# MNIST milestone. You will write it as one matrix multiplication (im2col),
# its gradient as the reverse scatter (col2im), and measure both against a
# naive loop and against PyTorch.

# %%
#| default_exp spatial

# %%
#| export
"""Convolution and pooling: Conv2d, MaxPool2d, AvgPool2d, Flatten and their functions (module 09)."""
from __future__ import annotations

import math
from typing import TypeAlias

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.autograd import Gradients, gradcheck, gradient_rule  # noqa: F401  (gradcheck: for the tests)
from tinytorch.layers import Linear, Module, Parameter
from tinytorch.tensor import Tensor, TensorLike, _make, as_tensor, rng

Pair: TypeAlias = tuple[int, int]    # (along the height, along the width)
Size2: TypeAlias = int | Pair         # a kernel size, stride or padding as PyTorch takes it: 3 means (3, 3)


def _pair(value: Size2, name: str) -> Pair:
    """An int or a pair of ints as a pair: 3 -> (3, 3)."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """How many kernel positions fit along one axis: (size + 2·padding − kernel) // stride + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _check_input(op: str, x: Tensor, kernel: tuple[int, ...], stride: Pair, padding: Pair) -> None:
    """Raise a ValueError naming the shapes when a window cannot be applied to x."""
    if x.ndim != 4:
        raise ValueError(f"{op} needs a batch of images of shape (N, C, H, W), got shape {x.shape} "
                         "(for one image use x.reshape(1, *x.shape))")
    if min(stride) < 1 or min(padding) < 0 or min(kernel) < 1:
        raise ValueError(f"{op} needs kernel >= 1, stride >= 1 and padding >= 0, "
                         f"got kernel {kernel}, stride {stride}, padding {padding}")
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(f"{op}: kernel {kernel} is larger than the padded input {padded} "
                         f"(input shape {x.shape}, padding {padding})")


# %% [markdown]
# ## Given: the naive convolution, the thing to beat
#
# The formula above, written as it reads: four nested Python loops over the
# batch, the output channels and the output pixels, each doing a small
# `C·kh·kw` multiply-and-sum. It is correct, and it is our reference. It is
# also slow: every iteration pays the Python interpreter (about a
# microsecond) for about `2·C·kh·kw` floating-point operations. We measure
# it below.

# %%
#| export
def conv2d_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: Size2 = 1,
                 padding: Size2 = 0) -> np.ndarray:
    """Reference convolution with loops: x (N, C, H, W), w (O, C, kh, kw), b (O,) or None."""
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding")
    n_images, _, height, width = x.shape
    out_channels, _, kh, kw = w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = output_size(height, kh, sh, ph), output_size(width, kw, sw, pw)
    out = np.zeros((n_images, out_channels, ho, wo), dtype=np.result_type(x, w))
    for n in range(n_images):
        for o in range(out_channels):
            for i in range(ho):
                for j in range(wo):
                    patch = xpad[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]  # (C, kh, kw)
                    out[n, o, i, j] = np.sum(patch * w[o]) + (0 if b is None else b[o])
    return out


# %% [markdown]
# ## im2col: the convolution as one matrix multiplication
#
# Look at the formula again: for a fixed output pixel `(n, i, j)`, every output
# channel `o` takes the dot product of the same `C·kh·kw` input numbers (the
# patch under the kernel) with its row of the weight `w.reshape(O, C·kh·kw)`.
# So if we copy each patch into a column of a matrix `cols` of shape
# `(C·kh·kw, Ho·Wo·N)` — "image to columns", **im2col** — the whole
# convolution is one matrix product:
#
# ```
# out = w.reshape(O, C·kh·kw) @ cols          # (O, Ho·Wo·N)
# ```
#
# and one matrix product is what BLAS does at close to the machine's peak:
# cache blocking, SIMD, all cores.
#
# **The price is memory.** Each input pixel sits under up to `kh·kw` kernel
# positions, so it is copied up to `kh·kw` times: for a 3×3 kernel with
# stride 1 the columns are **9× the input**. For the second layer of the MNIST
# network (batch 64, 8 channels, 14×14, padding 1) that is
# 72 × 196·64 float32 = 3.6 MB, kept until the backward pass needs it.
#
# **Getting the patches without a loop.** `np.lib.stride_tricks.sliding_window_view`
# returns a *view* with two extra axes: `view[..., i, j, :, :]` is the window at
# `(i, j)`. It costs no memory (it reuses the input's buffer with clever
# strides); slicing `[::s]` picks every s-th window for stride s. Exactly one
# copy happens: when we ask for the columns in the order the matrix product
# wants them (`np.ascontiguousarray`).
#
# **Which order?** We keep the padded input as `(C, Hp, Wp, N)` — batch
# innermost — and the columns as `(C, kh, kw, Ho, Wo, N)`. Then the copy reads
# and writes long contiguous runs of `Wo·N` numbers, and col2im (below) adds
# long runs too. With the batch outermost (`N, C, H, W`) every run is only
# `Wo` = 14 numbers long, and we measured the backward pass at 2.5× slower.
# The helper that pads and reorders the input is given.

# %%
#| export
def pad_to_chwn(x: np.ndarray, padding: Pair) -> np.ndarray:
    """(N, C, H, W) -> zero-padded (C, H + 2·ph, W + 2·pw, N): one copy that pads and puts the batch last."""
    n_images, channels, height, width = x.shape
    ph, pw = padding
    out = np.zeros((channels, height + 2 * ph, width + 2 * pw, n_images), dtype=x.dtype)
    out[:, ph:ph + height, pw:pw + width, :] = x.transpose(1, 2, 3, 0)
    return out


# %% [markdown]
# Write `im2col`. Take the view `sliding_window_view(xpad, (kh, kw), axis=(1, 2))`
# (shape `(C, Hp−kh+1, Wp−kw+1, N, kh, kw)`), keep every stride-th window along
# the two spatial axes, move the kernel axes next to `C`, and copy once.

# %% nbgrader={"grade": false, "grade_id": "im2col", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def im2col(xpad: np.ndarray, kernel: tuple[int, ...], stride: Pair) -> np.ndarray:
    """Padded input (C, Hp, Wp, N) -> columns (C·kh·kw, Ho·Wo·N), ordered (c, u, v) by (i, j, n)."""
    kh, kw = kernel
    sh, sw = stride
    ### BEGIN SOLUTION
    windows = sliding_window_view(xpad, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # (C, Ho, Wo, N, kh, kw), a view
    channels, ho, wo, n_images = windows.shape[:4]
    cols = np.ascontiguousarray(windows.transpose(0, 4, 5, 1, 2, 3))          # (C, kh, kw, Ho, Wo, N): the copy
    return cols.reshape(channels * kh * kw, ho * wo * n_images)
    ### END SOLUTION


# %% [markdown]
# ## col2im: the gradient scatters back
#
# In the backward pass the gradient of the columns, `w2.T @ grad` of shape
# `(C·kh·kw, Ho·Wo·N)`, must be added back to the input pixels each column
# entry was copied from. A pixel copied into 9 columns receives the sum of 9
# gradients: **add, never assign**. The loop runs over the `kh·kw` kernel
# offsets only — 9 iterations, each adding a whole `(C, Ho, Wo, N)` block
# into a strided slice of the padded gradient — never over pixels.

# %% nbgrader={"grade": false, "grade_id": "col2im", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def col2im(cols: np.ndarray, padded_shape: tuple[int, ...], kernel: tuple[int, ...], stride: Pair,
           out_size: tuple[int, ...]) -> np.ndarray:
    """Columns (C·kh·kw, Ho·Wo·N) -> padded gradient (C, Hp, Wp, N), adding overlapping contributions."""
    kh, kw = kernel
    sh, sw = stride
    ho, wo = out_size
    channels, _, _, n_images = padded_shape
    ### BEGIN SOLUTION
    cols = cols.reshape(channels, kh, kw, ho, wo, n_images)
    grad = np.zeros(padded_shape, dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            # the input pixels under kernel offset (u, v) for all output pixels at once
            grad[:, u:u + sh * (ho - 1) + 1:sh, v:v + sw * (wo - 1) + 1:sw, :] += cols[:, u, v]
    return grad
    ### END SOLUTION


# %% [markdown]
# ## The conv2d primitive and its gradient rule
#
# `conv2d` checks the shapes (given), builds the columns, multiplies, adds the
# bias and hands the result back with PyTorch's shape `(N, O, Ho, Wo)`. It
# records the columns in the context: the backward pass needs them for the
# weight gradient.
#
# **Shape is not memory order.** The product leaves the output as
# `(O, Ho·Wo·N)`, batch innermost. `out.reshape(O, Ho, Wo, N).transpose(3, 0,
# 1, 2)` has the shape `(N, O, Ho, Wo)` and is a *view*: only the strides
# change (module 02). We keep it that way instead of copying it into C order:
# the tensor has PyTorch's shape and the convolution's **memory format**, as
# PyTorch's `channels_last` tensors have the NCHW shape and NHWC memory. What
# follows keeps the format for free: NumPy's element-wise functions write
# their result in the memory order of their inputs (ReLU), the pooling below
# copies in that order (`copy(order="K")`, `np.zeros_like`), and then the next
# convolution's `pad_to_chwn` and the reordering of the gradient in the
# backward pass read long contiguous runs, or nothing at all. A gradient that
# arrives in another order (from `Flatten`, whose `reshape` copies into C
# order) is brought into the format once, by the pooling that receives it.
#
# The gradient rule, with `g` the output gradient reordered to `(O, Ho·Wo·N)`:
#
# * `grad_b = g.sum(axis=1)`
# * `grad_w = (g @ cols.T).reshape(w.shape)` — one matrix product;
# * `grad_x = col2im(w2.T @ g)`, cropped to remove the padding and put back
#   in `(N, C, H, W)` order — skipped when the input needs no gradient (the
#   first layer's input is the data: this saves a third of its backward).

# %% nbgrader={"grade": false, "grade_id": "conv2d", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def conv2d(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, stride: Size2 = 1,
           padding: Size2 = 0) -> Tensor:
    """2-D convolution (cross-correlation, like PyTorch): x (N, C, H, W), weight (O, C, kh, kw), bias (O,)."""
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    if weight.ndim != 4:
        raise ValueError(f"conv2d needs a weight of shape (O, C, kh, kw), got shape {weight.shape}")
    _check_input("conv2d", x, weight.shape[2:], stride, padding)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv2d: input of shape {x.shape} has {x.shape[1]} channels, but the weight of shape "
                         f"{weight.shape} expects {weight.shape[1]}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"conv2d: bias of shape {bias.shape} does not fit weight {weight.shape}: "
                         f"it needs shape ({weight.shape[0]},)")
    kernel = weight.shape[2:]
    n_images = x.shape[0]
    out_channels = weight.shape[0]
    ho = output_size(x.shape[2], kernel[0], stride[0], padding[0])
    wo = output_size(x.shape[3], kernel[1], stride[1], padding[1])
    parents = (x, weight) if bias is None else (x, weight, bias)
    ### BEGIN SOLUTION
    xpad = pad_to_chwn(x.data, padding)
    cols = im2col(xpad, kernel, stride)                          # (C·kh·kw, Ho·Wo·N)
    out = weight.data.reshape(out_channels, -1) @ cols           # (O, Ho·Wo·N): the one matrix product
    if bias is not None:
        out += bias.data.reshape(-1, 1)                          # in place: one bias per row
    result = out.reshape(out_channels, ho, wo, n_images).transpose(3, 0, 1, 2)  # (N, O, Ho, Wo): a view, batch last
    return _make(result, "conv2d", parents, (cols, xpad.shape, stride, padding))
    ### END SOLUTION


@gradient_rule("conv2d")
def conv2d_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    x, weight = out._parents[:2]
    cols, padded_shape, stride, padding = out._ctx
    n_images, out_channels, ho, wo = grad.shape
    ### BEGIN SOLUTION
    g = np.ascontiguousarray(grad.transpose(1, 2, 3, 0)).reshape(out_channels, -1)  # (O, Ho·Wo·N): batch last, no copy
    w2 = weight.data.reshape(out_channels, -1)                                      # (O, C·kh·kw)
    grad_w = (g @ cols.T).reshape(weight.shape) if weight.requires_grad else None
    grad_x = None
    if x.requires_grad:
        gpad = col2im(w2.T @ g, padded_shape, weight.shape[2:], stride, (ho, wo))    # (C, Hp, Wp, N)
        (ph, pw), (_, height, width, _) = padding, padded_shape
        grad_x = gpad[:, ph:height - ph, pw:width - pw, :].transpose(3, 0, 1, 2)      # (N, C, H, W), a view
    if len(out._parents) == 2:
        return grad_x, grad_w
    return grad_x, grad_w, g.sum(axis=1)
    ### END SOLUTION


# %% [markdown]
# ## Pooling
#
# `max_pool2d` keeps the largest value of each `k×k` window (stride defaults
# to the kernel size: windows that tile the image). Its gradient goes to the
# one input that won, like PyTorch: the first maximum of the window when
# there is a tie. `avg_pool2d` averages the window, so its gradient is
# spread evenly: `grad / (kh·kw)` to every input of the window.
#
# Both use the same sliding-window view as im2col, this time on
# `(N, C, H, W)` directly, and both backward passes loop over the `kh·kw`
# window offsets only. The forward of max pooling keeps, per output, the
# *index* of the winner inside its window (an int8 per output: the smallest
# record that makes the backward pass exact).
#
# **Reshape pooling.** The common case — a 2×2 window with stride 2 on an
# even-sized map, as in the milestone CNN — needs no window view at all:
# when the windows tile the image exactly (stride = kernel, sizes divisible),
# `x.reshape(N, C, Ho, kh, Wo, kw)` is a *view* in which window `(i, j)` is
# `[:, :, i, :, j, :]`. The pooling is then `kh·kw` element-wise maximums
# of the strided slices `tiles[:, :, :, u, :, v]`, each the size of the
# output — not `tiles.max(axis=(3, 5))`: NumPy's reductions over short,
# strided axes are slow (we measured 34 ms against 1.2 ms for the four
# maximums on the CNN's first pooling). No copy of the input, no argmax,
# nothing saved for the backward pass: it finds each window's first winner
# again from the input and the output, `kh·kw` comparisons on arrays of the
# output's size. Both passes keep the input's memory format (above): the
# output is copied with `order="K"` and the gradient made with
# `np.zeros_like`, so on the convolution's batch-last tensors every slice
# `tiles[:, :, :, u, :, v]` is runs of N contiguous numbers (in C order,
# runs of `Wo` numbers two apart). The general path asks
# `windows.reshape(..., kh·kw)` of a strided view, which *copies* the
# input, then runs `argmax` over a last
# axis of 4: on the milestone CNN that was about 8 of its 21 ms per training
# step (measured below). PyTorch has special kernels for the same reason.

# %% nbgrader={"grade": false, "grade_id": "pooling", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _pool_setup(op: str, x: TensorLike, kernel_size: Size2, stride: Size2 | None) -> tuple[Tensor, Pair, Pair]:
    x = as_tensor(x)
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    _check_input(op, x, kernel, stride, (0, 0))
    return x, kernel, stride


def _windows(data: np.ndarray, kernel: Pair, stride: Pair) -> np.ndarray:
    """(N, C, H, W) -> a view (N, C, Ho, Wo, kh, kw) of every stride-th window: no copy."""
    return sliding_window_view(data, kernel, axis=(2, 3))[:, :, ::stride[0], ::stride[1]]


def _offset_slice(u: int, v: int, stride: Pair, out_size: tuple[int, ...]) -> tuple[slice, slice, slice, slice]:
    """The input pixels at window offset (u, v) of every output pixel, as a slice of (N, C, H, W)."""
    (sh, sw), (ho, wo) = stride, out_size
    return (slice(None), slice(None), slice(u, u + sh * (ho - 1) + 1, sh), slice(v, v + sw * (wo - 1) + 1, sw))


def _tiles(data: np.ndarray, kernel: Pair, stride: Pair) -> np.ndarray | None:
    """(N, C, H, W) -> a view (N, C, Ho, kh, Wo, kw) when the windows tile the image exactly, else None."""
    (kh, kw), (n_images, channels, height, width) = kernel, data.shape
    if stride != kernel or height % kh or width % kw:
        return None
    return data.reshape(n_images, channels, height // kh, kh, width // kw, kw)


def in_memory_order_of(like: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` (shaped like `like`) in the memory order of `like`: one copy, none when it is in that order."""
    if values.strides == like.strides:
        return values
    ordered = np.empty_like(like, dtype=values.dtype)
    ordered[...] = values
    return ordered


def max_pool2d(x: TensorLike, kernel_size: Size2, stride: Size2 | None = None) -> Tensor:
    """The maximum of each kh×kw window: (N, C, H, W) -> (N, C, Ho, Wo)."""
    x, kernel, stride = _pool_setup("max_pool2d", x, kernel_size, stride)
    ### BEGIN SOLUTION
    tiles = _tiles(x.data, kernel, stride)
    if tiles is not None:                                 # reshape pooling: a view, kh·kw maximums
        out = tiles[:, :, :, 0, :, 0].copy(order="K")      # in the input's memory order
        for u in range(kernel[0]):
            for v in range(kernel[1]):
                np.maximum(out, tiles[:, :, :, u, :, v], out=out)
        return _make(out, "max_pool2d", (x,), (None, kernel, stride))
    windows = _windows(x.data, kernel, stride)
    flat = windows.reshape(*windows.shape[:4], -1)        # (N, C, Ho, Wo, kh·kw): the one copy
    winner = flat.argmax(axis=-1)                         # first maximum, as in PyTorch
    out = np.take_along_axis(flat, winner[..., None], axis=-1)[..., 0]
    small = flat.shape[-1] <= 127                         # an int8 per output is enough for windows up to 11x11
    return _make(out, "max_pool2d", (x,), (winner.astype(np.int8) if small else winner, kernel, stride))
    ### END SOLUTION


def avg_pool2d(x: TensorLike, kernel_size: Size2, stride: Size2 | None = None) -> Tensor:
    """The mean of each kh×kw window: (N, C, H, W) -> (N, C, Ho, Wo)."""
    x, kernel, stride = _pool_setup("avg_pool2d", x, kernel_size, stride)
    ### BEGIN SOLUTION
    tiles = _tiles(x.data, kernel, stride)
    if tiles is not None:                                 # reshape pooling: a view, kh·kw sums
        out = np.zeros_like(tiles[:, :, :, 0, :, 0])      # in the input's memory order
        for u in range(kernel[0]):
            for v in range(kernel[1]):
                out += tiles[:, :, :, u, :, v]
        return _make(out / (kernel[0] * kernel[1]), "avg_pool2d", (x,), (kernel, stride))
    out = _windows(x.data, kernel, stride).mean(axis=(-2, -1), dtype=x.dtype)  # reduces the view: no copy
    return _make(out, "avg_pool2d", (x,), (kernel, stride))
    ### END SOLUTION


@gradient_rule("max_pool2d")
def max_pool2d_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    (x,), (winner, kernel, stride) = out._parents, out._ctx
    ### BEGIN SOLUTION
    tiles = _tiles(x.data, kernel, stride)
    if winner is None and tiles is not None:              # reshape pooling: find each window's first winner
        full = np.zeros_like(x.data, dtype=grad.dtype)    # (N, C, H, W) in the input's memory order
        full_tiles = full.reshape(tiles.shape)            # (N, C, Ho, kh, Wo, kw): splitting axes never copies
        taken = np.zeros_like(out.data, dtype=bool)       # windows whose winner is already found
        grad = in_memory_order_of(out.data, grad)         # so every pass below runs along the same memory
        for u in range(kernel[0]):
            for v in range(kernel[1]):
                first = (tiles[:, :, :, u, :, v] == out.data) & ~taken
                taken |= first
                np.multiply(grad, first, out=full_tiles[:, :, :, u, :, v])
        return (full,)
    full = np.zeros(x.shape, dtype=grad.dtype)
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            full[_offset_slice(u, v, stride, out.shape[2:])] += np.where(winner == u * kernel[1] + v, grad, 0)
    return (full,)
    ### END SOLUTION


@gradient_rule("avg_pool2d")
def avg_pool2d_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    (x,), (kernel, stride) = out._parents, out._ctx
    ### BEGIN SOLUTION
    share = grad / (kernel[0] * kernel[1])
    tiles = _tiles(x.data, kernel, stride)
    if tiles is not None:                                 # every input pixel is in exactly one window
        return (np.broadcast_to(share[:, :, :, None, :, None], tiles.shape).reshape(x.shape),)
    full = np.zeros(x.shape, dtype=grad.dtype)
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            full[_offset_slice(u, v, stride, out.shape[2:])] += share
    return (full,)
    ### END SOLUTION


# %% [markdown]
# ## The layers
#
# `Conv2d` holds the weight `(out_channels, in_channels, kh, kw)` and the bias
# `(out_channels,)`, initialised like PyTorch: uniform in `±1/√fan_in` with
# `fan_in = in_channels·kh·kw` (PyTorch's `kaiming_uniform_(a=√5)` works out
# to exactly that bound). So a PyTorch state dict loads into it unchanged.
# `Flatten` keeps the batch axis and joins the rest: it is a `reshape`, which
# already has a gradient rule.

# %% nbgrader={"grade": false, "grade_id": "layers", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Conv2d(Module):
    """2-D convolution layer with PyTorch's weight shape (out, in, kh, kw) and initialisation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Size2, stride: Size2 = 1, padding: Size2 = 0,
                 bias: bool = True):
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"Conv2d needs positive channel counts, got in_channels={in_channels}, "
                             f"out_channels={out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride, self.padding = _pair(stride, "stride"), _pair(padding, "padding")
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = 1 / math.sqrt(fan_in)
        shape = (out_channels, in_channels, *self.kernel_size)
        self.weight = Parameter(rng().uniform(-bound, bound, shape).astype(np.float32))
        self.bias = Parameter(rng().uniform(-bound, bound, out_channels).astype(np.float32)) if bias else None

    def forward(self, x: TensorLike) -> Tensor:
        ### BEGIN SOLUTION
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class _Pool2d(Module):
    """What the pooling layers share: a window size and a stride (by default, the window size)."""

    def __init__(self, kernel_size: Size2, stride: Size2 | None = None):
        self.kernel_size, self.stride = kernel_size, stride

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class MaxPool2d(_Pool2d):
    def forward(self, x: TensorLike) -> Tensor:
        ### BEGIN SOLUTION
        return max_pool2d(x, self.kernel_size, self.stride)
        ### END SOLUTION


class AvgPool2d(_Pool2d):
    def forward(self, x: TensorLike) -> Tensor:
        ### BEGIN SOLUTION
        return avg_pool2d(x, self.kernel_size, self.stride)
        ### END SOLUTION


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1·d2·...): keeps the batch axis."""

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        ### BEGIN SOLUTION
        return x.reshape(x.shape[0], -1)
        ### END SOLUTION


# %% [markdown]
# ## The classifier's Linear as one primitive, as PyTorch's `addmm`
#
# `conv2d` above is one matrix product and a bias, recorded as one node of
# the graph with its own gradient rule. Module 04's `Linear`, the CNN's last
# layers, is the same arithmetic composed: `x @ W.T + b` records a `permute`
# (the `.T`), the `matmul` and the `add` — and for a `(B, T, C)` input two
# `reshape`s — and the `+ b` makes a second output-sized array. Its backward
# pass has a hidden cost too: `matmul` computes the weight's gradient as
# `xᵀ g`, shaped `(in, out)`, and the `permute` hands back its transpose,
# which the leaf then copies element by element into the weight's
# `(out, in)` layout.
#
# `linear(x, weight, bias)` (given) computes the same numbers as one
# primitive, the way PyTorch's `F.linear` calls one BLAS `addmm`:
#
# ```
# out         = x @ Wᵀ, then  out += b          in place: one (N, out) array
# grad_x      = g @ W
# grad_weight = gᵀ @ x                          (out, in), written in the weight's memory order: no copy
# grad_bias   = g summed over the rows
# ```
#
# with `x` and `g` viewed as `(N, in)` and `(N, out)` matrices (`N = B·T` for
# a `(B, T, in)` input). `FusedLinear` is module 04's `Linear` (same
# parameters, names and initialisation) running it; the milestone CNN's
# classifier and module 14's transformer use it. Measured below (one thread,
# a shared machine): the CNN's `Linear(784, 64)` on a batch of 64, forward +
# backward, 0.18 ms -> 0.16 ms — under 1% of the CNN's training step, whose
# time goes to the convolutions and the pooling; on the transformer's larger
# layers it saves more (module 14).

# %%
#| export
def linear(x: TensorLike, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias as one primitive (op "linear"), PyTorch's F.linear: weight (out, in), x (..., in)."""
    x = as_tensor(x)
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: a weight of shape {weight.shape} expects inputs (..., {weight.shape[1]}), "
                         f"got {x.shape}")
    rows = x.data.reshape(-1, x.shape[-1])                     # (N, in): every position, one tall matrix
    out = rows @ weight.data.T                                 # (N, out); .T is a view, BLAS reads it transposed
    if bias is not None:
        out += bias.data                                       # in place: no second (N, out) array
    parents = (x, weight) if bias is None else (x, weight, bias)
    return _make(out.reshape(*x.shape[:-1], weight.shape[0]), "linear", parents, rows)


@gradient_rule("linear")
def linear_backward(out: Tensor, grad: np.ndarray) -> Gradients:
    x, weight, *bias = out._parents
    rows, g = out._ctx, grad.reshape(-1, grad.shape[-1])       # (N, in), (N, out)
    grad_x = (g @ weight.data).reshape(x.shape) if x.requires_grad else None
    # (out, in), written straight into the weight's own memory order (FusedLinear's is column-major, below)
    grad_weight = np.matmul(g.T, rows, out=np.empty_like(weight.data)) if weight.requires_grad else None
    grad_bias = [g.sum(axis=0)] if bias else []
    return (grad_x, grad_weight, *grad_bias)


class FusedLinear(Linear):
    """Module 04's Linear (same parameters, names and initialisation), computed by the `linear` primitive, with
    the weight stored column-major: PyTorch's shape (out, in), memory (in, out), so that `weight.T` is C-ordered."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.weight.data = np.asfortranarray(self.weight.data)  # same numbers; see "Which layout BLAS reads fastest"

    def forward(self, x: TensorLike) -> Tensor:
        return linear(x, self.weight, self.bias)


# %% [markdown]
# ## Try it
#
# A vertical-edge kernel on an image whose left half is dark and right half
# bright: the output lights up only along the edge.

# %%
image = np.zeros((1, 1, 6, 6), dtype=np.float32)
image[..., 3:] = 1.0
edge = np.array([[[[-1.0, 0.0, 1.0]] * 3]], dtype=np.float32)  # (1, 1, 3, 3)
print(conv2d(Tensor(image), Tensor(edge)).data[0, 0])

# %% [markdown]
# ## Tests
#
# `python -m tinytorch.check 09` runs the same tests on your exported code.

# %% nbgrader={"grade": true, "grade_id": "test-spatial-im2col", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""im2col copies each window into a column; col2im adds the columns back (each pixel once per window holding it)."""
x = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
xpad = pad_to_chwn(x, (0, 0))
assert xpad.shape == (1, 3, 3, 2), f"got xpad.shape = {xpad.shape!r}"
cols = im2col(xpad, (2, 2), (1, 1))
assert cols.shape == (4, 2 * 2 * 2), f"got cols.shape = {cols.shape!r}; (4, 2 * 2 * 2) = {(4, 2 * 2 * 2)!r}"
# column (i=0, j=1, n=1) is the 2x2 window at row 0, column 1 of image 1
assert cols[:, (0 * 2 + 1) * 2 + 1].tolist() == x[1, 0, 0:2, 1:3].ravel().tolist(), \
    f"got cols[:, (0 * 2 + 1) * 2 + 1].tolist() = {cols[:, (0 * 2 + 1) * 2 + 1].tolist()!r}; x[1, 0, 0:2, 1:3].ravel().tolist() = {x[1, 0, 0:2, 1:3].ravel().tolist()!r}"
back = col2im(np.ones_like(cols), xpad.shape, (2, 2), (1, 1), (2, 2))
assert back[0, :, :, 0].tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]], \
    f"the centre pixel is in all 4 windows: got back[0, :, :, 0].tolist() = {back[0, :, :, 0].tolist()!r}"
assert im2col(pad_to_chwn(x, (1, 1)), (3, 3), (2, 2)).shape == (9, 2 * 2 * 2), \
    f"got im2col(pad_to_chwn(x, (1, 1)), (3, 3), (2, 2)).shape = {im2col(pad_to_chwn(x, (1, 1)), (3, 3), (2, 2)).shape!r}; (9, 2 * 2 * 2) = {(9, 2 * 2 * 2)!r}"

# %% nbgrader={"grade": true, "grade_id": "test-spatial-conv-forward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""conv2d equals the naive loops for several strides, paddings and odd/even sizes; errors name the shapes."""
r = np.random.default_rng(0)
for (h, w, k, s, p) in [(5, 5, 3, 1, 0), (6, 7, 3, 2, 1), (8, 8, 2, 2, 2), (4, 5, 1, 1, 0)]:
    x = r.standard_normal((2, 3, h, w)).astype(np.float32)
    wt = r.standard_normal((4, 3, k, k)).astype(np.float32)
    b = r.standard_normal(4).astype(np.float32)
    out = conv2d(Tensor(x), Tensor(wt), Tensor(b), stride=s, padding=p)
    assert out.dtype == np.float32, f"got out.dtype = {out.dtype!r}"
    assert np.allclose(out.data, conv2d_naive(x, wt, b, s, p), atol=1e-4), (h, w, k, s, p)
try:
    conv2d(Tensor(np.zeros((1, 2, 5, 5), np.float32)), Tensor(np.zeros((4, 3, 3, 3), np.float32)))
    raise AssertionError("a channel mismatch must be refused")
except ValueError as error:
    assert "(1, 2, 5, 5)" in str(error), f"got str(error) = {str(error)!r}"
    assert "(4, 3, 3, 3)" in str(error), f"got str(error) = {str(error)!r}"
try:
    conv2d(Tensor(np.zeros((1, 1, 2, 2), np.float32)), Tensor(np.zeros((1, 1, 5, 5), np.float32)), padding=1)
    raise AssertionError("a kernel larger than the padded input must be refused")
except ValueError as error:
    assert "(5, 5)" in str(error), f"got str(error) = {str(error)!r}"
    assert "(4, 4)" in str(error), f"got str(error) = {str(error)!r}"

# %% nbgrader={"grade": true, "grade_id": "test-spatial-conv-backward", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
"""conv2d's gradients for input, weight and bias agree with finite differences (float64)."""
r = np.random.default_rng(1)
def t(*shape):
    return Tensor(r.standard_normal(shape), requires_grad=True, dtype=np.float64)
gradcheck(lambda x, w, b: conv2d(x, w, b, stride=1, padding=1), [t(2, 2, 4, 5), t(3, 2, 3, 3), t(3)])
gradcheck(lambda x, w: conv2d(x, w, stride=2, padding=0), [t(2, 1, 5, 6), t(2, 1, 2, 2)])
gradcheck(lambda x, w: conv2d(x, w, stride=2, padding=2), [t(1, 2, 3, 3), t(2, 2, 3, 3)])

# %% nbgrader={"grade": true, "grade_id": "test-spatial-pooling", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Max and average pooling: values, shapes, gradients (max: to the first winner only)."""
x = Tensor(np.array([[[[1, 2, 5, 0], [3, 4, 1, 1], [0, 0, 2, 2], [9, 0, 2, 2]]]], dtype=np.float32),
           requires_grad=True)
m = max_pool2d(x, 2)
assert m.shape == (1, 1, 2, 2), f"got m.shape = {m.shape!r}"
assert m.data[0, 0].tolist() == [[4, 5], [9, 2]], f"got m.data[0, 0].tolist() = {m.data[0, 0].tolist()!r}"
m.sum().backward()
assert x.grad[0, 0].tolist() == [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]], \
    f"ties: first wins: got x.grad[0, 0].tolist() = {x.grad[0, 0].tolist()!r}"
a = avg_pool2d(x, 2)
assert a.data[0, 0].tolist() == [[2.5, 1.75], [2.25, 2.0]], f"got a.data[0, 0].tolist() = {a.data[0, 0].tolist()!r}"
assert max_pool2d(Tensor(np.zeros((2, 3, 7, 7), np.float32)), 3, stride=2).shape == (2, 3, 3, 3), \
    f"got max_pool2d(Tensor(np.zeros((2, 3, 7, 7), np.float32)), 3, stride=2).shape = {max_pool2d(Tensor(np.zeros((2, 3, 7, 7), np.float32)), 3, stride=2).shape!r}"
r = np.random.default_rng(2)
gradcheck(lambda v: avg_pool2d(v, 3, stride=2), [Tensor(r.standard_normal((2, 2, 5, 6)), requires_grad=True, dtype=np.float64)])
gradcheck(lambda v: max_pool2d(v, 2), [Tensor(r.standard_normal((2, 2, 4, 5)), requires_grad=True, dtype=np.float64)])

# %% nbgrader={"grade": true, "grade_id": "test-spatial-layers", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Conv2d has PyTorch's weight shape and init bound; a small CNN runs forward and backward."""
conv = Conv2d(3, 8, 3, padding=1)
assert conv.weight.shape == (8, 3, 3, 3), f"got conv.weight.shape = {conv.weight.shape!r}"
assert conv.bias.shape == (8,), f"got conv.bias.shape = {conv.bias.shape!r}"
assert conv.weight.dtype == np.float32, f"got conv.weight.dtype = {conv.weight.dtype!r}"
assert np.abs(conv.weight.data).max() <= 1 / np.sqrt(27), \
    f"got np.abs(conv.weight.data).max() = {np.abs(conv.weight.data).max()!r}; 1 / np.sqrt(27) = {1 / np.sqrt(27)!r}"
assert len(conv.parameters()) == 2, f"got len(conv.parameters()) = {len(conv.parameters())!r}"
assert len(Conv2d(3, 8, 3, bias=False).parameters()) == 1, \
    f"got len(Conv2d(3, 8, 3, bias=False).parameters()) = {len(Conv2d(3, 8, 3, bias=False).parameters())!r}"
x = Tensor(np.random.default_rng(3).standard_normal((4, 3, 8, 8)).astype(np.float32))
h = MaxPool2d(2)(conv(x))
assert h.shape == (4, 8, 4, 4), f"got h.shape = {h.shape!r}"
assert AvgPool2d(2)(h).shape == (4, 8, 2, 2), f"got AvgPool2d(2)(h).shape = {AvgPool2d(2)(h).shape!r}"
flat = Flatten()(h)
assert flat.shape == (4, 128), f"got flat.shape = {flat.shape!r}"
flat.sum().backward()
assert conv.weight.grad.shape == (8, 3, 3, 3), f"got conv.weight.grad.shape = {conv.weight.grad.shape!r}"
assert conv.bias.grad.shape == (8,), f"got conv.bias.grad.shape = {conv.bias.grad.shape!r}"

# %% [markdown]
# ## Memory and performance analysis
#
# First the price of im2col: the columns should take
# `C·kh·kw · Ho·Wo·N · 4` bytes. The profiler's peak for `im2col` should be
# that (the sliding-window view itself costs nothing).

# %%
from tinytorch.profiler import Profile, measure, expected_bytes, format_bytes

r = np.random.default_rng(0)
for (n, c, h, k) in [(64, 1, 28, 3), (64, 8, 14, 3), (64, 32, 14, 5)]:
    xpad = pad_to_chwn(r.standard_normal((n, c, h, h)).astype(np.float32), (k // 2, k // 2))
    with Profile("view") as view:
        sliding_window_view(xpad, (k, k), axis=(1, 2))
    m = measure(im2col, xpad, (k, k), (1, 1), label=f"im2col N={n} C={c} {h}x{h} k={k}")
    predicted = expected_bytes((c * k * k, h * h * n))
    print(f"{m}; predicted {format_bytes(predicted)} = {k * k}x the input "
          f"{format_bytes(expected_bytes((n, c, h, h)))}; the window view: {format_bytes(view.peak_bytes)}")

# %% [markdown]
# Now the naive loops against the vectorized version, on the second layer of
# the MNIST network. The loops run on 4 images only (they take seconds for 64);
# we scale their time up, since it is linear in the batch.

# %%
x = r.standard_normal((64, 8, 14, 14)).astype(np.float32)
w = r.standard_normal((16, 8, 3, 3)).astype(np.float32)
b = r.standard_normal(16).astype(np.float32)
naive = measure(conv2d_naive, x[:4], w, b, 1, 1, repeat=1, label="naive loops, 4 images")
fast = measure(lambda: conv2d(Tensor(x), Tensor(w), Tensor(b), padding=1), repeat=10, label="im2col, 64 images")
print(naive)
print(fast)
print(f"speed-up on a batch of 64: {naive.seconds * 16 / fast.seconds:.0f}x")

# %% [markdown]
# And forward + backward of the two convolutions of the MNIST network, with
# the time split into its parts. Whatever is not the matrix products is
# copying: that is where to look for the next speed-up.

# %%
def conv_step(x, weight, bias):
    out = conv2d(x, weight, bias, padding=1)
    out.backward(np.ones(out.shape, dtype=np.float32))

for (c_in, c_out, size, input_grad) in [(1, 8, 28, False), (8, 16, 14, True)]:
    x = Tensor(r.standard_normal((64, c_in, size, size)).astype(np.float32), requires_grad=input_grad)
    weight = Tensor(r.standard_normal((c_out, c_in, 3, 3)).astype(np.float32), requires_grad=True)
    bias = Tensor(r.standard_normal(c_out).astype(np.float32), requires_grad=True)
    xpad = pad_to_chwn(x.data, (1, 1))
    cols = im2col(xpad, (3, 3), (1, 1))
    print(measure(conv_step, x, weight, bias, repeat=10, label=f"Conv2d({c_in},{c_out},3,p=1) {size}x{size} fwd+bwd"))
    print("   ", measure(pad_to_chwn, x.data, (1, 1), repeat=10, label="pad + reorder"))
    print("   ", measure(im2col, xpad, (3, 3), (1, 1), repeat=10, label="im2col copy"))
    print("   ", measure(np.matmul, weight.data.reshape(c_out, -1), cols, repeat=10, label="forward matmul"))

# %% [markdown]
# Reshape pooling against the window view: forward and backward of a 2×2 max
# pool on the first layer's output. A width of 29 does not tile, so there
# `max_pool2d` takes the general path (copy, argmax, winner indices).

# %%
def pool_step(x):
    out = max_pool2d(x, 2)
    out.backward(np.ones(out.shape, dtype=np.float32))


tiled = Tensor(r.standard_normal((64, 8, 28, 28)).astype(np.float32), requires_grad=True)
untiled = Tensor(r.standard_normal((64, 8, 28, 29)).astype(np.float32), requires_grad=True)
reshaped = measure(pool_step, tiled, repeat=10, label="reshape pooling, 28x28")
windowed = measure(pool_step, untiled, repeat=10, label="window view + argmax, 28x29")
print(reshaped)
print(windowed)
print(f"reshape pooling: {windowed.seconds / reshaped.seconds:.1f}x faster, "
      f"{format_bytes(windowed.peak_bytes - reshaped.peak_bytes)} less memory at its peak")

# %% [markdown]
# The memory format, measured: what follows the CNN's first convolution
# (ReLU and 2×2 max pooling), forward and backward, on the same numbers
# stored in C order and in the batch-last order `conv2d` hands back. Then
# that convolution's gradient rule on a gradient in each order: the
# batch-last one is reordered to `(O, Ho·Wo·N)` without a copy.

# %%
from tinytorch.activations import relu


def relu_pool_step(x):
    out = max_pool2d(relu(x), 2)
    out.backward(np.ones(out.shape, dtype=np.float32))


first_output = r.standard_normal((64, 8, 28, 28)).astype(np.float32)
formats = {"C order": first_output,
           "batch last": np.ascontiguousarray(first_output.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)}
times = {}
for name, data in formats.items():
    times[name] = measure(relu_pool_step, Tensor(data, requires_grad=True), repeat=10,
                          label=f"ReLU + 2x2 max pool fwd+bwd, input in {name}")
    print(times[name])
print(f"batch last: {times['C order'].seconds / times['batch last'].seconds:.2f}x faster")

conv = Tensor(r.standard_normal((64, 1, 28, 28)).astype(np.float32)), \
    Tensor(r.standard_normal((8, 1, 3, 3)).astype(np.float32), requires_grad=True)
out = conv2d(*conv, padding=1)
for name, grad in (("C order", np.ascontiguousarray(out.data)), ("batch last", out.data.copy(order="K"))):
    print(measure(conv2d_backward, out, grad, repeat=10, label=f"Conv2d(1,8) gradient rule, gradient in {name}"))

# %% [markdown]
# And the classifier's `Linear(784, 64)` on a batch of 64 flattened feature
# maps: module 04's composed `Linear` against `FusedLinear`, the same weights.

# %%
from tinytorch.tensor import manual_seed

manual_seed(0)
plain_fc = Linear(784, 64)
manual_seed(0)
fused_fc = FusedLinear(784, 64)
features = Tensor(r.standard_normal((64, 784)).astype(np.float32), requires_grad=True)
upstream = r.standard_normal((64, 64)).astype(np.float32)     # the gradient the next layer sends back
for name, layer in (("Linear (module 04)", plain_fc), ("FusedLinear", fused_fc)):
    m = measure(lambda f: f(features).backward(upstream), layer, repeat=50)
    print(f"{name:18s}: {m.seconds * 1e3:5.3f} ms forward + backward, peak {format_bytes(m.peak_bytes)}")

# %% [markdown]
# ### Which layout BLAS reads fastest
#
# `FusedLinear` keeps PyTorch's weight shape `(out, in)` but stores it
# **column-major** (`np.asfortranarray`): in memory it is laid out as
# `(in, out)`, so `weight.T` in `x @ weight.T` is an ordinary C-ordered
# matrix. BLAS can read a transposed operand without copying it, but a
# library need not be equally fast both ways, least of all on small
# products. The numbers are the same; only the memory order changes, as
# with the batch-last convolutions above. The gradient rule writes the
# weight's gradient into `np.empty_like(weight)`, so it comes out in the
# weight's own memory order and the optimizer's element-wise updates read
# the two in step.
#
# Measure it on the transformer's `Linear(128, 512)` (module 14): 64 rows
# is one sequence during generation (module 15), 768 rows a training batch.
# On the course's reference machine (OpenBLAS 0.3, one thread, AVX-512) the
# column-major weight was 1.35x faster at 64 rows (about 0.11 against
# 0.15 ms) and 1.06-1.22x at 768 rows: it matters most where products are
# small. Measure it on yours: another BLAS may prefer the other order.

# %%
weight = r.standard_normal((512, 128)).astype(np.float32)      # (out, in), row-major as module 04 makes it
for rows in (64, 768):
    x = r.standard_normal((rows, 128)).astype(np.float32)
    seconds = {name: measure(np.matmul, x, w.T, repeat=50).seconds
               for name, w in (("row-major", weight), ("column-major", np.asfortranarray(weight)))}
    print(f"({rows:3d}, 128) @ W.T: W row-major {seconds['row-major'] * 1e6:6.0f} µs, column-major "
          f"{seconds['column-major'] * 1e6:6.0f} µs ({seconds['row-major'] / seconds['column-major']:.2f}x)")

# %% [markdown]
# ### Receptive field: how much of the image one output sees
#
# One output pixel of a 3×3 convolution depends on a 3×3 patch of its input.
# Stack layers and the patch grows: each 3×3 convolution adds 2 input pixels
# (times the stride of everything below it), and a 2×2 pool doubles the
# step of everything above it. Measure it instead of deriving it: backward
# from the centre output pixel, and count the input pixels whose gradient is
# not zero. (Weights are set to 1 and average pooling is used, so no
# gradient cancels or is routed to a single winner as in max pooling.)

# %%
def measured_receptive_field(layers, size=32):
    x = Tensor(np.ones((1, 1, size, size), dtype=np.float32), requires_grad=True)
    for layer in layers:
        for p in layer.parameters():
            p.data[...] = 1.0
    out = x
    for layer in layers:
        out = layer(out)
    _, _, h, w = out.shape
    out[0, 0, h // 2, w // 2].backward()
    rows, cols = np.nonzero(x.grad[0, 0])
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def formula(layers):
    field, jump = 1, 1                       # field size and input pixels per output step so far
    for layer in layers:
        k = np.atleast_1d(layer.kernel_size)[0]                 # a pool keeps the int it was given
        s = np.atleast_1d(layer.stride or layer.kernel_size)[0]  # a pool's stride defaults to its window
        field, jump = field + (k - 1) * jump, jump * s
    return field


stacks = {
    "conv3": [Conv2d(1, 1, 3)],
    "conv3 conv3": [Conv2d(1, 1, 3), Conv2d(1, 1, 3)],
    "conv3 conv3 conv3": [Conv2d(1, 1, 3), Conv2d(1, 1, 3), Conv2d(1, 1, 3)],
    "conv3 pool2 conv3": [Conv2d(1, 1, 3), AvgPool2d(2), Conv2d(1, 1, 3)],
    "conv3 pool2 conv3 pool2 conv3": [Conv2d(1, 1, 3), AvgPool2d(2), Conv2d(1, 1, 3), AvgPool2d(2), Conv2d(1, 1, 3)],
}
for name, layers in stacks.items():
    h, w = measured_receptive_field(layers)
    print(f"{name:32s} measured {h}x{w} input pixels, formula {formula(layers)}")

# %% [markdown]
# Without pooling the field grows by 2 per layer: seeing a whole 28×28
# digit would take 14 layers. Each pooling doubles the growth of every layer
# above it, which is how the milestone CNN's last layers see most of the
# digit after only two convolutions and two pools.

# %% [markdown]
# ## Comparison with PyTorch
#
# PyTorch's CPU convolution (oneDNN) uses the same idea with blocked memory
# layouts and fused kernels. We give it as many threads as NumPy's BLAS has,
# so the comparison is fair, and check that the numbers agree.

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed("09_spatial")

if torch is not None:
    import os
    import time
    blas_threads = int(os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or os.cpu_count())
    torch.set_num_threads(blas_threads)
    print(f"threads: {blas_threads}")
    for (c_in, c_out, size, input_grad) in [(1, 8, 28, False), (8, 16, 14, True)]:
        x = r.standard_normal((64, c_in, size, size)).astype(np.float32)
        w = r.standard_normal((c_out, c_in, 3, 3)).astype(np.float32)
        b = r.standard_normal(c_out).astype(np.float32)
        ours = [Tensor(x, requires_grad=input_grad), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)]
        theirs = [torch.tensor(x, requires_grad=input_grad), torch.tensor(w, requires_grad=True),
                  torch.tensor(b, requires_grad=True)]

        def torch_step(x, w, b):
            out = torch.nn.functional.conv2d(x, w, b, padding=1)
            out.backward(torch.ones_like(out))

        for p in ours + theirs:
            p.grad = None
        conv_step(*ours)
        torch_step(*theirs)
        assert np.allclose(ours[1].grad, theirs[1].grad.numpy(), rtol=1e-3, atol=1e-2)
        time.sleep(0.5)  # let PyTorch's OpenMP threads stop spinning: they would steal the cores from BLAS
        a = measure(conv_step, *ours, repeat=30, label="tinytorch")
        t = measure(torch_step, *theirs, repeat=30, label="torch")
        print(f"Conv2d({c_in},{c_out},3,p=1) on {size}x{size}, batch 64, fwd+bwd: tinytorch {a.seconds * 1e3:.2f} ms, "
              f"torch {t.seconds * 1e3:.2f} ms, ratio {a.seconds / t.seconds:.2f}")

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** Using the im2col measurements above: how big is the column buffer
# for `Conv2d(8, 16, 3, padding=1)` on a batch of 64 14×14 maps, compared with
# its input? How does the ratio change for a 5×5 kernel, and for stride 2?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-spatial-im2col-memory", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# 72 × (196·64) float32 = 3.6 MB against a 0.4 MB input: kh·kw = 9x (with
# padding 1 and stride 1 there are as many windows as pixels). A 5×5 kernel
# makes it 25x; stride 2 has 4x fewer windows, so about kh·kw/4. The buffer
# is kept until backward (the weight gradient needs it), so it is activation
# memory, per layer, proportional to the batch size.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** The naive loop and the im2col version do the same number of
# floating-point operations. Why is one two or three orders of magnitude
# faster? Name two distinct reasons.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-spatial-why-fast", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# (1) Interpreter overhead: the loops pay ~µs of Python per output pixel for
# only 2·C·kh·kw flops; im2col makes a handful of NumPy calls in total.
# (2) The matrix product runs in BLAS: cache blocking reuses each loaded weight
# and column many times, SIMD does 8 float32 per instruction, and it uses all
# cores. Credit also for: contiguous memory access in the one copy.
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** Why must col2im *add* into the input gradient rather than assign,
# and why is a loop over the `kh·kw` kernel offsets acceptable while a loop
# over pixels is not?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-spatial-col2im", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# An input pixel lies in up to kh·kw windows, so it was copied into that many
# columns and its gradient is the sum of theirs (multivariate chain rule);
# assigning keeps only the last. The offset loop has 9 iterations each doing
# a large vectorized add (whole (C, Ho, Wo, N) blocks), so the Python overhead
# is negligible; a pixel loop has N·Ho·Wo iterations of tiny work.
# === END MARK SCHEME ===

# %% [markdown]
# **Q4.** Receptive field: after Conv(3×3) → MaxPool(2) → Conv(3×3) →
# MaxPool(2), how many input pixels does one output feature see? Why does
# pooling make a network cheaper *and* more tolerant of small shifts?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-spatial-receptive-field", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# 3 → 4 after the first pool → 4 + 2·2 = 8 after the second conv → 8 + 2 = 10
# after the second pool: a 10×10 patch. Pooling 2×2 divides the pixels (and
# so the FLOPs and activation memory of every later layer) by 4, and a
# feature that moves by one pixel inside a pooling window gives the same max.
# === END MARK SCHEME ===

# %% [markdown]
# **Q5.** We store columns as `(C·kh·kw, Ho·Wo·N)` with the batch innermost,
# while PyTorch's tensors are `(N, C, H, W)`. What does that choice cost and
# what does it buy, judging by the timing breakdown above?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-spatial-layout", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Cost: one reordering copy of the input on the way in and of the output (and
# of the output gradient) between layouts. Buys: the im2col copy and the
# col2im adds work on long contiguous runs (Wo·N numbers instead of Wo), and
# the forward and weight-gradient products are single large matmuls instead
# of N small ones. The reorders are cheap next to the 9x column buffer.
# Credit any answer that uses the measured split.
# === END MARK SCHEME ===

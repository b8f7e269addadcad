"""Hypothesis strategies shared by the gradient tests: shapes and float64 tensors."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch as tt

small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4)


def tensor_of(shape, low: float = -2.0, high: float = 2.0, seed: int = 0) -> tt.Tensor:
    """A float64 tensor requiring gradients, values uniform in [low, high) (deterministic per shape and seed)."""
    data = np.random.default_rng(seed + 7919 * len(shape) + sum(shape)).uniform(low, high, shape)
    return tt.Tensor(data, requires_grad=True, dtype=np.float64)


seeds = st.integers(min_value=0, max_value=10_000)

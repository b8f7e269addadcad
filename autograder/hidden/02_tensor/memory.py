"""Module 02 (tensor), hidden memory budgets: tracemalloc peaks of basic operations."""
import numpy as np
from otter.test_files import test_case

from ttgrade import peak_bytes, probe, within_budget

name = "02_tensor memory"
kind = "memory"
stack = "module"

MB = 2**20
OUTPUT = 1000 * 1000 * 4  # one (1000, 1000) float32 buffer


@probe
def add_peak(tt):
    a = tt.Tensor(np.ones((1000, 1000), dtype=np.float32))
    b = tt.Tensor(np.ones((1000, 1000), dtype=np.float32))
    return peak_bytes(lambda: a + b)


@probe
def view_peak(tt):
    a = tt.Tensor(np.ones((1000, 1000), dtype=np.float32))
    return peak_bytes(lambda: (a.reshape(500, 2000), a.transpose(), a[::2]))


@probe
def sum_peak(tt):
    a = tt.Tensor(np.ones((1000, 1000), dtype=np.float32))
    return peak_bytes(lambda: a.sum(axis=0))


@test_case(points=1)
def test_add_allocates_a_few_outputs():
    """Adding two (1000, 1000) float32 tensors allocates at most three output-sized buffers."""
    within_budget(add_peak, budget=3 * OUTPUT, what="a + b on two (1000, 1000) float32 tensors")


@test_case(points=1)
def test_views_do_not_copy():
    """reshape, transpose and strided slicing of a (1000, 1000) tensor are views: no copy of the data."""
    within_budget(view_peak, budget=MB // 4, what="reshape + transpose + a[::2] of a (1000, 1000) tensor")


@test_case(points=1)
def test_sum_does_not_copy_its_input():
    """Summing a (1000, 1000) tensor over an axis needs about one output row, not a copy of the input."""
    within_budget(sum_peak, budget=MB, what="a.sum(axis=0) of a (1000, 1000) float32 tensor")

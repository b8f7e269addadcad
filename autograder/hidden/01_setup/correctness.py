"""Module 01 (setup), hidden correctness: the cost predictions on shapes and dtypes the visible tests skip."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "01_setup correctness"
kind = "correctness"


@test_case(name="test_expected_bytes_edge_shapes", points=1)
@same_as_reference()
@probe
def byte_counts(tt):
    """expected_bytes for empty, 0-d, and non-float32 arrays."""
    from tinytorch.profiler import expected_bytes
    return [expected_bytes(shape, dtype) for shape, dtype in
            [((3, 0, 5), np.float32), ((7,), np.float64), ((2, 3, 4), np.int8), ((), np.float32), ((1000, 1000), np.float16)]]


@test_case(name="test_matmul_flops_edge_shapes", points=1)
@same_as_reference()
@probe
def flop_counts(tt):
    """matmul_flops for 1x1, skinny and outer-product shapes."""
    from tinytorch.profiler import matmul_flops
    return [matmul_flops(*nkm) for nkm in [(1, 1, 1), (3, 5, 7), (1000, 1, 1000), (1, 4096, 1)]]

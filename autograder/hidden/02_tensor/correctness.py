"""Module 02 (tensor), hidden correctness: values, shapes and dtypes against the reference on inputs
the visible tests do not use (3-d broadcasting, batched and 1-d matmul, reductions over several axes,
negative steps, large values)."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "02_tensor correctness"
kind = "correctness"
stack = "module"

A = np.random.default_rng(7).normal(size=(2, 1, 3)).astype(np.float32)
B = np.random.default_rng(8).normal(size=(4, 1)).astype(np.float32)
M = np.random.default_rng(9).normal(size=(2, 3, 4)).astype(np.float32)
N = np.random.default_rng(10).normal(size=(4, 5)).astype(np.float32)


@test_case(name="test_broadcasting_arithmetic", points=2)
@same_as_reference(A, B)
@probe
def arithmetic(tt, a, b):
    """(2, 1, 3) with (4, 1): +, -, *, /, negation, reflected operators and powers broadcast like NumPy."""
    x, y = tt.Tensor(a), tt.Tensor(b)
    return {"a + b": (x + y).data, "a - b": (x - y).data, "a * b": (x * y).data, "a / b": (x / y).data,
            "-a": (-x).data, "2 - a": (2 - x).data, "1 / b": (1 / y).data, "a ** 2": (x ** 2).data}


@test_case(name="test_matmul_shapes", points=2)
@same_as_reference(M, N)
@probe
def matmuls(tt, m, n):
    """Batched, vector-matrix and matrix-vector products."""
    v = n[:, 0]
    return {"batched (2,3,4) @ (4,5)": (tt.Tensor(m) @ tt.Tensor(n)).data,
            "vector (4,) @ (4,5)": (tt.Tensor(v) @ tt.Tensor(n)).data,
            "matrix (3,4) @ vector (4,)": (tt.Tensor(m[0]) @ tt.Tensor(v)).data}


@test_case(name="test_matmul_mismatch_is_an_error", points=1)
@same_as_reference(M, N)
@probe
def matmul_error(tt, m, n):
    """(2, 3, 4) @ (2, 3, 4) cannot work: it must raise the same error type as the reference."""
    product = (tt.Tensor(m) @ tt.Tensor(n)).data  # a working matmul first: the error check alone is given code
    try:
        tt.Tensor(m) @ tt.Tensor(m)
    except Exception as error:  # noqa: BLE001
        return product, type(error).__name__
    return product, "no error"


@test_case(name="test_reductions_over_several_axes", points=2)
@same_as_reference(M)
@probe
def reductions(tt, m):
    """sum/mean/max/argmax over tuples of axes, negative axes, keepdims."""
    x = tt.Tensor(m)
    return {"sum over axes (0, 2), keepdims": x.sum(axis=(0, 2), keepdims=True).data,
            "mean over the last axis": x.mean(axis=-1).data, "max over axis 1, keepdims": x.max(axis=1, keepdims=True).data,
            "sum of everything": x.sum().data, "argmax over axis 2": np.asarray(x.argmax(axis=2).data)}


@test_case(name="test_views_and_indexing", points=2)
@same_as_reference(M)
@probe
def views(tt, m):
    """reshape with -1, permute, transpose, negative-step slices and fancy indexing."""
    x = tt.Tensor(m)
    return {"reshape(-1, 6)": x.reshape(-1, 6).data, "permute(2, 0, 1)": x.permute(2, 0, 1).data,
            "transpose()": x.transpose().data, "[:, ::-1, 1]": x[:, ::-1, 1].data,
            "[[1, 0], :, [3, 2]]": x[[1, 0], :, [3, 2]].data}


@test_case(name="test_tensor_default_dtypes", points=1)
@same_as_reference()
@probe
def dtypes(tt):
    """Results keep NumPy's type promotion: int with int stays int, float32 with a Python float stays float32."""
    ints, floats = tt.Tensor([1, 2, 3]), tt.Tensor([1.5, 2.5, 3.5])
    doubles = tt.Tensor(np.array([1.0, 2.0, 3.0], dtype=np.float64))
    return {"int + int": (ints + ints).data, "float32 * Python float": (floats * 0.5).data,
            "int * float32": (ints * floats).data, "float64 - float32": (doubles - floats).data}


@test_case(name="test_large_values", points=1)
@same_as_reference()
@probe
def large_values(tt):
    """exp overflows to inf like NumPy in float32, tanh saturates, log of tiny values is finite."""
    x = tt.Tensor(np.array([-1e4, -30.0, 0.0, 30.0, 88.0], dtype=np.float32))
    return {"exp": x.exp().data, "tanh": x.tanh().data, "log of 1e-13": tt.Tensor(np.float32(1e-13)).log().data}


@test_case(name="test_history_is_recorded", points=1)
@same_as_reference(A, B)
@probe
def history(tt, a, b):
    """Results record their op and parents when an input requires gradients, and nothing under no_grad."""
    x, y = tt.Tensor(a, requires_grad=True), tt.Tensor(b)
    z = x * y + x
    with tt.no_grad():
        w = x * y
    return {"op of x * y + x": str(z._op), "parents are the operands": bool(z._parents[1] is x),
            "requires_grad": bool(z.requires_grad), "no history under no_grad": bool(not w.requires_grad and not w._parents)}

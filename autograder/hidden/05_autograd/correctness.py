"""Module 05 (autograd), hidden correctness: gradients against the reference on broadcasting, repeated
indices, nodes used twice, reductions with keepdims, batched matmul, and a 5,000-op chain."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "05_autograd correctness"
kind = "correctness"

R = np.random.default_rng(51)
A = R.normal(size=(3, 1, 4)).astype(np.float32)
B = R.normal(size=(2, 4)).astype(np.float32)
P = R.uniform(0.5, 2.0, size=(2, 3)).astype(np.float32)
M1 = R.normal(size=(2, 3, 4)).astype(np.float32)
M2 = R.normal(size=(4, 5)).astype(np.float32)


@test_case(name="test_broadcast_gradients_are_unbroadcast", points=2)
@same_as_reference(A, B)
@probe
def broadcast_grads(tt, a, b):
    """Gradients of broadcast operands have the operands' shapes: (3, 1, 4) and (2, 4)."""
    x, y = tt.Tensor(a, requires_grad=True), tt.Tensor(b, requires_grad=True)
    ((x + y) * y - x / (y * y + 1)).sum().backward()
    return {"grad of a (3, 1, 4)": x.grad, "grad of b (2, 4)": y.grad}


@test_case(name="test_elementwise_gradients", points=1)
@same_as_reference(P, rtol=1e-4)
@probe
def elementwise_grads(tt, p):
    """log, tanh, sqrt and powers (negative and fractional exponents)."""
    x = tt.Tensor(p, requires_grad=True)
    (x.log() * x.tanh() + x ** 3 - (x ** -0.5) + x.sqrt()).sum().backward()
    return {"grad": x.grad}


@test_case(name="test_a_node_used_twice_gets_the_sum", points=1)
@same_as_reference(P)
@probe
def diamond(tt, p):
    """h used twice in h*h + h: its gradient is the sum of both paths."""
    x = tt.Tensor(p, requires_grad=True)
    h = x * 2
    (h * h + h).sum().backward()  # h is used twice: its gradients add up
    return {"grad": x.grad}


@test_case(name="test_indexing_gradients_accumulate_repeated_indices", points=2)
@same_as_reference(M1)
@probe
def indexing_grads(tt, m):
    """x[[0, 0, 1], :, [1, 1, 3]]: repeated indices add up; negative-step slices scatter back."""
    x = tt.Tensor(m, requires_grad=True)
    (x[[0, 0, 1], :, [1, 1, 3]] * 3).sum().backward()  # repeated indices accumulate
    y = tt.Tensor(m, requires_grad=True)
    (y[:, ::-1, 1:3] ** 2).sum().backward()
    return {"fancy-index grad": x.grad, "slice grad": y.grad}


@test_case(name="test_reduction_gradients", points=2)
@same_as_reference(M1)
@probe
def reduction_grads(tt, m):
    """sum/mean/max over several axes with keepdims, and max with ties (as the reference splits them)."""
    x = tt.Tensor(m, requires_grad=True)
    (x.sum(axis=(0, 2), keepdims=True) * x.mean(axis=1, keepdims=True) + x.max(axis=-1, keepdims=True)).sum().backward()
    y = tt.Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], np.float32), requires_grad=True)
    y.max(axis=1).sum().backward()  # ties
    return {"grad": x.grad, "grad with ties in max": y.grad}


@test_case(name="test_matmul_permute_reshape_gradients", points=2)
@same_as_reference(M1, M2, rtol=1e-4)
@probe
def matmul_view_grads(tt, m1, m2):
    """Batched matmul, permute and reshape in one graph; vector @ matrix."""
    x, w = tt.Tensor(m1, requires_grad=True), tt.Tensor(m2, requires_grad=True)
    out = (x @ w).permute(2, 0, 1).reshape(5, -1)
    (out * out).sum().backward()
    v = tt.Tensor(m2[:, 0], requires_grad=True)
    (v @ w).sum().backward()
    return {"grad of the batched input": x.grad, "grad of the weight": w.grad, "grad of a vector": v.grad}


@test_case(name="test_backward_through_5000_ops", points=1)
@same_as_reference(rtol=1e-4)
@probe
def long_chain(tt):
    """A chain of 5,000 operations: no recursion limit, the right gradient."""
    x = tt.Tensor(np.float32(1.0), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    return {"grad after 5,000 ops": x.grad}


@test_case(name="test_gradients_accumulate_across_backward_calls", points=1)
@same_as_reference(P)
@probe
def no_grad_and_accumulation(tt, p):
    """Two backward() calls add into .grad; no_grad records nothing."""
    x = tt.Tensor(p, requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()  # a second backward adds to .grad
    with tt.no_grad():
        z = x * x
    return {"accumulated grad": x.grad, "no history under no_grad": bool(not z.requires_grad)}

"""Module 06 (losses), hidden correctness: values and gradients on huge logits, 3-class and 1-class
edge cases, probabilities at 0 and 1."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe, same

name = "06_losses correctness"
kind = "correctness"

LOGITS = np.array([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0], [-3.0, 200.0, 1.0], [0.1, 0.2, 0.3]], dtype=np.float32)
TARGETS = np.array([2, 0, 1, 1])
PROBS = np.array([[0.0], [1.0], [0.3], [0.999999]], dtype=np.float32)
LABELS = np.array([[0.0], [1.0], [1.0], [0.0]], dtype=np.float32)


@probe
def log_softmax_values(tt, logits):
    from tinytorch.losses import log_softmax
    x = tt.Tensor(logits, requires_grad=True)
    out = log_softmax(x, axis=-1)
    (out * tt.Tensor(np.arange(out.size, dtype=np.float32).reshape(out.shape))).sum().backward()
    column = log_softmax(tt.Tensor(logits), axis=0).data
    return {"log_softmax": out.data, "its gradient": x.grad, "over axis 0": column}


@probe
def cross_entropy_values(tt, logits, targets):
    from tinytorch.losses import cross_entropy
    x = tt.Tensor(logits, requires_grad=True)
    loss = cross_entropy(x, targets)
    loss.backward()
    return {"loss": loss.data, "gradient": x.grad}


@probe
def bce_values(tt, probs, labels):
    from tinytorch.losses import binary_cross_entropy
    p = tt.Tensor(probs, requires_grad=True)
    loss = binary_cross_entropy(p, labels)
    loss.backward()
    return {"loss": loss.data, "finite gradient": np.isfinite(p.grad), "gradient where finite": np.where(np.isfinite(p.grad), p.grad, 0)}


@test_case(points=2)
def test_log_softmax_is_stable():
    """log_softmax of logits up to 1000 apart: finite values and gradient, either axis."""
    same(log_softmax_values, LOGITS, rtol=1e-4, atol=1e-5)


@test_case(points=2)
def test_cross_entropy_on_huge_logits():
    """Cross-entropy with integer targets when a logit is 1000: finite loss, right gradient."""
    same(cross_entropy_values, LOGITS, TARGETS, rtol=1e-4, atol=1e-6)


@test_case(points=1)
def test_binary_cross_entropy_at_zero_and_one():
    """BCE of probabilities exactly 0 and 1: clipped like the reference, no nan."""
    same(bce_values, PROBS, LABELS, rtol=1e-4, atol=1e-5)

"""Module 06 (losses), hidden correctness: values and gradients on huge logits, 3-class and 1-class
edge cases, probabilities at 0 and 1."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "06_losses correctness"
kind = "correctness"

LOGITS = np.array([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0], [-3.0, 200.0, 1.0], [0.1, 0.2, 0.3]], dtype=np.float32)
TARGETS = np.array([2, 0, 1, 1])
PROBS = np.array([[0.0], [1.0], [0.3], [0.999999]], dtype=np.float32)
LABELS = np.array([[0.0], [1.0], [1.0], [0.0]], dtype=np.float32)


@test_case(name="test_log_softmax_is_stable", points=2)
@same_as_reference(LOGITS, rtol=1e-4, atol=1e-5)
@probe
def log_softmax_values(tt, logits):
    """log_softmax of logits up to 1000 apart: finite values and gradient, either axis."""
    from tinytorch.losses import log_softmax
    x = tt.Tensor(logits, requires_grad=True)
    out = log_softmax(x, axis=-1)
    (out * tt.Tensor(np.arange(out.size, dtype=np.float32).reshape(out.shape))).sum().backward()
    column = log_softmax(tt.Tensor(logits), axis=0).data
    return {"log_softmax": out.data, "its gradient": x.grad, "over axis 0": column}


@test_case(name="test_cross_entropy_on_huge_logits", points=2)
@same_as_reference(LOGITS, TARGETS, rtol=1e-4, atol=1e-6)
@probe
def cross_entropy_values(tt, logits, targets):
    """Cross-entropy with integer targets when a logit is 1000: finite loss, right gradient."""
    from tinytorch.losses import cross_entropy
    x = tt.Tensor(logits, requires_grad=True)
    loss = cross_entropy(x, targets)
    loss.backward()
    return {"loss": loss.data, "gradient": x.grad}


@test_case(name="test_binary_cross_entropy_at_zero_and_one", points=1)
@same_as_reference(PROBS, LABELS, rtol=1e-4, atol=1e-5)
@probe
def bce_values(tt, probs, labels):
    """BCE of probabilities exactly 0 and 1: clipped like the reference, no nan."""
    from tinytorch.losses import binary_cross_entropy
    p = tt.Tensor(probs, requires_grad=True)
    loss = binary_cross_entropy(p, labels)
    loss.backward()
    return {"loss": loss.data, "finite gradient": np.isfinite(p.grad), "gradient where finite": np.where(np.isfinite(p.grad), p.grad, 0)}


BINARY_LOGITS = np.array([[-200.0, -30.0], [-1.0, 0.0], [0.5, 17.0], [60.0, 1e4]], dtype=np.float32)
BINARY_TARGETS = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)


@test_case(name="test_bce_with_logits_far_from_zero_and_at_zero", points=2)
@same_as_reference(BINARY_LOGITS, BINARY_TARGETS, rtol=1e-4, atol=1e-6)
@probe
def bce_logits_values(tt, logits, targets):
    """BCE from logits between -200 and 1e4 (no clamp, no overflow) and at exactly 0: loss and gradient."""
    from tinytorch.losses import binary_cross_entropy_with_logits
    z = tt.Tensor(logits, requires_grad=True)
    loss = binary_cross_entropy_with_logits(z, targets)
    loss.backward()
    return {"loss": loss.data, "gradient": z.grad}


@test_case(name="test_logit_gradient_of_each_loss", points=1)
@same_as_reference(LOGITS[1:], TARGETS[1:], rtol=1e-4, atol=1e-6)
@probe
def logit_gradients(tt, logits, targets):
    """logit_gradient through cross entropy, and through MSE on softmax probabilities, of 3 rows of logits."""
    from tinytorch.activations import softmax
    from tinytorch.losses import cross_entropy, logit_gradient, mse_loss
    one_hot = np.eye(3, dtype=np.float32)[targets]
    z = tt.Tensor(logits)
    return {"cross entropy": logit_gradient(cross_entropy, z, targets),
            "MSE on probabilities": logit_gradient(lambda t, y: mse_loss(softmax(t, axis=1), y), z, one_hot),
            "the input untouched": z.grad is None}

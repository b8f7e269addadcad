"""Losses (module 06): values and gradients vs finite differences and PyTorch, stability, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinytorch.autograd import gradcheck
from tinytorch.layers import Linear, Module, ReLU, Sequential
from tinytorch.losses import (BCELoss, CrossEntropyLoss, MSELoss, binary_cross_entropy, cross_entropy,
                              log_softmax, mse_loss)
from tinytorch.tensor import Tensor

from .strategies import seeds


def f64(data, grad=True) -> Tensor:
    return Tensor(np.asarray(data, dtype=np.float64), requires_grad=grad, dtype=np.float64)


# -- values and gradients against finite differences (float64) ------------------------------------

@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 3)),
       axis=st.sampled_from([0, 1, 2, -1]), seed=seeds)
def test_log_softmax_values_and_gradient_match_finite_differences(shape, axis, seed):
    x = f64(np.random.default_rng(seed).normal(0, 3, shape))
    expected = x.data - np.log(np.exp(x.data).sum(axis=axis, keepdims=True))
    assert np.allclose(log_softmax(x, axis=axis).data, expected)
    # weight the outputs so the check is not the trivial gradient of a constant sum
    weights = np.random.default_rng(seed + 1).normal(size=shape)
    gradcheck(lambda t: log_softmax(t, axis=axis) * weights, [x])


@given(n=st.integers(1, 6), classes=st.integers(1, 6), seed=seeds)
def test_cross_entropy_value_and_gradient_match_finite_differences(n, classes, seed):
    r = np.random.default_rng(seed)
    logits = f64(r.normal(0, 2, (n, classes)))
    targets = r.integers(0, classes, n)
    p = np.exp(logits.data) / np.exp(logits.data).sum(axis=1, keepdims=True)
    assert np.isclose(cross_entropy(logits, targets).item(), -np.log(p[np.arange(n), targets]).mean())
    gradcheck(lambda z: cross_entropy(z, targets), [logits])


@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 4)), seed=seeds)
def test_mse_gradient_reaches_both_arguments(shape, seed):
    r = np.random.default_rng(seed)
    pred, target = f64(r.normal(size=shape)), f64(r.normal(size=shape))
    assert np.isclose(mse_loss(pred, target).item(), ((pred.data - target.data) ** 2).mean())
    gradcheck(mse_loss, [pred, target])


@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 3)), seed=seeds)
def test_binary_cross_entropy_gradient_matches_finite_differences(shape, seed):
    r = np.random.default_rng(seed)
    probs = f64(r.uniform(0.05, 0.95, shape))
    targets = r.integers(0, 2, shape).astype(np.float64)
    expected = -np.mean(targets * np.log(probs.data) + (1 - targets) * np.log(1 - probs.data))
    assert np.isclose(binary_cross_entropy(probs, targets).item(), expected)
    gradcheck(lambda p: binary_cross_entropy(p, targets), [probs])


def test_float32_in_float32_out():
    z = Tensor(np.zeros((3, 4), dtype=np.float32), requires_grad=True)
    assert cross_entropy(z, np.array([0, 1, 3])).dtype == np.float32
    assert mse_loss(z, np.ones((3, 4))).dtype == np.float32, "an array target takes the prediction's dtype"
    assert binary_cross_entropy(Tensor(np.full(3, 0.5, np.float32)), [0, 1, 1]).dtype == np.float32


# -- numerical stability ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_finite_for_logits_of_1e4(dtype):
    z = Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]], dtype=dtype), requires_grad=True)
    targets = np.array([1, 2, 0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine, nothing else
        loss = cross_entropy(z, targets)
        loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(z.grad))
    assert np.isclose(loss.item(), (2e4 + 0 + np.log(2)) / 3, rtol=1e-6)
    expected_grad = np.array([[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]]) / 3
    assert np.allclose(z.grad, expected_grad, atol=1e-6)


def test_log_softmax_keeps_tiny_probabilities_that_softmax_rounds_to_zero():
    z = Tensor(np.array([[0.0, -200.0]], dtype=np.float32))
    assert np.allclose(log_softmax(z).data, [[0.0, -200.0]])


def test_binary_cross_entropy_survives_saturated_probabilities():
    probs = Tensor(np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32), requires_grad=True)
    with np.errstate(divide="raise", invalid="raise"):
        loss = binary_cross_entropy(probs, np.array([1.0, 0.0, 1.0, 0.0]))
        loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(probs.grad))
    assert loss.item() == pytest.approx(-np.log(1e-7) / 2, rel=1e-2), "the two wrong, saturated answers cost about -log(eps) each"


# -- PyTorch -------------------------------------------------------------------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_match_torch_values_and_gradients(torch, dtype):
    F = torch.nn.functional
    r = np.random.default_rng(0)
    z = (r.standard_normal((16, 7)) * 4).astype(dtype)
    z[0, :3] = [1e4, -1e4, 5.0]
    targets = r.integers(0, 7, 16)
    ours, theirs = Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    loss, ref = cross_entropy(ours, targets), F.cross_entropy(theirs, torch.from_numpy(targets))
    loss.backward()
    ref.backward()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    assert np.allclose(loss.item(), ref.item(), **tol)
    assert np.allclose(ours.grad, theirs.grad.numpy(), **tol)
    for axis in (0, 1):
        assert np.allclose(log_softmax(Tensor(z), axis=axis).data, torch.log_softmax(torch.tensor(z), dim=axis).numpy(), **tol)

    pred, target = r.standard_normal((5, 3)).astype(dtype), r.standard_normal((5, 3)).astype(dtype)
    ours, theirs = Tensor(pred, requires_grad=True), torch.tensor(pred, requires_grad=True)
    loss, ref = mse_loss(ours, target), F.mse_loss(theirs, torch.from_numpy(target))
    loss.backward()
    ref.backward()
    assert np.allclose(loss.item(), ref.item(), **tol) and np.allclose(ours.grad, theirs.grad.numpy(), **tol)

    probs, labels = r.uniform(0.001, 0.999, (6, 2)).astype(dtype), r.integers(0, 2, (6, 2)).astype(dtype)
    ours, theirs = Tensor(probs, requires_grad=True), torch.tensor(probs, requires_grad=True)
    loss, ref = binary_cross_entropy(ours, labels), F.binary_cross_entropy(theirs, torch.from_numpy(labels))
    loss.backward()
    ref.backward()
    assert np.allclose(loss.item(), ref.item(), **tol) and np.allclose(ours.grad, theirs.grad.numpy(), **tol)


@pytest.mark.torch
def test_classifier_with_cross_entropy_loss_module_matches_torch_with_copied_weights(torch):
    ours = Sequential(Linear(10, 16), ReLU(), Linear(16, 4))
    theirs = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    r = np.random.default_rng(3)
    x, y = r.standard_normal((32, 10)).astype(np.float32), r.integers(0, 4, 32)
    loss = CrossEntropyLoss()(ours(Tensor(x)), y)
    ref = torch.nn.CrossEntropyLoss()(theirs(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    ref.backward()
    assert np.isclose(loss.item(), ref.item(), rtol=1e-5)
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert np.allclose(p.grad, reference[name].grad.numpy(), rtol=1e-4, atol=1e-6), name


# -- Modules and bad input ------------------------------------------------------------------------------

def test_loss_modules_are_parameterless_modules_that_call_the_functions():
    for cls in (MSELoss, CrossEntropyLoss, BCELoss):
        assert issubclass(cls, Module) and cls().parameters() == []
    z, y = Tensor(np.array([[1.0, 2.0], [0.5, 0.1]])), np.array([1, 0])
    assert CrossEntropyLoss()(z, y).item() == cross_entropy(z, y).item()
    assert MSELoss()(z, np.zeros((2, 2))).item() == mse_loss(z, np.zeros((2, 2))).item()
    p = Tensor(np.array([0.3, 0.8]))
    assert BCELoss()(p, [0.0, 1.0]).item() == binary_cross_entropy(p, [0.0, 1.0]).item()


@pytest.mark.parametrize("logits, targets, phrase", [
    (np.zeros(3), [0], r"\(N, C\).*\(3,\)"),                        # rank 1 logits
    (np.zeros((2, 3, 4)), [0, 1], r"\(N, C\).*\(2, 3, 4\)"),        # rank 3 logits
    (np.zeros((2, 3)), [0, 1, 2], r"2 rows of logits but 3 targets"),
    (np.zeros((2, 3)), [[0], [1]], r"shape \(N,\) = \(2,\).*\(2, 1\)"),
    (np.zeros((2, 3)), [0.0, 1.0], r"integer class indices.*float64"),
    (np.zeros((2, 3)), [0, 3], r"\[0, 3\) for 3 classes, got \[3\]"),
    (np.zeros((2, 3)), [-1, 0], r"\[0, 3\).*got \[-1\]"),
    (np.zeros((0, 3)), np.zeros(0, dtype=int), r"empty batch"),
])
def test_cross_entropy_errors_name_what_is_wrong(logits, targets, phrase):
    with pytest.raises(ValueError, match=phrase):
        cross_entropy(Tensor(logits), np.asarray(targets))


def test_mse_and_bce_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"pred \(4, 1\) and target \(4,\)"):
        mse_loss(Tensor(np.zeros((4, 1))), np.zeros(4))
    with pytest.raises(ValueError, match=r"probs \(3,\) and targets \(3, 1\)"):
        binary_cross_entropy(Tensor(np.full(3, 0.5)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*-2.*apply a sigmoid"):
        binary_cross_entropy(Tensor(np.array([-2.0, 0.5])), np.array([0.0, 1.0]))

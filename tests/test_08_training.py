"""Training helpers (module 08): splits, mini-batches, accuracy, evaluate, fit, History, vs PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytorch
from tinytorch.layers import Linear, Module, ReLU, Sequential, Sigmoid
from tinytorch.losses import BCELoss, CrossEntropyLoss, MSELoss, cross_entropy
from tinytorch.optimizers import SGD
from tinytorch.profiler import Profile
from tinytorch.tensor import Tensor
from tinytorch.training import History, accuracy, evaluate, fit, iterate_minibatches, train_val_split


def blobs(n_per_class=60, seed=0):
    r = np.random.default_rng(seed)
    centres = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    X = np.concatenate([c + r.normal(0, 0.5, (n_per_class, 2)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(3), n_per_class)
    return X, y


# -- data -------------------------------------------------------------------------------------------

@given(n=st.integers(2, 200), fraction=st.floats(0.05, 0.95), seed=st.integers(0, 100))
def test_train_val_split_partitions_the_examples(n, fraction, seed):
    n_val = round(n * fraction)
    X, y = np.arange(n * 2).reshape(n, 2), np.arange(n)
    if n_val in (0, n):
        with pytest.raises(ValueError, match=f"{n - n_val} for training and {n_val} for validation"):
            train_val_split(X, y, fraction, seed)
        return
    X_train, y_train, X_val, y_val = train_val_split(X, y, fraction, seed)
    assert len(y_val) == n_val and len(y_train) == n - n_val
    assert sorted(np.concatenate([y_train, y_val]).tolist()) == list(range(n))
    assert np.array_equal(X_train[:, 0], 2 * y_train) and np.array_equal(X_val[:, 0], 2 * y_val)


def test_train_val_split_is_reproducible_and_shuffled():
    X, y = np.zeros((100, 1)), np.arange(100)
    assert np.array_equal(train_val_split(X, y, 0.2, seed=3)[3], train_val_split(X, y, 0.2, seed=3)[3])
    assert not np.array_equal(train_val_split(X, y, 0.2, seed=3)[3], train_val_split(X, y, 0.2, seed=4)[3])
    assert train_val_split(X, y, 0.2, seed=3)[3].tolist() != list(range(80, 100)), "the split must shuffle"


@given(n=st.integers(1, 50), batch_size=st.integers(1, 20), shuffle=st.booleans(), seed=st.integers(0, 100))
def test_minibatches_cover_every_example_once(n, batch_size, shuffle, seed):
    X, y = np.arange(n * 3).reshape(n, 3), np.arange(n)
    batches = list(iterate_minibatches(X, y, batch_size, shuffle=shuffle, seed=seed))
    assert len(batches) == -(-n // batch_size)
    assert all(len(xb) == len(yb) <= batch_size for xb, yb in batches)
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(n))
    assert all(np.array_equal(xb[:, 0], 3 * yb) for xb, yb in batches)
    if not shuffle:
        assert seen.tolist() == list(range(n)) and all(np.shares_memory(xb, X) for xb, _ in batches)


def test_minibatches_with_one_generator_reshuffle_every_epoch_reproducibly():
    X, y = np.zeros((30, 1)), np.arange(30)
    def epochs(seed):
        order = np.random.default_rng(seed)
        return [np.concatenate([yb for _, yb in iterate_minibatches(X, y, 7, seed=order)]).tolist() for _ in range(3)]
    first = epochs(0)
    assert first == epochs(0) and first[0] != first[1] != first[2]


def test_an_epoch_never_copies_the_dataset():
    X = np.zeros((20_000, 100), dtype=np.float32)  # 8 MB
    y = np.zeros(20_000, dtype=np.int64)
    with Profile("epoch") as p:
        for xb, yb in iterate_minibatches(X, y, 64, shuffle=True, seed=0):
            pass
    assert p.peak_bytes < X.nbytes / 10, f"an epoch allocated {p.peak_bytes} bytes for an {X.nbytes}-byte dataset"


@pytest.mark.parametrize("call, phrase", [
    (lambda X, y: train_val_split(X, y[:9], 0.2), "10 examples in X but 9 targets"),
    (lambda X, y: train_val_split(X, y, 1.0), r"val_fraction must be between 0 and 1.*got 1.0"),
    (lambda X, y: train_val_split(X, y, 0.01), "10 for training and 0 for validation"),
    (lambda X, y: list(iterate_minibatches(X, y, 0)), "batch_size must be a positive integer, got 0"),
    (lambda X, y: list(iterate_minibatches(X, y, 2.5)), "batch_size must be a positive integer, got 2.5"),
    (lambda X, y: list(iterate_minibatches(X, y[:3], 2)), "10 examples in X but 3 targets"),
    (lambda X, y: accuracy(np.zeros((10, 3)), y[:4]), r"scores of shape \(10, 3\) and targets of shape \(4,\)"),
    (lambda X, y: accuracy(np.zeros((10, 3)), np.zeros((10, 3))), r"class indices of shape \(N,\), got \(10, 3\)"),
])
def test_bad_input_is_refused_with_a_message_naming_it(call, phrase):
    X, y = np.zeros((10, 2)), np.arange(10)
    with pytest.raises(ValueError, match=phrase):
        call(X, y)


# -- measuring --------------------------------------------------------------------------------------

def test_accuracy_reads_argmax_or_threshold():
    assert accuracy(Tensor(np.array([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]])), Tensor(np.array([1, 2]))) == 0.5
    assert accuracy(np.array([[0.7], [0.4], [0.9]]), np.array([[1.0], [1.0], [1.0]])) == pytest.approx(2 / 3)
    assert accuracy(np.array([-0.2, 0.3]), np.array([0, 1]), threshold=0.0) == 1.0
    assert accuracy(np.array([-0.2, 0.3]), np.array([0, 1])) == 0.5, "the default threshold is for probabilities"


class Recorder(Module):
    """A Linear layer that records, per call, (training mode, whether the output records history)."""

    def __init__(self, features=2, outputs=3):
        self.layer = Linear(features, outputs)
        self.calls = []

    def forward(self, x):
        out = self.layer(x)
        self.calls.append((self.training, out.requires_grad))
        return out


def test_evaluate_weights_batches_by_size_and_runs_without_history_in_eval_mode():
    X, y = blobs(7)  # 21 examples: batches of 4 leave one of 1
    model = Recorder()
    loss, acc = evaluate(model, CrossEntropyLoss(), X, y, batch_size=4)
    calls = list(model.calls)
    assert len(calls) == 6 and all(call == (False, False) for call in calls), "eval mode, no history recorded"
    with tinytorch.no_grad():
        logits = model(Tensor(X))
        full = cross_entropy(logits, y).item()
    assert loss == pytest.approx(full, rel=1e-5) and acc == pytest.approx(accuracy(logits, y))
    assert model.training and model.layer.training, "evaluate restores training mode"
    model.eval()
    evaluate(model, CrossEntropyLoss(), X, y)
    assert not model.training, "evaluate restores eval mode too"


def test_evaluate_restores_the_mode_when_the_loss_fails():
    model = Recorder()
    def broken(out, target):
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        evaluate(model, broken, *blobs(2))
    assert model.training


def test_evaluate_regression_has_no_accuracy():
    X = np.random.default_rng(0).standard_normal((10, 2)).astype(np.float32)
    loss, acc = evaluate(Recorder(outputs=1), MSELoss(), X, X[:, :1])
    assert acc is None and loss > 0


# -- fit --------------------------------------------------------------------------------------------

def mlp(seed=0):
    tinytorch.manual_seed(seed)
    return Sequential(Linear(2, 16), ReLU(), Linear(16, 3))


def test_fit_learns_a_classifier_and_fills_the_history():
    X, y = blobs()
    model = mlp()
    history = fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1, momentum=0.9), X, y,
                  epochs=15, batch_size=16, val_fraction=0.25, seed=0, progress=False)
    assert isinstance(history, History) and history.epochs == 15
    assert all(len(h) == 15 for h in (history.train_loss, history.val_loss, history.train_accuracy, history.val_accuracy))
    assert history.train_loss[-1] < 0.3 * history.train_loss[0]
    assert history.val_accuracy[-1] > 0.95 and history.seconds > 0
    assert 1 <= history.best_epoch() <= 15 and history.val_loss[history.best_epoch() - 1] == min(history.val_loss)
    assert model.training, "fit leaves the model in training mode"


def test_fit_is_reproducible_with_the_same_seed():
    X, y = blobs()
    runs = []
    for _ in range(2):
        model = mlp(1)
        runs.append(fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.05), X, y, epochs=3,
                        batch_size=10, val_fraction=0.2, seed=7, progress=False))
    assert runs[0].train_loss == runs[1].train_loss and runs[0].val_loss == runs[1].val_loss


def test_fit_uses_val_data_and_detects_binary_classification():
    X, y = blobs()
    target = (y == 0).astype(np.float32).reshape(-1, 1)
    tinytorch.manual_seed(0)
    model = Sequential(Linear(2, 8), ReLU(), Linear(8, 1), Sigmoid())
    history = fit(model, BCELoss(), SGD(model.parameters(), lr=0.5), X[::2], target[::2], epochs=10,
                  batch_size=8, val_data=(X[1::2], target[1::2]), progress=False)
    assert len(history.val_accuracy) == 10 and history.val_accuracy[-1] > 0.9


def test_fit_calls_the_optimizer_in_the_right_order():
    class Spy:
        def __init__(self, params):
            self.params, self.log = params, []

        def zero_grad(self):
            self.log.append("zero_grad")
            for p in self.params:
                p.grad = None

        def step(self):
            assert all(p.grad is not None for p in self.params), "step() came before backward()"
            self.log.append("step")

    X, y = blobs(5)  # 15 examples, batches of 4: 4 steps per epoch
    model = mlp()
    spy = Spy(model.parameters())
    fit(model, CrossEntropyLoss(), spy, X, y, epochs=2, batch_size=4, progress=False)
    assert spy.log == ["zero_grad", "step"] * 8


def test_fit_refuses_bad_arguments_and_reports_a_diverging_loss():
    X, y = blobs(5)
    model = mlp()
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="val_data or val_fraction, not both"):
        fit(model, CrossEntropyLoss(), opt, X, y, val_data=(X, y), val_fraction=0.2, progress=False)
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        fit(model, CrossEntropyLoss(), opt, X, y, epochs=0, progress=False)
    with pytest.raises(ValueError, match="val_data must be a pair"):
        fit(model, CrossEntropyLoss(), opt, X, y, val_data=(X,), progress=False)
    with pytest.raises(FloatingPointError, match=r"became (nan|inf) in epoch 1, batch 0.*learning rate"):
        fit(model, MSELoss(), opt, X, np.full((15, 3), np.nan, dtype=np.float32), progress=False)


def test_fit_shows_a_progress_bar_only_when_asked(capsys):
    X, y = blobs(5)
    model = mlp()
    fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), X, y, epochs=2, progress=True)
    shown = capsys.readouterr().err
    assert "fit" in shown and "2/2" in shown and "loss=" in shown
    fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), X, y, epochs=2, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.torch
def test_full_batch_fit_matches_a_torch_training_loop(torch):
    X, y = blobs(20)
    ours = mlp(3)
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            q.copy_(torch.from_numpy(p.data))
    history = fit(ours, CrossEntropyLoss(), SGD(ours.parameters(), lr=0.2, momentum=0.9), X, y,
                  epochs=25, batch_size=len(X), progress=False)
    opt = torch.optim.SGD(theirs.parameters(), lr=0.2, momentum=0.9)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(X)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.allclose(history.train_loss, losses, rtol=1e-4, atol=1e-6)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert np.allclose(p.data, q.detach().numpy(), rtol=1e-4, atol=1e-5)

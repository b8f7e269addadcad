"""Production training (module 12): safe atomic checkpoints, resume, schedules vs PyTorch, early stopping, plots."""
from __future__ import annotations

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import nn
from tinytorch.adam import AdamW
from tinytorch.optimizers import SGD
from tinytorch.layers import Linear, ReLU, Sequential
from tinytorch.losses import cross_entropy
from tinytorch.production import (CheckpointError, CosineAnnealingLR, DataParallel, EarlyStopping, LinearWarmup,
                                  StepLR, confusion_matrix, load_checkpoint, plot_history, save_checkpoint)
from tinytorch.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.training import History


def make_model():
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def train_steps(model, optimizer, steps, seed):
    r = np.random.default_rng(seed)
    for _ in range(steps):
        x = tt.Tensor(r.standard_normal((16, 4)).astype(np.float32))
        optimizer.zero_grad()
        (model(x) ** 2).mean().backward()
        optimizer.step()


def test_resume_from_checkpoint_continues_exactly_like_an_uninterrupted_run(tmp_path):
    tt.manual_seed(0)
    straight = make_model()
    opt = AdamW(straight.parameters(), lr=0.01)
    train_steps(straight, opt, 5, seed=1)
    save_checkpoint(tmp_path / "run.npz", straight, opt, epoch=5, metrics={"loss": 1.5}, config={"lr": 0.01})
    train_steps(straight, opt, 5, seed=2)

    resumed = make_model()
    resumed_opt = AdamW(resumed.parameters(), lr=0.01)
    info = load_checkpoint(tmp_path / "run.npz", resumed, resumed_opt)
    assert info == {"epoch": 5, "metrics": {"loss": 1.5}, "config": {"lr": 0.01}}
    train_steps(resumed, resumed_opt, 5, seed=2)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert np.array_equal(a, b), name


def test_a_failed_write_keeps_the_old_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    model = make_model()
    path = save_checkpoint(tmp_path / "ck.npz", model, epoch=1)
    old = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]


def test_a_pickled_checkpoint_is_refused_without_running_it(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle ran code')",))
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([Boom()], dtype=object))
    with pytest.raises(CheckpointError, match="pickled"):
        load_checkpoint(path, make_model())


@pytest.mark.parametrize("damage, words", [
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b"not a zip file at all", "truncated or not an .npz"),
])
def test_damaged_files_give_clear_errors(tmp_path, damage, words):
    path = save_checkpoint(tmp_path / "ck.npz", make_model())
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(path, make_model())


def test_missing_wrong_shape_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.npz", make_model())
    path = save_checkpoint(tmp_path / "ck.npz", make_model())
    other = nn.Sequential(nn.Linear(4, 9), nn.Tanh(), nn.Linear(9, 3))
    with pytest.raises(CheckpointError, match=r"does not fit this model.*0\.weight"):
        load_checkpoint(path, other)
    np.savez(tmp_path / "plain.npz", weights=np.zeros(3))
    with pytest.raises(CheckpointError, match="no 'meta' entry"):
        load_checkpoint(tmp_path / "plain.npz", make_model())
    with pytest.raises(CheckpointError, match="no optimizer state"):
        load_checkpoint(path, make_model(), SGD(make_model().parameters(), lr=0.1))
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(tmp_path / "bad.npz", make_model(), metrics={"loss": object()})


@pytest.mark.torch
@pytest.mark.parametrize("ours, theirs", [
    (lambda o: StepLR(o, step_size=3, gamma=0.5), lambda t, o: t.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    (lambda o: CosineAnnealingLR(o, T_max=12, eta_min=0.001),
     lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12, eta_min=0.001)),
    (lambda o: LinearWarmup(o, start_factor=0.1, total_iters=4),
     lambda t, o: t.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=4)),
], ids=["step", "cosine", "warmup"])
def test_schedules_match_torch(torch, ours, theirs):
    our_opt = SGD(make_model().parameters(), lr=0.3)
    their_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    our_sched, their_sched = ours(our_opt), theirs(torch, their_opt)
    for epoch in range(12):
        assert np.isclose(our_sched.get_last_lr()[0], their_sched.get_last_lr()[0], rtol=1e-9), epoch
        their_opt.step()
        our_sched.step()
        their_sched.step()


def test_early_stopping_and_its_errors():
    stopper = EarlyStopping(patience=3, min_delta=0.01)
    values = [1.0, 0.995, 0.993, 0.991]  # improvements smaller than min_delta do not count
    assert [stopper.step(v) for v in values] == [False, False, False, True]
    assert stopper.best_epoch == 1
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="lowest")


def test_confusion_matrix_counts_and_errors():
    m = confusion_matrix(np.array([2, 2, 0, 1]), np.array([2, 1, 0, 1]), 3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]] and m.sum() == 4
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion_matrix([3], [0], 3)


def test_plot_history_writes_a_png(tmp_path):
    history = History(train_loss=[1.0, 0.5], val_loss=[1.1, 0.7], train_accuracy=[0.5, 0.8], val_accuracy=[0.4, 0.7])
    path = plot_history(history, tmp_path / "sub" / "h.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("workers", [2, 3])
def test_data_parallel_gives_the_whole_batchs_loss_and_gradients(rng, workers):
    """Slices on worker threads, the gradients added: the one-worker step's numbers, and the replicas follow the
    optimizer's updates and the model's train/eval mode."""
    tt.manual_seed(0)
    model = Sequential(Conv2d(1, 3, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(3 * 4 * 4, 4))
    x = tt.Tensor(rng.standard_normal((7, 1, 8, 8)).astype(np.float32))   # 7 rows: slices of unequal size
    y = rng.integers(0, 4, 7)
    loss_fn = lambda m, xs, ys: cross_entropy(m(xs), ys)  # noqa: E731
    one, many = DataParallel(model, 1), DataParallel(model, workers)
    optimizer = AdamW(model.parameters(), lr=0.1)
    for _ in range(2):                                     # the second round after an optimizer step
        expected_loss = one.backward(loss_fn, x, y)
        expected = [p.grad.copy() for p in model.parameters()]
        got_loss = many.backward(loss_fn, x, y)
        assert got_loss == pytest.approx(expected_loss, rel=1e-6)
        for p, g in zip(model.parameters(), expected):
            np.testing.assert_allclose(p.grad, g, rtol=1e-5, atol=1e-7)
        optimizer.step()
    model.eval()
    many.share_weights()
    assert not any(m.training for replica in many.replicas for m in replica.modules())


def test_data_parallel_refuses_what_it_cannot_split():
    model = Linear(2, 2)
    with pytest.raises(ValueError, match="workers >= 1"):
        DataParallel(model, 0)
    loss_fn = lambda m, xs, ys: (m(xs) * 0).sum()  # noqa: E731
    with pytest.raises(ValueError, match="empty batch"):
        DataParallel(model, 2).backward(loss_fn, np.zeros((0, 2), np.float32), np.zeros(0))
    with pytest.raises(ValueError, match="need no gradient"):
        DataParallel(model, 2).backward(loss_fn, tt.Tensor(np.ones((4, 2), np.float32), requires_grad=True),
                                        np.zeros(4))

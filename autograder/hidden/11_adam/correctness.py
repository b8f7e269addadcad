"""Module 11 (adam), hidden correctness: Adam and AdamW step for step with unusual betas, weight decay
and a parameter that only sometimes has a gradient; Adam's saved state; one epoch of the image training
loop over a shuffled loader; validation metrics over uneven batches with a class absent."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe, same

name = "11_adam correctness"
kind = "correctness"

START = np.random.default_rng(111).normal(size=(4, 3)).astype(np.float32)
TARGET = np.random.default_rng(112).normal(size=(4, 3)).astype(np.float32)


@probe
def trajectory(tt, start, target, kind, options):
    from tinytorch.adam import Adam, AdamW
    from tinytorch.layers import Parameter
    w, sometimes = Parameter(start.copy()), Parameter(start[:1].copy())
    optimizer = {"Adam": Adam, "AdamW": AdamW}[kind]([w, sometimes], **options)
    path = []
    for step in range(7):
        optimizer.zero_grad()
        loss = ((w - tt.Tensor(target)) ** 2).sum()
        if step % 3 == 0:
            loss = loss + (sometimes * sometimes).sum()
        loss.backward()
        optimizer.step()
        path.append(np.concatenate([w.data.ravel(), sometimes.data.ravel()]))
    return {"parameters after each step": np.stack(path)}


@test_case(points=2)
def test_adam_step_for_step():
    """Adam(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1): 7 steps, one parameter with gaps."""
    same(trajectory, START, TARGET, "Adam", {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}, rtol=1e-4)


@test_case(points=2)
def test_adamw_step_for_step():
    """AdamW(lr=0.02, betas=(0.9, 0.99), weight_decay=0.3): decoupled decay, bias correction, 7 steps."""
    same(trajectory, START, TARGET, "AdamW", {"lr": 0.02, "betas": (0.9, 0.99), "weight_decay": 0.3}, rtol=1e-4)


@probe
def adam_state(tt, start):
    """Adam's state after 5 steps where one parameter only has a gradient every other step."""
    from tinytorch.adam import Adam
    from tinytorch.layers import Parameter
    w, sometimes = Parameter(start.copy()), Parameter(start[0].copy())
    optimizer = Adam([w, sometimes], lr=0.01)
    for step in range(5):
        w.grad = np.full_like(start, 0.1 * (step + 1))
        sometimes.grad = np.ones_like(start[0]) if step % 2 == 0 else None
        optimizer.step()
    saved = optimizer.state_dict()["state"]
    return {str(index): {name: np.asarray(value, dtype=np.float64) for name, value in sorted(buffers.items())}
            for index, buffers in sorted(saved.items())}


@test_case(points=1)
def test_adam_state_names_and_counts():
    """Adam's saved state (step, exp_avg, exp_avg_sq per parameter) after 5 steps, one parameter with gaps."""
    same(adam_state, START, rtol=1e-5)


@probe
def one_epoch(tt, images, labels):
    """The parameters after one train_epoch of a small classifier over a shuffled DataLoader with a short last batch."""
    from tinytorch.adam import AdamW, train_epoch
    from tinytorch.data import DataLoader, TensorDataset
    from tinytorch.layers import Linear, ReLU, Sequential
    tt.manual_seed(5)
    model = Sequential(Linear(6, 8), ReLU(), Linear(8, 3))
    loader = DataLoader(TensorDataset(images, labels), batch_size=7, shuffle=True, seed=3)
    mean_loss = train_epoch(model, loader, AdamW(model.parameters(), lr=0.01), transform=lambda x: x * 2.0)
    return {"mean batch loss": float(mean_loss), "training mode": model.training,
            **{name: value.data for name, value in model.named_parameters()}}


@probe
def metrics(tt, images, labels):
    """evaluate_classifier of a fixed model over batches of 8 with a short last one; class 3 never appears."""
    from tinytorch.adam import evaluate_classifier
    from tinytorch.data import DataLoader, TensorDataset
    from tinytorch.layers import Linear
    model = Linear(6, 4)
    model.weight.data[...] = np.linspace(-1, 1, 24).reshape(4, 6)
    model.bias.data[...] = [0.1, -0.2, 0.0, 0.3]
    model.eval()
    result = evaluate_classifier(model, DataLoader(TensorDataset(images, labels), batch_size=8), num_classes=4)
    return {"loss": float(result.loss), "accuracy": float(result.accuracy),
            "per class": np.asarray(result.per_class_accuracy, dtype=np.float64), "still in eval mode": not model.training,
            "no gradient": model.weight.grad is None}


IMAGES = np.random.default_rng(113).normal(size=(30, 6)).astype(np.float32)
LABELS = np.random.default_rng(114).integers(0, 3, size=30)


@test_case(points=2)
def test_train_epoch_matches_step_for_step():
    """train_epoch over 30 examples in shuffled batches of 7 (the last one short), with a transform and AdamW."""
    same(one_epoch, IMAGES, LABELS, rtol=1e-4)


@test_case(points=2)
def test_validation_metrics_over_uneven_batches():
    """evaluate_classifier: loss per example over batches of 8 and 6, accuracy, per-class accuracy with a class absent."""
    same(metrics, IMAGES, LABELS, rtol=1e-5)

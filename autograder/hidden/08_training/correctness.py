"""Module 08 (training), hidden correctness: splits and mini-batches with odd sizes, accuracy for
binary and multi-class outputs, evaluate, and a short deterministic fit."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "08_training correctness"
kind = "correctness"

R = np.random.default_rng(81)
X = R.normal(size=(23, 3)).astype(np.float32)
Y_CLASS = R.integers(0, 3, size=23)
Y_REG = R.normal(size=(23, 1)).astype(np.float32)


@test_case(name="test_split_and_minibatches", points=2)
@same_as_reference(X, Y_CLASS)
@probe
def splits(tt, x, y):
    """train_val_split with a seed; 23 examples in batches of 5 and 10: the last batch is short, shuffling is seeded."""
    from tinytorch.training import iterate_minibatches, train_val_split
    xt, yt, xv, yv = train_val_split(x, y, val_fraction=0.3, seed=5)
    batches = list(iterate_minibatches(x, y, batch_size=5, shuffle=True, seed=3))
    ordered = list(iterate_minibatches(x, y, batch_size=10, shuffle=False))
    return {"train/val split": (xt, yt, xv, yv), "batch sizes": [len(b[1]) for b in batches],
            "shuffled batches": [b[1] for b in batches], "unshuffled batches": [b[0] for b in ordered]}


@test_case(name="test_accuracy_binary_and_multiclass", points=1)
@same_as_reference(Y_CLASS)
@probe
def accuracies(tt, y):
    """accuracy of class logits, and of probabilities at two thresholds."""
    from tinytorch.training import accuracy
    logits = np.eye(3, dtype=np.float32)[y] * 2 + np.eye(3, dtype=np.float32)[(y + 1) % 3] * (np.arange(len(y)) % 2)[:, None] * 3
    probs = np.linspace(0, 1, 7, dtype=np.float32)[:, None]
    labels = np.array([0, 0, 1, 1, 0, 1, 1], dtype=np.float32)[:, None]
    return {"multi-class": float(accuracy(tt.Tensor(logits), y)), "binary, threshold 0.5": float(accuracy(probs, labels)),
            "binary, threshold 0.7": float(accuracy(probs, labels, threshold=0.7))}


@test_case(name="test_fit_and_evaluate", points=2)
@same_as_reference(X, Y_CLASS, Y_REG, rtol=1e-4)
@probe
def short_fit(tt, x, y_class, y_reg):
    """Three seeded epochs of fit with a validation split, and evaluate on a regression."""
    from tinytorch.layers import Linear, ReLU, Sequential
    from tinytorch.losses import CrossEntropyLoss, MSELoss
    from tinytorch.optimizers import SGD
    from tinytorch.training import evaluate, fit
    tt.manual_seed(8)
    model = Sequential(Linear(3, 8), ReLU(), Linear(8, 3))
    history = fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1, momentum=0.5), x, y_class, epochs=3,
                  batch_size=4, val_fraction=0.25, seed=2, progress=False)
    tt.manual_seed(9)
    regressor = Linear(3, 1)
    loss, acc = evaluate(regressor, MSELoss(), x, y_reg, batch_size=7)
    return {"train loss per epoch": history.train_loss, "val loss per epoch": history.val_loss,
            "train accuracy": history.train_accuracy, "val accuracy": history.val_accuracy,
            "evaluate (regression)": (float(loss), acc)}


@test_case(name="test_accumulated_step_on_a_regression", points=2)
@same_as_reference(X, Y_REG, rtol=1e-4, atol=1e-6)
@probe
def accumulation(tt, x, y_reg):
    """accumulated_step on 23 examples: micro-batches of 5 (the last one 3), 1, and 50 (more than the batch),
    two steps in a row with momentum; the losses it returns and the parameters after each step."""
    from tinytorch.layers import Linear, ReLU, Sequential
    from tinytorch.losses import MSELoss
    from tinytorch.optimizers import SGD
    from tinytorch.training import accumulated_step
    out = {}
    for micro in (5, 1, 50):
        tt.manual_seed(12)
        model = Sequential(Linear(3, 6), ReLU(), Linear(6, 1))
        optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
        losses = [float(accumulated_step(model, MSELoss(), optimizer, x, y_reg, micro)) for _ in range(2)]
        out[f"micro-batches of {micro}"] = {"losses": losses, "parameters": [p.data for p in model.parameters()]}
    return out

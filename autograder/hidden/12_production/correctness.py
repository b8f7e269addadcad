"""Module 12 (production), hidden correctness: checkpoints round-trip (and refuse a corrupt file),
early stopping in both modes, and learning-rate schedules over many epochs."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "12_production correctness"
kind = "correctness"


@test_case(name="test_checkpoint_round_trip_and_corrupt_file", points=2)
@same_as_reference()
@probe
def checkpoint_round_trip(tt):
    """A checkpoint restores weights, epoch and metrics into a fresh model; a corrupt file raises; no temporary file is left."""
    import os
    from tinytorch.adam import Adam
    from tinytorch.layers import Linear, Sequential, Tanh
    from tinytorch.production import load_checkpoint, save_checkpoint
    tt.manual_seed(12)
    model = Sequential(Linear(3, 5), Tanh(), Linear(5, 2))
    optimizer = Adam(model.parameters(), lr=0.01)
    (model(tt.Tensor(np.ones((4, 3), np.float32))) ** 2).sum().backward()
    optimizer.step()
    save_checkpoint("ck.npz", model, optimizer, epoch=3, metrics={"val_loss": 0.25})
    tt.manual_seed(13)
    other = Sequential(Linear(3, 5), Tanh(), Linear(5, 2))
    other_optimizer = Adam(other.parameters(), lr=0.01)
    info = load_checkpoint("ck.npz", other, other_optimizer)
    with open("broken.npz", "wb") as f:
        f.write(b"PK\x03\x04 not really a zip")
    try:
        load_checkpoint("broken.npz", other)
        corrupt = "no error"
    except Exception as error:  # noqa: BLE001
        corrupt = type(error).__name__
    leftovers = sorted(n for n in os.listdir(".") if n not in ("ck.npz", "broken.npz"))
    return {"weights after loading": [p.data for p in other.parameters()], "epoch": info["epoch"],
            "metrics": info["metrics"], "a corrupt file": corrupt, "temporary files left": leftovers}


@test_case(name="test_early_stopping_modes", points=1)
@same_as_reference()
@probe
def early_stopping(tt):
    """EarlyStopping with min_delta in min mode, and in max mode."""
    from tinytorch.production import EarlyStopping
    falling_then_flat = [1.0, 0.8, 0.79, 0.795, 0.7901, 0.8, 0.81, 0.6]
    stop_min = EarlyStopping(patience=2, min_delta=0.005)
    stop_max = EarlyStopping(patience=3, mode="max")
    return {"min mode, min_delta 0.005": [bool(stop_min.step(v)) for v in falling_then_flat],
            "max mode": [bool(stop_max.step(v)) for v in [0.5, 0.6, 0.6, 0.59, 0.61, 0.6, 0.6, 0.6]]}


@test_case(name="test_learning_rate_schedules", points=2)
@same_as_reference(rtol=1e-6)
@probe
def schedules(tt):
    """StepLR, CosineAnnealingLR and LinearWarmup over more epochs than their period."""
    from tinytorch.layers import Parameter
    from tinytorch.optimizers import SGD
    from tinytorch.production import CosineAnnealingLR, LinearWarmup, StepLR

    def lrs(make, epochs):
        optimizer = SGD([Parameter(np.zeros(1, np.float32))], lr=0.1)
        scheduler, seen = make(optimizer), []
        for _ in range(epochs):
            seen.append(float(optimizer.param_groups[0]["lr"]))
            scheduler.step()
        return seen
    return {"StepLR(step 3, gamma 0.5)": lrs(lambda o: StepLR(o, 3, 0.5), 10),
            "CosineAnnealingLR(T_max 7, eta_min 0.01)": lrs(lambda o: CosineAnnealingLR(o, 7, 0.01), 10),
            "LinearWarmup(0.25, 4 iters)": lrs(lambda o: LinearWarmup(o, 0.25, 4), 8)}

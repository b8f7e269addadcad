"""Milestone (after module 08): XOR trained on the student's OWN tinytorch (every module from their
notebooks) to a loss under 0.01, within a time limit.  The trained weights come back; the loss is
measured here, with the reference, so the student's code cannot report its own success."""
import numpy as np
from otter.test_files import test_case

from ttgrade import note, probe, reference, run_student

name = "08_training milestone XOR"
kind = "milestone"
stack = "own"

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)
TARGET_LOSS = 0.01
TIME_LIMIT = 60.0


@probe
def train_xor(tt, x, y):
    from tinytorch.layers import Linear, Sequential, Sigmoid, Tanh
    from tinytorch.losses import BCELoss
    from tinytorch.optimizers import SGD
    tt.manual_seed(0)
    model = Sequential(Linear(2, 8), Tanh(), Linear(8, 1), Sigmoid())
    loss_fn, optimizer = BCELoss(), SGD(model.parameters(), lr=0.5, momentum=0.9)
    for step in range(3000):
        optimizer.zero_grad()
        loss = loss_fn(model(tt.Tensor(x)), y)
        if loss.item() < 0.005:
            break
        loss.backward()
        optimizer.step()
    return {"state": dict(model.state_dict()), "steps": step}


@test_case(points=5)
def test_xor_reaches_loss_below_001():
    """XOR (Linear(2, 8), Tanh, Linear(8, 1), Sigmoid; BCE; SGD with momentum) on your own tinytorch reaches loss < 0.01 within 60 s."""
    result, seconds = run_student(train_xor, X, Y, timeout=TIME_LIMIT)
    tt = reference()
    from tinytorch.layers import Linear, Sequential, Sigmoid, Tanh
    from tinytorch.losses import BCELoss
    model = Sequential(Linear(2, 8), Tanh(), Linear(8, 1), Sigmoid())
    try:
        model.load_state_dict({k: np.asarray(v, dtype=np.float32) for k, v in result["state"].items()})
    except Exception as error:  # noqa: BLE001
        raise AssertionError(f"the trained model's state_dict does not fit Linear(2, 8) + Linear(8, 1): {error}") from None
    loss = float(BCELoss()(model(tt.Tensor(X)), Y).item())
    note(f"XOR: loss {loss:.5f} after {result['steps']} steps in {seconds:.1f} s (target < {TARGET_LOSS}, limit {TIME_LIMIT:g} s)")
    assert loss < TARGET_LOSS, f"the trained XOR network's loss is {loss:.4f}, not below {TARGET_LOSS}"

"""Milestone (after module 11): the MNIST CNN trained on the student's OWN tinytorch (convolution,
pooling, DataLoader, Adam and the training loop of module 11: every module from their notebooks) reaches >= 95% test accuracy within a
time limit.  Training sees the first 20,000 training images only; the trained weights come back and
the test accuracy is measured here, with the reference, on the 10,000 test images the student's
process never receives."""
import numpy as np
from otter.test_files import test_case

from ttgrade import dataset, note, probe, reference, run_student

name = "11_adam milestone MNIST CNN"
kind = "milestone"
stack = "own"
datasets = ["mnist"]

TRAIN_IMAGES = 20000
TARGET_ACCURACY = 0.95
TIME_LIMIT = 300.0
MEAN, STD = 0.1307, 0.3081


@probe
def make_cnn(tt):
    from tinytorch.layers import Linear, ReLU, Sequential
    from tinytorch.spatial import Conv2d, Flatten, MaxPool2d
    return Sequential(Conv2d(1, 8, 3, padding=1), ReLU(), MaxPool2d(2), Conv2d(8, 16, 3, padding=1), ReLU(),
                      MaxPool2d(2), Flatten(), Linear(784, 64), ReLU(), Linear(64, 10))


@probe
def train_cnn(tt, images, labels):
    from tinytorch.adam import Adam, train_epoch
    from tinytorch.data import DataLoader, TensorDataset
    tt.manual_seed(0)
    x = ((images[:, None].astype(np.float32) / 255.0) - 0.1307) / 0.3081      # (N, 1, 28, 28)
    loader = DataLoader(TensorDataset(x, labels.astype(np.int64)), batch_size=64, shuffle=True, seed=0)
    model = make_cnn(tt)
    optimizer = Adam(model.parameters(), lr=2e-3)
    train_epoch(model, loader, optimizer)      # the student's image training loop (module 11), one pass
    return {name: value for name, value in model.state_dict().items()}


@test_case(points=10)
def test_mnist_cnn_reaches_95_percent():
    """The milestone CNN (2 conv + pool blocks, 2 linear layers, Adam) trained on your own tinytorch for one pass over 20,000 images reaches >= 95% test accuracy within 300 s."""
    mnist = dataset("mnist")
    state, seconds = run_student(train_cnn, mnist["train_images"][:TRAIN_IMAGES], mnist["train_labels"][:TRAIN_IMAGES],
                                 timeout=TIME_LIMIT)
    tt = reference()
    model = make_cnn(tt)
    try:
        model.load_state_dict({k: np.asarray(v, dtype=np.float32) for k, v in state.items()})
    except Exception as error:  # noqa: BLE001
        raise AssertionError(f"the trained CNN's state_dict does not fit the milestone architecture: {error}") from None
    model.eval()
    correct = 0
    with tt.no_grad():
        for start in range(0, 10000, 1000):
            x = ((mnist["test_images"][start:start + 1000, None].astype(np.float32) / 255.0) - MEAN) / STD
            correct += int((model(tt.Tensor(x)).data.argmax(axis=1) == mnist["test_labels"][start:start + 1000]).sum())
    accuracy = correct / 10000
    note(f"MNIST CNN: test accuracy {accuracy:.2%} after training {seconds:.1f} s "
         f"(target >= {TARGET_ACCURACY:.0%}, limit {TIME_LIMIT:g} s)")
    assert accuracy >= TARGET_ACCURACY, f"test accuracy {accuracy:.2%} is below {TARGET_ACCURACY:.0%}"

"""Milestone 3: the tinytorch CNN reaches >= 98% MNIST test accuracy in 2 epochs, with a usable checkpoint."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from course.milestones import mnist_cnn
from tinytorch.adam import Adam
from tinytorch.data import MNIST, DataLoader
from tinytorch.production import load_checkpoint


@pytest.mark.slow
def test_two_epochs_reach_98_percent_and_the_checkpoint_reproduces_it(datasets, tmp_path):
    result = mnist_cnn.train(datasets, epochs=2, progress=False, out=tmp_path)
    assert result["test_accuracy"][-1] >= 0.98, result["test_accuracy"]
    assert result["plot"].read_bytes()[:4] == b"\x89PNG"
    model = mnist_cnn.make_cnn()
    info = load_checkpoint(result["checkpoint"], model, Adam(model.parameters()))
    assert info["epoch"] == 2
    _, accuracy = mnist_cnn.evaluate(model, DataLoader(MNIST(datasets, train=False), batch_size=1000))
    assert np.isclose(accuracy, result["test_accuracy"][-1])


def test_a_short_run_learns(datasets, tmp_path):
    """One epoch on 3,000 images already beats chance by far (a broken model stays near 10%)."""
    result = mnist_cnn.train(datasets, epochs=1, progress=False, out=tmp_path, limit=3000)
    assert result["test_accuracy"][0] > 0.7


def test_missing_dataset_folder_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "course.milestones.mnist_cnn", "--data", str(tmp_path / "nowhere")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "nowhere" in result.stderr and "Traceback" not in result.stderr

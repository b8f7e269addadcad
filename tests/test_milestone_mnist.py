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


def test_the_design_cnn_on_a_cosine_learns_and_checkpoints_apart(datasets, tmp_path):
    """The course design's CNN (--design; its 99% run is a benchmark command) trains on the cosine schedule:
    the learning rate falls from lr to 0 over the epochs, and its checkpoint loads into the design's shape."""
    result = mnist_cnn.train(datasets, epochs=2, lr=2e-3, progress=False, out=tmp_path, limit=3000,
                             design=True, cosine=True)
    assert result["test_accuracy"][-1] > 0.8, result["test_accuracy"]
    assert result["checkpoint"].name == "mnist_cnn_design.npz" and result["plot"].name == "mnist_cnn_design.png"
    model = mnist_cnn.make_design_cnn()
    assert sum(p.data.size for p in model.parameters()) == 16 * 9 + 16 + 32 * 16 * 9 + 32 + 800 * 10 + 10
    optimizer = Adam(model.parameters(), lr=2e-3)
    info = load_checkpoint(result["checkpoint"], model, optimizer)
    assert info["config"]["design"] and info["config"]["cosine"]
    assert optimizer.param_groups[0]["lr"] == 0.0   # cos(pi) after the second of two epochs


def test_zero_epochs_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "course.milestones.mnist_cnn", "--epochs", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--epochs must be at least 1" in result.stderr, result.stderr


def test_missing_dataset_folder_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "course.milestones.mnist_cnn", "--data", str(tmp_path / "nowhere")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "nowhere" in result.stderr and "Traceback" not in result.stderr

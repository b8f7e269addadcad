"""Milestones 1 and 2: XOR inference with hand-set weights, XOR training to loss < 0.01 with a PNG plot."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from course.milestones import xor

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_milestone_1_hand_set_weights_compute_xor():
    outputs = xor.xor_inference()
    assert outputs.shape == (4, 1)
    assert np.array_equal((outputs > 0.5).astype(int), xor.Y.astype(int))
    assert np.all(np.abs(outputs - xor.Y) < 0.01), "the hand-set network is confident"


def test_milestone_2_main_reaches_the_target_prints_the_curve_and_writes_the_png(tmp_path, capsys):
    plot = tmp_path / "plots" / "xor.png"  # the folder does not exist yet
    assert xor.main(["--seed", "0", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "0 xor 1 -> " in out and "WRONG" not in out
    assert "step     0  loss 0.69" in out and "step     5  loss" in out
    assert "< 0.01 after" in out and " steps in " in out
    assert plot.read_bytes().startswith(PNG_MAGIC) and plot.stat().st_size > 5_000


@pytest.mark.parametrize("seed", range(5))
def test_training_reaches_loss_below_001_for_several_seeds(seed):
    result = xor.train_xor(seed=seed)
    assert result.reached and result.losses[-1] < 0.01 and result.steps < 500
    assert result.steps == len(result.losses) - 1
    assert min(result.losses[:-1]) >= 0.01, "training stops at the first loss below the target"
    assert np.array_equal((result.predictions > 0.5).astype(int), xor.Y.astype(int))


def test_main_exits_non_zero_when_the_target_is_not_reached(tmp_path, capsys):
    plot = tmp_path / "short.png"
    assert xor.main(["--max-steps", "3", "--plot", str(plot)]) == 1
    assert "did not reach 0.01 in 3 steps" in capsys.readouterr().err
    assert plot.read_bytes().startswith(PNG_MAGIC), "the curve is plotted even when training falls short"


def test_default_plot_goes_under_results_and_the_command_runs(tmp_path):
    done = subprocess.run([sys.executable, "-m", "course.milestones.xor", "--seed", "1", "--lr", "0.5"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(xor.Path(xor.__file__).resolve().parents[2])})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / xor.DEFAULT_PLOT).read_bytes().startswith(PNG_MAGIC)

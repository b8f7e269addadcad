"""Shared fixtures: PyTorch for comparisons, the datasets folder, the repo root."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def torch():
    """PyTorch 2.13 for comparison tests. CI installs it; there a missing torch is a failure, not a skip."""
    try:
        import torch
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("PyTorch is not installed but CI must run the comparison tests: pip install torch==2.13.0")
        pytest.skip("PyTorch is not installed (tests/run.sh installs torch==2.13.0)")
    return torch


@pytest.fixture(scope="session")
def datasets() -> Path:
    """The read-only datasets folder: $TINYTORCH_DATASETS, else ../shared/datasets beside the repo."""
    path = Path(os.environ.get("TINYTORCH_DATASETS", ROOT.parent / "shared" / "datasets"))
    if not path.is_dir():
        pytest.fail(f"datasets folder {path} not found: set TINYTORCH_DATASETS to the folder holding mnist/ and tinyshakespeare/")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# Hypothesis: no per-example deadline (the machines are shared and noisy), a fixed budget.
from hypothesis import settings  # noqa: E402

settings.register_profile("course", max_examples=40, deadline=None, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "course"))

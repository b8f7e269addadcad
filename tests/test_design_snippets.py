"""The course design's milestone code runs: Phase 1 as written, Phase 4 with the course's names.

The design document (`../shared/design/`) shows each phase's milestone as a few lines of code. Phase 1's
lines run verbatim after the imports a notebook has; Phase 3's CNN, written as the design writes it, is the
MNIST milestone's `--design` model; Phase 4's `TinyGPT(...)`, `train_on_shakespeare`
and `model.generate("To be or not to be")` are, in the course, a `GPT(GPTConfig(...))`, the TinyGPT
milestone's `train`, and `generate_text(model, tok, prompt, n)` (module 15).
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from course.milestones import tinygpt

PHASE_1 = '''
from tinytorch.tensor import Tensor
from tinytorch.layers import *

xor_input = Tensor([[0, 0], [0, 1], [1, 0], [1, 1]])

# Students can execute:
net = Sequential([Linear(2,4), ReLU(), Linear(4,1)])
output = net(xor_input)  # Works without training!
'''


def test_phase_1_xor_inference_runs_as_the_design_writes_it():
    scope: dict = {}
    exec(compile(PHASE_1, "design phase 1", "exec"), scope)
    output, net = scope["output"], scope["net"]
    assert output.shape == (4, 1) and output.dtype == np.float32, (output.shape, output.dtype)
    assert scope["xor_input"].dtype == np.float32, "integer lists become float32, as torch.Tensor([...])"
    assert [name for name, _ in net.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]


PHASE_3_MODEL = '''
from tinytorch.layers import *
from tinytorch.spatial import *

cnn = Sequential([
    Conv2d(1, 16, 3), ReLU(), MaxPool2d(2),
    Conv2d(16, 32, 3), ReLU(), MaxPool2d(2),
    Flatten(), Linear(32*5*5, 10)
])
'''


def test_phase_3_cnn_as_the_design_writes_it_is_the_mnist_milestones_design_model():
    """The milestone's `make_design_cnn` (`--design`, the 99% run) has the design's layers: same parameter names
    and shapes, and with the same weights the same class scores."""
    from course.milestones.mnist_cnn import make_design_cnn
    import tinytorch as tt

    scope: dict = {}
    exec(compile(PHASE_3_MODEL, "design phase 3", "exec"), scope)
    design, ours = scope["cnn"], make_design_cnn()
    shapes = {name: p.data.shape for name, p in design.named_parameters()}
    assert shapes == {name: p.data.shape for name, p in ours.named_parameters()}, shapes
    ours.load_state_dict(design.state_dict())
    x = tt.Tensor(np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32))
    np.testing.assert_allclose(ours(x).data, design(x).data, rtol=1e-5, atol=1e-6)


def test_phase_4_generates_text_from_a_prompt_string(datasets, tmp_path):
    """A tiny TinyGPT trained briefly continues "To be or not to be", in one call and from the command line."""
    from tinytorch.generation import generate_text
    cfg = tinygpt.TrainConfig(max_iters=20, eval_interval=20, block_size=32, n_layer=1, n_head=2, n_embd=32,
                              batch_size=8, warmup_iters=5, eval_windows=10)
    text = tinygpt.read_corpus(datasets)[:50_000]
    tinygpt.train(cfg=cfg, out=tmp_path, progress=False, text=text, sample_chars=20)
    model, tok, iteration = tinygpt.load_trained(tmp_path)
    assert iteration == 20

    generated = generate_text(model, tok, "To be or not to be", 40, seed=0)
    print(generated)
    assert generated.startswith("To be or not to be") and len(generated) == len("To be or not to be") + 40
    assert set(generated) <= set(text)

    command = [sys.executable, "-m", "course.milestones.tinygpt", "--sample", "--prompt", "To be or not to be",
               "--out", str(tmp_path), "--sample-chars", "40", "--temperature", "1.0", "--seed", "0"]
    sampled = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert sampled.returncode == 0, sampled.stderr
    assert "(iteration 20)" in sampled.stdout and generated in sampled.stdout, sampled.stdout
    assert "TinyGPT:" not in sampled.stdout, "sampling must not train"


def test_sampling_without_a_trained_model_says_how_to_train(tmp_path):
    command = [sys.executable, "-m", "course.milestones.tinygpt", "--sample", "--prompt", "To be", "--out",
               str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"no trained TinyGPT in {tmp_path}" in result.stderr and "train it first" in result.stderr

"""Milestone 4: TinyGPT learns Tiny Shakespeare; checkpoints resume bit for bit; bad input is a clear error.

The full milestone (3,000 iterations, validation loss <= 1.90) is `python -m course.milestones.tinygpt`;
here a small configuration trains on a slice of the corpus, against a bigram model as the bar.
"""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from course.milestones import tinygpt
from tinytorch.generation import CharTokenizer
from tinytorch.production import CheckpointError, load_checkpoint
from tinytorch.transformer import GPT

SMALL = dict(block_size=32, n_layer=2, n_head=2, n_embd=64, batch_size=16, warmup_iters=20,
             learning_rate=3e-3, min_lr=3e-4, eval_windows=200)


def bigram_loss(text: str) -> float:
    """Validation cross-entropy of add-one-smoothed character bigrams counted on the training split."""
    tok = CharTokenizer(text)
    train, val = tinygpt.split(tok.encode(text))
    counts = np.ones((tok.vocab_size, tok.vocab_size))
    np.add.at(counts, (train[:-1], train[1:]), 1)
    probs = counts / counts.sum(axis=1, keepdims=True)
    return float(-np.log(probs[val[:-1], val[1:]]).mean())


@pytest.fixture(scope="module")
def corpus_slice(datasets) -> str:
    return tinygpt.read_corpus(datasets)[:300_000]


@pytest.mark.slow
def test_a_small_gpt_beats_a_bigram_model_and_writes_a_play_like_sample(corpus_slice, tmp_path):
    cfg = tinygpt.TrainConfig(max_iters=600, eval_interval=200, **SMALL)
    result = tinygpt.train(cfg=cfg, out=tmp_path, progress=False, text=corpus_slice, sample_chars=300)
    bar = bigram_loss(corpus_slice)                       # 2.50 nats; ln(62) = 4.13 is a model that learned nothing
    assert result["final_val_loss"] < bar - 0.1, (result["final_val_loss"], bar)
    assert result["history"]["val_loss"][0] > 4.0 and result["history"]["iter"] == [0, 200, 400, 600]
    sample = result["sample"]
    assert len(sample) == 302 and sample.startswith("\n\n") and sample.count("\n") >= 4 and set(sample) <= set(corpus_slice)
    assert (tmp_path / "tinygpt_sample.txt").read_text(encoding="utf-8") == sample
    assert result["plot"].read_bytes()[:4] == b"\x89PNG"
    saved = CharTokenizer.load(tmp_path / "tinygpt_tokenizer.json")
    assert saved.chars == CharTokenizer(corpus_slice).chars


def test_resume_after_an_interruption_gives_the_same_model_as_one_run(corpus_slice, tmp_path, monkeypatch):
    cfg = tinygpt.TrainConfig(max_iters=30, eval_interval=10, **{**SMALL, "n_embd": 16, "eval_windows": 20})
    text = corpus_slice[:50_000]
    whole = tinygpt.train(cfg=cfg, out=tmp_path / "whole", progress=False, text=text, sample_chars=50)

    real_get_batch, calls = tinygpt.get_batch, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 15:                                # during iteration 14, after the checkpoint at 10
            raise KeyboardInterrupt
        return real_get_batch(*args)

    monkeypatch.setattr(tinygpt, "get_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tinygpt.train(cfg=cfg, out=tmp_path / "split", progress=False, text=text)
    monkeypatch.setattr(tinygpt, "get_batch", real_get_batch)
    resumed = tinygpt.train(cfg=cfg, out=tmp_path / "split", resume=True, progress=False, text=text, sample_chars=50)
    assert resumed["iterations"] == 20 and resumed["history"] == whole["history"]
    assert resumed["final_val_loss"] == whole["final_val_loss"] and resumed["sample"] == whole["sample"]

    model = GPT(cfg.model_config(CharTokenizer(text).vocab_size))
    info = load_checkpoint(tmp_path / "split" / "tinygpt.npz", model)
    assert info["epoch"] == 30 and info["config"]["model"]["n_embd"] == 16

    other = tinygpt.TrainConfig(max_iters=40, eval_interval=10, **{**SMALL, "n_embd": 16, "eval_windows": 20})
    with pytest.raises(CheckpointError, match="other settings"):
        tinygpt.train(cfg=other, out=tmp_path / "split", resume=True, progress=False, text=text)


def _run(*args):
    return subprocess.run([sys.executable, "-m", "course.milestones.tinygpt", *args],
                          capture_output=True, text=True, timeout=300)


def test_command_line_errors_are_clear(tmp_path, datasets):
    missing = _run("--data", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "nowhere" in missing.stderr and "Traceback" not in missing.stderr

    damaged = tmp_path / "damaged"
    shutil.copytree(datasets / "tinyshakespeare", damaged / "tinyshakespeare")
    with open(damaged / "tinyshakespeare" / "input.txt", "a", encoding="utf-8") as f:
        f.write("one line too many\n")
    result = _run("--data", str(damaged))
    assert result.returncode == 2 and "SHA-256" in result.stderr and "damaged" in result.stderr

    no_checkpoint = _run("--data", str(datasets), "--out", str(tmp_path / "empty"), "--resume")
    assert no_checkpoint.returncode == 2 and "no checkpoint" in no_checkpoint.stderr

    unknown = _run("--data", str(datasets), "--out", str(tmp_path / "p"), "--prompt", "caf\u00e9")
    assert unknown.returncode == 2 and "not in the vocabulary" in unknown.stderr and not (tmp_path / "p").exists()

    bad_heads = _run("--data", str(datasets), "--n-embd", "30", "--n-head", "4")
    assert bad_heads.returncode == 2 and "multiple of n_head" in bad_heads.stderr

"""Generation (module 15): the character tokenizer, language-model batches, sampling and the generate loop."""
from __future__ import annotations

import json

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.generation import CharTokenizer, generate, get_batch, sample_next
from tinytorch.transformer import GPT, GPTConfig


def test_tokenizer_round_trips_shakespeare_and_has_65_characters(datasets):
    text = (datasets / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    tok = CharTokenizer(text)
    assert tok.vocab_size == 65 and tok.chars[0] == "\n" and tok.chars[1] == " "
    assert tok.decode(tok.encode(text[:5000])) == text[:5000]


def test_tokenizer_save_load_and_clear_errors(tmp_path):
    tok = CharTokenizer("to be or not")
    path = tok.save(tmp_path / "sub" / "tok.json")
    again = CharTokenizer.load(path)
    assert again.chars == tok.chars and list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp file left
    with pytest.raises(ValueError, match=r"'z' at position 4"):
        tok.encode("not zebra")
    with pytest.raises(ValueError, match="ids must be integers"):
        tok.decode([0, 99])
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer("")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a tokenizer file"):
        CharTokenizer.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something-else", "chars": "ab"}))
    with pytest.raises(ValueError, match="tinytorch-char-tokenizer-1"):
        CharTokenizer.load(tmp_path / "other.json")
    with pytest.raises(FileNotFoundError, match="no tokenizer file"):
        CharTokenizer.load(tmp_path / "missing.json")


def test_batches_cover_the_data_and_reach_its_last_target():
    data = np.arange(20)
    starts = set()
    g = np.random.default_rng(0)
    for _ in range(200):
        x, y = get_batch(data, 4, 8, g)
        assert np.array_equal(y, x + 1)
        starts.update(x[:, 0].tolist())
    assert starts == set(range(16))        # every window, including the one ending at the last id
    with pytest.raises(ValueError, match="longer than block_size"):
        get_batch(np.arange(4), 4, 2, g)


@pytest.mark.torch
def test_sampling_distribution_matches_torch_temperature_and_top_k(torch):
    logits = np.random.default_rng(0).standard_normal((1, 20)) * 2
    for temperature, k in ((1.0, None), (0.7, 5), (1.5, 3)):
        scaled = torch.from_numpy(logits) / temperature
        if k:
            v, _ = torch.topk(scaled, k)
            scaled[scaled < v[:, [-1]]] = -float("inf")
        expected = torch.softmax(scaled, -1).numpy()[0]
        draws = sample_next(np.repeat(logits, 40000, axis=0), temperature, k, np.random.default_rng(1))
        observed = np.bincount(draws, minlength=20) / len(draws)
        assert np.abs(observed - expected).max() < 0.012, (temperature, k)
        if k:
            assert set(np.flatnonzero(observed)) <= set(np.flatnonzero(expected))


def test_sample_next_rejects_bad_settings():
    g = np.random.default_rng(0)
    with pytest.raises(ValueError, match="temperature"):
        sample_next(np.zeros((1, 3)), -1, None, g)
    with pytest.raises(ValueError, match="top_k"):
        sample_next(np.zeros((1, 3)), 1.0, 0, g)


def _tiny_model(seed=0, block_size=6, dropout=0.0):
    tt.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=9, block_size=block_size, n_layer=1, n_head=2, n_embd=8, dropout=dropout))


def test_generate_crops_to_block_size_and_uses_only_the_last_position(monkeypatch):
    model = _tiny_model()
    seen = []
    real_forward = model.forward
    monkeypatch.setattr(model, "forward", lambda idx, targets=None: seen.append(idx.shape) or real_forward(idx))
    out = generate(model, np.zeros((2, 3), dtype=np.int64), 6, temperature=0)
    assert out.shape == (2, 9) and seen == [(2, 3), (2, 4), (2, 5), (2, 6), (2, 6), (2, 6)]
    # greedy generation equals taking the argmax of the model's own last-position logits, step by step
    ids = np.zeros((2, 3), dtype=np.int64)
    for _ in range(6):
        with tt.no_grad():
            logits, _ = real_forward(ids[:, -6:])
        ids = np.concatenate([ids, logits.data[:, -1].argmax(-1)[:, None]], axis=1)
    assert np.array_equal(out, ids)


def test_generate_is_repeatable_with_a_seed_records_no_history_and_restores_train_mode():
    model = _tiny_model(dropout=0.3)
    start = np.array([[1, 2]])
    a, b = generate(model, start, 20, seed=7), generate(model, start, 20, seed=7)
    assert np.array_equal(a, b) and model.training
    assert not np.array_equal(a, generate(model, start, 20, seed=8))
    assert all(p.grad is None for p in model.parameters())
    assert np.array_equal(model.generate(start, 20, seed=7), a)     # the method on the model is the same sampler
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        generate(model, np.array([1, 2]), 3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, start, -1)

"""Module 15 (generation), hidden correctness: tokenizer edge cases, batches with a given generator,
sampling with temperature and top-k, generation past the block size."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe, same

name = "15_generation correctness"
kind = "correctness"

TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler...\n"


@probe
def tokenizer(tt, text):
    from tinytorch.generation import CharTokenizer
    tok = CharTokenizer(text)
    ids = tok.encode("be, or\n")
    try:
        tok.encode("Zebra!")
        unknown = "no error"
    except Exception as error:  # noqa: BLE001
        unknown = type(error).__name__
    return {"vocab size": tok.vocab_size, "ids": ids, "decoded": tok.decode(ids), "empty": tok.encode(""),
            "decode of a list": tok.decode([int(i) for i in ids[::-1]]), "unknown characters": unknown}


@probe
def batches(tt):
    from tinytorch.generation import get_batch
    data = np.arange(100, 140)
    x, y = get_batch(data, 7, 5, np.random.default_rng(3))
    x2, y2 = get_batch(data, 39, 2, np.random.default_rng(4))
    return {"x": x, "y": y, "longest windows x": x2, "longest windows y": y2}


@probe
def sampling(tt):
    from tinytorch.generation import sample_next
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]], dtype=np.float32))
    draws = {}
    for label, temperature, top_k in [("t=1", 1.0, None), ("t=0.5, top-2", 0.5, 2), ("t=2, top-1", 2.0, 1)]:
        generator = np.random.default_rng(5)
        draws[label] = np.stack([sample_next(logits, temperature, top_k, generator) for _ in range(200)])
    return draws


@probe
def generation(tt):
    from tinytorch.generation import generate
    from tinytorch.transformer import GPT, GPTConfig
    tt.manual_seed(17)
    model = GPT(GPTConfig(vocab_size=9, block_size=4, n_layer=1, n_head=2, n_embd=8))
    start = np.array([[1, 2], [3, 4]])
    return {"10 new tokens past block size 4": generate(model, start, 10, temperature=0.8, top_k=5, seed=6),
            "greedy-ish": generate(model, start[:1], 3, temperature=1e-3, seed=1)}


@test_case(points=2)
def test_tokenizer_round_trip_and_unknowns():
    """encode/decode round trips (newlines, punctuation), the empty string, a list of ids, unknown characters."""
    same(tokenizer, TEXT)


@test_case(points=1)
def test_get_batch_windows():
    """Windows and their targets from a given generator, down to the longest window that fits."""
    same(batches)


@test_case(points=2)
def test_sampling_with_temperature_and_top_k():
    """200 draws each at temperature 1, 0.5 with top-2, and 2 with top-1, from a given generator."""
    same(sampling)


@test_case(points=2)
def test_generate_crops_to_the_block_size():
    """Generating 10 tokens with block size 4 (the context is cropped) and near-greedy sampling."""
    same(generation, rtol=1e-5)

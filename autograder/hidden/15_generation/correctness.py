"""Module 15 (generation), hidden correctness: tokenizer edge cases, batch windows, sampling with
temperature and top-k, generation past the block size.

Random draws are checked by their properties and frequencies, never draw for draw against the
reference: the notebook does not prescribe which generator method a student calls."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe, run_student, same

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
    x, y = get_batch(data, 7, 500, np.random.default_rng(3))
    x2, y2 = get_batch(data, 39, 2, np.random.default_rng(4))      # the longest window that fits: one start only
    return {"x": np.asarray(x), "y": np.asarray(y), "longest windows x": np.asarray(x2),
            "longest windows y": np.asarray(y2)}


DRAWS = 4000
SAMPLING_CASES = [(1.0, None), (0.5, 2), (2.0, None), (0.7, 3)]   # (temperature, top_k)


@probe
def sampling(tt, cases, draws):
    from tinytorch.generation import sample_next
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]], dtype=np.float32))
    counts = []
    for temperature, top_k in cases:
        ids = np.asarray(sample_next(np.repeat(logits, draws, axis=0), temperature, top_k, np.random.default_rng(5)))
        counts.append(np.stack([np.bincount(row, minlength=4)[:4] for row in ids.reshape(2, draws)]))
    greedy = sample_next(logits, 0, None, np.random.default_rng(5))
    return {"counts": counts, "greedy": np.asarray(greedy)}


def expected_probabilities(temperature, top_k):
    """What sample_next should draw from, computed here from the definition."""
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]])) / temperature
    if top_k is not None:
        kth = np.sort(logits, axis=1)[:, -top_k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


@probe
def generation(tt):
    from tinytorch.generation import generate
    from tinytorch.transformer import GPT, GPTConfig
    tt.manual_seed(17)
    model = GPT(GPTConfig(vocab_size=9, block_size=4, n_layer=1, n_head=2, n_embd=8))
    start = np.array([[1, 2], [3, 4]])
    return {"10 greedy tokens past block size 4": generate(model, start, 10, temperature=0),
            "top-1 at temperature 0.8 is greedy too": generate(model, start, 10, temperature=0.8, top_k=1, seed=3)}


@probe
def seeded_generation(tt):
    from tinytorch.generation import generate
    from tinytorch.transformer import GPT, GPTConfig
    tt.manual_seed(17)
    model = GPT(GPTConfig(vocab_size=9, block_size=4, n_layer=1, n_head=2, n_embd=8))
    start = np.array([[1, 2], [3, 4]])
    runs = [np.asarray(generate(model, start, 30, temperature=1.5, seed=seed)) for seed in (6, 6, 7)]
    return {"runs": runs, "training mode after": bool(model.training)}


@test_case(points=2)
def test_tokenizer_round_trip_and_unknowns():
    """encode/decode round trips (newlines, punctuation), the empty string, a list of ids, unknown characters."""
    same(tokenizer, TEXT)


@test_case(points=1)
def test_get_batch_windows():
    """Windows of the data with their targets one id later, from every possible start, down to the longest window that fits."""
    result, _ = run_student(batches)
    x, y = result["x"], result["y"]
    assert x.shape == y.shape == (500, 7), f"500 windows of 7 ids expected, got shapes {x.shape} and {y.shape}"
    assert x.dtype == y.dtype == np.int64, f"windows must be int64 ids, got {x.dtype} and {y.dtype}"
    assert np.all(np.diff(x, axis=1) == 1), "each input window must be consecutive ids of the data"
    assert np.array_equal(y, x + 1), "each target must be its input window one position later"
    starts = set(x[:, 0].tolist())
    assert starts <= set(range(100, 133)), f"windows must lie inside the data, got starts {sorted(starts)}"
    assert len(starts) > 25, f"500 random windows should start at (nearly) all 33 possible places, got {len(starts)}"
    assert np.array_equal(result["longest windows x"], [np.arange(100, 139)] * 2) and \
        np.array_equal(result["longest windows y"], [np.arange(101, 140)] * 2), \
        "with block_size = len(data) - 1 the only window is the whole data, and its target"


@test_case(points=2)
def test_sampling_with_temperature_and_top_k():
    """4,000 draws per row at several temperatures and top-k: frequencies follow the tempered top-k distribution; temperature 0 is the argmax."""
    result, _ = run_student(sampling, SAMPLING_CASES, DRAWS)
    for (temperature, top_k), counts in zip(SAMPLING_CASES, result["counts"]):
        counts = np.asarray(counts, dtype=float)
        setting = f"temperature {temperature}" + (f", top-k {top_k}" if top_k else "")
        assert counts.shape == (2, 4) and np.all(counts.sum(axis=1) == DRAWS), \
            f"{setting}: expected {DRAWS} draws per row among 4 ids, got counts {counts.tolist()}"
        expected = expected_probabilities(temperature, top_k)
        assert not np.any(counts[expected == 0]), f"{setting}: drew ids outside the top {top_k}: counts {counts.tolist()}"
        worst = np.abs(counts / DRAWS - expected).max()
        assert worst < 0.035, (f"{setting}: drawn frequencies {np.round(counts / DRAWS, 3).tolist()} differ from the "
                               f"expected probabilities {np.round(expected, 3).tolist()} by up to {worst:.3f}")
    assert np.asarray(result["greedy"]).tolist() == [3, 0], \
        f"temperature 0 must pick the most likely id of each row (3 and 0), got {result['greedy']}"


@test_case(points=1)
def test_generate_crops_to_the_block_size():
    """Greedy generation of 10 tokens with block size 4 (the context must be cropped), and top-1 sampling."""
    same(generation)


@test_case(points=1)
def test_generate_is_repeatable_with_a_seed():
    """The same seed gives the same ids, another seed other ids; the prompt is kept; ids stay in the vocabulary."""
    result, _ = run_student(seeded_generation)
    first, again, other = (np.asarray(r) for r in result["runs"])
    assert first.shape == (2, 32), f"2 prompts of 2 ids + 30 new ones should give shape (2, 32), got {first.shape}"
    assert np.array_equal(first[:, :2], [[1, 2], [3, 4]]), "the prompt must stay at the start of the output"
    assert first.min() >= 0 and first.max() < 9, "generated ids must be in the vocabulary [0, 9)"
    assert np.array_equal(first, again), "generate with the same seed must give the same ids"
    assert not np.array_equal(first, other), "generate with another seed should give other ids"
    assert result["training mode after"], "generate must leave a model in training mode as it found it"

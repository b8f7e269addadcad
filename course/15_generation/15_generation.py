# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 15 — Generation
#
# Module 14's GPT turns a sequence of token ids into, at every position, a
# score for each possible next token. This module closes the loop:
#
# 1. a **tokenizer** turns text into ids and back. Ours works on characters:
#    the vocabulary is every distinct character of the training text (65 for
#    Tiny Shakespeare). Real models use sub-word tokenizers (BPE) with tens of
#    thousands of entries; the idea is the same.
# 2. **training batches** for a language model are windows of the text: the
#    input is `block_size` ids, the target is the same window shifted by one.
# 3. **autoregressive sampling**: feed the context, take the scores of the
#    *last* position, turn them into probabilities, draw one token, append
#    it, repeat. Two knobs shape the draw:
#    * **temperature** divides the scores before the softmax: below 1 the
#      distribution sharpens (safer, more repetitive text), above 1 it
#      flattens (more surprising, more mistakes); 0 means always the most
#      likely token (greedy).
#    * **top-k** keeps only the `k` most likely tokens, so a long tail of
#      unlikely characters can never be drawn.
#
# The model only knows `block_size` positions, so the context is cropped to
# its last `block_size` ids before each step.

# %%
#| default_exp generation

# %%
#| export
"""Character tokenizer, language-model batches and autoregressive sampling (module 15)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from tinytorch.tensor import TensorLike, no_grad

if TYPE_CHECKING:  # GPT.generate calls generate(self, ...): module 14 imports this one, not the other way round
    from tinytorch.transformer import GPT

TOKENIZER_FORMAT = "tinytorch-char-tokenizer-1"


# %% [markdown]
# ## The character tokenizer
#
# The vocabulary is the sorted set of characters, so the same text always
# gives the same ids. A character the tokenizer has never seen has no id:
# say which one and where, rather than silently dropping it.

# %% nbgrader={"grade": false, "grade_id": "tokenizer", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class CharTokenizer:
    """Maps each distinct character of a corpus to an id (sorted order) and back."""

    def __init__(self, text: str):
        if not isinstance(text, str) or not text:
            raise ValueError("CharTokenizer needs a non-empty string to build its vocabulary from")
        self.chars = sorted(set(text))
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """The ids of `text`'s characters, as an int64 array."""
        ### BEGIN SOLUTION
        try:
            return np.array([self.stoi[ch] for ch in text], dtype=np.int64)
        except KeyError:
            position = next(i for i, ch in enumerate(text) if ch not in self.stoi)
            raise ValueError(f"character {text[position]!r} at position {position} is not in the vocabulary "
                             f"of {self.vocab_size} characters") from None
        ### END SOLUTION

    def decode(self, ids: ArrayLike) -> str:
        """The text of a sequence of ids."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"ids must be integers in [0, {self.vocab_size}), got {ids[:5].tolist()}...")
        ### BEGIN SOLUTION
        return "".join(self.chars[i] for i in ids)
        ### END SOLUTION

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the vocabulary as JSON, atomically (a crash leaves the old file or the new one)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"format": TOKENIZER_FORMAT, "chars": "".join(self.chars)}, f)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CharTokenizer:
        path = Path(path)
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"no tokenizer file at {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not a tokenizer file (not JSON: {error})") from None
        if not isinstance(saved, dict) or saved.get("format") != TOKENIZER_FORMAT or not saved.get("chars"):
            raise ValueError(f"{path} is not a {TOKENIZER_FORMAT} file")
        return cls(saved["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# %% [markdown]
# ## Batches for a language model
#
# Pick `batch_size` random starting points; each input is `block_size` ids
# and its target the same window one step later. Every position is a
# training example: predict id `t+1` from ids `0..t`.

# %% nbgrader={"grade": false, "grade_id": "get-batch", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def get_batch(data: np.ndarray, block_size: int, batch_size: int,
              generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x, y), each (batch_size, block_size) int64: random windows of `data` and the windows one id later."""
    data = np.asarray(data)
    if data.ndim != 1 or len(data) <= block_size:
        raise ValueError(f"get_batch needs a 1-D array longer than block_size={block_size}, got shape {data.shape}")
    ### BEGIN SOLUTION
    starts = generator.integers(0, len(data) - block_size, batch_size)
    windows = starts[:, None] + np.arange(block_size)   # (batch, block) indices, no Python loop
    return data[windows].astype(np.int64), data[windows + 1].astype(np.int64)
    ### END SOLUTION


# %% [markdown]
# ## Sampling one token
#
# From scores (logits) of shape `(B, V)`: divide by the temperature, keep the
# top `k` scores (set the others to `-inf`), softmax, and draw one id per row
# with the generator. Temperature 0 is the limit of sharpening: the argmax.

# %% nbgrader={"grade": false, "grade_id": "sample-next", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def sample_next(logits: np.ndarray, temperature: float, top_k: int | None, generator: np.random.Generator) -> np.ndarray:
    """One id per row of `logits` (B, V), drawn with the given temperature and top-k."""
    logits = np.asarray(logits, dtype=np.float64)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = always the most likely token), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive number of tokens (or None for all), got {top_k}")
    if temperature == 0:
        return logits.argmax(axis=-1)
    ### BEGIN SOLUTION
    scores = logits / temperature
    if top_k is not None and top_k < scores.shape[-1]:
        kth = np.partition(scores, -top_k, axis=-1)[:, -top_k, None]   # the k-th largest score of each row
        scores = np.where(scores < kth, -np.inf, scores)
    probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    return np.array([generator.choice(len(p), p=p) for p in probs])
    ### END SOLUTION


# %% [markdown]
# ## The generation loop
#
# Crop to the last `block_size` ids, run the model, sample from the last
# position's scores, append, repeat. Sampling needs no gradients (`no_grad`:
# no history kept) and no dropout (`eval()`); put the model back in the mode
# it was in afterwards.

# %% nbgrader={"grade": false, "grade_id": "generate", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def generate(model: GPT, idx: TensorLike, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Append `max_new_tokens` sampled ids to `idx` (B, T); returns (B, T + max_new_tokens) int64."""
    idx = np.asarray(idx.data if hasattr(idx, "data") and not isinstance(idx, np.ndarray) else idx)
    if idx.ndim != 2 or idx.dtype.kind not in "iu" or idx.shape[1] < 1:
        raise ValueError(f"generate needs integer ids of shape (B, T) with T >= 1, got {idx.shape} {idx.dtype} "
                         "(for one sequence use ids[None])")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    generator = np.random.default_rng(seed)
    block_size = model.config.block_size
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            ### BEGIN SOLUTION
            for _ in range(max_new_tokens):
                logits, _ = model(idx[:, -block_size:])
                next_ids = sample_next(logits.data[:, -1, :], temperature, top_k, generator)
                idx = np.concatenate([idx, next_ids[:, None]], axis=1)
            ### END SOLUTION
    finally:
        model.train(was_training)
    return idx.astype(np.int64)


# %% [markdown]
# ## Given: from a prompt string to text in one call
#
# The course design ends with `model.generate("To be or not to be")`. A model
# knows ids, not characters, so the tokenizer comes along:
# `generate_text(model, tok, "To be or not to be", 200)` encodes the prompt,
# calls your `generate`, and decodes the prompt and its continuation. The
# TinyGPT milestone does the same from a terminal with the model it saved:
# `python -m course.milestones.tinygpt --sample --prompt "To be or not to be"`
# samples from the last checkpoint in seconds, without training again.

# %%
#| export
def generate_text(model: GPT, tokenizer: CharTokenizer, prompt: str, max_new_tokens: int, temperature: float = 1.0,
                  top_k: int | None = None, seed: int | np.random.Generator | None = None) -> str:
    """The prompt followed by `max_new_tokens` sampled characters: encode, `generate`, decode."""
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(f"generate_text needs a non-empty prompt string, got {prompt!r}")
    ids = tokenizer.encode(prompt)[None]  # (1, T): a batch of one sequence
    return tokenizer.decode(generate(model, ids, max_new_tokens, temperature=temperature, top_k=top_k, seed=seed)[0])


# %% [markdown]
# ## See it work
#
# A tiny GPT learns a repeating pattern in a few dozen steps, then continues
# it. With temperature 0 it follows the pattern exactly.

# %%
from tinytorch.adam import AdamW
from tinytorch.tensor import manual_seed
from tinytorch.transformer import GPT, GPTConfig

manual_seed(0)
pattern = "hello world! " * 40
tok = CharTokenizer(pattern)
data = tok.encode(pattern)
tiny = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=32))
opt = AdamW(tiny.parameters(), lr=1e-2)
batches = np.random.default_rng(0)
for step in range(80):
    x, y = get_batch(data, 16, 8, batches)
    opt.zero_grad()
    loss = tiny(x, y)[1]
    loss.backward()
    opt.step()
print(f"loss after 80 steps: {loss.item():.3f}")
print(repr(tok.decode(generate(tiny, tok.encode("hel")[None], 30, temperature=0)[0])))
print(repr(generate_text(tiny, tok, "hel", 30, temperature=0)))  # the same, in one call

# %% [markdown]
# ## Tests

# %% nbgrader={"grade": true, "grade_id": "test-tokenizer", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""The tokenizer sorts its vocabulary, round-trips text, and names an unknown character and its position."""
tok = CharTokenizer("banana bread")
assert tok.chars == [" ", "a", "b", "d", "e", "n", "r"], f"got tok.chars = {tok.chars!r}"
assert tok.vocab_size == 7, f"got tok.vocab_size = {tok.vocab_size!r}"
ids = tok.encode("bread")
assert ids.dtype == np.int64, f"got ids.dtype = {ids.dtype!r}"
assert ids.tolist() == [2, 6, 4, 1, 3], f"got ids.tolist() = {ids.tolist()!r}"
assert tok.decode(ids) == "bread", f"got tok.decode(ids) = {tok.decode(ids)!r}"
assert tok.decode(tok.encode("")) == "", f'got tok.decode(tok.encode("")) = {tok.decode(tok.encode(""))!r}'
try:
    tok.encode("bandana!")
    raise AssertionError("an unknown character must raise ValueError")
except ValueError as error:
    assert "'!'" in str(error), f"got str(error) = {str(error)!r}"
    assert "position 7" in str(error), f"got str(error) = {str(error)!r}"

# %% nbgrader={"grade": true, "grade_id": "test-batches", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""get_batch returns windows of the data and the same windows shifted by one."""
data = np.arange(100)
x, y = get_batch(data, 8, 5, np.random.default_rng(0))
assert x.shape == y.shape == (5, 8), f"got x.shape = {x.shape!r}; y.shape = {y.shape!r}"
assert x.dtype == np.int64, f"got x.dtype = {x.dtype!r}"
assert np.array_equal(y, x + 1), f"got y = {y!r}; x + 1 = {x + 1!r}"
assert np.all(np.diff(x, axis=1) == 1), f"got np.diff(x, axis=1) == 1 = {np.diff(x, axis=1) == 1!r}"
assert x.min() >= 0, f"got x.min() = {x.min()!r}"
assert y.max() <= 99, f"got y.max() = {y.max()!r}"

# %% nbgrader={"grade": true, "grade_id": "test-sampling", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Temperature 0 and top-k 1 are greedy; top-k never draws outside the k best; low temperature sharpens."""
g = np.random.default_rng(0)
logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4]] * 2000))
greedy = set(sample_next(logits, 0, None, g).tolist())
assert greedy == {3}, f"temperature 0 should always draw id 3 (the largest logit), drew {sorted(greedy)}"
top1 = set(sample_next(logits, 1.0, 1, g).tolist())
assert top1 == {3}, f"top_k=1 should always draw id 3, drew {sorted(top1)}"
top2 = set(sample_next(logits, 1.0, 2, g).tolist())
assert top2 == {2, 3}, f"top_k=2 should draw ids 2 and 3 only (and both, in 2000 draws), drew {sorted(top2)}"
plain = np.bincount(sample_next(logits, 1.0, None, g), minlength=4) / 2000
assert np.allclose(plain, [0.1, 0.2, 0.3, 0.4], atol=0.04), \
    f"at temperature 1 the draws should follow the probabilities [0.1, 0.2, 0.3, 0.4], got frequencies {plain}"
cold = np.bincount(sample_next(logits, 0.25, None, g), minlength=4) / 2000
assert cold[3] > 0.7, f"at temperature 0.25 id 3 should win more than 70% of the draws, got frequencies {cold}"

# %% nbgrader={"grade": true, "grade_id": "test-generate", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""generate appends the right number of ids, crops long contexts, repeats with a seed, and restores the mode."""
from tinytorch.tensor import manual_seed
from tinytorch.transformer import GPT, GPTConfig
manual_seed(3)
model = GPT(GPTConfig(vocab_size=7, block_size=4, n_layer=1, n_head=1, n_embd=8))
start = np.array([[1, 2, 3, 4, 5, 6]])          # longer than block_size: must be cropped
out = generate(model, start, 10, seed=42)
assert out.shape == (1, 16), f"got out.shape = {out.shape!r}"
assert np.array_equal(out[:, :6], start), f"got out[:, :6] = {out[:, :6]!r}; start = {start!r}"
assert out.max() < 7, f"got out.max() = {out.max()!r}"
assert np.array_equal(out, generate(model, start, 10, seed=42)), \
    f"got out = {out!r}; generate(model, start, 10, seed=42) = {generate(model, start, 10, seed=42)!r}"
assert model.training, f"generate puts the model back in training mode, got model.training = {model.training}"
assert np.array_equal(generate(model, start, 0), start), \
    f"got generate(model, start, 0) = {generate(model, start, 0)!r}; start = {start!r}"
text = generate_text(model, CharTokenizer("abcdefg"), "bcdefg", 10, seed=42)
assert text == CharTokenizer("abcdefg").decode(out[0]), f"generate_text gave {text!r}, expected the decoded ids {out[0].tolist()}"

# %% [markdown]
# ## Memory and performance analysis: a KV cache?
#
# Each generation step runs the model on the whole (cropped) context, though
# only the last position's output is used. A **KV cache** keeps the keys and
# values of earlier positions so that each step only processes the new
# token: with context length `t`, the step costs `O(1)` token-passes through
# the Linear layers instead of `O(t)`.
#
# Measure what we would save: the time of one step as the context grows.

# %%
from tinytorch.profiler import measure

manual_seed(0)
gpt = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)).eval()
for T in (1, 8, 32, 64):
    ids = np.zeros((1, T), dtype=np.int64)
    with no_grad():
        seconds = measure(gpt, ids, repeat=5).seconds
    print(f"context {T:3d}: {seconds * 1e3:6.2f} ms per generated token")
with no_grad():
    total = measure(lambda: generate(gpt, np.zeros((1, 1), dtype=np.int64), 500, seed=0), repeat=1).seconds
print(f"500 tokens: {total:.2f} s")

# %% [markdown]
# What the numbers say, and why tinytorch has no KV cache:
#
# * The step with a context of 1 is the floor a cache cannot go below (about
#   a hundred small operations, each with Python and NumPy call overhead).
#   The difference between the last and the first line is the most a cache
#   could save per token here: a few milliseconds, on 500 characters that
#   take a few seconds in all.
# * Our model uses **learned absolute positions** and a context cropped to
#   `block_size`. Once the text is longer than 64 characters, every step
#   shifts the window: each kept token now sits at a different position, its
#   position embedding changes, so every cached key and value is wrong.
#   A cache only helps for the first `block_size` tokens, unless the model
#   uses relative positions (RoPE, ALiBi) and a rolling cache.
# * For long contexts and big models, where the per-token arithmetic
#   dominates, a KV cache is essential: it turns generating `n` tokens from
#   `O(n²)` token-passes into `O(n)`, at the price of storing
#   `2 · layers · T · C` numbers per sequence.

# %% [markdown]
# ### A KV cache where it is valid: the first `block_size` tokens
#
# While the text still fits in the block, no position shifts, and each
# layer's keys and values of earlier tokens never change: keep them, and each
# step runs only the new token through the model, attending over the cached
# keys and values (no mask needed: the cache holds only the past). Below, the
# same GPT computes the same greedy continuation both ways, with the same
# tinytorch operations, from a one-token prompt up to the block size.

# %%
from tinytorch.attention import scaled_dot_product_attention
from tinytorch.profiler import format_bytes
from tinytorch.tensor import Tensor


def step_with_cache(gpt, token, position, cache):
    """Logits (vocab,) of the next token after `token` at `position`; appends this token's K, V to `cache`."""
    x = gpt.wte(np.array([[token]])) + gpt.wpe(np.array([position]))         # (1, 1, C)
    C = x.shape[-1]
    for layer, block in enumerate(gpt.h):
        H = block.attn.n_head
        qkv = block.attn.c_attn(block.ln_1(x)).reshape(1, 1, 3, H, C // H).permute(2, 0, 3, 1, 4)  # (3, 1, H, 1, d)
        k_past, v_past = cache.get(layer, (np.zeros((1, H, 0, C // H), np.float32),) * 2)
        K = np.concatenate([k_past, qkv[1].data], axis=2)                      # (1, H, t, d)
        V = np.concatenate([v_past, qkv[2].data], axis=2)
        cache[layer] = (K, V)
        heads = scaled_dot_product_attention(qkv[0], Tensor(K), Tensor(V))      # (1, H, 1, d)
        x = x + block.attn.c_proj(heads.permute(0, 2, 1, 3).reshape(1, 1, C))
        x = x + block.mlp(block.ln_2(x))
    return gpt.lm_head(gpt.ln_f(x)).data[0, -1]


def greedy_without_cache(gpt, first, n):
    ids, logits = np.array([[first]]), []
    for _ in range(n):
        last = gpt(ids)[0].data[0, -1]                                          # the whole context every step
        logits.append(last)
        ids = np.concatenate([ids, [[int(last.argmax())]]], axis=1)
    return ids[0], np.array(logits)


def greedy_with_cache(gpt, first, n):
    ids, logits, cache = [first], [], {}
    for position in range(n):
        last = step_with_cache(gpt, ids[-1], position, cache)                   # one token per step
        logits.append(last)
        ids.append(int(last.argmax()))
    return np.array(ids), np.array(logits), cache


n_new = gpt.config.block_size - 1                # the longest run for which every cached entry stays valid
with no_grad():
    plain = measure(greedy_without_cache, gpt, 0, n_new, repeat=1)
    cached = measure(greedy_with_cache, gpt, 0, n_new, repeat=1)
(ids_plain, logits_plain), (ids_cached, logits_cached, cache) = plain.result, cached.result
print(f"{n_new} tokens without a cache: {plain.seconds:.3f} s; with a KV cache: {cached.seconds:.3f} s "
      f"({plain.seconds / cached.seconds:.1f}x faster)")
print(f"same tokens: {np.array_equal(ids_plain, ids_cached)}; largest logit difference "
      f"{np.abs(logits_plain - logits_cached).max():.1e}")
cfg = gpt.config
cache_bytes = sum(K.nbytes + V.nbytes for K, V in cache.values())
print(f"cache after {n_new} tokens: {format_bytes(cache_bytes)} = 2 (K, V) x {cfg.n_layer} layers x {n_new} tokens "
      f"x {cfg.n_embd} x 4 bytes = {format_bytes(2 * cfg.n_layer * n_new * cfg.n_embd * 4)}")
print(f"the same for GPT-2 small (12 layers, 768 dims) at 1,024 tokens: {format_bytes(2 * 12 * 1024 * 768 * 4)} per sequence")

# %% [markdown]
# The two runs produce the same tokens; the cached one processes
# `n` token-positions in all instead of about `n²/2`. On this small model the
# gain is bounded by the per-step Python overhead measured above; the cache
# costs `2 · layers · T · C` numbers per sequence, which for large models and
# long contexts is the memory that limits how many sequences a server can
# generate at once. Past `block_size`, with learned absolute positions, the
# window shifts and this cache would be wrong (see above).

# %% [markdown]
# ## Comparison with PyTorch
#
# Sampling with a seed cannot be compared draw for draw (different random
# generators), but the distribution can: our temperature/top-k probabilities
# against `torch.softmax(torch.topk(...))`.

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed("15_generation")

if torch is not None:
    logits = np.random.default_rng(0).standard_normal((1, 65)) * 3
    theirs = torch.from_numpy(logits) / 0.8
    v, _ = torch.topk(theirs, 5)
    theirs[theirs < v[:, [-1]]] = -float("inf")
    expected = torch.softmax(theirs, dim=-1).numpy()[0]
    draws = sample_next(np.repeat(logits, 20000, axis=0), 0.8, 5, np.random.default_rng(1))
    observed = np.bincount(draws, minlength=65) / len(draws)
    print("largest difference between sampled frequencies and torch's probabilities:",
          np.abs(observed - expected).max())

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** Generating `n` tokens without a cache and a context that keeps
# growing (no cropping): how does the total work grow with `n`? With a KV
# cache? What does the cache cost in memory for GPT-2 small (12 layers,
# C = 768) at 1,024 tokens, float32?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-generation-kv", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Without a cache step t processes t tokens: total ~ n²/2 token-passes (O(n²)),
# plus attention O(n³) overall. With a cache each step processes one token:
# O(n) passes (attention over the cache is O(t) per step, O(n²) total).
# Cache: 2 (K and V) × 12 × 1024 × 768 × 4 bytes ≈ 75 MB per sequence.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** Why does cropping the context to the last `block_size` tokens make a
# KV cache invalid for a model with learned absolute position embeddings?
# Which position scheme avoids this?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-generation-positions", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# After cropping, each kept token moves one position left, so its input
# (token + position embedding) and hence its keys/values at every layer
# change; cached values are stale. Relative schemes (RoPE, ALiBi) encode
# positions as offsets between query and key, so a rolling cache stays valid.
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** A character model has 65 outputs; GPT-2 has 50,257. Where does the
# time of one sampling step go in each case (model vs softmax and sampling),
# and what does top-k cost?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-generation-vocab", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# With 65 outputs sampling is negligible; the model's layers (and Python
# overhead) dominate. With 50k the LM head (C × V matmul, 38.6 M MACs per
# token) becomes a large share, and softmax/sort over 50k entries is
# noticeable. Top-k by partition is O(V), not a full O(V log V) sort.
# === END MARK SCHEME ===

# %% [markdown]
# **Q4.** What do temperature and top-k trade off? Why does temperature 0
# (greedy) often produce loops such as "the the the"?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-generation-temperature", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Lower temperature / smaller k: more likely, safer, more repetitive text;
# higher: more diverse, more errors. Greedy decoding is deterministic: once a
# context recurs, the same choices recur, and short high-probability cycles
# become self-reinforcing.
# === END MARK SCHEME ===

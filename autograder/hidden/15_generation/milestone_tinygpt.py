"""Milestone (after module 15): a small character-level GPT trained on Tiny Shakespeare with the
student's OWN tinytorch reaches a validation loss bound within a time limit.  The student's process
gets the first 90% of the text; the trained weights come back and the validation loss is measured
here, with the reference GPT, on the last 10%, which the student's process never receives."""
import numpy as np
from otter.test_files import test_case

from ttgrade import dataset, note, probe, reference, run_student

name = "15_generation milestone TinyGPT"
kind = "milestone"
stack = "own"
datasets = ["tinyshakespeare"]

CONFIG = {"block_size": 32, "n_layer": 2, "n_head": 2, "n_embd": 64}
ITERATIONS, BATCH, LEARNING_RATE = 300, 16, 3e-3
VAL_LOSS_BOUND = 2.6          # the reference reaches about 2.45; always guessing the most frequent letters gives 3.3
TIME_LIMIT = 240.0


@probe
def train_gpt(tt, vocabulary, train_text, config, iterations, batch, lr):
    from tinytorch.adam import AdamW
    from tinytorch.generation import CharTokenizer, get_batch
    from tinytorch.transformer import GPT, GPTConfig
    tokenizer = CharTokenizer(vocabulary)
    data = tokenizer.encode(train_text)
    tt.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, **config))
    optimizer = AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    generator = np.random.default_rng(0)
    for _ in range(iterations):
        x, y = get_batch(data, config["block_size"], batch, generator)
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {name: value for name, value in model.state_dict().items()}


@test_case(points=10)
def test_tinygpt_validation_loss():
    """A 2-layer, 64-wide character GPT trained 300 steps (AdamW) on your own tinytorch reaches validation loss < 2.6 within 240 s."""
    text = dataset("tinyshakespeare")
    split = int(len(text) * 0.9)
    vocabulary = "".join(sorted(set(text)))
    state, seconds = run_student(train_gpt, vocabulary, text[:split], CONFIG, ITERATIONS, BATCH, LEARNING_RATE,
                                 timeout=TIME_LIMIT)
    tt = reference()
    from tinytorch.generation import CharTokenizer, get_batch
    from tinytorch.transformer import GPT, GPTConfig
    tokenizer = CharTokenizer(vocabulary)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, **CONFIG))
    try:
        model.load_state_dict({k: np.asarray(v, dtype=np.float32) for k, v in state.items()})
    except Exception as error:  # noqa: BLE001
        raise AssertionError(f"the trained GPT's state_dict does not fit the milestone's GPT: {error}") from None
    model.eval()
    val, generator, losses = tokenizer.encode(text[split:]), np.random.default_rng(123), []
    with tt.no_grad():
        for _ in range(20):
            x, y = get_batch(val, CONFIG["block_size"], 32, generator)
            losses.append(float(model(x, y)[1].item()))
    val_loss = float(np.mean(losses))
    note(f"TinyGPT: validation loss {val_loss:.3f} after {ITERATIONS} steps in {seconds:.1f} s "
         f"(bound < {VAL_LOSS_BOUND}, limit {TIME_LIMIT:g} s)")
    assert val_loss < VAL_LOSS_BOUND, f"validation loss {val_loss:.3f} is not below {VAL_LOSS_BOUND}"

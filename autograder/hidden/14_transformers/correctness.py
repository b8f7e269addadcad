"""Module 14 (transformers), hidden correctness: embeddings with repeated ids, layer norm on large
values, dropout statistics, multi-head attention and a small GPT (logits, loss, gradients) with the
reference's initialisation."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "14_transformers correctness"
kind = "correctness"

R = np.random.default_rng(141)
X = (R.normal(size=(2, 5, 8)) * 100 + 1000).astype(np.float32)
IDS = np.array([[3, 3, 0, 6], [6, 1, 3, 3]])


@test_case(name="test_embedding_and_layer_norm", points=2)
@same_as_reference(X, IDS, rtol=1e-4, atol=1e-4)
@probe
def embedding_and_norm(tt, x, ids):
    """Embedding with repeated ids (gradients add) and layer norm of values near 1000 (stable), with gradients."""
    from tinytorch.transformer import Embedding, LayerNorm, layer_norm
    tt.manual_seed(14)
    embedding = Embedding(7, 8)
    e = embedding(ids)
    (e * e).sum().backward()
    xs = tt.Tensor(x, requires_grad=True)
    norm = LayerNorm(8)
    y = norm(xs)
    (y * tt.Tensor(np.arange(8, dtype=np.float32))).sum().backward()
    plain = layer_norm(tt.Tensor(x[0]), tt.Tensor(np.full(8, 2.0, np.float32)), tt.Tensor(np.ones(8, np.float32)), eps=1e-3)
    return {"embedding rows": e.data, "embedding gradient (repeated ids add)": embedding.weight.grad,
            "layer norm of values near 1000": y.data, "its input gradient": xs.grad, "its weight gradient": norm.weight.grad,
            "layer_norm with eps 1e-3": plain.data}


@test_case(name="test_dropout_statistics", points=1)
@same_as_reference()
@probe
def dropout(tt):
    """Dropout(0.3) drops 30% of a million values, scales the rest by 1/0.7, and is the identity in eval()."""
    from tinytorch.transformer import Dropout
    tt.manual_seed(15)
    layer = Dropout(0.3)
    x = tt.Tensor(np.ones((1000, 1000), np.float32))
    out = layer(x).data
    kept = out[out != 0]
    layer.eval()
    return {"share dropped (2 decimals)": round(float((out == 0).mean()), 2), "kept values are scaled by 1/(1-p)":
            bool(np.allclose(kept, 1 / 0.7)), "eval() is the identity": layer(x).data}


@test_case(name="test_multi_head_attention_and_a_small_gpt", points=3)
@same_as_reference(rtol=1e-4, atol=1e-5)
@probe
def attention_and_gpt(tt):
    """Causal multi-head attention (3 heads) with input gradients; a 2-layer GPT: logits, loss, tied-embedding gradient, names."""
    from tinytorch.transformer import GPT, GPTConfig, MultiHeadAttention
    tt.manual_seed(16)
    attention = MultiHeadAttention(12, 3)
    x = tt.Tensor(np.linspace(-1, 1, 2 * 5 * 12, dtype=np.float32).reshape(2, 5, 12), requires_grad=True)
    out = attention(x)
    (out * out).sum().backward()
    model = GPT(GPTConfig(vocab_size=11, block_size=6, n_layer=2, n_head=2, n_embd=8))
    ids = np.array([[1, 2, 3, 4, 5, 6], [0, 10, 0, 10, 9, 9]])
    logits, loss = model(ids[:, :5], ids[:, 1:])
    loss.backward()
    return {"attention output": out.data, "attention input gradient": x.grad, "GPT logits": logits.data,
            "GPT loss": loss.data, "gradient of the tied embedding": model.wte.weight.grad,
            "parameter names": [name for name, _ in model.named_parameters()]}

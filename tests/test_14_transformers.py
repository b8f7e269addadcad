"""Transformers (module 14): Embedding, LayerNorm, Dropout, multi-head attention, the block and GPT,
against PyTorch (weights copied into nanoGPT-style twins) and finite differences; gradient clipping."""
from __future__ import annotations

import numpy as np
import pytest

import tinytorch as tt
from bench.twins import load_into_torch, torch_gpt
from tinytorch.autograd import gradcheck
from tinytorch.transformer import (GPT, Dropout, Embedding, GPTConfig, LayerNorm, MultiHeadAttention,
                                   TransformerBlock, clip_grad_norm_, layer_norm)

SMALL = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16)


def _gpt(config=SMALL, seed=0, dtype=np.float64):
    tt.manual_seed(seed)
    model = GPT(config)
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    return model


@pytest.mark.torch
def test_gpt_parameters_have_nanogpt_names_and_shapes(torch):
    ours, theirs = _gpt(GPTConfig()), torch_gpt(torch, GPTConfig())
    assert {n: p.shape for n, p in ours.state_dict().items()} == \
           {n: tuple(p.shape) for n, p in theirs.state_dict().items()}
    # weight tying: one matrix, counted once, as torch's parameters() does
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())


@pytest.mark.torch
@pytest.mark.parametrize("T", [8, 5, 1])
def test_gpt_logits_loss_and_every_gradient_match_torch(torch, rng, T):
    ours = _gpt()
    theirs = torch_gpt(torch, SMALL).double()
    load_into_torch(torch, theirs, ours)
    ids, targets = rng.integers(0, 13, (3, T)), rng.integers(0, 13, (3, T))
    logits, loss = ours(ids, targets)
    ref_logits, ref_loss = theirs(torch.from_numpy(ids), torch.from_numpy(targets))
    np.testing.assert_allclose(logits.data, ref_logits.detach().numpy(), rtol=1e-9, atol=1e-9)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-10)
    loss.backward()
    ref_loss.backward()
    ours_by_name = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():       # the tied wte/lm_head gradient is the sum of both uses
        np.testing.assert_allclose(ours_by_name[name].grad, p.grad.numpy(), rtol=1e-7, atol=1e-10, err_msg=name)


@pytest.mark.torch
def test_float32_gpt_matches_torch_to_float32_precision(torch, rng):
    ours = _gpt(GPTConfig(), dtype=np.float32)
    theirs = torch_gpt(torch, GPTConfig())
    load_into_torch(torch, theirs, ours)
    ids = rng.integers(0, 65, (4, 64))
    logits, loss = ours(ids, ids)
    ref_logits, ref_loss = theirs(torch.from_numpy(ids), torch.from_numpy(ids))
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits.data, ref_logits.detach().numpy(), atol=2e-5)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)


@pytest.mark.torch
def test_layer_norm_and_embedding_match_torch(torch, rng):
    x = rng.standard_normal((2, 5, 6)) * 3 + 1
    ln = LayerNorm(6)
    ln.weight.data, ln.bias.data = rng.standard_normal(6), rng.standard_normal(6)
    ref = torch.nn.LayerNorm(6).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(ln.weight.data)), ref.bias.copy_(torch.from_numpy(ln.bias.data))
    ours_x, theirs_x = tt.Tensor(x, requires_grad=True, dtype=np.float64), torch.tensor(x, requires_grad=True)
    out, expected = ln(ours_x), ref(theirs_x)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-9, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    expected.backward(torch.from_numpy(g))
    np.testing.assert_allclose(ours_x.grad, theirs_x.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ln.weight.grad, ref.weight.grad.numpy(), rtol=1e-8)

    emb = Embedding(7, 3)
    ids = np.array([[1, 6, 1], [0, 1, 2]])
    ref_emb = torch.nn.Embedding(7, 3)
    with torch.no_grad():
        ref_emb.weight.copy_(torch.from_numpy(emb.weight.data))
    g = rng.standard_normal((2, 3, 3)).astype(np.float32)
    emb(ids).backward(g)
    ref_emb(torch.from_numpy(ids)).backward(torch.from_numpy(g))
    np.testing.assert_allclose(emb.weight.grad, ref_emb.weight.grad.numpy(), rtol=1e-6)


@pytest.mark.torch
def test_layer_norm_is_one_float32_node_matching_torch(torch, rng):
    """On the milestone's (12, 64, 128) activations in float32: one graph node, float32 values and gradients
    within float32 precision of PyTorch's, also when only some of its inputs need a gradient."""
    ln = LayerNorm(128)
    ln.weight.data = rng.standard_normal(128).astype(np.float32)
    ln.bias.data = rng.standard_normal(128).astype(np.float32)
    ref = torch.nn.LayerNorm(128)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(ln.weight.data)), ref.bias.copy_(torch.from_numpy(ln.bias.data))
    x = (rng.standard_normal((12, 64, 128)) * 3 + 1).astype(np.float32)
    g = rng.standard_normal((12, 64, 128)).astype(np.float32)
    theirs_x = torch.from_numpy(x).requires_grad_()
    expected = ref(theirs_x)
    expected.backward(torch.from_numpy(g))
    for x_needs_grad, weight_needs_grad in ((True, True), (True, False), (False, True)):
        ln.weight.grad = ln.bias.grad = None
        ln.weight.requires_grad = weight_needs_grad
        ours_x = tt.Tensor(x, requires_grad=x_needs_grad)
        out = ln(ours_x)
        assert out._op == "layer_norm" and out._parents == (ours_x, ln.weight, ln.bias)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.data, expected.detach().numpy(), atol=1e-5)
        out.backward(g)
        if x_needs_grad:
            assert ours_x.grad.dtype == np.float32
            np.testing.assert_allclose(ours_x.grad, theirs_x.grad.numpy(), atol=5e-5)
        assert (ln.weight.grad is not None) == weight_needs_grad
        if weight_needs_grad:
            assert ln.weight.grad.dtype == np.float32
            np.testing.assert_allclose(ln.weight.grad, ref.weight.grad.numpy(), rtol=1e-4, atol=1e-3)
        assert ln.bias.grad.dtype == np.float32
        np.testing.assert_allclose(ln.bias.grad, ref.bias.grad.numpy(), rtol=1e-4, atol=1e-3)


def test_layer_norm_names_integer_inputs():
    with pytest.raises(TypeError, match="floating-point inputs, got dtype int64"):
        LayerNorm(3)(tt.Tensor(np.arange(6).reshape(2, 3)))


def test_block_and_attention_gradients_match_finite_differences(rng):
    tt.manual_seed(4)
    block = TransformerBlock(8, 2)
    for p in block.parameters():
        p.data = p.data.astype(np.float64)
    x = tt.Tensor(rng.standard_normal((2, 3, 8)), requires_grad=True, dtype=np.float64)
    w = block.attn.c_attn.weight
    gradcheck(lambda x, w: block(x).tanh(), [x, w])
    weight, bias = (tt.Tensor(rng.standard_normal(8), requires_grad=True, dtype=np.float64) for _ in range(2))
    gradcheck(lambda x, weight, bias: layer_norm(x, weight, bias), [x, weight, bias])


def test_heads_are_computed_in_one_batched_call(rng, monkeypatch):
    """No Python loop over heads: attention runs once, on (B, H, T, d)."""
    import tinytorch.transformer as transformer_module
    tt.manual_seed(5)
    mha = MultiHeadAttention(8, 2)
    real, calls = transformer_module.scaled_dot_product_attention, []
    monkeypatch.setattr(transformer_module, "scaled_dot_product_attention",
                        lambda q, *rest: calls.append(q.shape) or real(q, *rest))
    mha(tt.Tensor(rng.standard_normal((1, 4, 8)).astype(np.float32)))
    assert calls == [(1, 2, 4, 4)]


def test_dropout_is_seeded_scaled_and_off_in_eval():
    x = tt.Tensor(np.ones((50, 40), dtype=np.float32), requires_grad=True)
    tt.manual_seed(1)
    a = Dropout(0.5)(x).data
    tt.manual_seed(1)
    b = Dropout(0.5)(x).data
    assert np.array_equal(a, b) and set(np.unique(a)) == {0.0, 2.0}
    drop = Dropout(0.5)
    out = drop(x)
    out.sum().backward()
    assert np.array_equal(x.grad, out.data)   # gradient flows only through kept elements, scaled alike
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4, dropout=0.5)).eval()
    ids = np.array([[1, 2, 3]])
    assert np.array_equal(model(ids)[0].data, model(ids)[0].data)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)


@pytest.mark.torch
def test_clip_grad_norm_matches_torch(torch, rng):
    grads = [rng.standard_normal(s) for s in ((3, 4), (5,), (2, 2, 2))]
    ours = [tt.Tensor(np.zeros_like(g), requires_grad=True, dtype=np.float64) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for o, t, g in zip(ours, theirs, grads):
        o.grad, t.grad = g.copy(), torch.from_numpy(g.copy())
    for max_norm in (0.5, 100.0):
        assert clip_grad_norm_(ours, max_norm) == pytest.approx(float(torch.nn.utils.clip_grad_norm_(theirs, max_norm)))
        for o, t in zip(ours, theirs):
            np.testing.assert_allclose(o.grad, t.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(ours, 0)


@pytest.mark.parametrize("call,error,message", [
    (lambda m: m(np.zeros((2, 9), dtype=np.int64)), ValueError, "longer than block_size=8"),
    (lambda m: m(np.zeros(4, dtype=np.int64)), ValueError, r"\(B, T\)"),
    (lambda m: m(np.zeros((2, 4), dtype=np.int64), np.zeros((2, 3), dtype=np.int64)), ValueError, "targets"),
    (lambda m: m(np.full((1, 2), 13)), IndexError, r"\[0, 13\)"),
    (lambda m: m(np.zeros((1, 2))), TypeError, "integer ids"),
])
def test_gpt_rejects_bad_inputs_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call(_gpt(dtype=np.float32))


def test_gpt_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPTConfig(n_embd=10, n_head=4)
    with pytest.raises(ValueError, match="n_layer"):
        GPTConfig(n_layer=0)


def test_the_causal_mask_is_built_once_per_length_and_read_only():
    from tinytorch.attention import causal_mask
    from tinytorch.transformer import shared_causal_mask
    mask = shared_causal_mask(7)
    assert mask is shared_causal_mask(7) and np.array_equal(mask, causal_mask(7))
    with pytest.raises(ValueError, match="read-only"):
        mask[0, 1] = True                             # a shared mask must not be changed by one of its users


@pytest.mark.parametrize("shape, n_head", [((2, 5), 1), ((2, 5, 12, 1), 1), ((2, 5, 12), 0), ((2, 5, 10), 2)])
def test_fused_attention_names_a_bad_shape_or_head_count(shape, n_head):
    from tinytorch.transformer import fused_attention
    with pytest.raises(ValueError, match="fused_attention"):
        fused_attention(np.zeros(shape, np.float32), n_head)

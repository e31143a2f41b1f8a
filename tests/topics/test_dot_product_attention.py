"""Oracle tests of the dot-product-attention kernels: PyTorch built-ins in float64
(F.scaled_dot_product_attention, nn.MultiheadAttention with copied weights, nn.Linear,
torch.softmax, the causal-bias helpers) and torch.autograd.gradcheck for the backward."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right, causal_upper_left

from solutions.kernels import dot_product_attention as K

SEEDS = range(5)
f64 = torch.float64


def randn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=f64)


def gen(seed):
    return torch.Generator().manual_seed(1000 + seed)


def sizes(g, n, lo=1, hi=6):
    return [int(x) for x in torch.randint(lo, hi + 1, (n,), generator=g)]


def rand_mask(g, Lq, Lk, p=0.6):
    """Bool mask (True = may attend) with at least one True per row."""
    m = torch.rand(Lq, Lk, generator=g) < p
    m[torch.arange(Lq), torch.randint(0, Lk, (Lq,), generator=g)] = True
    return m


# ------------------------------------------------------------------------------ basic

@pytest.mark.parametrize("seed", SEEDS)
def test_attend_loop_matches_sdpa_for_one_query(seed):
    g = gen(seed)
    n, d_k, d_v = sizes(g, 3, 1, 7)
    q, Km, V = randn(g, d_k), randn(g, n, d_k), randn(g, n, d_v)
    ctx, w = K.attend_loop(q.numpy(), Km.numpy(), V.numpy())
    ref = F.scaled_dot_product_attention(q[None], Km, V)[0]
    ref_w = torch.softmax(Km @ q / math.sqrt(d_k), dim=0)
    np.testing.assert_allclose(ctx, ref.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w, ref_w.numpy(), rtol=1e-10, atol=1e-12)
    assert ctx.shape == (d_v,) and w.shape == (n,) and ctx.dtype == np.float64


@pytest.mark.parametrize("seed", SEEDS)
def test_attend_matches_sdpa_and_the_loop(seed):
    g = gen(seed)
    B, m, n, d_k, d_v = sizes(g, 5, 1, 6)
    Q, Km, V = randn(g, B, m, d_k), randn(g, B, n, d_k), randn(g, B, n, d_v)
    ctx, w = K.attend(Q.numpy(), Km.numpy(), V.numpy())
    np.testing.assert_allclose(ctx, F.scaled_dot_product_attention(Q, Km, V).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w, torch.softmax(Q @ Km.mT / math.sqrt(d_k), -1).numpy(), rtol=1e-10, atol=1e-12)
    c0, w0 = K.attend_loop(Q[0, 0].numpy(), Km[0].numpy(), V[0].numpy())
    np.testing.assert_allclose(ctx[0, 0], c0, rtol=1e-10, atol=1e-12)


def test_basic_kernels_survive_huge_logits_and_keep_float32():
    q = np.array([1000.0, 3.0, 0.0, 0.0])
    Km = np.array([[2.0, 0.0, 0.0, 0.0], [1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    V = np.eye(3)
    for ctx, w in (K.attend_loop(q, Km, V), K.attend(q[None], Km, V)):
        assert np.all(np.isfinite(ctx)) and np.all(np.isfinite(w))
        np.testing.assert_allclose(np.ravel(w), [1.0, 0.0, 0.0], atol=1e-12)
    c, w = K.attend_loop(q.astype(np.float32), Km.astype(np.float32), V.astype(np.float32))
    assert c.dtype == np.float32 and w.dtype == np.float32


# ------------------------------------------------------------------------ intermediate

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mask_kind", ["none", "bool", "bool-broadcast", "additive"])
@pytest.mark.parametrize("scale", [None, 0.37])
def test_sdpa_equals_torch_sdpa(seed, mask_kind, scale):
    g = gen(seed)
    B, H, Lq, Lk, d_k, d_v = sizes(g, 6, 1, 6)
    q, k, v = randn(g, B, H, Lq, d_k), randn(g, B, H, Lk, d_k), randn(g, B, H, Lk, d_v)
    mask = None
    if mask_kind == "bool":
        mask = rand_mask(g, Lq, Lk)
    elif mask_kind == "bool-broadcast":  # key padding mask (B, 1, 1, Lk)
        lens = torch.randint(1, Lk + 1, (B, 1), generator=g)
        mask = (torch.arange(Lk)[None] < lens)[:, None, None, :]
    elif mask_kind == "additive":
        mask = randn(g, Lq, Lk).masked_fill(~rand_mask(g, Lq, Lk), float("-inf"))
    got = K.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)


def test_sdpa_float32_is_float32_and_close_to_float64():
    g = gen(7)
    q, k, v = randn(g, 2, 3, 4, 5), randn(g, 2, 3, 6, 5), randn(g, 2, 3, 6, 2)
    m = rand_mask(g, 4, 6)
    got = K.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=m)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), F.scaled_dot_product_attention(q, k, v, attn_mask=m),
                               rtol=1e-4, atol=1e-5)


def test_fully_masked_rows_give_zero_like_sdpa_while_mha_gives_nan():
    """The project's convention: no key to attend to -> output 0 (SDPA agrees, MHA does not)."""
    g = gen(11)
    q, k, v = randn(g, 1, 1, 3, 4), randn(g, 1, 1, 5, 4), randn(g, 1, 1, 5, 3)
    m = rand_mask(g, 3, 5)
    m[1] = False
    additive = torch.zeros(3, 5, dtype=f64).masked_fill(~m, float("-inf"))
    for mask in (m, additive):
        got = K.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        torch.testing.assert_close(got, F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                                   rtol=1e-10, atol=1e-12)
        assert torch.all(got[0, 0, 1] == 0) and torch.all(torch.isfinite(got))
    mha = torch.nn.MultiheadAttention(4, 2, batch_first=True, dtype=f64)
    x = randn(g, 2, 3, 4)
    kpm = torch.tensor([[False, False, True], [True, True, True]])  # MHA: True = IGNORE
    out = mha(x, x, x, key_padding_mask=kpm)[0]  # need_weights=True (default): explicit softmax
    assert torch.isnan(out[1]).all() and torch.isfinite(out[0]).all()
    out = mha(x, x, x, key_padding_mask=kpm, need_weights=False)[0]  # routed through SDPA
    assert torch.all(out[1] == mha.out_proj.bias)  # zero attention output, plus the output bias


@pytest.mark.parametrize("seed", SEEDS)
def test_sdpa_inside_multihead_attention_equals_nn_multiheadattention(seed):
    """nn.MultiheadAttention with its weights copied out, heads split by hand, and our SDPA."""
    g = gen(seed)
    E, H, B, Lq, Lk = 6, 3, 2, 4, 5
    torch.manual_seed(seed)
    mha = torch.nn.MultiheadAttention(E, H, batch_first=True, dtype=f64)
    x, mem = randn(g, B, Lq, E), randn(g, B, Lk, E)
    kpm = torch.zeros(B, Lk, dtype=torch.bool)
    kpm[1, -2:] = True  # MHA's key_padding_mask: True = padding
    ref = mha(x, mem, mem, key_padding_mask=kpm, need_weights=False)[0]
    Wq, Wk, Wv = mha.in_proj_weight.chunk(3)
    bq, bk, bv = mha.in_proj_bias.chunk(3)

    def heads(t):  # (B, L, E) -> (B, H, L, E/H)
        return t.view(t.shape[0], t.shape[1], H, E // H).transpose(1, 2)

    o = K.scaled_dot_product_attention(heads(x @ Wq.T + bq), heads(mem @ Wk.T + bk),
                                       heads(mem @ Wv.T + bv), attn_mask=~kpm[:, None, None, :])
    got = mha.out_proj(o.transpose(1, 2).reshape(B, Lq, E))
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)


def _additive_oracle(q, k, v, valid_lens, W_q, W_k, w_v):
    """nn.Linear layers with the weights copied in, one batch at a time, softmax over the
    real keys only."""
    h, d_q = W_q.shape
    lq = torch.nn.Linear(d_q, h, bias=False, dtype=f64)
    lk = torch.nn.Linear(W_k.shape[1], h, bias=False, dtype=f64)
    lv = torch.nn.Linear(h, 1, bias=False, dtype=f64)
    with torch.no_grad():
        lq.weight.copy_(W_q), lk.weight.copy_(W_k), lv.weight.copy_(w_v[None])
        B, Lq, Lk = q.shape[0], q.shape[1], k.shape[1]
        ctx, wts = torch.zeros(B, Lq, v.shape[2], dtype=f64), torch.zeros(B, Lq, Lk, dtype=f64)
        for b in range(B):
            n = Lk if valid_lens is None else int(valid_lens[b])
            if n == 0:
                continue
            for i in range(Lq):
                e = lv(torch.tanh(lq(q[b, i])[None] + lk(k[b, :n])))[:, 0]  # (n,)
                wts[b, i, :n] = torch.softmax(e, 0)
                ctx[b, i] = wts[b, i, :n] @ v[b, :n]
    return ctx, wts


@pytest.mark.parametrize("seed", SEEDS)
def test_additive_attention_matches_linear_layers(seed):
    g = gen(seed)
    B, Lq, d_q, d_k, d_v, h = sizes(g, 6, 1, 5)
    Lk = sizes(g, 1, 2, 6)[0]
    q, k, v = randn(g, B, Lq, d_q), randn(g, B, Lk, d_k), randn(g, B, Lk, d_v)
    W_q, W_k, w_v = randn(g, h, d_q), randn(g, h, d_k), randn(g, h)
    lens = torch.randint(0, Lk + 1, (B,), generator=g)
    for vl in (lens, None):
        ctx, w = K.additive_attention(q, k, v, vl, W_q, W_k, w_v)
        rctx, rw = _additive_oracle(q, k, v, vl, W_q, W_k, w_v)
        torch.testing.assert_close(ctx, rctx, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(w, rw, rtol=1e-10, atol=1e-12)
        sums = w.sum(-1)
        expect = torch.ones(B, Lq, dtype=f64) if vl is None else (vl > 0).to(f64)[:, None].expand(B, Lq)
        torch.testing.assert_close(sums, expect)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", [None, 1.0, 0.5])
def test_score_stats_match_torch(seed, scale):
    g = gen(seed)
    m, n = sizes(g, 2, 2, 8)
    d_k = [4, 16, 64][seed % 3]
    q, k = randn(g, m, d_k), randn(g, n, d_k)
    out = K.score_stats(q.numpy(), k.numpy(), scale)
    assert out.shape == (2,) and out.dtype == np.float64
    var, top = out
    c = 1 / math.sqrt(d_k) if scale is None else scale
    S = c * q @ k.T
    assert var == pytest.approx(S.var(unbiased=False).item(), rel=1e-10)
    assert top == pytest.approx(torch.softmax(S, 1).max(1).values.mean().item(), rel=1e-10)


def test_unscaled_logit_variance_grows_like_d_k_and_scaling_fixes_it():
    """Vaswani et al. footnote 4, measured: Var(q . k) ~= d_k, Var(q . k / sqrt(d_k)) ~= 1,
    and the unscaled softmax saturates (top weight -> 1) as d_k grows."""
    g = gen(3)
    tops = []
    for d_k in (4, 64, 512):
        q, k = randn(g, 200, d_k), randn(g, 200, d_k)
        v_raw, top_raw = K.score_stats(q.numpy(), k.numpy(), 1.0)
        v_s, _ = K.score_stats(q.numpy(), k.numpy())
        assert v_raw == pytest.approx(d_k, rel=0.1)
        assert v_s == pytest.approx(1.0, rel=0.1)
        tops.append(top_raw)
    assert tops[0] < tops[1] < tops[2] and tops[2] > 0.7


# ---------------------------------------------------------------------------- advanced

class _SDPA(torch.autograd.Function):
    """Forward by our kernel, backward by our hand-written gradients (for gradcheck)."""

    @staticmethod
    def forward(ctx, q, k, v, mask, scale):
        ctx.save_for_backward(q, k, v)
        ctx.mask, ctx.scale = mask, scale
        return K.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)

    @staticmethod
    def backward(ctx, d_out):
        q, k, v = ctx.saved_tensors
        return (*K.sdpa_backward(q, k, v, d_out, attn_mask=ctx.mask, scale=ctx.scale), None, None)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("scale", [None, 0.8])
def test_backward_matches_autograd_of_torch_sdpa(seed, masked, scale):
    g = gen(seed)
    B, H, Lq, Lk, d_k, d_v = sizes(g, 6, 1, 5)
    q, k, v = (randn(g, B, H, L, d).requires_grad_() for L, d in ((Lq, d_k), (Lk, d_k), (Lk, d_v)))
    d_out = randn(g, B, H, Lq, d_v)
    mask = rand_mask(g, Lq, Lk, 0.5) if masked else None
    F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale).backward(d_out)
    got = K.sdpa_backward(q.detach(), k.detach(), v.detach(), d_out, attn_mask=mask, scale=scale)
    for a, b in zip(got, (q.grad, k.grad, v.grad)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_backward_passes_gradcheck(seed):
    g = gen(seed)
    q, k, v = (randn(g, 2, L, d).requires_grad_() for L, d in ((3, 4), (5, 4), (5, 2)))
    mask = rand_mask(g, 3, 5, 0.5)
    for m, s in ((None, None), (mask, 0.6)):
        assert torch.autograd.gradcheck(lambda a, b, c: _SDPA.apply(a, b, c, m, s), (q, k, v))


@pytest.mark.filterwarnings("ignore:Lower right causal bias")
@pytest.mark.parametrize("Lq,Lk", [(1, 1), (3, 5), (4, 4), (1, 7), (5, 3), (6, 2)])
def test_causal_mask_alignments_match_torch_bias_helpers(Lq, Lk):
    tl, br = K.causal_mask(Lq, Lk, "top-left"), K.causal_mask(Lq, Lk, "bottom-right")
    assert tl.dtype == torch.bool and tl.shape == (Lq, Lk)
    assert torch.equal(tl, causal_upper_left(Lq, Lk)._materialize())
    assert torch.equal(br, causal_lower_right(Lq, Lk)._materialize())
    assert torch.equal(K.causal_mask(Lq, Lk), br)  # the default is the decoder's alignment
    if Lq == Lk:
        assert torch.equal(tl, br)


def test_top_left_is_what_sdpa_is_causal_uses():
    g = gen(5)
    q, k, v = randn(g, 1, 3, 4), randn(g, 1, 6, 4), randn(g, 1, 6, 2)
    torch.testing.assert_close(K.scaled_dot_product_attention(q, k, v, attn_mask=K.causal_mask(3, 6, "top-left")),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True), rtol=1e-10, atol=1e-12)


def test_causal_mask_rejects_unknown_alignment():
    with pytest.raises(ValueError, match="align"):
        K.causal_mask(2, 3, "centre")


@pytest.mark.parametrize("seed", SEEDS)
def test_cached_attention_equals_the_last_rows_of_full_causal_attention(seed):
    g = gen(seed)
    B, H, d = 2, 2, 4
    Lk = sizes(g, 1, 2, 8)[0]
    Lq = sizes(g, 1, 1, Lk)[0]
    x_q, k, v = randn(g, B, H, Lk, d), randn(g, B, H, Lk, d), randn(g, B, H, Lk, d)
    full = F.scaled_dot_product_attention(x_q, k, v, is_causal=True)  # one pass over everything
    got = K.cached_causal_attention(x_q[..., -Lq:, :], k, v)
    torch.testing.assert_close(got, full[..., -Lq:, :], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got, F.scaled_dot_product_attention(
        x_q[..., -Lq:, :], k, v, attn_mask=causal_lower_right(Lq, Lk)), rtol=1e-10, atol=1e-12)
    steps = torch.cat([K.cached_causal_attention(x_q[..., t:t + 1, :], k[..., :t + 1, :], v[..., :t + 1, :])
                       for t in range(Lk)], dim=-2)  # token-by-token decoding with a growing cache
    torch.testing.assert_close(steps, full, rtol=1e-10, atol=1e-12)

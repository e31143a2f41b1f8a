"""Oracle tests of the multi-head attention reference kernels, all in float64.

Oracles: explicit slicing and torch.cat (split/merge), F.scaled_dot_product_attention
(attention, grouped-query attention with enable_gqa), nn.MultiheadAttention with the same
weights copied in (forward, cross-attention with kdim/vdim, head gates), parameter counts of
nn.MultiheadAttention and torch's FlopCounterMode (cost), and torch.autograd.gradcheck.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from solutions.kernels import multi_head_attention as K

D = torch.float64


def rand(g, *shape, scale=1.0):
    return scale * torch.randn(*shape, generator=g, dtype=D)


def weights(g, E, kdim=None, vdim=None):
    """W_q, W_k, W_v, W_o (out, in) ~ N(0, 1/in) and biases ~ N(0, 0.25)."""
    Ws = [rand(g, E, i) / math.sqrt(i) for i in (E, kdim or E, vdim or E, E)]
    bs = [rand(g, E, scale=0.5) for _ in range(4)]
    return Ws, bs


def torch_mha(E, H, Ws, bs, batch_first=True, kdim=None, vdim=None, bias=True):
    """nn.MultiheadAttention in float64 holding exactly the given weights."""
    m = torch.nn.MultiheadAttention(E, H, batch_first=batch_first, kdim=kdim, vdim=vdim, bias=bias, dtype=D)
    W_q, W_k, W_v, W_o = Ws
    with torch.no_grad():
        if m._qkv_same_embed_dim:
            m.in_proj_weight.copy_(torch.cat([W_q, W_k, W_v]))
        else:
            m.q_proj_weight.copy_(W_q), m.k_proj_weight.copy_(W_k), m.v_proj_weight.copy_(W_v)
        m.out_proj.weight.copy_(W_o)
        if bias:
            m.in_proj_bias.copy_(torch.cat(bs[:3]))
            m.out_proj.bias.copy_(bs[3])
    return m.eval()


def padding(g, B, Lk):
    """(B, Lk) bool, True = padded; each row keeps at least one key."""
    keep = torch.randint(1, Lk + 1, (B,), generator=g)
    return torch.arange(Lk)[None, :] >= keep[:, None]


# ----------------------------------------------------------------------------- basic


@pytest.mark.parametrize("B,L,H,d", [(1, 1, 1, 1), (2, 3, 4, 5), (3, 7, 2, 3), (2, 5, 6, 1)])
def test_split_heads_matches_slicing_and_merge_inverts_it(B, L, H, d):
    g = torch.Generator().manual_seed(B * 100 + L * 10 + H)
    x = rand(g, B, L, H * d)
    s = K.split_heads(x, H)
    assert s.shape == (B, H, L, d)
    for h in range(H):  # oracle: head h is the feature block h*d:(h+1)*d
        torch.testing.assert_close(s[:, h], x[..., h * d:(h + 1) * d], rtol=0, atol=0)
    torch.testing.assert_close(K.merge_heads(s), x, rtol=0, atol=0)
    torch.testing.assert_close(K.merge_heads(s), torch.cat([s[:, h] for h in range(H)], dim=-1), rtol=0, atol=0)


def test_split_heads_rejects_indivisible_width():
    with pytest.raises(ValueError):
        K.split_heads(torch.zeros(1, 2, 5), 2)


# ----------------------------------------------------------------------------- intermediate: attention


@pytest.mark.parametrize("mask_kind", [None, "padding", "causal", "random"])
def test_attention_matches_sdpa(mask_kind):
    g = torch.Generator().manual_seed(7)
    B, H, Lq, Lk, d = 2, 3, 4, 5, 8
    q, k, v = rand(g, B, H, Lq, d, scale=1.5), rand(g, B, H, Lk, d), rand(g, B, H, Lk, 3)
    mask = {None: None, "padding": padding(g, B, Lk)[:, None, None, :],
            "causal": torch.ones(Lq, Lk, dtype=torch.bool).triu(1),
            "random": torch.rand(B, H, Lq, Lk, generator=g) < 0.3}[mask_kind]
    out, w = K.attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else ~mask)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w @ v, out, rtol=1e-12, atol=1e-12)
    live = ~mask.expand_as(w).all(-1) if mask is not None else torch.ones(w.shape[:-1], dtype=torch.bool)
    torch.testing.assert_close(w.sum(-1)[live], torch.ones_like(w.sum(-1)[live]))
    if mask is not None:
        assert (w[mask.expand_as(w)] == 0).all()


def test_attention_fully_masked_row_is_zero_like_sdpa():
    """The course's convention: a query with no allowed key gets weights 0 and output 0.
    F.scaled_dot_product_attention agrees; nn.MultiheadAttention would give NaN."""
    g = torch.Generator().manual_seed(3)
    q, k, v = rand(g, 1, 2, 3, 4), rand(g, 1, 2, 5, 4), rand(g, 1, 2, 5, 2)
    mask = torch.zeros(1, 2, 3, 5, dtype=torch.bool)
    mask[0, 1, 2] = True
    out, w = K.attention(q, k, v, mask)
    assert not out.isnan().any() and (out[0, 1, 2] == 0).all() and (w[0, 1, 2] == 0).all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=~mask))


def test_attention_is_scaled_by_sqrt_d_k():
    """Guards against a test input that cannot tell scaled from unscaled attention."""
    g = torch.Generator().manual_seed(11)
    q, k, v = rand(g, 1, 1, 3, 16), rand(g, 1, 1, 4, 16), rand(g, 1, 1, 4, 2)
    scaled, _ = K.attention(q, k, v)
    unscaled = F.scaled_dot_product_attention(q, k, v, scale=1.0)
    assert (scaled - unscaled).abs().max() > 1e-2


# ----------------------------------------------------------------------------- intermediate: forward


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("average", [True, False])
@pytest.mark.parametrize("masks", ["none", "padding", "causal+padding"])
def test_forward_matches_nn_multihead_attention(batch_first, average, masks):
    g = torch.Generator().manual_seed(2024)
    B, Lq, Lk, H, d = 3, 4, 4 if "causal" in masks else 6, 2, 3
    E = H * d
    Ws, bs = weights(g, E)
    q, k, v = rand(g, B, Lq, E), rand(g, B, Lk, E), rand(g, B, Lk, E)
    kpm = padding(g, B, Lk) if "padding" in masks else None
    am = torch.ones(Lq, Lk, dtype=torch.bool).triu(1) if "causal" in masks else None
    if not batch_first:
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
    out, w = K.multi_head_attention(q, k, v, H, *Ws, *bs, key_padding_mask=kpm, attn_mask=am,
                                    batch_first=batch_first, average_attn_weights=average)
    ref_out, ref_w = torch_mha(E, H, Ws, bs, batch_first)(q, k, v, key_padding_mask=kpm, attn_mask=am,
                                                         need_weights=True, average_attn_weights=average)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w, ref_w, rtol=1e-10, atol=1e-12)


def test_forward_fully_padded_element_gives_output_bias_where_torch_gives_nan():
    g = torch.Generator().manual_seed(5)
    B, L, H, d = 2, 3, 2, 2
    E = H * d
    Ws, bs = weights(g, E)
    x = rand(g, B, L, E)
    kpm = torch.zeros(B, L, dtype=torch.bool)
    kpm[1] = True
    out, w = K.multi_head_attention(x, x, x, H, *Ws, *bs, key_padding_mask=kpm)
    ref_out, ref_w = torch_mha(E, H, Ws, bs)(x, x, x, key_padding_mask=kpm)
    assert ref_out[1].isnan().all()  # the documented disagreement: torch returns NaN ...
    torch.testing.assert_close(out[1], bs[3].expand(L, E))  # ... the course returns b_o
    assert (w[1] == 0).all()
    torch.testing.assert_close(out[0], ref_out[0], rtol=1e-10, atol=1e-12)


def test_forward_gradcheck():
    g = torch.Generator().manual_seed(9)
    Ws, bs = weights(g, 4)
    x = rand(g, 2, 3, 4).requires_grad_()
    W_q = Ws[0].clone().requires_grad_()
    kpm = torch.tensor([[False, False, True], [False, False, False]])
    assert torch.autograd.gradcheck(
        lambda x, W_q: K.multi_head_attention(x, x, x, 2, W_q, *Ws[1:], *bs, key_padding_mask=kpm)[0],
        (x, W_q))


@pytest.mark.parametrize("E,H,Lq,Lk,B", [(8, 2, 3, 5, 2), (12, 3, 4, 4, 1), (16, 8, 1, 7, 3)])
def test_cost_matches_parameter_count_and_flop_counter(E, H, Lq, Lk, B):
    cost = K.mha_cost(E, H, Lq, Lk, batch=B)
    params, flops = cost["params"], cost["flops"]
    assert params == sum(p.numel() for p in torch.nn.MultiheadAttention(E, H).parameters())
    g = torch.Generator().manual_seed(E)
    Ws, bs = weights(g, E)
    with FlopCounterMode(display=False) as counter:
        torch_mha(E, H, Ws, bs)(rand(g, B, Lq, E), rand(g, B, Lk, E), rand(g, B, Lk, E), need_weights=True)
    assert flops == counter.get_total_flops()
    assert K.mha_cost(E, 1, Lq, Lk, batch=B) == cost  # heads change neither


def test_cost_rejects_indivisible_heads():
    with pytest.raises(ValueError):
        K.mha_cost(10, 3, 2, 2)


# ----------------------------------------------------------------------------- advanced


@pytest.mark.parametrize("kdim,vdim", [(5, 3), (10, 10), (6, 6)])
def test_cross_attention_matches_nn_multihead_attention_with_kdim_vdim(kdim, vdim):
    g = torch.Generator().manual_seed(kdim * 10 + vdim)
    B, Lq, Lk, H, d = 2, 3, 5, 3, 2
    E = H * d
    Ws, bs = weights(g, E, kdim, vdim)
    x, key, value = rand(g, B, Lq, E), rand(g, B, Lk, kdim), rand(g, B, Lk, vdim)
    kpm = padding(g, B, Lk)
    out, w = K.cross_attention(x, key, value, H, *Ws, *bs, key_padding_mask=kpm)
    m = torch_mha(E, H, Ws, bs, kdim=kdim, vdim=vdim)
    ref_out, ref_w = m(x, key, value, key_padding_mask=kpm, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w, ref_w, rtol=1e-10, atol=1e-12)


def test_cross_attention_fully_padded_row_gives_output_bias():
    g = torch.Generator().manual_seed(1)
    Ws, bs = weights(g, 4, 3, 5)
    kpm = torch.tensor([[True, True], [False, True]])
    out, w = K.cross_attention(rand(g, 2, 3, 4), rand(g, 2, 2, 3), rand(g, 2, 2, 5), 2, *Ws, *bs,
                               key_padding_mask=kpm)
    torch.testing.assert_close(out[0], bs[3].expand(3, 4))
    assert (w[0] == 0).all() and not out.isnan().any()


def gqa_inputs(g, B, Lq, Lk, H, G, d):
    E = H * d
    x_kv = rand(g, B, Lk, E)
    W_q, W_o = rand(g, E, E) / math.sqrt(E), rand(g, E, E) / math.sqrt(E)
    W_k, W_v = rand(g, G * d, E) / math.sqrt(E), rand(g, G * d, E) / math.sqrt(E)
    return x_kv, W_q, W_k, W_v, W_o


@pytest.mark.parametrize("B,Lq,Lk,H,G,d", [(2, 5, 5, 4, 2, 3), (1, 3, 7, 6, 3, 2), (2, 1, 6, 4, 1, 3),
                                            (2, 4, 4, 4, 4, 2)])
@pytest.mark.parametrize("causal", [True, False])
def test_gqa_matches_sdpa_enable_gqa(B, Lq, Lk, H, G, d, causal):
    g = torch.Generator().manual_seed(H * 7 + G)
    x_kv, W_q, W_k, W_v, W_o = gqa_inputs(g, B, Lq, Lk, H, G, d)
    x_q = rand(g, B, Lq, H * d)
    out, w = K.grouped_query_attention(x_q, x_kv, H, G, W_q, W_k, W_v, W_o, causal=causal)
    q = (x_q @ W_q.T).view(B, Lq, H, d).transpose(1, 2)
    k = (x_kv @ W_k.T).view(B, Lk, G, d).transpose(1, 2)
    v = (x_kv @ W_v.T).view(B, Lk, G, d).transpose(1, 2)
    allowed = torch.ones(Lq, Lk, dtype=torch.bool).tril(Lk - Lq) if causal else None
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, enable_gqa=True)
    torch.testing.assert_close(out, o.transpose(1, 2).reshape(B, Lq, H * d) @ W_o.T, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w.sum(-1), torch.ones(B, H, Lq, dtype=D))


@pytest.mark.parametrize("Lq", [1, 3, 6])
def test_gqa_with_cache_equals_last_rows_of_full_causal_attention(Lq):
    """Bottom-right alignment, checked without building any mask: running the last Lq
    positions against the whole cache equals the last Lq rows of full causal self-attention."""
    g = torch.Generator().manual_seed(Lq)
    B, Lk, H, G, d = 2, 6, 4, 2, 3
    x, W_q, W_k, W_v, W_o = gqa_inputs(g, B, Lk, Lk, H, G, d)
    out, _ = K.grouped_query_attention(x[:, Lk - Lq:], x, H, G, W_q, W_k, W_v, W_o)
    q = (x @ W_q.T).view(B, Lk, H, d).transpose(1, 2)
    k = (x @ W_k.T).view(B, Lk, G, d).transpose(1, 2)
    v = (x @ W_v.T).view(B, Lk, G, d).transpose(1, 2)
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    full = full.transpose(1, 2).reshape(B, Lk, H * d) @ W_o.T
    torch.testing.assert_close(out, full[:, Lk - Lq:], rtol=1e-10, atol=1e-12)


def test_gqa_with_one_group_per_head_is_nn_multihead_attention():
    g = torch.Generator().manual_seed(0)
    B, L, H, d = 2, 5, 3, 2
    x, W_q, W_k, W_v, W_o = gqa_inputs(g, B, L, L, H, H, d)
    out, w = K.grouped_query_attention(x, x, H, H, W_q, W_k, W_v, W_o)
    m = torch_mha(H * d, H, [W_q, W_k, W_v, W_o], None, bias=False)
    ref_out, ref_w = m(x, x, x, attn_mask=torch.ones(L, L, dtype=torch.bool).triu(1), average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w, ref_w, rtol=1e-10, atol=1e-12)


def test_gqa_rejects_uneven_groups():
    with pytest.raises(ValueError):
        K.grouped_query_attention(torch.zeros(1, 2, 6), torch.zeros(1, 2, 6), 3, 2, *[torch.zeros(6, 6)] * 4)


def test_head_gates_all_one_is_nn_multihead_attention():
    g = torch.Generator().manual_seed(4)
    B, L, H, d = 2, 4, 3, 2
    E = H * d
    Ws, bs = weights(g, E)
    x = rand(g, B, L, E)
    out, w = K.masked_heads_attention(x, H, *Ws, *bs, head_mask=torch.ones(H, dtype=D))
    ref_out, ref_w = torch_mha(E, H, Ws, bs)(x, x, x, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w, ref_w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("gates", [(1, 0, 1, 1), (0, 1, 0, 0), (0, 0, 0, 0)])
def test_head_gate_zero_equals_zeroing_that_heads_values_in_torch(gates):
    """Oracle for ablation: in nn.MultiheadAttention, zero the value-projection rows (and bias)
    of the removed heads; since their weights sum to 1, those heads then output exactly 0."""
    g = torch.Generator().manual_seed(sum(gates))
    B, L, H, d = 2, 5, 4, 2
    E = H * d
    Ws, bs = weights(g, E)
    x = rand(g, B, L, E)
    out, _ = K.masked_heads_attention(x, H, *Ws, *bs, head_mask=torch.tensor(gates, dtype=D))
    W_v, b_v = Ws[2].clone(), bs[2].clone()
    for h, keep in enumerate(gates):
        if not keep:
            W_v[h * d:(h + 1) * d] = 0
            b_v[h * d:(h + 1) * d] = 0
    ref_out, _ = torch_mha(E, H, [Ws[0], Ws[1], W_v, Ws[3]], [bs[0], bs[1], b_v, bs[3]])(x, x, x)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)


def test_float32_inputs_stay_float32_and_close_to_float64():
    g = torch.Generator().manual_seed(12)
    Ws, bs = weights(g, 6)
    x = rand(g, 2, 4, 6)
    out64, w64 = K.multi_head_attention(x, x, x, 3, *Ws, *bs)
    out32, w32 = K.multi_head_attention(x.float(), x.float(), x.float(), 3, *[W.float() for W in Ws],
                                        *[b.float() for b in bs])
    assert out32.dtype == torch.float32 and w32.dtype == torch.float32
    np.testing.assert_allclose(out32.double().numpy(), out64.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("call", [
    lambda z: K.multi_head_attention(z(1, 2, 6), z(1, 2, 6), z(1, 2, 6), 4, *[z(6, 6)] * 4, *[z(6)] * 4),
    lambda z: K.cross_attention(z(1, 2, 6), z(1, 3, 5), z(1, 3, 2), 4, z(6, 6), z(6, 5), z(6, 2), z(6, 6),
                                *[z(6)] * 4),
    lambda z: K.grouped_query_attention(z(1, 2, 6), z(1, 2, 6), 4, 2, *[z(6, 6)] * 4),
    lambda z: K.masked_heads_attention(z(1, 2, 6), 4, *[z(6, 6)] * 4, *[z(6)] * 4, head_mask=z(4)),
])
def test_indivisible_width_raises_value_error(call):
    with pytest.raises(ValueError):
        call(lambda *s: torch.zeros(*s, dtype=D))

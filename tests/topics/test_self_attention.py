"""Oracle tests of the self-attention reference kernels.

Every kernel is compared in float64 with an independent PyTorch computation
(``F.scaled_dot_product_attention``, ``nn.MultiheadAttention`` with copied weights,
``torch.softmax``) or, for the positional encoding, with the paper's formula written out
element by element.  Property tests run over random shapes, one generator per case.
"""
import math
import tracemalloc
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from solutions.kernels import self_attention as K

SEEDS = range(6)


def rng(*key):
    """An independent generator per test case, so no case depends on another's draws."""
    return np.random.default_rng([zlib.crc32(str(k).encode()) for k in key])


def params(r, d_model, d_k, d_v, dtype=np.float64):
    """Projection weights and biases scaled so the logits stay O(1) (no softmax saturation)."""
    def w(o, i):
        return (r.normal(size=(o, i)) / math.sqrt(i)).astype(dtype)

    def b(o):
        return (0.3 * r.normal(size=o)).astype(dtype)

    return dict(w_q=w(d_k, d_model), b_q=b(d_k), w_k=w(d_k, d_model), b_k=b(d_k),
                w_v=w(d_v, d_model), b_v=b(d_v))


def torch_qkv(x, p):
    t = {k: torch.from_numpy(v) for k, v in p.items()}
    x = torch.from_numpy(x)
    return (F.linear(x, t["w_q"], t["b_q"]), F.linear(x, t["w_k"], t["b_k"]),
            F.linear(x, t["w_v"], t["b_v"]))


def shapes(r):
    B, L, d_model = (int(n) for n in r.integers([1, 1, 2], [4, 9, 9]))
    d_k, d_v = (int(n) for n in r.integers(1, 9, size=2))
    return B, L, d_model, d_k, d_v


# --- basic: self-attention -------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_self_attention_matches_sdpa(seed):
    r = rng("sa-sdpa", seed)
    B, L, d_model, d_k, d_v = shapes(r)
    x, p = r.normal(size=(B, L, d_model)), params(r, d_model, d_k, d_v)
    out, w = K.self_attention(x, **p)
    q, k, v = torch_qkv(x, p)
    np.testing.assert_allclose(out, F.scaled_dot_product_attention(q, k, v).numpy(), rtol=1e-10, atol=1e-12)
    ref_w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d_k), dim=-1).numpy()
    np.testing.assert_allclose(w, ref_w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_self_attention_matches_multihead_attention_one_head(seed):
    r = rng("sa-mha", seed)
    B, L, d = int(r.integers(1, 4)), int(r.integers(1, 9)), int(r.integers(2, 9))
    x, p = r.normal(size=(B, L, d)), params(r, d, d, d)
    mha = torch.nn.MultiheadAttention(d, 1, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.from_numpy(np.concatenate([p["w_q"], p["w_k"], p["w_v"]])))
        mha.in_proj_bias.copy_(torch.from_numpy(np.concatenate([p["b_q"], p["b_k"], p["b_v"]])))
        mha.out_proj.weight.copy_(torch.eye(d, dtype=torch.float64))
        mha.out_proj.bias.zero_()
        xt = torch.from_numpy(x)
        ref_out, ref_w = mha(xt, xt, xt)
    out, w = K.self_attention(x, **p)
    np.testing.assert_allclose(out, ref_out.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w, ref_w.numpy(), rtol=1e-10, atol=1e-12)


def test_self_attention_keeps_float32_and_unbatched_shapes():
    r = rng("sa-f32")
    x, p = r.normal(size=(5, 4)).astype(np.float32), params(r, 4, 3, 2, np.float32)
    out, w = K.self_attention(x, **p)
    assert out.shape == (5, 2) and w.shape == (5, 5)
    assert out.dtype == np.float32 and w.dtype == np.float32
    np.testing.assert_allclose(w.sum(-1), 1, rtol=1e-6)


def test_self_attention_survives_huge_logits():
    r = rng("sa-huge")
    x, p = r.normal(size=(2, 6, 4)), params(r, 4, 4, 3)
    p["w_q"] *= 60.0
    p["w_k"] *= 60.0
    out, w = K.self_attention(x, **p)
    assert np.isfinite(out).all() and np.isfinite(w).all()
    q, k, v = torch_qkv(x, p)
    np.testing.assert_allclose(out, F.scaled_dot_product_attention(q, k, v).numpy(), rtol=1e-10, atol=1e-12)


# --- intermediate: causal self-attention -------------------------------------------------

def padding_mask(r, B, L):
    """Random key padding mask, True = padding; some rows left-padded, so some queries see nothing."""
    pad = r.random((B, L)) < 0.3
    pad[0, 0] = True  # query 0 of sequence 0 is then fully masked
    return pad


@pytest.mark.parametrize("seed", SEEDS)
def test_causal_matches_sdpa(seed):
    r = rng("causal-sdpa", seed)
    B, L, d_model, d_k, d_v = shapes(r)
    x, p = r.normal(size=(B, L, d_model)), params(r, d_model, d_k, d_v)
    out, w = K.causal_self_attention(x, **p)
    q, k, v = torch_qkv(x, p)
    np.testing.assert_allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy(),
                               rtol=1e-10, atol=1e-12)
    assert np.all(np.triu(w, 1) == 0)
    np.testing.assert_allclose(w.sum(-1), 1, rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_causal_with_padding_matches_sdpa_and_zeroes_fully_masked_rows(seed):
    r = rng("causal-pad", seed)
    B, L, d_model, d_k, d_v = shapes(r)
    L = max(L, 2)
    x, p = r.normal(size=(B, L, d_model)), params(r, d_model, d_k, d_v)
    pad = padding_mask(r, B, L)
    out, w = K.causal_self_attention(x, **p, key_padding_mask=pad)
    q, k, v = torch_qkv(x, p)
    allowed = torch.tril(torch.ones(L, L, dtype=torch.bool)) & ~torch.from_numpy(pad)[:, None, :]
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    dead = ~allowed.numpy().any(-1)           # (B, L) queries that see no key
    assert dead[0, 0]
    assert np.all(out[dead] == 0) and np.all(w[dead] == 0)
    np.testing.assert_allclose(w[~dead].sum(-1), 1, rtol=1e-12)
    assert np.all(w[np.broadcast_to(pad[:, None, :], w.shape)] == 0)


def test_fully_masked_rows_oracles_disagree_and_we_follow_sdpa():
    """The documented convention: a query with no visible key outputs 0 (like SDPA), while
    nn.MultiheadAttention returns NaN for it."""
    r = rng("dead-rows")
    d = 4
    x, p = r.normal(size=(1, 3, d)), params(r, d, d, d)
    pad = np.array([[True, True, True]])
    out, w = K.causal_self_attention(x, **p, key_padding_mask=pad)
    assert np.all(out == 0) and np.all(w == 0)
    mha = torch.nn.MultiheadAttention(d, 1, batch_first=True, dtype=torch.float64)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        mha_out = mha(xt, xt, xt, key_padding_mask=torch.from_numpy(pad))[0]
    assert torch.isnan(mha_out).all()
    q, k, v = torch_qkv(x, p)
    sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=~torch.from_numpy(pad)[:, None, :])
    assert torch.all(sdpa == 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_causal_future_tokens_never_change_earlier_outputs(seed):
    """Property: replacing tokens t+1..L-1 leaves outputs and weights 0..t bit-for-bit unchanged
    (up to float rounding of the unchanged computation)."""
    r = rng("causal-future", seed)
    B, L, d_model, d_k, d_v = shapes(r)
    L = max(L, 2)
    x, p = r.normal(size=(B, L, d_model)), params(r, d_model, d_k, d_v)
    t = int(r.integers(0, L - 1))
    y = x.copy()
    y[:, t + 1:] = 5 * r.normal(size=y[:, t + 1:].shape)
    out_x, w_x = K.causal_self_attention(x, **p)
    out_y, w_y = K.causal_self_attention(y, **p)
    np.testing.assert_allclose(out_y[:, :t + 1], out_x[:, :t + 1], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(w_y[:, :t + 1], w_x[:, :t + 1], rtol=1e-13, atol=1e-14)
    assert not np.allclose(out_y[:, t + 1:], out_x[:, t + 1:])  # later outputs do change


# --- intermediate: sinusoidal positional encoding ------------------------------------------

@pytest.mark.parametrize("length,d_model", [(1, 1), (7, 4), (13, 5), (50, 16), (9, 33)])
def test_positional_encoding_matches_formula(length, d_model):
    pe = K.sinusoidal_positional_encoding(length, d_model)
    assert pe.shape == (length, d_model) and pe.dtype == np.float64
    for pos in range(length):
        for col in range(d_model):
            i = col // 2
            angle = pos / 10000 ** (2 * i / d_model)
            want = math.sin(angle) if col % 2 == 0 else math.cos(angle)
            assert abs(pe[pos, col] - want) < 1e-12


@pytest.mark.parametrize("seed", SEEDS)
def test_positional_encoding_shift_is_a_rotation(seed):
    """Property (Sec. 3.5): PE(pos + k) is a fixed linear map (a 2x2 rotation per frequency) of PE(pos)."""
    r = rng("pe-rot", seed)
    d, L, k = 2 * int(r.integers(1, 9)), int(r.integers(5, 40)), int(r.integers(1, 5))
    base = float(r.uniform(100, 20000))
    pe = K.sinusoidal_positional_encoding(L + k, d, base=base)
    for i in range(d // 2):
        s, c = pe[:, 2 * i], pe[:, 2 * i + 1]
        om = base ** (-2 * i / d)  # radians per position of this frequency
        rot = np.array([[math.cos(k * om), -math.sin(k * om)], [math.sin(k * om), math.cos(k * om)]])
        shifted = np.stack([s[:L], c[:L]], 1) @ rot
        np.testing.assert_allclose(shifted, np.stack([s[k:], c[k:]], 1), atol=1e-9)


# --- advanced: permutation equivariance ----------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_equivariance_gap_zero_without_pe_positive_with_pe(seed):
    r = rng("eq", seed)
    B, L, d_model, d_k, d_v = shapes(r)
    L = max(L, 3)
    x, p = r.normal(size=(B, L, d_model)), params(r, d_model, d_k, d_v)
    perm = r.permutation(L)
    while np.all(perm == np.arange(L)):
        perm = r.permutation(L)
    gap0 = K.equivariance_gap(x, perm, None, **p)
    assert gap0.shape == (B, L) and np.all(gap0 < 1e-12)
    pe = K.sinusoidal_positional_encoding(L, d_model)
    gap = K.equivariance_gap(x, perm, pe, **p)
    # independent oracle: SDPA on the permuted and unpermuted inputs
    def f(z):
        return F.scaled_dot_product_attention(*torch_qkv(z, p)).numpy()
    want = np.linalg.norm(f(x[:, perm] + pe) - f(x + pe)[:, perm], axis=-1)
    np.testing.assert_allclose(gap, want, rtol=1e-9, atol=1e-12)
    assert gap.max() > 1e-3  # the encoding really breaks equivariance


# --- advanced: memory-efficient attention ----------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_tiled_attention_matches_sdpa(seed):
    r = rng("tiled", seed)
    B, Lq, Lk, d_k, d_v = (int(n) for n in r.integers([1, 1, 1, 1, 1], [4, 12, 30, 9, 9]))
    q, k, v = r.normal(size=(B, Lq, d_k)), r.normal(size=(B, Lk, d_k)), r.normal(size=(B, Lk, d_v))
    want = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v))).numpy()
    for block in (1, 3, 7, Lk, Lk + 5):
        np.testing.assert_allclose(K.tiled_attention(q, k, v, block), want, rtol=1e-10, atol=1e-12)


def test_tiled_attention_with_growing_huge_logits():
    """The running maximum changes in every tile and exp(logit) alone would overflow."""
    r = rng("tiled-huge")
    q = r.normal(size=(3, 4))
    k = np.linspace(1, 60, 20)[:, None] * r.normal(size=(20, 4)) * 10
    v = r.normal(size=(20, 2))
    want = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v))).numpy()
    got = K.tiled_attention(q, k, v, 3)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def peak_bytes(fn, *args):
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def test_tiled_attention_extra_memory_grows_linearly_not_quadratically():
    """Measured with tracemalloc (NumPy reports its buffers to it): doubling L roughly doubles the
    tiled kernel's peak, while full attention's peak roughly quadruples.  Full attention is the
    same kernel with one tile of all L keys, so only the tile size differs."""
    r = rng("mem")
    d, block = 32, 32
    peaks = {}
    for L in (512, 1024, 2048):
        q, k, v = (r.normal(size=(L, d)) for _ in range(3))
        peaks[L] = (peak_bytes(K.tiled_attention, q, k, v, L), peak_bytes(K.tiled_attention, q, k, v, block))
    full_growth = peaks[2048][0] / peaks[1024][0]
    tiled_growth = peaks[2048][1] / peaks[1024][1]
    assert 3.5 < full_growth < 4.5, peaks
    assert 1.7 < tiled_growth < 2.3, peaks
    assert peaks[2048][0] > 10 * peaks[2048][1], peaks


# --- advanced: KV cache ---------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_kv_cache_decoding_equals_full_causal_attention(seed):
    r = rng("kv", seed)
    B, L, d_model, d_k, d_v = shapes(r)
    L = max(L, 2)
    x, p = r.normal(size=(B, L, d_model)), params(r, d_model, d_k, d_v)
    q, k, v = torch_qkv(x, p)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()
    # token by token, then in random chunks (chunked prefill)
    for chunks in ([1] * L, None):
        if chunks is None:
            cuts = np.sort(r.choice(np.arange(1, L), size=min(2, L - 1), replace=False))
            chunks = np.diff(np.concatenate([[0], cuts, [L]])).tolist()
        kc, vc = np.zeros((B, 0, d_k)), np.zeros((B, 0, d_v))
        outs, start = [], 0
        for n in chunks:
            o, kc, vc = K.kv_cache_attention(x[:, start:start + n], kc, vc, **p)
            outs.append(o)
            start += n
        np.testing.assert_allclose(np.concatenate(outs, axis=1), want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(kc, k.numpy(), rtol=1e-12)
        np.testing.assert_allclose(vc, v.numpy(), rtol=1e-12)
        np.testing.assert_allclose(np.concatenate(outs, axis=1),
                                   K.causal_self_attention(x, **p)[0], rtol=1e-10, atol=1e-12)

"""Known-wrong self-attention implementations: the mistakes learners (and interviewees) make.

Each one has the signature of its kernel in ``solutions/kernels/self_attention.py``.
"""
import math

import numpy as np

from grader.checks import mutant


def _softmax(s, axis=-1):
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _proj(x, w_q, b_q, w_k, b_k, w_v, b_v):
    return x @ w_q.T + b_q, x @ w_k.T + b_k, x @ w_v.T + b_v


def _logits(q, k, scale=True):
    s = q @ k.swapaxes(-1, -2)
    return s / math.sqrt(q.shape[-1]) if scale else s


def _safe_softmax(s, allowed):
    """Masked softmax whose fully masked rows are 0 (the project convention)."""
    s = np.where(allowed, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(m), m, 0))
    den = e.sum(axis=-1, keepdims=True)
    return e / np.where(den > 0, den, 1)


# --- basic: self_attention(x, w_q, b_q, w_k, b_k, w_v, b_v) -> (out, weights) ----------------

@mutant("self-attention without the 1/sqrt(d_k) scaling",
        "the logits grow with d_k, so the weights come out too peaked")
def sa_no_scaling(x, w_q, b_q, w_k, b_k, w_v, b_v):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    a = _softmax(_logits(q, k, scale=False))
    return a @ v, a


@mutant("self-attention with the softmax over the wrong axis",
        "the weights sum to 1 over the queries (columns) instead of over the keys (rows)")
def sa_wrong_axis(x, w_q, b_q, w_k, b_k, w_v, b_v):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    a = _softmax(_logits(q, k), axis=-2)
    return a @ v, a


@mutant("self-attention with transposed projection weights",
        "it computes x @ W instead of x @ W.T (the nn.Linear convention, W of shape (d_out, d_in))")
def sa_transposed_weights(x, w_q, b_q, w_k, b_k, w_v, b_v):
    q, k, v = x @ w_q + b_q, x @ w_k + b_k, x @ w_v + b_v
    a = _softmax(_logits(q, k))
    return a @ v, a


@mutant("self-attention with the projection biases dropped",
        "b_q, b_k and b_v are never added to the projections")
def sa_bias_dropped(x, w_q, b_q, w_k, b_k, w_v, b_v):
    q, k, v = x @ w_q.T, x @ w_k.T, x @ w_v.T
    a = _softmax(_logits(q, k))
    return a @ v, a


@mutant("self-attention without max-subtraction in the softmax",
        "exp() of large logits overflows to inf and the weights become NaN")
def sa_no_max_subtraction(x, w_q, b_q, w_k, b_k, w_v, b_v):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    e = np.exp(_logits(q, k))
    a = e / e.sum(axis=-1, keepdims=True)
    return a @ v, a


@mutant("self-attention scaled by sqrt(d_model) instead of sqrt(d_k)",
        "the temperature must come from the query/key width d_k, not from the token width")
def sa_scale_by_d_model(x, w_q, b_q, w_k, b_k, w_v, b_v):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    a = _softmax(q @ k.swapaxes(-1, -2) / math.sqrt(x.shape[-1]))
    return a @ v, a


@mutant("self-attention returning the weights transposed (key, query)",
        "weights[i, j] must be the weight query i gives key j, so rows sum to 1")
def sa_weights_transposed(x, w_q, b_q, w_k, b_k, w_v, b_v):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    a = _softmax(_logits(q, k))
    return a @ v, a.swapaxes(-1, -2)


# --- intermediate: causal_self_attention(..., key_padding_mask=None) -> (out, weights) ------

def _causal_allowed(L, key_padding_mask, k_offset=0):
    allowed = np.tril(np.ones((L, L), dtype=bool), k_offset)
    if key_padding_mask is not None:
        allowed = allowed & ~key_padding_mask[..., None, :]
    return allowed


@mutant("causal self-attention without the 1/sqrt(d_k) scaling",
        "the logits grow with d_k, so the weights come out too peaked")
def causal_no_scaling(x, w_q, b_q, w_k, b_k, w_v, b_v, key_padding_mask=None):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    a = _safe_softmax(_logits(q, k, scale=False), _causal_allowed(x.shape[-2], key_padding_mask))
    return a @ v, a


@mutant("causal mask applied after the softmax",
        "zeroing future weights after normalising leaves rows that no longer sum to 1")
def causal_mask_after_softmax(x, w_q, b_q, w_k, b_k, w_v, b_v, key_padding_mask=None):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    a = _softmax(_logits(q, k)) * _causal_allowed(x.shape[-2], key_padding_mask)
    return a @ v, a


@mutant("causal mask inverted",
        "each token attends to itself and the *future* tokens instead of the past")
def causal_mask_inverted(x, w_q, b_q, w_k, b_k, w_v, b_v, key_padding_mask=None):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    L = x.shape[-2]
    allowed = np.triu(np.ones((L, L), dtype=bool))
    if key_padding_mask is not None:
        allowed = allowed & ~key_padding_mask[..., None, :]
    a = _safe_softmax(_logits(q, k), allowed)
    return a @ v, a


@mutant("causal mask with the diagonal masked (wrong causal alignment)",
        "each token must be allowed to attend to itself: keep j <= i, not j < i")
def causal_diagonal_masked(x, w_q, b_q, w_k, b_k, w_v, b_v, key_padding_mask=None):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    a = _safe_softmax(_logits(q, k), _causal_allowed(x.shape[-2], key_padding_mask, -1))
    return a @ v, a


@mutant("causal mask shifted by one (wrong causal alignment)",
        "each token also sees the next token, so the future leaks into earlier outputs")
def causal_sees_next_token(x, w_q, b_q, w_k, b_k, w_v, b_v, key_padding_mask=None):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    a = _safe_softmax(_logits(q, k), _causal_allowed(x.shape[-2], key_padding_mask, 1))
    return a @ v, a


@mutant("key padding mask inverted",
        "True in key_padding_mask marks padding to ignore, not tokens to keep")
def causal_padding_inverted(x, w_q, b_q, w_k, b_k, w_v, b_v, key_padding_mask=None):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    kpm = None if key_padding_mask is None else ~key_padding_mask
    a = _safe_softmax(_logits(q, k), _causal_allowed(x.shape[-2], kpm))
    return a @ v, a


@mutant("fully masked rows left as NaN",
        "a query that sees no key must get zero weights and a zero output (the course convention), "
        "not softmax of all -inf")
def causal_nan_rows(x, w_q, b_q, w_k, b_k, w_v, b_v, key_padding_mask=None):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    s = np.where(_causal_allowed(x.shape[-2], key_padding_mask), _logits(q, k), -np.inf)
    a = _softmax(s)
    return a @ v, a


@mutant("mask filled with -1e9 instead of -inf",
        "a fully masked row then averages *every* key uniformly (future and padding included) "
        "instead of giving zero")
def causal_large_negative_fill(x, w_q, b_q, w_k, b_k, w_v, b_v, key_padding_mask=None):
    q, k, v = _proj(x, w_q, b_q, w_k, b_k, w_v, b_v)
    a = _softmax(np.where(_causal_allowed(x.shape[-2], key_padding_mask), _logits(q, k), -1e9))
    return a @ v, a


# --- intermediate: sinusoidal_positional_encoding(length, d_model, base) -> (L, d_model) ----

def _angles(length, d_model, base, col_exponent):
    pos = np.arange(length, dtype=np.float64)[:, None]
    return pos / base ** (col_exponent / d_model)


@mutant("positional encoding with sin and cos in two halves",
        "the paper interleaves them: column 2i is sin, column 2i+1 is cos, same frequency")
def pe_concatenated_halves(length, d_model, base=10000.0):
    h = (d_model + 1) // 2
    ang = _angles(length, d_model, base, 2 * np.arange(h))
    return np.concatenate([np.sin(ang), np.cos(ang)[:, :d_model - h]], axis=1)


@mutant("positional encoding with sin and cos swapped",
        "even columns are sin and odd columns are cos")
def pe_sin_cos_swapped(length, d_model, base=10000.0):
    ang = _angles(length, d_model, base, 2 * (np.arange(d_model) // 2))
    return np.where(np.arange(d_model) % 2 == 0, np.cos(ang), np.sin(ang))


@mutant("positional encoding with exponent j/d_model per column",
        "the sin/cos pair 2i, 2i+1 shares the frequency base^(-2i/d_model); using the column "
        "index j gives the cos column a different frequency from its sin partner")
def pe_exponent_per_column(length, d_model, base=10000.0):
    ang = _angles(length, d_model, base, np.arange(d_model))
    return np.where(np.arange(d_model) % 2 == 0, np.sin(ang), np.cos(ang))


@mutant("positional encoding with positions counted from 1",
        "the first position is 0, so PE[0] = [0, 1, 0, 1, ...]")
def pe_positions_from_one(length, d_model, base=10000.0):
    pos = np.arange(1, length + 1, dtype=np.float64)[:, None]
    ang = pos / base ** (2 * (np.arange(d_model) // 2) / d_model)
    return np.where(np.arange(d_model) % 2 == 0, np.sin(ang), np.cos(ang))


@mutant("positional encoding with inverted frequencies",
        "pos * base^(2i/d_model) instead of pos / base^(2i/d_model): wavelengths shrink instead "
        "of growing from 2*pi to base*2*pi")
def pe_inverted_frequencies(length, d_model, base=10000.0):
    ang = np.arange(length, dtype=np.float64)[:, None] * base ** (2 * (np.arange(d_model) // 2) / d_model)
    return np.where(np.arange(d_model) % 2 == 0, np.sin(ang), np.cos(ang))


# --- advanced: equivariance_gap(x, perm, pe, ...) -> (..., L) --------------------------------

def _sa(z, w_q, b_q, w_k, b_k, w_v, b_v, scale=True):
    q, k, v = _proj(z, w_q, b_q, w_k, b_k, w_v, b_v)
    return _softmax(_logits(q, k, scale)) @ v


def _norm(d):
    return np.sqrt((d ** 2).sum(axis=-1))


@mutant("positional encoding permuted together with the tokens (or not added at all)",
        "positions belong to slots, not to tokens: add pe after reordering, so x[perm] + pe")
def eq_pe_moves_with_tokens(x, perm, pe, w_q, b_q, w_k, b_k, w_v, b_v):
    z = x if pe is None else x + pe
    w = (w_q, b_q, w_k, b_k, w_v, b_v)
    return _norm(_sa(z[..., perm, :], *w) - _sa(z, *w)[..., perm, :])


@mutant("outputs compared through the inverse permutation",
        "row i of f(x[perm]) corresponds to row perm[i] of f(x), so index f(x) with perm, "
        "not with argsort(perm)")
def eq_inverse_permutation(x, perm, pe, w_q, b_q, w_k, b_k, w_v, b_v):
    pe = 0 if pe is None else pe
    w = (w_q, b_q, w_k, b_k, w_v, b_v)
    return _norm(_sa(x[..., perm, :] + pe, *w) - _sa(x + pe, *w)[..., np.argsort(perm), :])


@mutant("outputs compared without permuting them",
        "f(x[perm]) is a reordering of f(x): compare row i with row perm[i], not with row i")
def eq_outputs_not_permuted(x, perm, pe, w_q, b_q, w_k, b_k, w_v, b_v):
    pe = 0 if pe is None else pe
    w = (w_q, b_q, w_k, b_k, w_v, b_v)
    return _norm(_sa(x[..., perm, :] + pe, *w) - _sa(x + pe, *w))


@mutant("self-attention without the 1/sqrt(d_k) scaling inside the gap",
        "f must be the scaled dot-product self-attention of the basic tier")
def eq_no_scaling(x, perm, pe, w_q, b_q, w_k, b_k, w_v, b_v):
    pe = 0 if pe is None else pe
    w = (w_q, b_q, w_k, b_k, w_v, b_v)
    return _norm(_sa(x[..., perm, :] + pe, *w, scale=False) - _sa(x + pe, *w, scale=False)[..., perm, :])


# --- advanced: tiled_attention(q, k, v, block_size) -> (..., Lq, d_v) -------------------------

def _tiled(q, k, v, block_size, *, scale=True, rescale_acc=True, rescale_den=True,
           use_max=True, stop=None):
    Lk = k.shape[-2]
    c = 1.0 / math.sqrt(q.shape[-1]) if scale else 1.0
    m = np.full(q.shape[:-1] + (1,), -np.inf if use_max else 0.0, dtype=q.dtype)
    l = np.zeros(q.shape[:-1] + (1,), dtype=q.dtype)
    acc = np.zeros(q.shape[:-1] + (v.shape[-1],), dtype=q.dtype)
    for j in range(0, Lk if stop is None else stop, block_size):
        s = q @ k[..., j:j + block_size, :].swapaxes(-1, -2) * c
        m_new = np.maximum(m, s.max(axis=-1, keepdims=True)) if use_max else m
        p = np.exp(s - m_new)
        r = np.exp(m - m_new)
        l = (r if rescale_den else 1) * l + p.sum(axis=-1, keepdims=True)
        acc = (r if rescale_acc else 1) * acc + p @ v[..., j:j + block_size, :]
        m = m_new
    return acc / l


@mutant("online softmax that never rescales the output accumulator",
        "when a later tile raises the running max, acc must be multiplied by exp(m_old - m_new)")
def tiled_acc_not_rescaled(q, k, v, block_size):
    return _tiled(q, k, v, block_size, rescale_acc=False)


@mutant("online softmax that never rescales the running denominator",
        "when a later tile raises the running max, l must be multiplied by exp(m_old - m_new)")
def tiled_den_not_rescaled(q, k, v, block_size):
    return _tiled(q, k, v, block_size, rescale_den=False)


@mutant("online softmax without a running max (no max-subtraction)",
        "exp() of large logits overflows to inf and the output becomes NaN")
def tiled_no_max_subtraction(q, k, v, block_size):
    return _tiled(q, k, v, block_size, use_max=False)


@mutant("tiled attention without the 1/sqrt(d_k) scaling",
        "the logits grow with d_k, so the weights come out too peaked")
def tiled_no_scaling(q, k, v, block_size):
    return _tiled(q, k, v, block_size, scale=False)


@mutant("tiled attention that drops the last, shorter tile",
        "when Lk is not a multiple of block_size the final keys are never attended to")
def tiled_drops_last_block(q, k, v, block_size):
    Lk = k.shape[-2]
    return _tiled(q, k, v, block_size, stop=Lk - Lk % block_size if Lk >= block_size else Lk)


@mutant("tiles normalised separately and averaged",
        "each tile's softmax sums to 1 on its own; tiles must share one normaliser")
def tiled_per_block_softmax(q, k, v, block_size):
    outs = []
    for j in range(0, k.shape[-2], block_size):
        a = _softmax(_logits(q, k[..., j:j + block_size, :]))
        outs.append(a @ v[..., j:j + block_size, :])
    return sum(outs) / len(outs)


# --- advanced: kv_cache_attention(x_new, k_cache, v_cache, ...) -> (out, k_all, v_all) -------

def _kv(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v, *, mask="bottom-right", scale=True,
        new_first=False):
    n, T = x_new.shape[-2], k_cache.shape[-2]
    q, k_new, v_new = _proj(x_new, w_q, b_q, w_k, b_k, w_v, b_v)
    if new_first:
        k_all, v_all = np.concatenate([k_new, k_cache], -2), np.concatenate([v_new, v_cache], -2)
    else:
        k_all, v_all = np.concatenate([k_cache, k_new], -2), np.concatenate([v_cache, v_new], -2)
    j, i = np.arange(T + n)[None, :], np.arange(n)[:, None]
    allowed = {"bottom-right": j <= T + i, "top-left": j <= i, "none": j >= 0,
               "inverted": j >= T + i}[mask]
    a = _softmax(np.where(allowed, _logits(q, k_all, scale), -np.inf))
    return a @ v_all, k_all, v_all


@mutant("KV-cache causal mask aligned to the start (wrong causal alignment)",
        "new token i sits at position T+i, so it may see keys j <= T+i, not j <= i "
        "(is_causal=True in SDPA uses the top-left alignment)")
def kv_top_left_mask(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v):
    return _kv(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v, mask="top-left")


@mutant("KV-cache step without a causal mask inside the new chunk",
        "with several new tokens, earlier ones must not see later ones")
def kv_no_mask(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v):
    return _kv(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v, mask="none")


@mutant("KV-cache causal mask inverted",
        "new token i must see keys up to and including position T+i, not from T+i onwards")
def kv_mask_inverted(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v):
    return _kv(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v, mask="inverted")


@mutant("KV cache not updated",
        "the returned caches must include the new tokens' keys and values")
def kv_cache_not_updated(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v):
    out, _, _ = _kv(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v)
    return out, k_cache, v_cache


@mutant("new keys and values put before the cache",
        "the cache is in time order: append the new entries after the old ones")
def kv_new_first(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v):
    return _kv(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v, new_first=True)


@mutant("KV-cache attention without the 1/sqrt(d_k) scaling",
        "the logits grow with d_k, so the weights come out too peaked")
def kv_no_scaling(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v):
    return _kv(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v, scale=False)

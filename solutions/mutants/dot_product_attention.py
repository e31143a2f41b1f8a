"""Known-wrong dot-product and additive attention: one common mistake per function.

Each mutant has the signature of its kernel in ``solutions/kernels/dot_product_attention.py``.
"""
import math

import numpy as np
import torch

from grader.checks import mutant

NEG_INF = float("-inf")


# ----------------------------------------------------------------- basic: attend_loop / attend

def _np_softmax(S, axis=-1, subtract_max=True):
    E = np.exp(S - S.max(axis=axis, keepdims=True)) if subtract_max else np.exp(S)
    return E / E.sum(axis=axis, keepdims=True)


def _one_query(q, K, V, scale, subtract_max=True, normalise=True, values=True):
    s = (K @ q) * scale  # (n,)
    e = np.exp(s - s.max()) if subtract_max else np.exp(s)
    w = e / e.sum() if normalise else e
    return w @ (V if values else K), w


@mutant("attention without the 1/sqrt(d_k) scaling",
        "the logits are sqrt(d_k) times too large, so the weights come out too peaked")
def loop_no_scaling(q, K, V):
    return _one_query(q, K, V, 1.0)


@mutant("attention scaled by 1/d_k instead of 1/sqrt(d_k)",
        "the logits shrink by d_k, so the weights come out too flat")
def loop_scale_by_dk(q, K, V):
    return _one_query(q, K, V, 1.0 / K.shape[1])


@mutant("attention softmax without max-subtraction",
        "exp() overflows to inf once a logit passes ~709 (float64) or ~88 (float32), giving NaN")
def loop_no_max_subtraction(q, K, V):
    return _one_query(q, K, V, 1.0 / math.sqrt(K.shape[1]), subtract_max=False)


@mutant("attention that never divides by the sum of the exponentials",
        "the weights are exp(score - max) and do not sum to 1, so the context is not an average")
def loop_not_normalised(q, K, V):
    return _one_query(q, K, V, 1.0 / math.sqrt(K.shape[1]), normalise=False)


@mutant("attention that averages the keys instead of the values",
        "the context vector must be a weighted sum of the values V, not of the keys K")
def loop_keys_as_values(q, K, V):
    return _one_query(q, K, V, 1.0 / math.sqrt(K.shape[1]), values=False)


def _many(Q, K, V, scale, axis=-1, subtract_max=True, values=True):
    S = Q @ np.swapaxes(K, -1, -2) * scale
    W = _np_softmax(S, axis, subtract_max)
    return W @ (V if values else K), W


@mutant("attention without the 1/sqrt(d_k) scaling",
        "the logits are sqrt(d_k) times too large, so the weights come out too peaked")
def attend_no_scaling(Q, K, V):
    return _many(Q, K, V, 1.0)


@mutant("attention softmax over the queries axis",
        "each COLUMN sums to 1; the softmax must run over the keys (the last axis of Q K^T)")
def attend_wrong_axis(Q, K, V):
    return _many(Q, K, V, 1.0 / math.sqrt(Q.shape[-1]), axis=-2)


@mutant("attention softmax without max-subtraction",
        "exp() overflows to inf once a logit passes ~709 (float64) or ~88 (float32), giving NaN")
def attend_no_max_subtraction(Q, K, V):
    return _many(Q, K, V, 1.0 / math.sqrt(Q.shape[-1]), subtract_max=False)


@mutant("attention that averages the keys instead of the values",
        "the context vector must be a weighted sum of the values V, not of the keys K")
def attend_keys_as_values(Q, K, V):
    return _many(Q, K, V, 1.0 / math.sqrt(Q.shape[-1]), values=False)


# ------------------------------------------------ intermediate: scaled_dot_product_attention

def _sdpa(q, k, v, attn_mask, scale, *, dim=-1, after=False, invert=False, bool_as_number=False,
          zero_empty=True, subtract_max=True):
    s = q @ k.transpose(-2, -1) * scale
    keep = None
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            keep = ~attn_mask if invert else attn_mask
            if bool_as_number:
                s = s + keep.to(s.dtype)
            elif not after:
                s = s.masked_fill(~keep, NEG_INF)
        elif after:
            keep = torch.isfinite(attn_mask)
        else:
            s = s + attn_mask
    if subtract_max:
        w = torch.softmax(s, dim=dim)
    else:
        e = torch.exp(s)
        w = e / e.sum(dim=dim, keepdim=True)
    if after and keep is not None:
        w = w.masked_fill(~keep, 0.0)
    if zero_empty:
        w = w.masked_fill(torch.isneginf(s).all(dim=-1, keepdim=True), 0.0)
    return w @ v


def _default(q, scale):
    return 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale


@mutant("attention without the 1/sqrt(d_k) scaling",
        "with scale=None the logits must be multiplied by 1/sqrt(d_k); yours are too peaked")
def sdpa_no_scaling(q, k, v, attn_mask=None, scale=None):
    return _sdpa(q, k, v, attn_mask, 1.0 if scale is None else scale)


@mutant("attention that ignores the explicit `scale` argument",
        "it always uses 1/sqrt(d_k), even when the caller passes scale=...")
def sdpa_scale_ignored(q, k, v, attn_mask=None, scale=None):
    return _sdpa(q, k, v, attn_mask, 1.0 / math.sqrt(q.shape[-1]))


@mutant("attention softmax over the queries axis",
        "each column sums to 1; the softmax must run over the keys (dim=-1 of Q K^T)")
def sdpa_wrong_axis(q, k, v, attn_mask=None, scale=None):
    return _sdpa(q, k, v, attn_mask, _default(q, scale), dim=-2)


@mutant("attention with the mask applied after the softmax",
        "zeroing weights after the softmax leaves rows that no longer sum to 1; mask the logits")
def sdpa_mask_after_softmax(q, k, v, attn_mask=None, scale=None):
    return _sdpa(q, k, v, attn_mask, _default(q, scale), after=True)


@mutant("attention with the boolean mask inverted",
        "in PyTorch's convention True means 'may attend'; you removed the keys you should keep")
def sdpa_mask_inverted(q, k, v, attn_mask=None, scale=None):
    return _sdpa(q, k, v, attn_mask, _default(q, scale), invert=True)


@mutant("attention that adds a boolean mask to the logits as 0/1 numbers",
        "a bool mask selects keys (masked_fill with -inf); adding it only shifts allowed logits by 1")
def sdpa_bool_mask_added(q, k, v, attn_mask=None, scale=None):
    return _sdpa(q, k, v, attn_mask, _default(q, scale), bool_as_number=True)


@mutant("attention that leaves fully masked rows as NaN",
        "softmax of a row of -inf is 0/0; this project's convention (and SDPA's) is a zero output")
def sdpa_nan_rows(q, k, v, attn_mask=None, scale=None):
    return _sdpa(q, k, v, attn_mask, _default(q, scale), zero_empty=False)


@mutant("attention softmax without max-subtraction",
        "exp() overflows to inf once a logit passes ~709 (float64) or ~88 (float32), giving NaN")
def sdpa_no_max_subtraction(q, k, v, attn_mask=None, scale=None):
    return _sdpa(q, k, v, attn_mask, _default(q, scale), subtract_max=False)


# ---------------------------------------------------------- intermediate: additive_attention

def _additive(q, k, v, valid_lens, W_q, W_k, w_v, *, transposed=False, tanh=True, dim=-1,
              lens=True, off_by_one=False, after=False, fill=NEG_INF):
    fq = q @ W_q if transposed else q @ W_q.T
    fk = k @ W_k if transposed else k @ W_k.T
    f = fq.unsqueeze(2) + fk.unsqueeze(1)
    s = (torch.tanh(f) if tanh else f) @ w_v  # (B, Lq, Lk)
    real = None
    if valid_lens is not None and lens:
        pos = torch.arange(k.shape[1])
        real = (pos <= valid_lens[:, None, None]) if off_by_one else (pos < valid_lens[:, None, None])
        if not after:
            s = s.masked_fill(~real, fill)
    w = torch.softmax(s, dim=dim)
    if after and real is not None:
        w = w.masked_fill(~real, 0.0)
    w = w.masked_fill(torch.isneginf(s).all(dim=-1, keepdim=True), 0.0)
    return w @ v, w


@mutant("additive attention with transposed projection weights",
        "W_q and W_k are in nn.Linear layout (h, d): project with x @ W.T, not x @ W")
def additive_transposed_weights(q, k, v, valid_lens, W_q, W_k, w_v):
    return _additive(q, k, v, valid_lens, W_q, W_k, w_v, transposed=True)


@mutant("additive attention without the tanh",
        "without the nonlinearity w_v^T (W_q q + W_k k) splits into a query part and a key part, "
        "and the query part cancels in the softmax")
def additive_no_tanh(q, k, v, valid_lens, W_q, W_k, w_v):
    return _additive(q, k, v, valid_lens, W_q, W_k, w_v, tanh=False)


@mutant("additive attention softmax over the queries axis",
        "the weights of each query must sum to 1 over the keys (the last axis)")
def additive_wrong_axis(q, k, v, valid_lens, W_q, W_k, w_v):
    return _additive(q, k, v, valid_lens, W_q, W_k, w_v, dim=-2)


@mutant("additive attention that ignores valid_lens",
        "padding keys beyond valid_lens[b] get weight and leak into the context")
def additive_lens_ignored(q, k, v, valid_lens, W_q, W_k, w_v):
    return _additive(q, k, v, valid_lens, W_q, W_k, w_v, lens=False)


@mutant("additive attention that keeps one padding key too many",
        "keys 0 .. valid_lens[b]-1 are real; key number valid_lens[b] is already padding")
def additive_off_by_one(q, k, v, valid_lens, W_q, W_k, w_v):
    return _additive(q, k, v, valid_lens, W_q, W_k, w_v, off_by_one=True)


@mutant("additive attention with the padding mask applied after the softmax",
        "zeroing padded weights after the softmax leaves rows that no longer sum to 1")
def additive_mask_after_softmax(q, k, v, valid_lens, W_q, W_k, w_v):
    return _additive(q, k, v, valid_lens, W_q, W_k, w_v, after=True)


@mutant("additive attention masked with a large negative number instead of -inf",
        "a batch with valid_lens[b] == 0 then averages all padding uniformly instead of giving zeros")
def additive_big_negative(q, k, v, valid_lens, W_q, W_k, w_v):
    return _additive(q, k, v, valid_lens, W_q, W_k, w_v, fill=-1e6)


# ----------------------------------------------------------------- intermediate: score_stats

def _stats(q, k, scale, axis=1, var_of_raw=False):
    S = scale * (q @ k.T)
    W = _np_softmax(S, axis)
    var = (q @ k.T).var() if var_of_raw else S.var()
    return np.array([var, W.max(axis=1).mean()], dtype=np.float64)


@mutant("score statistics without the 1/sqrt(d_k) scaling",
        "with scale=None the logits must be multiplied by 1/sqrt(d_k)")
def stats_no_scaling(q, k, scale=None):
    return _stats(q, k, 1.0 if scale is None else scale)


@mutant("score statistics scaled by 1/d_k instead of 1/sqrt(d_k)",
        "dividing by d_k over-corrects: the logits' variance becomes 1/d_k instead of 1")
def stats_scale_by_dk(q, k, scale=None):
    return _stats(q, k, 1.0 / q.shape[-1] if scale is None else scale)


@mutant("score statistics with the softmax over the queries axis",
        "each query's weights must be a softmax over the keys (axis 1 of the m x n logits)")
def stats_wrong_axis(q, k, scale=None):
    return _stats(q, k, _default(q, scale), axis=0)


@mutant("score statistics measuring the variance before scaling",
        "the variance asked for is that of the scaled logits, the values the softmax sees")
def stats_variance_before_scaling(q, k, scale=None):
    return _stats(q, k, _default(q, scale), var_of_raw=True)


# --------------------------------------------------------------------- advanced: sdpa_backward

def _backward(q, k, v, d_out, attn_mask, scale, *, scaled=True, full_vjp=True, dv_t=True,
              dk_t=True, mask=True, sum_dim=-1):
    s = q @ k.transpose(-2, -1) * scale
    if attn_mask is not None and mask:
        s = s.masked_fill(~attn_mask, NEG_INF)
    p = torch.softmax(s, dim=-1)
    dv = (p.transpose(-2, -1) if dv_t else p) @ d_out
    dp = d_out @ v.transpose(-2, -1)
    ds = p * (dp - (dp * p).sum(dim=sum_dim, keepdim=True)) if full_vjp else p * dp
    c = scale if scaled else 1.0
    dq = c * ds @ k
    dk = c * (ds.transpose(-2, -1) if dk_t else ds) @ q
    return dq, dk, dv


@mutant("attention backward without the scale in dQ and dK",
        "S = scale * Q K^T, so the chain rule multiplies dQ and dK by the scale too")
def backward_no_scaling(q, k, v, d_out, attn_mask=None, scale=None):
    return _backward(q, k, v, d_out, attn_mask, _default(q, scale), scaled=False)


@mutant("attention backward with the softmax Jacobian's diagonal only",
        "dS = P * (dP - rowsum(dP * P)); dropping the rowsum term ignores that the weights "
        "of a row compete (they sum to 1)")
def backward_diagonal_softmax(q, k, v, d_out, attn_mask=None, scale=None):
    return _backward(q, k, v, d_out, attn_mask, _default(q, scale), full_vjp=False)


@mutant("attention backward with the rowsum over the wrong axis",
        "the softmax runs over the keys, so its VJP sums dP * P over the keys (the last axis)")
def backward_wrong_axis(q, k, v, d_out, attn_mask=None, scale=None):
    return _backward(q, k, v, d_out, attn_mask, _default(q, scale), sum_dim=-2)


@mutant("attention backward with dV = P dO instead of P^T dO",
        "O = P V, so dV = P^T dO (shape (Lk, d_v)); without the transpose it is wrong or "
        "mis-shaped")
def backward_dv_not_transposed(q, k, v, d_out, attn_mask=None, scale=None):
    return _backward(q, k, v, d_out, attn_mask, _default(q, scale), dv_t=False)


@mutant("attention backward with dK = dS Q instead of dS^T Q",
        "S = Q K^T, so dK = scale * dS^T Q: each key collects the gradient of its column")
def backward_dk_not_transposed(q, k, v, d_out, attn_mask=None, scale=None):
    return _backward(q, k, v, d_out, attn_mask, _default(q, scale), dk_t=False)


@mutant("attention backward that forgets the mask",
        "recompute P exactly as the forward did: masked keys have P = 0 and get no gradient")
def backward_mask_ignored(q, k, v, d_out, attn_mask=None, scale=None):
    return _backward(q, k, v, d_out, attn_mask, _default(q, scale), mask=False)


# ------------------------------------------------------------------- advanced: causal masks

def _check_align(align):
    if align not in ("top-left", "bottom-right"):
        raise ValueError(f"align must be 'top-left' or 'bottom-right', got {align!r}")


@mutant("causal mask always aligned top-left",
        "with a KV cache the queries are the LAST Lq positions: query i sees keys j <= i + Lk - Lq")
def mask_always_top_left(Lq, Lk, align="bottom-right"):
    _check_align(align)
    return torch.ones(Lq, Lk, dtype=torch.bool).tril()


@mutant("causal mask with the offset's sign flipped",
        "bottom-right alignment shifts the diagonal right by Lk - Lq, not by Lq - Lk")
def mask_offset_sign(Lq, Lk, align="bottom-right"):
    _check_align(align)
    return torch.ones(Lq, Lk, dtype=torch.bool).tril(Lq - Lk if align == "bottom-right" else 0)


@mutant("causal mask inverted",
        "True must mean 'may attend' (PyTorch's convention); yours marks the future as allowed")
def mask_inverted(Lq, Lk, align="bottom-right"):
    _check_align(align)
    return ~torch.ones(Lq, Lk, dtype=torch.bool).tril(Lk - Lq if align == "bottom-right" else 0)


@mutant("causal mask without the diagonal",
        "a token may attend to itself: the diagonal is allowed (j <= i, not j < i)")
def mask_strict(Lq, Lk, align="bottom-right"):
    _check_align(align)
    return torch.ones(Lq, Lk, dtype=torch.bool).tril((Lk - Lq if align == "bottom-right" else 0) - 1)


# ---------------------------------------------------------- advanced: cached_causal_attention

def _cached(q, k, v, *, offset=None, masked=True, scaled=True, invert=False):
    Lq, Lk = q.shape[-2], k.shape[-2]
    s = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scaled else 1.0)
    if masked:
        keep = torch.ones(Lq, Lk, dtype=torch.bool).tril(Lk - Lq if offset is None else offset)
        s = s.masked_fill(keep if invert else ~keep, NEG_INF)
    return torch.softmax(s, dim=-1) @ v  # an inverted mask empties the last row: NaN there


@mutant("cached attention with a top-left causal mask",
        "the new queries sit at positions Lk-Lq .. Lk-1; a top-left mask hides cached keys "
        "they are allowed to see")
def cached_top_left(q, k, v):
    return _cached(q, k, v, offset=0)


@mutant("cached attention without a causal mask",
        "every query also sees keys from its future")
def cached_no_mask(q, k, v):
    return _cached(q, k, v, masked=False)


@mutant("cached attention with the causal mask inverted",
        "True must mean 'may attend'; masked_fill with ~mask, not with mask")
def cached_mask_inverted(q, k, v):
    return _cached(q, k, v, invert=True)


@mutant("cached attention without the 1/sqrt(d_k) scaling",
        "the logits are sqrt(d_k) times too large, so the weights come out too peaked")
def cached_no_scaling(q, k, v):
    return _cached(q, k, v, scaled=False)

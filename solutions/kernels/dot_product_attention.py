"""Reference kernels for dot-product and additive attention.

basic:        ``attend_loop`` (one query, explicit loops) and ``attend`` (vectorised, NumPy).
intermediate: ``scaled_dot_product_attention`` (boolean/additive masks, explicit scale),
              ``additive_attention`` (Bahdanau scoring with valid lengths) and
              ``score_stats`` (why the 1/sqrt(d_k)).
advanced:     ``sdpa_backward`` (dQ, dK, dV by hand), ``causal_mask`` (top-left and
              bottom-right alignment) and ``cached_causal_attention`` (decoding with a KV cache).

Convention for a query row that may attend to no key at all (a fully masked row): its
weights are all 0 and its output is the zero vector.  This matches
``torch.nn.functional.scaled_dot_product_attention``; ``torch.nn.MultiheadAttention``
returns NaN there instead.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


def attend_loop(q, K, V):
    """Scaled dot-product attention of ONE query over a set of keys, written with loops.

    Args:
        q: the query, float array of shape ``(d_k,)``.
        K: the keys, shape ``(n, d_k)``, one key per row; n >= 1.
        V: the values, shape ``(n, d_v)``, row i belongs to key i.

    Returns:
        ``(context, weights)``: ``context`` of shape ``(d_v,)`` and ``weights`` of shape
        ``(n,)``, both of ``q``'s dtype.  ``weights`` are non-negative and sum to 1.

    Raises:
        IndexError or ValueError: if the sizes of ``q``, ``K`` and ``V`` do not fit together.

    Steps (Vaswani et al. 2017, eq. 1, for a single query):
        score_i   = (q . k_i) / sqrt(d_k)                  (the logits)
        weight_i  = exp(score_i - max_j score_j) / sum_j exp(score_j - max_j score_j)
        context   = sum_i weight_i * v_i
    Use Python loops over the keys; subtract the largest score before exponentiating.
    """
    n, d_k = K.shape
    scores = np.zeros(n, dtype=q.dtype)
    for i in range(n):
        scores[i] = sum(q[j] * K[i, j] for j in range(d_k)) / math.sqrt(d_k)
    top = max(scores)
    weights = np.zeros(n, dtype=q.dtype)
    for i in range(n):
        weights[i] = math.exp(scores[i] - top)
    weights = weights / sum(weights)
    context = np.zeros(V.shape[1], dtype=q.dtype)
    for i in range(n):
        context = context + weights[i] * V[i]
    return context, weights


def attend(Q, K, V):
    """Scaled dot-product attention of many queries at once, vectorised (no Python loops).

    Args:
        Q: queries, float array ``(m, d_k)``; leading batch axes ``(..., m, d_k)`` also work.
        K: keys ``(..., n, d_k)``.
        V: values ``(..., n, d_v)``.

    Returns:
        ``(context, weights)``: ``context`` ``(..., m, d_v)`` and ``weights`` ``(..., m, n)``,
        dtype of ``Q``.  Row i of ``weights`` is the softmax over the n keys for query i.

    Raises:
        ValueError: (from ``@``) if the last axis of ``Q`` and ``K`` differ, or K and V
            hold different numbers of rows.

    Source: Vaswani et al. (2017), eq. 1: softmax(Q K^T / sqrt(d_k)) V, the softmax taken
    along the keys axis (the last) with the row maximum subtracted first.
    """
    d_k = Q.shape[-1]
    S = Q @ np.swapaxes(K, -1, -2) / math.sqrt(d_k)  # (..., m, n) logits
    E = np.exp(S - S.max(axis=-1, keepdims=True))
    W = E / E.sum(axis=-1, keepdims=True)  # (..., m, n), rows sum to 1
    return W @ V, W


def scaled_dot_product_attention(q, k, v, attn_mask=None, scale=None):
    """Batched scaled dot-product attention, equal to ``F.scaled_dot_product_attention``.

    Args:
        q: queries, float tensor ``(..., Lq, d_k)`` (e.g. ``(B, H, Lq, d_k)``).
        k: keys ``(..., Lk, d_k)``.
        v: values ``(..., Lk, d_v)``.
        attn_mask: optional, broadcastable to ``(..., Lq, Lk)``.  A ``torch.bool`` mask means
            True = "this query MAY attend to this key" (PyTorch's convention); a float mask is
            ADDED to the logits (0 keeps a key, ``-inf`` removes it, other values bias it).
        scale: the factor on the logits; ``None`` means ``1 / sqrt(d_k)``.

    Returns:
        ``(..., Lq, d_v)`` tensor of ``q``'s dtype.  A query row with no key left (every
        logit ``-inf``) outputs zeros, as ``F.scaled_dot_product_attention`` does.

    Raises:
        RuntimeError: (from torch) if the shapes do not match or the mask does not broadcast.

    Source: Vaswani et al. (2017), eq. 1: Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ k.transpose(-2, -1)) * scale  # (..., Lq, Lk) logits
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            s = s.masked_fill(~attn_mask, float("-inf"))
        else:
            s = s + attn_mask
    w = torch.softmax(s, dim=-1)  # over the keys
    w = w.masked_fill(torch.isneginf(s).all(dim=-1, keepdim=True), 0.0)  # fully masked rows
    return w @ v


def additive_attention(q, k, v, valid_lens, W_q, W_k, w_v):
    """Additive (Bahdanau) attention, batched, with a valid length per sequence of keys.

    Args:
        q: queries, float tensor ``(B, Lq, d_q)``.
        k: keys ``(B, Lk, d_k)``.
        v: values ``(B, Lk, d_v)``.
        valid_lens: int tensor ``(B,)`` or None.  In batch b only keys ``0 .. valid_lens[b]-1``
            are real; the rest are padding and get weight 0.  None means every key is real.
        W_q: ``(h, d_q)`` and W_k: ``(h, d_k)``, projection weights in ``nn.Linear`` layout
            (``x @ W.T``); w_v: ``(h,)``, the scoring vector.  No biases.

    Returns:
        ``(context, weights)``: ``(B, Lq, d_v)`` and ``(B, Lq, Lk)``, dtype of ``q``.
        A batch with ``valid_lens[b] == 0`` has all weights 0 and a zero context.

    Raises:
        RuntimeError: (from torch) if a weight's shape does not match the inputs.

    Source: Bahdanau, Cho & Bengio (2015), eq. 6 / appendix A.1.2:
        e_ij = w_v^T tanh(W_q q_i + W_k k_j),  alpha_ij = softmax_j(e_ij),  c_i = sum_j alpha_ij v_j.
    """
    f = torch.tanh((q @ W_q.T).unsqueeze(2) + (k @ W_k.T).unsqueeze(1))  # (B, Lq, Lk, h)
    s = f @ w_v  # (B, Lq, Lk) logits
    if valid_lens is not None:
        real = torch.arange(k.shape[1]) < valid_lens[:, None, None]  # (B, 1, Lk)
        s = s.masked_fill(~real, float("-inf"))
    w = torch.softmax(s, dim=-1)
    w = w.masked_fill(torch.isneginf(s).all(dim=-1, keepdim=True), 0.0)  # no real key at all
    return w @ v, w


def score_stats(q, k, scale=None):
    """Two measurements behind the 1/sqrt(d_k): how spread out the logits are, and how
    peaked (saturated) the softmax over them is.

    Args:
        q: queries, float array ``(m, d_k)``.
        k: keys, float array ``(n, d_k)``.
        scale: factor on the logits; ``None`` means ``1 / sqrt(d_k)``, ``1.0`` is unscaled.

    Returns:
        float64 array ``[variance, top_weight]`` of shape ``(2,)``: ``variance`` is the
        population variance (``ddof=0``) of all m*n logits ``scale * q_i . k_j``;
        ``top_weight`` is the largest attention weight of each query (softmax over the n
        keys), averaged over the m queries.  ``top_weight`` lies in ``[1/n, 1]``; near 1 the
        softmax is saturated and its gradient nearly vanishes.

    Raises:
        ValueError: (from ``@``) if q and k have different d_k.

    Source: Vaswani et al. (2017), footnote 4: if the components of q and k are independent
    with mean 0 and variance 1, q . k has mean 0 and variance d_k.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    S = scale * (q @ k.T)  # (m, n) logits
    E = np.exp(S - S.max(axis=1, keepdims=True))
    W = E / E.sum(axis=1, keepdims=True)
    return np.array([S.var(), W.max(axis=1).mean()], dtype=np.float64)


def sdpa_backward(q, k, v, d_out, attn_mask=None, scale=None):
    """Gradients of scaled dot-product attention, by hand (no autograd).

    Forward: S = scale * Q K^T (masked), P = softmax(S) over keys, O = P V.

    Args:
        q: ``(..., Lq, d_k)``, k: ``(..., Lk, d_k)``, v: ``(..., Lk, d_v)``, float tensors with
            the same leading axes.
        d_out: the upstream gradient dL/dO, ``(..., Lq, d_v)``.
        attn_mask: optional bool tensor broadcastable to ``(..., Lq, Lk)``, True = may attend.
            Every query row must keep at least one key (a fully masked row gives NaN).
        scale: the logit factor; ``None`` means ``1 / sqrt(d_k)``.

    Returns:
        ``(dq, dk, dv)`` with the shapes and dtype of ``q``, ``k``, ``v``.

    Raises:
        RuntimeError: (from torch) if the shapes do not match.

    Equations (chain rule through eq. 1 of Vaswani et al. 2017; softmax VJP):
        dV = P^T dO
        dP = dO V^T
        dS = P * (dP - rowsum(dP * P))        (masked entries have P = 0, so dS = 0)
        dQ = scale * dS K,   dK = scale * dS^T Q
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ k.transpose(-2, -1)) * scale  # (..., Lq, Lk)
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    dv = p.transpose(-2, -1) @ d_out  # (..., Lk, d_v)
    dp = d_out @ v.transpose(-2, -1)  # (..., Lq, Lk)
    ds = p * (dp - (dp * p).sum(dim=-1, keepdim=True))
    dq = scale * ds @ k  # (..., Lq, d_k)
    dk = scale * ds.transpose(-2, -1) @ q  # (..., Lk, d_k)
    return dq, dk, dv


def causal_mask(Lq, Lk, align="bottom-right"):
    """Boolean causal mask for Lq queries and Lk keys; True = may attend.

    Args:
        Lq, Lk: numbers of queries and keys (positive ints).
        align: ``"top-left"``: query i sees keys ``j <= i`` (query 0 is key 0's position; the
            mask PyTorch's ``is_causal=True`` uses).  ``"bottom-right"``: query i sees keys
            ``j <= i + (Lk - Lq)`` (the queries are the LAST Lq positions, as when decoding
            with a KV cache).  The two agree when Lq == Lk.

    Returns:
        ``torch.bool`` tensor of shape ``(Lq, Lk)``.

    Raises:
        ValueError: if ``align`` is neither of the two.

    Source: Vaswani et al. (2017), sec. 3.2.3 (masking illegal connections in the decoder);
    PyTorch names the two alignments "upper-left" and "lower-right" causal biases.
    """
    if align not in ("top-left", "bottom-right"):
        raise ValueError(f"align must be 'top-left' or 'bottom-right', got {align!r}")
    offset = Lk - Lq if align == "bottom-right" else 0
    return torch.ones(Lq, Lk, dtype=torch.bool).tril(diagonal=offset)


def cached_causal_attention(q, k, v):
    """Causal attention for the newest Lq tokens of a sequence of Lk tokens (KV cache).

    Args:
        q: queries of the LAST Lq positions, ``(..., Lq, d_k)``.
        k: keys of ALL Lk positions so far (cached ones first), ``(..., Lk, d_k)``, Lk >= Lq.
        v: values of all positions, ``(..., Lk, d_v)``.

    Returns:
        ``(..., Lq, d_v)``: row i equals row ``Lk - Lq + i`` of full causal self-attention over
        the whole sequence, so decoding step by step gives the same result as one pass.

    Raises:
        RuntimeError: (from torch) if the shapes do not match.

    Source: Vaswani et al. (2017), eq. 1 with the decoder's causal mask; the mask must be
    aligned bottom-right (query i sits at absolute position Lk - Lq + i).
    """
    Lq, Lk = q.shape[-2], k.shape[-2]
    s = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    s = s.masked_fill(~causal_mask(Lq, Lk, "bottom-right"), float("-inf"))
    return torch.softmax(s, dim=-1) @ v

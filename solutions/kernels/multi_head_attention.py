"""Reference kernels for multi-head attention (basic, intermediate, advanced).

Conventions shared by every kernel here (they are those of ``torch.nn.MultiheadAttention``):

* Projection weights act like ``nn.Linear``: ``y = x @ W.T + b`` with ``W: (out, in)``, so
  the learner's arrays copy straight into ``in_proj_weight`` / ``q_proj_weight`` / ``out_proj``.
* Boolean masks are ``True`` where attention is **not** allowed (a padded key, a future key).
* Fully masked query rows (every key blocked) get attention weights 0 and an attention
  output 0, as ``F.scaled_dot_product_attention`` does; ``nn.MultiheadAttention`` returns NaN
  there instead. After the output projection such a row equals the output bias.
"""
import math

import torch
import torch.nn.functional as F


# ----------------------------------------------------------------------------- basic


def split_heads(x, num_heads):
    """Split the feature axis into heads: ``(B, L, E) -> (B, H, L, d_k)`` with ``d_k = E / H``.

    Head ``h`` owns the contiguous block of features ``x[..., h*d_k:(h+1)*d_k]``: the layout
    ``nn.MultiheadAttention`` uses after its input projection.

    Args:
        x: ``(B, L, E)`` float tensor (float32 or float64).
        num_heads: ``H``, a positive int dividing ``E``.

    Returns:
        ``(B, H, L, d_k)`` tensor, same dtype; ``out[b, h, l] == x[b, l, h*d_k:(h+1)*d_k]``.

    Raises:
        ValueError: when ``E`` is not divisible by ``num_heads``.

    Source: Vaswani et al. (2017), Sec. 3.2.2: head_i attends with ``Q W_i^Q`` of width
    ``d_k = d_model / h``; stacking the ``W_i^Q`` side by side is one ``(E, E)`` projection.
    """
    B, L, E = x.shape
    if E % num_heads:
        raise ValueError(f"embedding width {E} is not divisible by num_heads={num_heads}")
    return x.reshape(B, L, num_heads, E // num_heads).transpose(1, 2)  # (B, L, H, d_k) -> (B, H, L, d_k)


def merge_heads(x):
    """Concatenate heads back along features: ``(B, H, L, d_k) -> (B, L, H * d_k)``.

    The inverse of :func:`split_heads`: ``out[b, l, h*d_k:(h+1)*d_k] == x[b, h, l]``.

    Args:
        x: ``(B, H, L, d_k)`` float tensor.

    Returns:
        ``(B, L, H * d_k)`` tensor, same dtype.

    Source: Vaswani et al. (2017), Eq. (MultiHead): Concat(head_1, ..., head_h) W^O.
    """
    B, H, L, d = x.shape
    return x.transpose(1, 2).reshape(B, L, H * d)  # (B, L, H, d_k) -> (B, L, H*d_k)


# ----------------------------------------------------------------------------- intermediate


def attention(q, k, v, mask=None):
    """Scaled dot-product attention over heads, with a boolean mask.

    Args:
        q: queries ``(B, H, Lq, d_k)``, float32 or float64.
        k: keys ``(B, H, Lk, d_k)``, same dtype.
        v: values ``(B, H, Lk, d_v)``, same dtype.
        mask: optional bool tensor broadcastable to ``(B, H, Lq, Lk)``; ``True`` blocks a
            (query, key) pair.

    Returns:
        ``(out, weights)``: ``out (B, H, Lq, d_v)`` and ``weights (B, H, Lq, Lk)``, each row of
        ``weights`` summing to 1 over the allowed keys. A fully masked row gets weights 0 and
        output 0 (not NaN).

    Source: Vaswani et al. (2017), Eq. (1): softmax(Q K^T / sqrt(d_k)) V; the softmax is over
    the keys, for each query.
    """
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, Lq, Lk)
    if mask is not None:
        logits = logits.masked_fill(mask, float("-inf"))
    w = torch.softmax(logits, dim=-1)  # softmax subtracts the row max internally
    if mask is not None:
        w = w.masked_fill(mask.all(dim=-1, keepdim=True), 0.0)  # fully masked rows: 0, not NaN
    return w @ v, w


def multi_head_attention(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
                         key_padding_mask=None, attn_mask=None, batch_first=True,
                         average_attn_weights=True):
    """Multi-head attention forward, equal to ``torch.nn.MultiheadAttention`` with copied weights.

    Copy into ``nn.MultiheadAttention(E, H, batch_first=...)``: ``in_proj_weight =
    cat([W_q, W_k, W_v])``, ``in_proj_bias = cat([b_q, b_k, b_v])``, ``out_proj.weight = W_o``,
    ``out_proj.bias = b_o``.

    Args:
        query: ``(B, Lq, E)`` if ``batch_first`` else ``(Lq, B, E)``; float32 or float64.
        key, value: ``(B, Lk, E)`` if ``batch_first`` else ``(Lk, B, E)``; same dtype.
        num_heads: ``H``; ``d_k = E / H``.
        W_q, W_k, W_v, W_o: ``(E, E)`` weights, used as ``x @ W.T``.
        b_q, b_k, b_v, b_o: ``(E,)`` biases, or ``None`` for no bias.
        key_padding_mask: optional bool ``(B, Lk)``; ``True`` marks a padded key.
        attn_mask: optional bool ``(Lq, Lk)``; ``True`` blocks a (query, key) pair.
        batch_first: layout of ``query``/``key``/``value`` and of the output.
        average_attn_weights: return weights averaged over heads ``(B, Lq, Lk)``, else per head
            ``(B, H, Lq, Lk)``.

    Returns:
        ``(out, weights)``: ``out`` in the layout of ``query``; ``weights`` always batch first.
        Fully masked query rows: weights 0 and ``out == b_o`` (``nn.MultiheadAttention`` gives NaN).

    Raises:
        ValueError: when ``E`` is not divisible by ``num_heads``.

    Source: Vaswani et al. (2017), Sec. 3.2.2: MultiHead(Q, K, V) = Concat(head_1..head_h) W^O,
    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V).
    """
    if not batch_first:  # (L, B, E) -> (B, L, E)
        query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
    B, Lq, E = query.shape
    if E % num_heads:
        raise ValueError(f"embedding width {E} is not divisible by num_heads={num_heads}")
    Lk, d = key.shape[1], E // num_heads
    q = F.linear(query, W_q, b_q).reshape(B, Lq, num_heads, d).transpose(1, 2)  # (B, H, Lq, d)
    k = F.linear(key, W_k, b_k).reshape(B, Lk, num_heads, d).transpose(1, 2)  # (B, H, Lk, d)
    v = F.linear(value, W_v, b_v).reshape(B, Lk, num_heads, d).transpose(1, 2)  # (B, H, Lk, d)
    mask = torch.zeros(B, 1, Lq, Lk, dtype=torch.bool)
    if key_padding_mask is not None:
        mask = mask | key_padding_mask[:, None, None, :]  # (B, 1, 1, Lk)
    if attn_mask is not None:
        mask = mask | attn_mask  # (Lq, Lk)
    o, w = attention(q, k, v, mask)  # (B, H, Lq, d), (B, H, Lq, Lk)
    out = F.linear(o.transpose(1, 2).reshape(B, Lq, E), W_o, b_o)  # (B, Lq, E)
    if not batch_first:
        out = out.transpose(0, 1)
    return out, (w.mean(dim=1) if average_attn_weights else w)


def mha_cost(embed_dim, num_heads, L_q, L_k, batch=1):
    """Parameters and forward FLOPs of one multi-head attention layer (with biases).

    Counting rules: a multiply-add is 2 FLOPs; only the matrix products are counted (the four
    projections, ``Q K^T`` and ``weights @ V``), not softmax, scaling or bias additions.

    Args:
        embed_dim: ``E`` (int); num_heads: ``H`` (int, divides ``E``).
        L_q, L_k: query and key lengths (ints); batch: ``B`` (int).

    Returns:
        ``{"params": P, "flops": F}`` with Python ints ``P = 4E^2 + 4E`` and
        ``F = 4 B E^2 (L_q + L_k) + 4 B L_q L_k E``; neither depends on ``H``.

    Raises:
        ValueError: when ``E`` is not divisible by ``H``.

    Source: Vaswani et al. (2017), Sec. 3.2.2 and Table 1 (per-layer cost O(n^2 d) + O(n d^2)).
    """
    if embed_dim % num_heads:
        raise ValueError(f"embedding width {embed_dim} is not divisible by num_heads={num_heads}")
    E, B = embed_dim, batch
    params = 4 * E * E + 4 * E  # W_q, W_k, W_v, W_o and their biases
    proj = 2 * B * E * E * (2 * L_q + 2 * L_k)  # Q and output at L_q rows; K and V at L_k rows
    attn = 2 * (2 * B * L_q * L_k * E)  # H heads x (L_q L_k d_k) for Q K^T, same for weights @ V
    return {"params": params, "flops": proj + attn}


# ----------------------------------------------------------------------------- advanced


def cross_attention(x, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
                    key_padding_mask=None):
    """Cross-attention whose keys and values have their own widths (``kdim``, ``vdim``).

    Equal to ``nn.MultiheadAttention(E, H, kdim=kdim, vdim=vdim, batch_first=True)`` with
    ``q_proj_weight = W_q``, ``k_proj_weight = W_k``, ``v_proj_weight = W_v``,
    ``in_proj_bias = cat([b_q, b_k, b_v])``, ``out_proj = (W_o, b_o)``, called with
    ``average_attn_weights=False``.

    Args:
        x: queries' source ``(B, Lq, E)``, float32 or float64.
        key: ``(B, Lk, kdim)``; value: ``(B, Lk, vdim)``; same dtype.
        num_heads: ``H``; the scale is ``1 / sqrt(E / H)`` whatever ``kdim`` is.
        W_q: ``(E, E)``; W_k: ``(E, kdim)``; W_v: ``(E, vdim)``; W_o: ``(E, E)``.
        b_q, b_k, b_v, b_o: ``(E,)`` biases.
        key_padding_mask: optional bool ``(B, Lk)``, ``True`` marks a padded key.

    Returns:
        ``(out, weights)``: ``out (B, Lq, E)``, per-head ``weights (B, H, Lq, Lk)``.
        A query whose keys are all padded gets weights 0 and ``out == b_o``.

    Raises:
        ValueError: when ``E`` is not divisible by ``num_heads``.

    Source: Vaswani et al. (2017), Sec. 3.2.3 (encoder-decoder attention: queries from the
    decoder, keys and values from the encoder memory) and Eq. (1).
    """
    B, Lq, E = x.shape
    if E % num_heads:
        raise ValueError(f"embedding width {E} is not divisible by num_heads={num_heads}")
    Lk, d = key.shape[1], E // num_heads
    q = F.linear(x, W_q, b_q).reshape(B, Lq, num_heads, d).transpose(1, 2)  # (B, H, Lq, d)
    k = F.linear(key, W_k, b_k).reshape(B, Lk, num_heads, d).transpose(1, 2)  # (B, H, Lk, d)
    v = F.linear(value, W_v, b_v).reshape(B, Lk, num_heads, d).transpose(1, 2)  # (B, H, Lk, d)
    logits = q @ k.transpose(-2, -1) / math.sqrt(d)  # (B, H, Lq, Lk)
    if key_padding_mask is not None:
        logits = logits.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    w = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # all-padded rows: 0
    out = F.linear((w @ v).transpose(1, 2).reshape(B, Lq, E), W_o, b_o)
    return out, w


def grouped_query_attention(x_q, x_kv, num_heads, num_kv_heads, W_q, W_k, W_v, W_o, causal=True):
    """Grouped-query attention (GQA) without biases, with a KV-cache-aligned causal mask.

    ``H`` query heads share ``G = num_kv_heads`` key/value heads: query head ``h`` uses
    key/value head ``h // (H / G)`` (consecutive query heads form a group). ``G = H`` is
    multi-head attention, ``G = 1`` is multi-query attention.

    The queries are the **last** ``Lq`` positions of the ``Lk`` cached positions (decoding
    with a KV cache), so with ``causal`` query ``i`` may see keys ``j <= i + (Lk - Lq)``
    (bottom-right alignment; ``F.scaled_dot_product_attention(is_causal=True)`` aligns
    top-left instead, and the two agree only when ``Lq == Lk``).

    Args:
        x_q: ``(B, Lq, E)`` float32 or float64; x_kv: ``(B, Lk, E)`` with ``Lk >= Lq``.
        num_heads: ``H``, divides ``E``; ``d_k = E / H``.
        num_kv_heads: ``G``, divides ``H``.
        W_q: ``(E, E)``; W_k, W_v: ``(G * d_k, E)``; W_o: ``(E, E)``; used as ``x @ W.T``.
        causal: apply the causal mask.

    Returns:
        ``(out, weights)``: ``out (B, Lq, E)``, per-head ``weights (B, H, Lq, Lk)``.

    Raises:
        ValueError: when ``E`` is not divisible by ``H`` or ``H`` is not a multiple of ``G``.

    Source: Ainslie et al. (2023), "GQA", Sec. 2.2 (query heads share key/value heads by group);
    Shazeer (2019) for multi-query attention; Vaswani et al. (2017) Eq. (1) per head.
    """
    B, Lq, E = x_q.shape
    if E % num_heads or num_heads % num_kv_heads:
        raise ValueError(f"need E={E} divisible by num_heads={num_heads}, itself a multiple of "
                         f"num_kv_heads={num_kv_heads}")
    Lk, d = x_kv.shape[1], E // num_heads
    q = F.linear(x_q, W_q).reshape(B, Lq, num_heads, d).transpose(1, 2)  # (B, H, Lq, d)
    k = F.linear(x_kv, W_k).reshape(B, Lk, num_kv_heads, d).transpose(1, 2)  # (B, G, Lk, d)
    v = F.linear(x_kv, W_v).reshape(B, Lk, num_kv_heads, d).transpose(1, 2)  # (B, G, Lk, d)
    rep = num_heads // num_kv_heads
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)  # (B, H, Lk, d)
    logits = q @ k.transpose(-2, -1) / math.sqrt(d)  # (B, H, Lq, Lk)
    if causal:
        future = torch.ones(Lq, Lk, dtype=torch.bool).triu(Lk - Lq + 1)  # j > i + (Lk - Lq)
        logits = logits.masked_fill(future, float("-inf"))
    w = torch.softmax(logits, dim=-1)
    return F.linear((w @ v).transpose(1, 2).reshape(B, Lq, E), W_o), w


def masked_heads_attention(x, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o, head_mask):
    """Multi-head self-attention with a per-head gate, for head-ablation experiments.

    ``out = sum_h xi_h * head_h W_o^h + b_o``, where ``W_o^h = W_o[:, h*d_k:(h+1)*d_k]`` is the
    slice of the output projection reading head ``h``: a gate of 0 removes that head's
    contribution, 1 keeps it. The attention weights are returned ungated.

    Args:
        x: ``(B, L, E)`` float32 or float64.
        num_heads: ``H``, divides ``E``.
        W_q, W_k, W_v, W_o: ``(E, E)``; b_q, b_k, b_v, b_o: ``(E,)``; used as ``x @ W.T + b``.
        head_mask: ``(H,)`` float gates ``xi_h`` (usually 0 or 1), same dtype as ``x``.

    Returns:
        ``(out, weights)``: ``out (B, L, E)``, per-head ``weights (B, H, L, L)``. With
        ``head_mask`` all ones this is ``nn.MultiheadAttention`` (self-attention, no mask).

    Raises:
        ValueError: when ``E`` is not divisible by ``num_heads``.

    Source: Michel, Levy & Neubig (2019), "Are Sixteen Heads Really Better than One?",
    Eq. (2)-(3): MHAtt(x) = sum_h xi_h Att_h(x).
    """
    B, L, E = x.shape
    if E % num_heads:
        raise ValueError(f"embedding width {E} is not divisible by num_heads={num_heads}")
    d = E // num_heads
    q = F.linear(x, W_q, b_q).reshape(B, L, num_heads, d).transpose(1, 2)  # (B, H, L, d)
    k = F.linear(x, W_k, b_k).reshape(B, L, num_heads, d).transpose(1, 2)
    v = F.linear(x, W_v, b_v).reshape(B, L, num_heads, d).transpose(1, 2)
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1)  # (B, H, L, L)
    o = (w @ v) * head_mask[:, None, None]  # gate each head's output (B, H, L, d)
    return F.linear(o.transpose(1, 2).reshape(B, L, E), W_o, b_o), w

"""Reference kernels for the self-attention topic.

basic: single-head self-attention of one sequence X.
intermediate: causal self-attention with a key padding mask; sinusoidal positional encoding.
advanced: the permutation-equivariance gap; memory-efficient (key-tiled, online-softmax)
attention; incremental decoding with a KV cache.

Conventions shared by every kernel here:

* Projection weights follow ``torch.nn.Linear``: ``W`` has shape ``(d_out, d_in)`` and the
  projection is ``x @ W.T + b``.
* A *fully masked* query row (every key hidden) attends to nothing: its attention weights are
  all 0 and its output is the zero vector. ``F.scaled_dot_product_attention`` does the same;
  ``nn.MultiheadAttention`` returns NaN instead.
"""
import math

import numpy as np


def self_attention(x, w_q, b_q, w_k, b_k, w_v, b_v):
    """Single-head self-attention of the sequence ``x``: queries, keys and values all come from x.

    Args:
        x: tokens, float array ``(..., L, d_model)`` (any leading batch axes, e.g. ``(B, L, d_model)``).
        w_q, w_k: query and key projections, ``(d_k, d_model)``; b_q, b_k: their biases ``(d_k,)``.
        w_v: value projection, ``(d_v, d_model)``; b_v: its bias ``(d_v,)``.
        All arrays share one float dtype (float32 or float64).

    Returns:
        ``(out, weights)``: ``out`` is ``(..., L, d_v)``; ``weights`` is ``(..., L, L)`` with
        ``weights[..., i, j]`` the weight query i gives key j (each row sums to 1). Same dtype as x.

    Raises:
        ValueError: (from NumPy) when the shapes do not line up.

    Source: Vaswani et al. (2017), "Attention Is All You Need", Eq. (1):
    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V, with Q = X W_q^T + b_q, K = X W_k^T + b_k,
    V = X W_v^T + b_v (Sec. 3.2.2 projections, one head).
    """
    q = x @ w_q.T + b_q                              # (..., L, d_k)
    k = x @ w_k.T + b_k                              # (..., L, d_k)
    v = x @ w_v.T + b_v                              # (..., L, d_v)
    s = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])  # logits (..., L, L)
    e = np.exp(s - s.max(axis=-1, keepdims=True))    # stable: largest logit of a row -> 0
    a = e / e.sum(axis=-1, keepdims=True)            # softmax over the keys
    return a @ v, a


def causal_self_attention(x, w_q, b_q, w_k, b_k, w_v, b_v, key_padding_mask=None):
    """Causal (decoder) self-attention: token i attends only to tokens j <= i that are not padding.

    Args:
        x: tokens ``(..., L, d_model)``, float32 or float64.
        w_q, w_k: ``(d_k, d_model)``; b_q, b_k: ``(d_k,)``; w_v: ``(d_v, d_model)``; b_v: ``(d_v,)``.
        key_padding_mask: optional bool ``(..., L)``; True marks a padding token that no query may
            attend to (PyTorch's ``key_padding_mask`` convention). None: no padding.

    Returns:
        ``(out, weights)``: ``(..., L, d_v)`` and ``(..., L, L)``, dtype of x. ``weights`` is 0
        above the diagonal and on padded keys. A fully masked row (e.g. query 0 when token 0 is
        padding) gets all-zero weights and a zero output, never NaN.

    Raises:
        ValueError: (from NumPy) when the shapes do not line up.

    Source: Vaswani et al. (2017), Sec. 3.2.3: "masking out (setting to -inf) all values in the
    input of the softmax which correspond to illegal connections", applied to Eq. (1).
    """
    L = x.shape[-2]
    q, k, v = x @ w_q.T + b_q, x @ w_k.T + b_k, x @ w_v.T + b_v
    s = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])     # (..., L, L)
    allowed = np.tril(np.ones((L, L), dtype=bool))         # key j <= query i
    if key_padding_mask is not None:
        allowed = allowed & ~key_padding_mask[..., None, :]  # (..., L, L)
    s = np.where(allowed, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(m), m, 0))         # masked -> exp(-inf) = 0
    den = e.sum(axis=-1, keepdims=True)
    a = e / np.where(den > 0, den, 1)                      # fully masked rows stay 0
    return a @ v, a


def sinusoidal_positional_encoding(length, d_model, base=10000.0):
    """The fixed sinusoidal positional encoding of the Transformer.

    Args:
        length: number of positions L (int >= 1); positions are 0, 1, ..., L-1.
        d_model: encoding width (int >= 1; odd widths end with a sine column).
        base: the wavelength base (10000 in the paper).

    Returns:
        float64 array ``(L, d_model)``: column 2i holds sin(pos / base^(2i/d_model)) and column
        2i+1 holds cos(pos / base^(2i/d_model)); values lie in [-1, 1]; angles are in radians.
        A length or width of 0 (or less) gives an empty table.

    Raises:
        Nothing for integer sizes.

    Source: Vaswani et al. (2017), Sec. 3.5: PE(pos, 2i) = sin(pos / 10000^(2i/d_model)),
    PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model)).
    """
    pos = np.arange(length, dtype=np.float64)[:, None]          # (L, 1)
    two_i = 2 * (np.arange(d_model) // 2)                       # (d_model,) 0,0,2,2,4,4,...
    angle = pos / base ** (two_i / d_model)                     # (L, d_model)
    return np.where(np.arange(d_model) % 2 == 0, np.sin(angle), np.cos(angle))


def equivariance_gap(x, perm, pe, w_q, b_q, w_k, b_k, w_v, b_v):
    """How far f(x) = SelfAttention(x + pe) is from permutation equivariance, per output token.

    With ``x_p = x[..., perm, :]`` (the tokens reordered; the positional encoding stays
    attached to the *positions*, so it is added after reordering), the gap of token i is
    ``|| f(x_p)[i] - f(x)[perm[i]] ||_2``. Without a positional encoding self-attention is
    permutation equivariant and the gap is 0 up to rounding.

    Args:
        x: tokens ``(..., L, d_model)``, float32 or float64.
        perm: int array ``(L,)``, a permutation of 0..L-1.
        pe: positional encoding ``(L, d_model)`` (same dtype as x), or None for no encoding.
        w_q, w_k: ``(d_k, d_model)``; b_q, b_k: ``(d_k,)``; w_v: ``(d_v, d_model)``; b_v: ``(d_v,)``.

    Returns:
        Non-negative array ``(..., L)`` of Euclidean norms, dtype of x.

    Raises:
        ValueError: (from NumPy) when the shapes do not line up.
        IndexError: when ``perm`` holds an index outside 0..L-1.

    Source: self-attention (Vaswani et al. 2017, Eq. 1) commutes with permutations of its
    input rows, SA(P X) = P SA(X); adding position codes E (Sec. 3.5, which adds them because
    the model has no other access to token order) breaks it, as P X + E != P (X + E).
    """
    def f(z):  # one-head self-attention of z: (..., L, d_model) -> (..., L, d_v)
        q, k, v = z @ w_q.T + b_q, z @ w_k.T + b_k, z @ w_v.T + b_v
        s = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)) @ v

    pe = 0 if pe is None else pe
    diff = f(x[..., perm, :] + pe) - f(x + pe)[..., perm, :]   # (..., L, d_v)
    return np.sqrt((diff ** 2).sum(axis=-1))


def tiled_attention(q, k, v, block_size):
    """Scaled dot-product attention computed over blocks of keys with an online softmax.

    Only one ``(..., Lq, block_size)`` tile of logits exists at a time, plus a running maximum
    ``m``, a running denominator ``l`` and an output accumulator ``acc``: O(Lq * (block_size +
    d_v)) extra memory instead of the O(Lq * Lk) logit matrix of full attention.

    Args:
        q: queries ``(..., Lq, d_k)``; k: keys ``(..., Lk, d_k)``; v: values ``(..., Lk, d_v)``;
            one float dtype (float32 or float64); Lk >= 1.
        block_size: keys per tile (int >= 1); the last tile may be shorter.

    Returns:
        ``(..., Lq, d_v)``, equal (within rounding) to softmax(q k^T / sqrt(d_k)) v, dtype of q.

    Raises:
        ValueError: (from NumPy) when the shapes do not line up; (from range) when block_size is 0.

    Source: Dao et al. (2022), "FlashAttention", Algorithm 1 (its loop over key/value blocks),
    using the online softmax of Milakov & Gimelshein (2018): with m' = max(m, rowmax(S_j)),
    l' = e^(m - m') l + rowsum(e^(S_j - m')), acc' = e^(m - m') acc + e^(S_j - m') V_j,
    and out = acc / l after the last tile.
    """
    Lk = k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1])
    m = np.full(q.shape[:-1] + (1,), -np.inf, dtype=q.dtype)          # (..., Lq, 1) running max
    l = np.zeros(q.shape[:-1] + (1,), dtype=q.dtype)                  # (..., Lq, 1) running sum
    acc = np.zeros(q.shape[:-1] + (v.shape[-1],), dtype=q.dtype)      # (..., Lq, d_v)
    for j in range(0, Lk, block_size):
        s = q @ k[..., j:j + block_size, :].swapaxes(-1, -2) * scale   # (..., Lq, Bk) tile
        m_new = np.maximum(m, s.max(axis=-1, keepdims=True))
        p = np.exp(s - m_new)                                         # (..., Lq, Bk)
        r = np.exp(m - m_new)                                         # rescales the old sums
        l = r * l + p.sum(axis=-1, keepdims=True)
        acc = r * acc + p @ v[..., j:j + block_size, :]
        m = m_new
    return acc / l


def kv_cache_attention(x_new, k_cache, v_cache, w_q, b_q, w_k, b_k, w_v, b_v):
    """One step of incremental causal decoding: attend from new tokens to cached and new keys.

    The cache holds the keys and values of the T tokens seen so far. The n new tokens sit at
    absolute positions T..T+n-1, so new token i may attend to keys 0..T+i (causal mask aligned
    to the *end* of the key sequence). Applied chunk after chunk it reproduces full causal
    self-attention of the whole sequence, without recomputing old keys and values.

    Args:
        x_new: new tokens ``(..., n, d_model)``, n >= 1, float32 or float64.
        k_cache: cached keys ``(..., T, d_k)``; v_cache: cached values ``(..., T, d_v)``; T >= 0.
        w_q, w_k: ``(d_k, d_model)``; b_q, b_k: ``(d_k,)``; w_v: ``(d_v, d_model)``; b_v: ``(d_v,)``.

    Returns:
        ``(out, k_all, v_all)``: ``out`` ``(..., n, d_v)`` is the attention output of the new
        tokens; ``k_all`` ``(..., T+n, d_k)`` and ``v_all`` ``(..., T+n, d_v)`` are the updated
        caches (old entries first). Dtype of x_new.

    Raises:
        ValueError: (from NumPy) when the shapes do not line up (e.g. a cache of the wrong width).

    Source: Vaswani et al. (2017), Eq. (1) with the causal mask of Sec. 3.2.3, evaluated
    autoregressively; caching K and V is the standard decoder optimisation (discussed e.g. by
    Pope et al. 2022, "Efficiently Scaling Transformer Inference").
    """
    n, T = x_new.shape[-2], k_cache.shape[-2]
    q = x_new @ w_q.T + b_q                                          # (..., n, d_k)
    k_all = np.concatenate([k_cache, x_new @ w_k.T + b_k], axis=-2)  # (..., T+n, d_k)
    v_all = np.concatenate([v_cache, x_new @ w_v.T + b_v], axis=-2)  # (..., T+n, d_v)
    s = q @ k_all.swapaxes(-1, -2) / math.sqrt(q.shape[-1])           # (..., n, T+n)
    allowed = np.arange(T + n)[None, :] <= T + np.arange(n)[:, None]  # (n, T+n) bottom-right
    s = np.where(allowed, s, -np.inf)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)) @ v_all, k_all, v_all

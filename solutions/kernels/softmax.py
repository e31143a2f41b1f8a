"""Reference kernels for the softmax topic (basic, intermediate, advanced)."""
import numpy as np


def softmax(x, axis=-1):
    """Numerically stable softmax of ``x`` along ``axis``.

    Args:
        x: logits, float array of any shape ``(..., n, ...)``; entries may be ``-inf``.
        axis: the axis to normalise over (default the last).

    Returns:
        Array of the same shape and dtype as ``x``; non-negative, sums to 1 along ``axis``.
        A slice whose entries are all ``-inf`` gives NaN (there is nothing to normalise).

    Source: Bridle (1990), softmax(x)_i = exp(x_i) / sum_j exp(x_j); subtracting
    max_j x_j first leaves the value unchanged and keeps exp() from overflowing.
    """
    z = x - np.max(x, axis=axis, keepdims=True)  # largest logit becomes 0
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def logsumexp(x, axis=-1):
    """Numerically stable log(sum(exp(x))) along ``axis``: the log of the softmax denominator.

    Args:
        x: logits, float array of any shape; entries may be ``-inf`` (they add exp(-inf) = 0).
        axis: the axis to reduce (default the last).

    Returns:
        Array of the shape of ``x`` with ``axis`` removed, dtype of ``x``.  Finite whenever a
        slice has a finite entry, however large or small the logits.  A slice that is all
        ``-inf`` gives ``-inf`` (the log of an empty sum, 0), never NaN, as ``torch.logsumexp``.
        It is a smooth maximum: ``max(x) <= logsumexp(x) <= max(x) + log(n)``.

    Source: log sum_j exp(x_j) = m + log sum_j exp(x_j - m) with m = max_j x_j (the
    log-sum-exp trick); softmax(x)_i = exp(x_i - logsumexp(x)).
    """
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # all -inf: shift by 0, the sum is 0, log gives -inf
    with np.errstate(divide="ignore"):
        return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def masked_softmax(x, mask, axis=-1):
    """Softmax of ``x`` along ``axis`` over the positions where ``mask`` is True only.

    Mask convention (as ``attn_mask`` of ``torch.nn.functional.scaled_dot_product_attention``):
    ``True`` means "may be attended to", ``False`` means "masked out".  Masked positions get
    weight exactly 0 and the kept ones sum to 1.

    Fully masked slices (the project's convention): a slice with no kept position, or whose
    kept logits are all ``-inf``, gets weights that are all 0, never NaN, so the attention
    output for it is the zero vector.

    Args:
        x: logits, float array of any shape.
        mask: bool array broadcastable to ``x.shape``.
        axis: the axis to normalise over (default the last).

    Returns:
        Array of the shape and dtype of ``x``.

    Raises:
        ValueError: (from NumPy) when ``mask`` does not broadcast to ``x``.

    Source: masked attention, Vaswani et al. (2017) sec. 3.2.3: masked logits are set to -inf
    before the softmax, so exp() gives them weight 0.
    """
    z = np.where(mask, x, -np.inf)  # masked logits become -inf
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # a fully masked slice: any finite shift will do
    e = np.where(mask, np.exp(z - m), 0.0)
    total = np.sum(e, axis=axis, keepdims=True)
    return e / np.where(total > 0, total, 1.0)  # fully masked: 0 / 1 = 0


def log_softmax(x, axis=-1):
    """Logarithm of the softmax of ``x`` along ``axis``, computed without forming the softmax.

    Args:
        x: logits, float array of any shape; entries may be ``-inf`` (their output is ``-inf``).
        axis: the axis to normalise over (default the last).

    Returns:
        Array of the shape and dtype of ``x``, every entry <= 0, with
        ``logsumexp(out, axis) == 0``.  Finite for finite ``x`` however far apart the logits
        are (``log(softmax(x))`` would give ``-inf`` once a weight underflows to 0).  A slice
        that is all ``-inf`` gives NaN, as ``torch.log_softmax`` does.

    Source: log softmax(x)_i = x_i - logsumexp(x) = (x_i - m) - log sum_j exp(x_j - m),
    m = max_j x_j (the log-sum-exp trick).
    """
    z = x - np.max(x, axis=axis, keepdims=True)  # every entry <= 0, the largest is 0
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))  # the sum is >= 1


def softmax_backward(y, grad_y, axis=-1):
    """Vector-Jacobian product of the softmax: the gradient of a loss with respect to the
    logits, given the softmax output and the gradient with respect to that output.

    Args:
        y: ``softmax(x, axis)``, float array of any shape (non-negative, sums to 1 along axis).
        grad_y: dL/dy, float array of the same shape.
        axis: the axis the softmax normalised over.

    Returns:
        dL/dx, array of the shape and dtype of ``y``:
        ``grad_x = y * (grad_y - sum(grad_y * y, axis))``.  Along ``axis`` it sums to 0
        (adding a constant to every logit of a slice changes nothing).

    Raises:
        ValueError: (from NumPy) when the shapes do not broadcast.

    Source: the softmax Jacobian dy_i/dx_j = y_i (delta_ij - y_j), so
    (J^T g)_j = y_j (g_j - sum_i g_i y_i).
    """
    return y * (grad_y - np.sum(grad_y * y, axis=axis, keepdims=True))


def online_softmax(x, block_size):
    """Softmax along the last axis computed by streaming over blocks of columns, keeping only
    a running maximum and a running normaliser per row.

    After block b the state is ``m[:, b]``, the maximum of every logit seen so far, and
    ``l[:, b] = sum over those logits of exp(x - m[:, b])``.  A new block with a larger
    maximum rescales the old normaliser by ``exp(m_old - m_new)``.  A block whose logits are
    all ``-inf`` (masked) leaves the state unchanged; until a finite logit arrives the state
    is ``m = -inf, l = 0``.

    Args:
        x: ``(N, L)`` float logits; entries may be ``-inf``.
        block_size: int >= 1, number of columns read per step (the last block may be shorter).

    Returns:
        ``(y, m, l)``: ``y`` of shape ``(N, L)``, equal to ``softmax(x, axis=-1)`` (a row
        that is all ``-inf`` gives NaN, as in :func:`softmax`); ``m`` and ``l`` of shape
        ``(N, B)`` with ``B = ceil(L / block_size)``, the state after each block.  All in the
        dtype of ``x``.

    Raises:
        ValueError: when ``block_size < 1``.

    Source: Milakov & Gimelshein (2018), "Online normalizer calculation for softmax",
    Algorithm 3: m_j = max(m_{j-1}, x_j), d_j = d_{j-1} exp(m_{j-1} - m_j) + exp(x_j - m_j),
    applied here a block at a time as in FlashAttention (Dao et al., 2022, Algorithm 1).
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    n, length = x.shape
    m, l = np.full(n, -np.inf, dtype=x.dtype), np.zeros(n, dtype=x.dtype)
    ms, ls = [], []
    for start in range(0, length, block_size):
        xb = x[:, start:start + block_size]  # (N, b)
        m_new = np.maximum(m, xb.max(axis=1))  # (N,)
        shift = np.where(np.isneginf(m_new), 0.0, m_new)  # nothing finite yet: keep l = 0
        l = l * np.exp(m - shift) + np.exp(xb - shift[:, None]).sum(axis=1)
        m = m_new
        ms.append(m)
        ls.append(l)
    y = np.exp(x - m[:, None]) / l[:, None]  # second pass, with the final statistics
    return y, np.stack(ms, axis=1), np.stack(ls, axis=1)


def streaming_attention(scores, values, block_size):
    """Attention output ``softmax(scores) @ values`` in one pass over blocks of keys, never
    holding a full row of weights: the core loop of memory-efficient (Flash) attention.

    The state per row is the running max ``m``, normaliser ``l`` and unnormalised output
    ``acc = sum exp(s - m) v`` over the keys seen so far.  When ``m`` grows, both ``l`` and
    ``acc`` are rescaled by ``exp(m_old - m_new)``; the output is ``acc / l`` at the end.

    Args:
        scores: ``(N, L)`` float logits, at least one finite entry per row.
        values: ``(N, L, D)`` float value vectors.
        block_size: int >= 1, keys read per step.

    Returns:
        ``(N, D)`` array in the dtype of ``values``, equal to
        ``einsum("nl,nld->nd", softmax(scores, -1), values)``.

    Raises:
        ValueError: when ``block_size < 1``.

    Source: Dao et al. (2022), FlashAttention, Algorithm 1 (its inner loop), for one query per
    row; Rabe & Staats (2021), "Self-attention does not need O(n^2) memory".
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    n, length = scores.shape
    m, l = np.full(n, -np.inf, dtype=scores.dtype), np.zeros(n, dtype=scores.dtype)
    acc = np.zeros((n, values.shape[2]), dtype=values.dtype)  # (N, D)
    for start in range(0, length, block_size):
        sb, vb = scores[:, start:start + block_size], values[:, start:start + block_size]
        m_new = np.maximum(m, sb.max(axis=1))  # (N,)
        shift = np.where(np.isneginf(m_new), 0.0, m_new)
        scale = np.exp(m - shift)  # (N,): how much the old state shrinks
        p = np.exp(sb - shift[:, None])  # (N, b) unnormalised weights of this block
        l = l * scale + p.sum(axis=1)
        acc = acc * scale[:, None] + np.einsum("nb,nbd->nd", p, vb)
        m = m_new
    return acc / l[:, None]

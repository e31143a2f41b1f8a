"""Known-wrong softmax implementations: the mistakes learners make most."""
import numpy as np

from grader.checks import mutant


@mutant("softmax without max-subtraction", "exp() overflows to inf for logits above ~709, giving NaN")
def no_max_subtraction(x, axis=-1):
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


@mutant("softmax normalised over the wrong axis", "each slice along `axis` no longer sums to 1")
def wrong_axis(x, axis=-1):
    ax = 0 if (axis % x.ndim) != 0 else -1
    z = x - np.max(x, axis=ax, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=ax, keepdims=True)


@mutant("softmax normalised over the whole array", "the sum is taken over every entry, not along `axis`")
def global_sum(x, axis=-1):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


@mutant("softmax shifted by the minimum instead of the maximum",
        "the largest logit minus the smallest can still exceed ~709 and overflow")
def min_subtraction(x, axis=-1):
    e = np.exp(x - np.min(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


# --- logsumexp (basic) ----------------------------------------------------------------

@mutant("log-sum-exp without max-subtraction", "exp() overflows to inf above ~709 and underflows "
        "to 0 below ~-745, giving inf or -inf instead of a finite value")
def lse_no_max(x, axis=-1):
    return np.log(np.sum(np.exp(x), axis=axis))


@mutant("log-sum-exp that forgets to add the maximum back", "log sum exp(x - m) is off by m: "
        "the result must be m + log sum exp(x - m)")
def lse_max_not_added_back(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return np.log(np.sum(np.exp(x - m), axis=axis))


@mutant("log-sum-exp that is NaN on an all -inf slice", "with m = -inf, x - m is -inf - (-inf) = "
        "NaN; the log of an empty sum is -inf")
def lse_nan_all_neginf(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))


@mutant("log-sum-exp that keeps the reduced axis", "the output keeps a length-1 axis; the "
        "reduced axis must be removed")
def lse_keepdims(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


@mutant("log-sum-exp over the wrong axis", "the reduction does not run along `axis`")
def lse_wrong_axis(x, axis=-1):
    ax = 0 if (axis % x.ndim) != 0 else -1
    m = np.max(x, axis=ax, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis=ax) + np.log(np.sum(np.exp(x - m), axis=ax))


# --- masked_softmax (intermediate) ----------------------------------------------------

@mutant("mask inverted", "True must mean 'may attend'; the kept and the masked positions are swapped")
def mask_inverted(x, mask, axis=-1):
    keep = ~np.broadcast_to(mask, x.shape)
    z = np.where(keep, x, -np.inf)
    m = np.max(z, axis=axis, keepdims=True)
    e = np.where(keep, np.exp(z - np.where(np.isfinite(m), m, 0.0)), 0.0)
    total = np.sum(e, axis=axis, keepdims=True)
    return e / np.where(total > 0, total, 1.0)


@mutant("mask applied after the softmax", "zeroing weights after normalising leaves slices that "
        "sum to less than 1")
def mask_after_softmax(x, mask, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return np.where(mask, e / np.sum(e, axis=axis, keepdims=True), 0.0).astype(x.dtype)


@mutant("masked logits set to 0 instead of -inf", "x * mask gives masked positions logit 0, which "
        "still gets weight exp(0 - max)")
def mask_multiplies_logits(x, mask, axis=-1):
    z = x * mask
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@mutant("NaN for fully masked slices", "filling with -inf and normalising gives 0 / 0 when every "
        "position is masked; the convention is all-zero weights")
def fully_masked_nan(x, mask, axis=-1):
    z = np.where(mask, x, -np.inf)
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@mutant("a large negative fill (-1e9) with no fully-masked guard", "a fully masked slice gets "
        "uniform weights instead of the all-zero convention")
def fully_masked_uniform(x, mask, axis=-1):
    z = np.where(mask, x, -1e9).astype(x.dtype)
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


# --- log_softmax (intermediate) -------------------------------------------------------

@mutant("log-softmax as log(softmax(x))", "a weight that underflows to 0 gives log(0) = -inf "
        "instead of a finite, very negative log-probability")
def log_of_softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return np.log(e / np.sum(e, axis=axis, keepdims=True))


@mutant("log-sum-exp without max-subtraction", "exp() overflows for logits above ~709 (~88 in "
        "float32) and the result is -inf or NaN")
def logsumexp_no_max(x, axis=-1):
    return x - np.log(np.sum(np.exp(x), axis=axis, keepdims=True))


@mutant("the maximum subtracted only inside the log", "x - log sum exp(x - m) forgets to take m "
        "off x as well: every entry is off by the slice's maximum")
def max_not_subtracted_outside(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return x - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


@mutant("log-softmax over the wrong axis", "each slice along `axis` no longer has logsumexp 0")
def log_softmax_wrong_axis(x, axis=-1):
    ax = 0 if (axis % x.ndim) != 0 else -1
    z = x - np.max(x, axis=ax, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=ax, keepdims=True))


# --- softmax_backward (advanced) ------------------------------------------------------

@mutant("softmax backward without the subtraction term", "y * grad_y keeps only the diagonal "
        "y_i delta_ij of the Jacobian and drops -y_i y_j")
def backward_no_subtraction(y, grad_y, axis=-1):
    return y * grad_y


@mutant("the elementwise derivative y (1 - y)", "treating softmax like a sigmoid keeps only the "
        "Jacobian's diagonal y_i (1 - y_i)")
def backward_diagonal_only(y, grad_y, axis=-1):
    return grad_y * y * (1 - y)


@mutant("the subtracted sum not weighted by y", "sum(grad_y) is used where the Jacobian gives "
        "sum(grad_y * y)")
def backward_unweighted_sum(y, grad_y, axis=-1):
    return y * (grad_y - np.sum(grad_y, axis=axis, keepdims=True))


@mutant("the backward sum over the wrong axis", "sum(grad_y * y) must run along the softmax axis")
def backward_wrong_axis(y, grad_y, axis=-1):
    ax = 0 if (axis % y.ndim) != 0 else -1
    return y * (grad_y - np.sum(grad_y * y, axis=ax, keepdims=True))


@mutant("the Jacobian's outer product applied without y", "grad_y - sum(grad_y * y) forgets the "
        "leading factor y_j")
def backward_missing_y_factor(y, grad_y, axis=-1):
    return grad_y - np.sum(grad_y * y, axis=axis, keepdims=True)


# --- online_softmax (advanced) --------------------------------------------------------

@mutant("online softmax that never rescales the running sum", "when a later block has a larger "
        "maximum, the old sum must be multiplied by exp(m_old - m_new)")
def online_no_rescale(x, block_size):
    n, length = x.shape
    m, l = np.full(n, -np.inf, dtype=x.dtype), np.zeros(n, dtype=x.dtype)
    ms, ls = [], []
    for start in range(0, length, block_size):
        xb = x[:, start:start + block_size]
        m_new = np.maximum(m, xb.max(axis=1))
        shift = np.where(np.isneginf(m_new), 0.0, m_new)
        l = l + np.exp(xb - shift[:, None]).sum(axis=1)
        m = m_new
        ms.append(m)
        ls.append(l)
    y = np.exp(x - m[:, None]) / l[:, None]
    return y, np.stack(ms, axis=1), np.stack(ls, axis=1)


@mutant("online softmax rescaled the wrong way", "the old sum is multiplied by exp(m_new - m_old) "
        "(> 1) instead of exp(m_old - m_new)")
def online_rescale_inverted(x, block_size):
    n, length = x.shape
    m, l = np.full(n, -np.inf, dtype=x.dtype), np.zeros(n, dtype=x.dtype)
    ms, ls = [], []
    for start in range(0, length, block_size):
        xb = x[:, start:start + block_size]
        m_new = np.maximum(m, xb.max(axis=1))
        shift = np.where(np.isneginf(m_new), 0.0, m_new)
        l = np.where(l > 0, l * np.exp(shift - m), 0.0) + np.exp(xb - shift[:, None]).sum(axis=1)
        m = m_new
        ms.append(m)
        ls.append(l)
    y = np.exp(x - m[:, None]) / l[:, None]
    return y, np.stack(ms, axis=1), np.stack(ls, axis=1)


@mutant("online softmax with the block's own maximum", "each block is shifted by its own max, "
        "not the running max, so the blocks' sums are on different scales")
def online_block_max(x, block_size):
    n, length = x.shape
    m, l = np.full(n, -np.inf, dtype=x.dtype), np.zeros(n, dtype=x.dtype)
    ms, ls = [], []
    for start in range(0, length, block_size):
        xb = x[:, start:start + block_size]
        bm = xb.max(axis=1)
        l = l + np.exp(xb - np.where(np.isneginf(bm), 0.0, bm)[:, None]).sum(axis=1)
        m = np.maximum(m, bm)
        ms.append(m)
        ls.append(l)
    y = np.exp(x - m[:, None]) / l[:, None]
    return y, np.stack(ms, axis=1), np.stack(ls, axis=1)


@mutant("online softmax that drops the last partial block", "range(0, L - block_size + 1, "
        "block_size) skips the final columns when block_size does not divide L")
def online_drops_tail(x, block_size):
    n, length = x.shape
    m, l = np.full(n, -np.inf, dtype=x.dtype), np.zeros(n, dtype=x.dtype)
    ms, ls = [], []
    for start in range(0, length - block_size + 1, block_size):
        xb = x[:, start:start + block_size]
        m_new = np.maximum(m, xb.max(axis=1))
        shift = np.where(np.isneginf(m_new), 0.0, m_new)
        l = l * np.exp(m - shift) + np.exp(xb - shift[:, None]).sum(axis=1)
        m = m_new
        ms.append(m)
        ls.append(l)
    y = np.exp(x - m[:, None]) / l[:, None]
    return y, np.stack(ms, axis=1), np.stack(ls, axis=1)


@mutant("online softmax that is NaN after a fully masked block", "with m = -inf, exp(m - m_new) is "
        "exp(-inf + inf) = NaN; a block of -inf logits must leave the state unchanged")
def online_nan_on_masked_block(x, block_size):
    n, length = x.shape
    m, l = np.full(n, -np.inf, dtype=x.dtype), np.zeros(n, dtype=x.dtype)
    ms, ls = [], []
    for start in range(0, length, block_size):
        xb = x[:, start:start + block_size]
        m_new = np.maximum(m, xb.max(axis=1))
        l = l * np.exp(m - m_new) + np.exp(xb - m_new[:, None]).sum(axis=1)
        m = m_new
        ms.append(m)
        ls.append(l)
    y = np.exp(x - m[:, None]) / l[:, None]
    return y, np.stack(ms, axis=1), np.stack(ls, axis=1)


# --- streaming_attention (advanced) ---------------------------------------------------

@mutant("streaming attention that rescales the sum but not the output accumulator",
        "acc must be multiplied by exp(m_old - m_new) too whenever the maximum grows")
def stream_acc_not_rescaled(scores, values, block_size):
    n, length = scores.shape
    m, l = np.full(n, -np.inf, dtype=scores.dtype), np.zeros(n, dtype=scores.dtype)
    acc = np.zeros((n, values.shape[2]), dtype=values.dtype)
    for start in range(0, length, block_size):
        sb, vb = scores[:, start:start + block_size], values[:, start:start + block_size]
        m_new = np.maximum(m, sb.max(axis=1))
        shift = np.where(np.isneginf(m_new), 0.0, m_new)
        p = np.exp(sb - shift[:, None])
        l = l * np.exp(m - shift) + p.sum(axis=1)
        acc = acc + np.einsum("nb,nbd->nd", p, vb)
        m = m_new
    return acc / l[:, None]


@mutant("streaming attention that averages per-block outputs", "each block is normalised on its "
        "own and the block outputs are averaged with equal weight, ignoring how much mass each holds")
def stream_average_of_blocks(scores, values, block_size):
    outs = []
    for start in range(0, scores.shape[1], block_size):
        sb, vb = scores[:, start:start + block_size], values[:, start:start + block_size]
        e = np.exp(sb - sb.max(axis=1, keepdims=True))
        outs.append(np.einsum("nb,nbd->nd", e / e.sum(axis=1, keepdims=True), vb))
    return np.mean(outs, axis=0).astype(values.dtype)


@mutant("streaming attention without the final division", "acc is the unnormalised sum "
        "sum exp(s - m) v; the output is acc / l")
def stream_no_final_division(scores, values, block_size):
    n, length = scores.shape
    m = np.full(n, -np.inf, dtype=scores.dtype)
    acc = np.zeros((n, values.shape[2]), dtype=values.dtype)
    for start in range(0, length, block_size):
        sb, vb = scores[:, start:start + block_size], values[:, start:start + block_size]
        m_new = np.maximum(m, sb.max(axis=1))
        shift = np.where(np.isneginf(m_new), 0.0, m_new)
        acc = acc * np.exp(m - shift)[:, None] + np.einsum("nb,nbd->nd", np.exp(sb - shift[:, None]), vb)
        m = m_new
    return acc


@mutant("streaming attention with no rescaling at all", "neither l nor acc is multiplied by "
        "exp(m_old - m_new) when the maximum grows")
def stream_no_rescale(scores, values, block_size):
    n, length = scores.shape
    m, l = np.full(n, -np.inf, dtype=scores.dtype), np.zeros(n, dtype=scores.dtype)
    acc = np.zeros((n, values.shape[2]), dtype=values.dtype)
    for start in range(0, length, block_size):
        sb, vb = scores[:, start:start + block_size], values[:, start:start + block_size]
        m = np.maximum(m, sb.max(axis=1))
        p = np.exp(sb - np.where(np.isneginf(m), 0.0, m)[:, None])
        l = l + p.sum(axis=1)
        acc = acc + np.einsum("nb,nbd->nd", p, vb)
    return acc / l[:, None]

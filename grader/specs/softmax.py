"""Specs of the softmax topic: stable softmax (basic), masked and log-softmax
(intermediate), softmax backward and online softmax (advanced)."""
import numpy as np

from grader.checks import case, spec


def random_shape(rng, ndim_min=1, ndim_max=3, lo=1, hi=7):
    """A random shape with ``ndim_min..ndim_max`` axes of length ``lo..hi``."""
    return tuple(int(n) for n in rng.integers(lo, hi + 1, size=rng.integers(ndim_min, ndim_max + 1)))


@spec("softmax.stable", entry="softmax", kernel="softmax.softmax",
      mutants=["softmax.no_max_subtraction", "softmax.wrong_axis", "softmax.global_sum",
               "softmax.min_subtraction"],
      hints=["Exponentiate, then divide by the sum along `axis`; keep the summed axis with "
             "`keepdims=True` so it broadcasts back.",
             "exp(1000) is inf in float64. Softmax is unchanged when you subtract the same "
             "constant from every logit of a slice: which constant keeps every exponent <= 0?",
             "z = x - x.max(axis=axis, keepdims=True); e = np.exp(z); return e / e.sum(axis=axis, keepdims=True)"])
def stable(t):
    """Stable softmax along an axis: random shapes and axes, float64 and float32, and the
    edge cases all-equal, single element, one huge logit, and -inf entries."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        shape = random_shape(r, 2, 3, 2, 6)
        axis = int(r.integers(-len(shape), len(shape)))
        dtype = np.float32 if i % 2 else np.float64
        yield case(f"random logits, shape {shape}, axis {axis}, {np.dtype(dtype).name}",
                   (r.normal(size=shape) * 2).astype(dtype), axis=axis)
    yield case("all logits equal", np.full(5, 3.0))
    yield case("a single element", np.array([0.7]))
    yield case("one huge logit [1000, 1, 2, 3]", np.array([1000.0, 1.0, 2.0, 3.0]))
    yield case("-inf entries (already masked)", np.array([[0.5, -np.inf, 1.5], [-np.inf, 2.0, 0.0]]))
    if t.hidden:
        r = t.rng("hidden-large")
        x = r.normal(size=(3, 4)) + np.array([[800.0], [-800.0], [0.0]])
        yield case("large positive and negative rows, axis 1", x, axis=1)
        yield case("huge logits along axis 0", np.array([[750.0, 1.0], [-3.0, 720.0]]), axis=0)


@spec("softmax.logsumexp", entry="logsumexp", kernel="softmax.logsumexp",
      mutants=["softmax.lse_no_max", "softmax.lse_max_not_added_back", "softmax.lse_nan_all_neginf",
               "softmax.lse_keepdims", "softmax.lse_wrong_axis"],
      hints=["The same trick as the softmax: subtract the slice's maximum m before exp(), then "
             "undo it outside the log: log sum exp(x) = m + log sum exp(x - m).",
             "Reduce with keepdims=True so that x - m broadcasts, and remove the axis from the "
             "result (np.squeeze(m, axis=axis)).",
             "A slice of only -inf has m = -inf, and -inf - (-inf) is NaN. Replace a non-finite "
             "m by 0: the sum is then 0 and np.log(0) is the right answer, -inf."])
def logsumexp(t):
    """Stable log-sum-exp along an axis: random shapes and axes in float64 and float32, a huge
    logit, all logits equal, a single element, -inf entries, very negative logits and an all
    -inf slice (-inf, not NaN)."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        shape = random_shape(r, 2, 3, 2, 6)
        axis = int(r.integers(-len(shape), len(shape)))
        dtype = np.float32 if i % 2 else np.float64
        yield case(f"random logits, shape {shape}, axis {axis}, {np.dtype(dtype).name}",
                   (r.normal(size=shape) * 2).astype(dtype), axis=axis)
    yield case("one huge logit [1000, 1, 2, 3]", np.array([1000.0, 1.0, 2.0, 3.0]))
    yield case("all logits equal", np.full(5, 3.0))
    yield case("a single element", np.array([0.7]))
    yield case("-inf entries", np.array([[0.5, -np.inf, 1.5], [-np.inf, 2.0, 0.0]]))
    if t.hidden:
        yield case("very negative logits [-1000, -1001]", np.array([-1000.0, -1001.0]))
        yield case("an all -inf row (result -inf)", np.array([[0.0, 1.0], [-np.inf, -np.inf]]), axis=1)
        r = t.rng("large-axis0")
        x = r.normal(size=(2, 3)) + np.array([[800.0], [0.0]])
        yield case("large logits along axis 0", x, axis=0)


# --- intermediate ---------------------------------------------------------------------

@spec("softmax.masked", entry="masked_softmax", kernel="softmax.masked_softmax",
      mutants=["softmax.mask_inverted", "softmax.mask_after_softmax", "softmax.mask_multiplies_logits",
               "softmax.fully_masked_nan", "softmax.fully_masked_uniform"],
      hints=["`mask` is True where a position may be attended to. Masked positions must end with "
             "weight exactly 0 and the kept ones must still sum to 1.",
             "Mask the logits before normalising: np.where(mask, x, -np.inf). Zeroing weights "
             "after the softmax leaves rows that no longer sum to 1.",
             "A fully masked slice has max -inf, and -inf - (-inf) is NaN. Replace a non-finite "
             "max by 0, zero the masked exponentials, and divide by 1 where the sum is 0."])
def masked(t):
    """Masked softmax along an axis (True = keep): random shapes, axes and masks in float64
    and float32, a broadcast key-padding mask, and fully masked slices (all-zero weights)."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        shape = random_shape(r, 2, 3, 2, 6)
        axis = int(r.integers(-len(shape), len(shape)))
        dtype = np.float32 if i % 2 else np.float64
        mask = r.random(shape) < 0.7
        yield case(f"random logits, shape {shape}, axis {axis}, {np.dtype(dtype).name}",
                   (r.normal(size=shape) * 2).astype(dtype), mask, axis=axis)
    r = t.rng("padding")
    lengths = np.array([5, 3, 1])
    mask = np.arange(5)[None, :] < lengths[:, None]  # (3, 5) key padding, broadcast over queries
    yield case("key-padding mask (3, 1, 5) broadcast over 4 queries", r.normal(size=(3, 4, 5)),
               mask[:, None, :])
    r = t.rng("fully-masked")
    mask = np.array([[True, False, True, True], [False, False, False, False], [True, True, True, True]])
    yield case("a fully masked row (all-zero weights)", r.normal(size=(3, 4)), mask)
    if t.hidden:
        r = t.rng("huge-masked")
        x = r.normal(size=(2, 5))
        x[:, 0] = 40.0  # a masked position with a big logit: masking after the softmax shows
        mask = np.array([[False, True, True, True, True], [False, True, False, True, False]])
        yield case("a big logit at a masked position", x, mask)
        r = t.rng("fully-masked-f32")
        mask = np.array([[False, False, False], [True, False, True]])
        yield case("float32 with a fully masked row", r.normal(size=(2, 3)).astype(np.float32), mask)


@spec("softmax.log", entry="log_softmax", kernel="softmax.log_softmax",
      mutants=["softmax.log_of_softmax", "softmax.logsumexp_no_max", "softmax.max_not_subtracted_outside",
               "softmax.log_softmax_wrong_axis"],
      hints=["log softmax(x)_i = x_i - log sum_j exp(x_j). Do not take the log of a softmax: a "
             "weight that underflows to 0 becomes -inf.",
             "Use the log-sum-exp trick: with m the max of the slice, log sum_j exp(x_j) = m + "
             "log sum_j exp(x_j - m).",
             "z = x - x.max(axis=axis, keepdims=True); return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))"])
def log(t):
    """Log-softmax along an axis: random shapes and axes in float64 and float32, logits far
    apart (a weight that underflows), huge logits, and -inf entries."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        shape = random_shape(r, 2, 3, 2, 6)
        axis = int(r.integers(-len(shape), len(shape)))
        dtype = np.float32 if i % 2 else np.float64
        yield case(f"random logits, shape {shape}, axis {axis}, {np.dtype(dtype).name}",
                   (r.normal(size=shape) * 2).astype(dtype), axis=axis)
    yield case("logits 800 apart", np.array([[0.0, -800.0, 1.0], [2.0, 0.5, -1.0]]))
    yield case("-inf entries (log-probability -inf)", np.array([[0.5, -np.inf, 1.5], [-np.inf, 2.0, 0.0]]))
    if t.hidden:
        yield case("one huge logit [1000, 1, 2, 3]", np.array([1000.0, 1.0, 2.0, 3.0]))
        yield case("float32 logits 120 apart", np.array([[0.0, -120.0, 3.0]], dtype=np.float32))
        r = t.rng("large-axis0")
        x = r.normal(size=(3, 2)) + np.array([[300.0], [-200.0], [0.0]])
        yield case("large logits along axis 0", x, axis=0)


# --- advanced -------------------------------------------------------------------------

def _probabilities(r, shape, axis):
    """Random probability vectors along ``axis`` (Dirichlet(1)), i.e. valid softmax outputs."""
    moved = list(shape)
    moved.append(moved.pop(axis % len(shape)))
    y = r.dirichlet(np.ones(moved[-1]), size=tuple(moved[:-1]))
    return np.moveaxis(y, -1, axis)


@spec("softmax.backward", entry="softmax_backward", kernel="softmax.softmax_backward",
      mutants=["softmax.backward_no_subtraction", "softmax.backward_diagonal_only",
               "softmax.backward_unweighted_sum", "softmax.backward_wrong_axis",
               "softmax.backward_missing_y_factor"],
      hints=["Write the Jacobian of y = softmax(x): dy_i/dx_j = y_i (delta_ij - y_j). The diagonal "
             "alone is not enough.",
             "The gradient is J^T grad_y. Multiply it out: the delta term gives y_j grad_y_j and "
             "the other term gives -y_j sum_i grad_y_i y_i.",
             "return y * (grad_y - np.sum(grad_y * y, axis=axis, keepdims=True))"])
def backward(t):
    """Softmax vector-Jacobian product: random probability vectors y and upstream gradients
    along random axes in float64 and float32, a one-hot y, and a constant upstream gradient."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        shape = random_shape(r, 2, 3, 2, 6)
        axis = int(r.integers(-len(shape), len(shape)))
        dtype = np.float32 if i % 2 else np.float64
        yield case(f"random y and grad_y, shape {shape}, axis {axis}, {np.dtype(dtype).name}",
                   _probabilities(r, shape, axis).astype(dtype), r.normal(size=shape).astype(dtype),
                   axis=axis)
    r = t.rng("vector")
    yield case("a single vector of 5", _probabilities(r, (5,), 0), r.normal(size=5))
    if t.hidden:
        r = t.rng("one-hot")
        yield case("one-hot y (saturated softmax: zero gradient)", np.eye(4)[[1, 3]], r.normal(size=(2, 4)))
        yield case("constant grad_y (a shift of the logits: zero gradient)",
                   _probabilities(t.rng("const"), (3, 4), 1), np.full((3, 4), 0.7))


@spec("softmax.online", entry="online_softmax", kernel="softmax.online_softmax",
      mutants=["softmax.online_no_rescale", "softmax.online_rescale_inverted", "softmax.online_block_max",
               "softmax.online_drops_tail", "softmax.online_nan_on_masked_block"],
      hints=["Keep two numbers per row: m, the max seen so far, and l, the sum of exp(x - m) over "
             "the columns seen so far. Start from m = -inf, l = 0.",
             "When a block raises the max from m_old to m_new, every term already in l was "
             "computed with m_old: multiply l by exp(m_old - m_new) before adding the new block.",
             "If a row has only seen -inf so far, m_new is -inf and m_old - m_new is NaN: shift "
             "by 0 instead in that case. Loop with range(0, L, block_size) so a short last block "
             "is not lost."])
def online(t):
    """Online softmax over column blocks, with the running max and normaliser after every
    block: random shapes and block sizes (dividing L or not), float32, increasing logits,
    one block, block size 1, and a first block that is fully masked."""
    for i in range(3):
        r = t.rng(f"random-{i}")
        n, length = int(r.integers(1, 5)), int(r.integers(5, 13))
        block = int(r.integers(2, 5))
        dtype = np.float32 if i % 2 else np.float64
        yield case(f"random ({n}, {length}) logits, block {block}, {np.dtype(dtype).name}",
                   (2 * r.normal(size=(n, length))).astype(dtype), block)
    r = t.rng("increasing")
    x = np.sort(r.normal(size=(2, 9)) * 2, axis=1)
    yield case("increasing logits: the max grows in every block", x, 2)
    r = t.rng("one-block")
    yield case("block_size >= L (one block)", r.normal(size=(2, 4)), 8)
    if t.hidden:
        r = t.rng("block-1")
        yield case("block_size 1 (one column at a time)", r.normal(size=(3, 6)), 1)
        r = t.rng("masked-first")
        x = r.normal(size=(2, 7))
        x[0, :3] = -np.inf  # the first block of row 0 is fully masked
        x[1, 4] = -np.inf
        yield case("a fully masked first block", x, 3)
        r = t.rng("uneven")
        yield case("L = 10, block 4 (a short last block)", np.sort(r.normal(size=(2, 10)), axis=1), 4)


@spec("softmax.streaming", entry="streaming_attention", kernel="softmax.streaming_attention",
      mutants=["softmax.stream_acc_not_rescaled", "softmax.stream_average_of_blocks",
               "softmax.stream_no_final_division", "softmax.stream_no_rescale"],
      hints=["Carry three things per row: the running max m, the running normaliser l, and acc = "
             "sum of exp(s - m) * v over the keys seen so far, shape (N, D).",
             "When the max grows, both l and acc were computed with the old max: multiply both by "
             "exp(m_old - m_new) before adding the new block's contributions.",
             "At the end the output is acc / l[:, None]."])
def streaming(t):
    """One-pass attention output softmax(scores) @ values over key blocks: random shapes and
    block sizes, float32, increasing scores, and a fully masked first block."""
    for i in range(3):
        r = t.rng(f"random-{i}")
        n, length, d = int(r.integers(1, 5)), int(r.integers(5, 13)), int(r.integers(1, 4))
        block = int(r.integers(2, 5))
        dtype = np.float32 if i % 2 else np.float64
        yield case(f"random N={n}, L={length}, D={d}, block {block}, {np.dtype(dtype).name}",
                   (2 * r.normal(size=(n, length))).astype(dtype),
                   r.normal(size=(n, length, d)).astype(dtype), block)
    r = t.rng("increasing")
    yield case("increasing scores: the max grows in every block",
               np.sort(2 * r.normal(size=(2, 8)), axis=1), r.normal(size=(2, 8, 3)), 3)
    if t.hidden:
        r = t.rng("masked-first")
        s = r.normal(size=(2, 6))
        s[:, :2] = -np.inf
        yield case("a fully masked first block", s, r.normal(size=(2, 6, 2)), 2)

"""Specs of the dot-product-attention topic.

basic:        one query with loops (``loop``), many queries vectorised (``vectorised``).
intermediate: masked batched SDPA (``sdpa``), Bahdanau scoring (``additive``), the
              1/sqrt(d_k) experiment (``score_stats``).
advanced:     hand-written backward (``backward``), causal-mask alignment (``causal_mask``),
              attention over a KV cache (``kv_cache``).

Inputs keep logits O(1) (standard-normal queries and keys, scaled by 1/sqrt(d_k)), so scaled
and unscaled attention differ clearly; each case draws from its own ``t.rng(name)``.
"""
import numpy as np

from grader.checks import case, spec

P = "dot-product-attention"
M = "dot_product_attention"


def _dims(r, lo=1, hi=6):
    return int(r.integers(lo, hi + 1))


def _normal(r, shape, dtype=np.float64):
    return r.normal(size=shape).astype(dtype)


def _mask(r, shape, p=0.6):
    """A random boolean mask (True = may attend) with at least one True in every row."""
    m = r.random(shape) < p
    rows = m.reshape(-1, shape[-1])
    rows[np.arange(rows.shape[0]), r.integers(0, shape[-1], size=rows.shape[0])] = True
    return rows.reshape(shape)


def _large_logits(r, lead, Lq, Lk, d_k=4):
    """Queries and keys whose scaled logits are around 800: exp() overflows without the
    max-subtraction (the differences between logits stay moderate)."""
    q, k = _normal(r, lead + (Lq, d_k)), _normal(r, lead + (Lk, d_k))
    q[..., 0] += 40.0
    k[..., 0] += 40.0
    return q, k


# ------------------------------------------------------------------------------ basic

@spec(f"{P}.loop", entry="attend_loop", kernel=f"{M}.attend_loop",
      mutants=[f"{M}.loop_no_scaling", f"{M}.loop_scale_by_dk", f"{M}.loop_not_normalised",
               f"{M}.loop_keys_as_values", f"{M}.loop_no_max_subtraction"],
      hints=["Three loops: one for the scores q . k_i / sqrt(d_k), one for the exponentials, "
             "one that adds up weight_i * V[i]. Return (context, weights).",
             "Subtract the largest score before math.exp, then divide every exponential by "
             "their sum so the weights add up to 1.",
             "scores[i] = sum(q[j] * K[i, j] for j in range(d_k)) / math.sqrt(d_k); "
             "weights[i] = math.exp(scores[i] - max(scores)); weights /= sum(weights); "
             "context += weights[i] * V[i]"])
def loop(t):
    """One query against n keys: random sizes in float64 and float32, one key only, a
    query orthogonal to every key (uniform weights), d_v equal to d_k, and (hidden) logits
    near 1000."""
    for i in range(3):
        r = t.rng(f"random-{i}")
        n, d_k, d_v = _dims(r, 2, 7), _dims(r, 2, 8), _dims(r, 1, 6)
        dt = np.float32 if i == 1 else np.float64
        yield case(f"random, n={n} keys, d_k={d_k}, d_v={d_v}, {np.dtype(dt).name}",
                   _normal(r, d_k, dt), _normal(r, (n, d_k), dt), _normal(r, (n, d_v), dt))
    r = t.rng("square")
    yield case("d_v == d_k = 3, five keys", _normal(r, 3), _normal(r, (5, 3)), _normal(r, (5, 3)))
    r = t.rng("one-key")
    yield case("a single key (its weight must be 1)", _normal(r, 4), _normal(r, (1, 4)),
               _normal(r, (1, 2)))
    r = t.rng("orthogonal")
    K = np.array([[0.0, 1.0, 2.0], [0.0, -1.0, 0.5], [0.0, 0.3, 0.0]])
    yield case("query orthogonal to every key (uniform weights)", np.array([2.0, 0.0, 0.0]), K,
               _normal(r, (3, 2)))
    if t.hidden:
        for i in range(2):
            r = t.rng(f"hidden-{i}")
            n, d_k = _dims(r, 3, 9), _dims(r, 2, 12)
            yield case(f"hidden random, n={n}, d_k={d_k}", _normal(r, d_k), _normal(r, (n, d_k)),
                       _normal(r, (n, d_k)))
        r = t.rng("large")
        K = np.array([[2.0, 0.0, 0.0, 0.0], [1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
        yield case("logits near 1000 (exp overflows without the max)",
                   np.array([1000.0, 3.0, 0.0, 0.0]), K, _normal(r, (3, 2)))


@spec(f"{P}.vectorised", entry="attend", kernel=f"{M}.attend",
      mutants=[f"{M}.attend_no_scaling", f"{M}.attend_wrong_axis", f"{M}.attend_keys_as_values",
               f"{M}.attend_no_max_subtraction"],
      hints=["All the scores at once: Q @ K^T has shape (m, n), row i for query i. Use "
             "np.swapaxes(K, -1, -2) so leading batch axes work too.",
             "Softmax along the keys axis (axis=-1) with keepdims=True, after subtracting each "
             "row's maximum; then the context is weights @ V.",
             "S = Q @ np.swapaxes(K, -1, -2) / math.sqrt(d_k); E = np.exp(S - S.max(-1, keepdims=True)); "
             "W = E / E.sum(-1, keepdims=True); return W @ V, W"])
def vectorised(t):
    """Many queries at once: random (m, n, d_k, d_v) in float64 and float32, a batch axis,
    a single query, and (hidden) logits near 800."""
    for i in range(3):
        r = t.rng(f"random-{i}")
        m, n, d_k, d_v = _dims(r, 2, 6), _dims(r, 2, 7), _dims(r, 2, 8), _dims(r, 1, 5)
        dt = np.float32 if i == 1 else np.float64
        yield case(f"random, m={m} queries, n={n} keys, d_k={d_k}, {np.dtype(dt).name}",
                   _normal(r, (m, d_k), dt), _normal(r, (n, d_k), dt), _normal(r, (n, d_v), dt))
    r = t.rng("batch")
    yield case("a leading batch axis, shapes (2, 3, 4), (2, 5, 4), (2, 5, 3)",
               _normal(r, (2, 3, 4)), _normal(r, (2, 5, 4)), _normal(r, (2, 5, 3)))
    r = t.rng("one-query")
    yield case("one query, shape (1, 6)", _normal(r, (1, 6)), _normal(r, (4, 6)), _normal(r, (4, 2)))
    if t.hidden:
        r = t.rng("hidden-square")
        yield case("hidden: d_v == d_k, m == n", _normal(r, (5, 5)), _normal(r, (5, 5)),
                   _normal(r, (5, 5)))
        r = t.rng("large")
        q, k = _large_logits(r, (), 3, 4)
        yield case("logits near 800 (exp overflows without the max)", q, k, _normal(r, (4, 2)))


# ------------------------------------------------------------------------ intermediate

@spec(f"{P}.sdpa", entry="scaled_dot_product_attention",
      kernel=f"{M}.scaled_dot_product_attention", framework="torch",
      mutants=[f"{M}.sdpa_no_scaling", f"{M}.sdpa_scale_ignored", f"{M}.sdpa_wrong_axis",
               f"{M}.sdpa_mask_after_softmax", f"{M}.sdpa_mask_inverted",
               f"{M}.sdpa_bool_mask_added", f"{M}.sdpa_nan_rows", f"{M}.sdpa_no_max_subtraction"],
      hints=["Logits: q @ k.transpose(-2, -1) times the scale (1/sqrt(d_k) when scale is None). "
             "Softmax over dim=-1, then multiply by v.",
             "Masks act on the logits, before the softmax. A bool mask: masked_fill(~mask, -inf) "
             "(True = may attend). A float mask: add it.",
             "A row whose logits are all -inf gives NaN from torch.softmax; set those rows' "
             "weights to 0: w.masked_fill(torch.isneginf(s).all(-1, keepdim=True), 0.0)."])
def sdpa(t):
    """Batched SDPA against the reference (equal to F.scaled_dot_product_attention): no mask,
    boolean masks (full and key-padding, broadcast), additive masks with -inf, explicit
    scale, fully masked rows (output 0), float64 and float32, and (hidden) logits near 800."""
    def qkv(r, dt=np.float64):
        B, H, Lq, Lk = _dims(r, 1, 2), _dims(r, 1, 3), _dims(r, 1, 5), _dims(r, 2, 6)
        d_k, d_v = _dims(r, 2, 8), _dims(r, 1, 5)
        return (_normal(r, (B, H, Lq, d_k), dt), _normal(r, (B, H, Lk, d_k), dt),
                _normal(r, (B, H, Lk, d_v), dt))

    for i, dt in enumerate([np.float64, np.float32]):
        r = t.rng(f"plain-{i}")
        q, k, v = qkv(r, dt)
        yield case(f"no mask, q {q.shape}, k {k.shape}, v {v.shape}, {np.dtype(dt).name}", q, k, v)
    r = t.rng("bool-full")
    q, k, v = qkv(r)
    yield case(f"bool mask (Lq, Lk) = {q.shape[2], k.shape[2]}, True = may attend", q, k, v,
               attn_mask=_mask(r, (q.shape[2], k.shape[2])))
    r = t.rng("key-padding")
    q, k, v = qkv(r, np.float32)
    B, Lk = q.shape[0], k.shape[2]
    keep = np.arange(Lk)[None, :] < r.integers(1, Lk + 1, size=(B, 1))
    yield case(f"key padding mask (B, 1, 1, Lk) = {(B, 1, 1, Lk)}, float32", q, k, v,
               attn_mask=keep[:, None, None, :])
    r = t.rng("additive")
    q, k, v = qkv(r)
    Lq, Lk = q.shape[2], k.shape[2]
    bias = r.normal(size=(Lq, Lk))
    bias[~_mask(r, (Lq, Lk))] = -np.inf
    yield case("additive float mask: O(1) biases and some -inf", q, k, v, attn_mask=bias)
    r = t.rng("scale")
    q, k, v = qkv(r)
    yield case("explicit scale=0.3, no mask", q, k, v, scale=0.3)
    r = t.rng("scale-mask")
    q, k, v = qkv(r)
    yield case("explicit scale=1.7 with a bool mask", q, k, v, scale=1.7,
               attn_mask=_mask(r, (q.shape[2], k.shape[2])))
    r = t.rng("empty-bool")
    q, k, v = _normal(r, (1, 2, 3, 4)), _normal(r, (1, 2, 5, 4)), _normal(r, (1, 2, 5, 3))
    m = _mask(r, (3, 5))
    m[1] = False
    yield case("bool mask whose row 1 is all False (fully masked: output 0)", q, k, v, attn_mask=m)
    if t.hidden:
        r = t.rng("empty-additive")
        q, k, v = _normal(r, (2, 1, 4, 3)), _normal(r, (2, 1, 4, 3)), _normal(r, (2, 1, 4, 2))
        bias = np.zeros((4, 4))
        bias[2] = -np.inf
        bias[0, 3] = -np.inf
        yield case("additive mask whose row 2 is all -inf (output 0)", q, k, v, attn_mask=bias)
        for i in range(2):
            r = t.rng(f"hidden-{i}")
            q, k, v = qkv(r, [np.float64, np.float32][i])
            yield case(f"hidden random with bool mask, q {q.shape}", q, k, v,
                       attn_mask=_mask(r, (q.shape[2], k.shape[2])))
        r = t.rng("large")
        q, k = _large_logits(r, (1, 2), 3, 4)
        yield case("logits near 800 (exp overflows without the max)", q, k, _normal(r, (1, 2, 4, 2)))


@spec(f"{P}.additive", entry="additive_attention", kernel=f"{M}.additive_attention",
      framework="torch",
      mutants=[f"{M}.additive_transposed_weights", f"{M}.additive_no_tanh",
               f"{M}.additive_wrong_axis", f"{M}.additive_lens_ignored", f"{M}.additive_off_by_one",
               f"{M}.additive_mask_after_softmax", f"{M}.additive_big_negative"],
      hints=["Project first: q @ W_q.T is (B, Lq, h) and k @ W_k.T is (B, Lk, h). Add them with "
             "unsqueeze(2) / unsqueeze(1) so they broadcast to (B, Lq, Lk, h).",
             "tanh of that sum, then @ w_v gives the (B, Lq, Lk) logits. Key j of batch b is padding "
             "when j >= valid_lens[b]: build that with torch.arange(Lk) and broadcasting.",
             "Fill padding logits with -inf BEFORE the softmax over dim=-1; rows with no real key "
             "(valid_lens[b] == 0) must end up all-zero, not NaN and not uniform."])
def additive(t):
    """Bahdanau scoring with valid lengths: random shapes, square projections (d = h), no
    valid_lens, float32, and (hidden) a batch with valid length 0 and full lengths."""
    def make(r, B, Lq, Lk, d_q, d_k, d_v, h, dt=np.float64):
        return (_normal(r, (B, Lq, d_q), dt), _normal(r, (B, Lk, d_k), dt), _normal(r, (B, Lk, d_v), dt))

    def weights(r, h, d_q, d_k, dt=np.float64):
        return ((r.normal(size=(h, d_q)) / np.sqrt(d_q)).astype(dt),
                (r.normal(size=(h, d_k)) / np.sqrt(d_k)).astype(dt), _normal(r, h, dt))

    for i in range(2):
        r = t.rng(f"random-{i}")
        B, Lq, Lk = _dims(r, 2, 3), _dims(r, 1, 4), _dims(r, 3, 6)
        d_q, d_k, d_v, h = _dims(r, 2, 5), _dims(r, 2, 5), _dims(r, 1, 4), _dims(r, 3, 6)
        lens = r.integers(1, Lk + 1, size=B)
        lens[0] = r.integers(1, Lk)  # at least one batch with padding
        dt = np.float32 if i else np.float64
        yield case(f"B={B}, Lq={Lq}, Lk={Lk}, d_q={d_q}, d_k={d_k}, h={h}, valid_lens={lens.tolist()}, "
                   f"{np.dtype(dt).name}", *make(r, B, Lq, Lk, d_q, d_k, d_v, h, dt), lens,
                   *weights(r, h, d_q, d_k, dt))
    r = t.rng("square")
    lens = np.array([2, 4, 3])
    yield case("square projections d_q = d_k = h = 4, valid_lens [2, 4, 3]",
               *make(r, 3, 3, 4, 4, 4, 2, 4), lens, *weights(r, 4, 4, 4))
    r = t.rng("no-lens")
    yield case("valid_lens=None (every key real)", *make(r, 2, 3, 5, 3, 2, 2, 4), None,
               *weights(r, 4, 3, 2))
    if t.hidden:
        r = t.rng("zero-len")
        yield case("a batch with valid length 0 (weights and context all 0)",
                   *make(r, 3, 2, 4, 3, 3, 2, 5), np.array([3, 0, 1]), *weights(r, 5, 3, 3))
        r = t.rng("full-len")
        yield case("valid lengths equal to Lk", *make(r, 2, 2, 5, 4, 4, 3, 4), np.array([5, 5]),
                   *weights(r, 4, 4, 4))


@spec(f"{P}.score_stats", entry="score_stats", kernel=f"{M}.score_stats",
      mutants=[f"{M}.stats_no_scaling", f"{M}.stats_scale_by_dk", f"{M}.stats_wrong_axis",
               f"{M}.stats_variance_before_scaling"],
      hints=["S = scale * (q @ k.T) has shape (m, n); the variance is S.var() over all entries.",
             "The softmax runs along axis 1 (the keys); take each row's max weight, then the mean "
             "over the rows.",
             "Return np.array([S.var(), W.max(axis=1).mean()]) with W the row-wise softmax of S "
             "and scale = 1/math.sqrt(d_k) when None."])
def score_stats(t):
    """Logit variance and mean top weight for standard-normal q, k with d_k in {4, 16, 64}:
    default scale, scale=1.0 (unscaled) and scale=0.5."""
    for d_k in (4, 16, 64):
        r = t.rng(f"default-{d_k}")
        m, n = _dims(r, 3, 8), _dims(r, 3, 8)
        yield case(f"d_k={d_k}, m={m}, n={n}, scale=None", _normal(r, (m, d_k)), _normal(r, (n, d_k)))
    r = t.rng("unscaled")
    yield case("d_k=16, scale=1.0 (unscaled)", _normal(r, (6, 16)), _normal(r, (5, 16)), scale=1.0)
    if t.hidden:
        r = t.rng("half")
        yield case("d_k=8, scale=0.5", _normal(r, (4, 8)), _normal(r, (7, 8)), scale=0.5)
        r = t.rng("hidden-default")
        yield case("d_k=32, scale=None", _normal(r, (5, 32)), _normal(r, (6, 32)))


# ---------------------------------------------------------------------------- advanced

@spec(f"{P}.backward", entry="sdpa_backward", kernel=f"{M}.sdpa_backward", framework="torch",
      mutants=[f"{M}.backward_no_scaling", f"{M}.backward_diagonal_softmax",
               f"{M}.backward_wrong_axis", f"{M}.backward_dv_not_transposed",
               f"{M}.backward_dk_not_transposed", f"{M}.backward_mask_ignored"],
      hints=["Recompute the forward first (S, masked, then P = softmax(S)). O = P V gives "
             "dV = P^T dO and dP = dO V^T.",
             "Softmax VJP, row by row: dS = P * (dP - (dP * P).sum(-1, keepdim=True)).",
             "S = scale * Q K^T, so dQ = scale * dS @ K and dK = scale * dS^T @ Q "
             "(transpose(-2, -1) on the last two axes)."])
def backward(t):
    """dQ, dK, dV against autograd-equivalent formulas: Lq != Lk and Lq == Lk, bool masks,
    explicit scale, float64 and float32, batch and head axes."""
    def make(r, lead, Lq, Lk, d_k, d_v, dt=np.float64):
        return (_normal(r, lead + (Lq, d_k), dt), _normal(r, lead + (Lk, d_k), dt),
                _normal(r, lead + (Lk, d_v), dt), _normal(r, lead + (Lq, d_v), dt))

    r = t.rng("rect")
    yield case("Lq=3, Lk=5, d_k=4, d_v=2, no mask", *make(r, (2,), 3, 5, 4, 2))
    r = t.rng("square")
    yield case("Lq = Lk = 4, d_k = 3, d_v = 3, heads (2, 2)", *make(r, (2, 2), 4, 4, 3, 3))
    r = t.rng("mask")
    yield case("Lq = Lk = 5 with a bool mask", *make(r, (1,), 5, 5, 4, 3),
               attn_mask=_mask(r, (5, 5), 0.5))
    r = t.rng("f32")
    yield case("float32, Lq = Lk = 4, scale=0.7", *make(r, (2,), 4, 4, 6, 2, np.float32), scale=0.7)
    if t.hidden:
        r = t.rng("hidden-mask")
        yield case("Lq=2, Lk=6, bool mask, scale=1.3", *make(r, (2, 1), 2, 6, 3, 4),
                   attn_mask=_mask(r, (2, 1, 2, 6), 0.5), scale=1.3)
        r = t.rng("hidden-single")
        yield case("a single query, Lq=1, Lk=4", *make(r, (), 1, 4, 5, 2))


@spec(f"{P}.causal_mask", entry="causal_mask", kernel=f"{M}.causal_mask", framework="torch",
      mutants=[f"{M}.mask_always_top_left", f"{M}.mask_offset_sign", f"{M}.mask_inverted",
               f"{M}.mask_strict"],
      hints=["torch.ones(Lq, Lk, dtype=torch.bool).tril(diagonal=...) keeps the entries on and "
             "below a diagonal; diagonal=0 is the top-left alignment.",
             "Bottom-right: the last query must see every key, so the diagonal moves right by "
             "Lk - Lq."])
def causal_mask(t):
    """Both alignments for Lq < Lk, Lq == Lk and (hidden) Lq > Lk, where bottom-right
    leaves the first rows fully masked."""
    sizes = [(3, 5), (1, 6), (4, 4), (2, 7)]
    for (Lq, Lk), align in zip(sizes, ["bottom-right", "bottom-right", "bottom-right", "top-left"]):
        yield case(f"Lq={Lq}, Lk={Lk}, align={align!r}", Lq, Lk, align)
    yield case("Lq=3, Lk=5, default align", 3, 5)
    if t.hidden:
        r = t.rng("hidden")
        Lq, Lk = _dims(r, 2, 5), _dims(r, 6, 9)
        for align in ("top-left", "bottom-right"):
            yield case(f"Lq={Lq}, Lk={Lk}, align={align!r}", Lq, Lk, align)
        for align in ("top-left", "bottom-right"):
            yield case(f"Lq=5 > Lk=3, align={align!r}", 5, 3, align)


@spec(f"{P}.kv_cache", entry="cached_causal_attention", kernel=f"{M}.cached_causal_attention",
      framework="torch",
      mutants=[f"{M}.cached_top_left", f"{M}.cached_no_mask", f"{M}.cached_mask_inverted",
               f"{M}.cached_no_scaling"],
      hints=["The Lq queries are the newest tokens: query i sits at absolute position Lk - Lq + i.",
             "Logits q @ k^T / sqrt(d_k); mask them with causal_mask(Lq, Lk, 'bottom-right') "
             "(masked_fill(~mask, -inf)), softmax over the keys, then @ v."])
def kv_cache(t):
    """New queries against a cache of Lk keys: one decoding step (Lq=1), several new tokens,
    Lq == Lk (plain causal self-attention), float32 and head axes."""
    def make(r, lead, Lq, Lk, d, dt=np.float64):
        return (_normal(r, lead + (Lq, d), dt), _normal(r, lead + (Lk, d), dt),
                _normal(r, lead + (Lk, d), dt))

    r = t.rng("step")
    yield case("one decoding step: Lq=1, Lk=6", *make(r, (2,), 1, 6, 4))
    r = t.rng("chunk")
    yield case("three new tokens: Lq=3, Lk=7, heads (2, 2)", *make(r, (2, 2), 3, 7, 5))
    r = t.rng("full")
    yield case("no cache yet: Lq = Lk = 4", *make(r, (1,), 4, 4, 3))
    if t.hidden:
        r = t.rng("f32")
        yield case("float32, Lq=2, Lk=5", *make(r, (3,), 2, 5, 8, np.float32))
        r = t.rng("hidden")
        yield case("Lq=4, Lk=9", *make(r, (), 4, 9, 6))

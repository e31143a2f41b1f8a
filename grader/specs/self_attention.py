"""Specs of the self-attention topic: self-attention of one sequence (basic), causal
self-attention and sinusoidal positional encoding (intermediate), the permutation-equivariance
gap, key-tiled attention with an online softmax and KV-cache decoding (advanced).

Inputs keep the logits O(1) (weights scaled by 1/sqrt(d_in), tokens standard normal), so a
missing 1/sqrt(d_k) really changes the answer; d_k >= 2 everywhere for the same reason.
Only the cases named "huge logits" push logits past exp()'s overflow point, on purpose.
"""
import numpy as np

from grader.checks import case, spec

FLOATS = (np.float64, np.float32)


def projections(r, d_model, d_k, d_v, dtype=np.float64, gain=1.0):
    """Query/key/value weights (nn.Linear layout, (d_out, d_in)) and biases, as case kwargs."""
    def w(o):
        return (gain * r.normal(size=(o, d_model)) / np.sqrt(d_model)).astype(dtype)

    def b(o):
        return (0.5 * r.normal(size=o)).astype(dtype)

    return dict(w_q=w(d_k), b_q=b(d_k), w_k=w(d_k), b_k=b(d_k), w_v=w(d_v), b_v=b(d_v))


def tokens(r, shape, dtype=np.float64):
    return r.normal(size=shape).astype(dtype)


def random_dims(r):
    """(batch shape, L, d_model, d_k, d_v) with d_k != d_model most of the time."""
    batch = () if r.random() < 0.25 else (int(r.integers(1, 4)),)
    L, d_model, d_k, d_v = (int(n) for n in r.integers([2, 2, 2, 1], [8, 9, 9, 7]))
    return batch, L, d_model, d_k, d_v


def dname(dtype):
    return np.dtype(dtype).name


# --- basic ----------------------------------------------------------------------------------

@spec("self-attention.self_attention", entry="self_attention", kernel="self_attention.self_attention",
      mutants=["self_attention.sa_no_scaling", "self_attention.sa_wrong_axis",
               "self_attention.sa_transposed_weights", "self_attention.sa_bias_dropped",
               "self_attention.sa_no_max_subtraction", "self_attention.sa_scale_by_d_model",
               "self_attention.sa_weights_transposed"],
      hints=["Project first: q = x @ w_q.T + b_q, and likewise k and v. The weights follow "
             "nn.Linear, shape (d_out, d_in).",
             "The logits are q @ k^T divided by sqrt(d_k), where d_k = q.shape[-1]. Use "
             "k.swapaxes(-1, -2) so leading batch axes are left alone.",
             "Softmax over the *keys* (the last axis), subtracting each row's max first; then "
             "out = weights @ v. Return (out, weights).",
             "s = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1]); "
             "e = np.exp(s - s.max(-1, keepdims=True)); a = e / e.sum(-1, keepdims=True); "
             "return a @ v, a"])
def self_attention_cases(t):
    """Single-head self-attention (out, weights): random shapes with and without a batch axis,
    float64 and float32, square projections, one token, huge logits that overflow a softmax
    without max-subtraction; hidden: d_k much smaller than d_model, more square cases."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        batch, L, d_model, d_k, d_v = random_dims(r)
        dt = FLOATS[i % 2]
        yield case(f"random, x {batch + (L, d_model)}, d_k={d_k}, d_v={d_v}, {dname(dt)}",
                   tokens(r, batch + (L, d_model), dt), **projections(r, d_model, d_k, d_v, dt))
    r = t.rng("square")
    yield case("square projections d_k = d_v = d_model = 4, x (2, 5, 4)",
               tokens(r, (2, 5, 4)), **projections(r, 4, 4, 4))
    r = t.rng("one-token")
    yield case("a single token, x (1, 3)", tokens(r, (1, 3)), **projections(r, 3, 2, 2))
    r = t.rng("huge")
    yield case("huge logits (|q.k| / sqrt(d_k) in the thousands), x (2, 5, 4)",
               tokens(r, (2, 5, 4)), **projections(r, 4, 4, 3, gain=60.0))
    if t.hidden:
        r = t.rng("narrow-dk")
        yield case("d_k = 2 much smaller than d_model = 16, x (3, 6, 16)",
                   tokens(r, (3, 6, 16)), **projections(r, 16, 2, 3))
        r = t.rng("square-32")
        yield case("square projections, float32, x (2, 7, 6)",
                   tokens(r, (2, 7, 6), np.float32), **projections(r, 6, 6, 6, np.float32))


# --- intermediate: causal -----------------------------------------------------------------

def left_padding(r, B, L):
    """A key padding mask (True = padding) that left-pads sequence 0 by two tokens, so its
    first two queries see no key at all, and pads random tails of the others."""
    pad = np.zeros((B, L), dtype=bool)
    pad[0, :2] = True
    for b in range(1, B):
        pad[b, L - int(r.integers(0, L // 2 + 1)):] = True
    return pad


@spec("self-attention.causal", entry="causal_self_attention",
      kernel="self_attention.causal_self_attention",
      mutants=["self_attention.causal_no_scaling", "self_attention.causal_mask_after_softmax",
               "self_attention.causal_mask_inverted", "self_attention.causal_diagonal_masked",
               "self_attention.causal_sees_next_token", "self_attention.causal_padding_inverted",
               "self_attention.causal_nan_rows", "self_attention.causal_large_negative_fill"],
      hints=["Build the (L, L) boolean matrix of allowed pairs: query i may look at key j when "
             "j <= i (np.tril). Combine it with ~key_padding_mask[..., None, :].",
             "Mask *before* the softmax: set forbidden logits to -inf, so they get weight exactly 0 "
             "and each row still sums to 1.",
             "A row with every key forbidden is all -inf: its max is -inf and the softmax is NaN. "
             "The convention here is zero weights and a zero output: subtract 0 instead of an "
             "infinite max, and divide by 1 where the row sum is 0.",
             "s = np.where(allowed, s, -np.inf); m = s.max(-1, keepdims=True); "
             "e = np.exp(s - np.where(np.isfinite(m), m, 0)); d = e.sum(-1, keepdims=True); "
             "a = e / np.where(d > 0, d, 1)"])
def causal_cases(t):
    """Causal self-attention with an optional key padding mask: random shapes, float64 and
    float32; the same sequence with its future tokens replaced (earlier outputs must not move);
    right and left padding, including queries that see no key (zero weights, zero output)."""
    for i in range(3):
        r = t.rng(f"random-{i}")
        batch, L, d_model, d_k, d_v = random_dims(r)
        dt = FLOATS[i % 2]
        yield case(f"random, x {batch + (L, d_model)}, d_k={d_k}, {dname(dt)}, no padding",
                   tokens(r, batch + (L, d_model), dt), **projections(r, d_model, d_k, d_v, dt))
    r = t.rng("future")
    x, p = tokens(r, (2, 6, 5)), projections(r, 5, 3, 4)
    y = x.copy()
    y[:, 3:] = 3.0 * r.normal(size=(2, 3, 5))
    yield case("x (2, 6, 5)", x, **p)
    yield case("the same x with tokens 3..5 replaced (outputs 0..2 must not change)", y, **p)
    r = t.rng("right-pad")
    pad = np.array([[False] * 5 + [True] * 2, [False] * 7])
    yield case("right padding: last 2 tokens of sequence 0 are padding, x (2, 7, 4)",
               tokens(r, (2, 7, 4)), **projections(r, 4, 3, 3), key_padding_mask=pad)
    r = t.rng("left-pad")
    yield case("left padding: queries 0 and 1 of sequence 0 see no key, x (3, 6, 4)",
               tokens(r, (3, 6, 4)), **projections(r, 4, 2, 3), key_padding_mask=left_padding(r, 3, 6))
    if t.hidden:
        for i in range(2):
            r = t.rng(f"hidden-pad-{i}")
            B, L = int(r.integers(1, 4)), int(r.integers(3, 9))
            dt = FLOATS[i % 2]
            yield case(f"random left/right padding, x ({B}, {L}, 6), {dname(dt)}",
                       tokens(r, (B, L, 6), dt), **projections(r, 6, 4, 2, dt),
                       key_padding_mask=left_padding(r, B, L))
        r = t.rng("unbatched-pad")
        yield case("no batch axis, x (5, 3), key 2 is padding", tokens(r, (5, 3)),
                   **projections(r, 3, 3, 3), key_padding_mask=np.array([False, False, True, False, False]))


# --- intermediate: positional encoding ---------------------------------------------------------

@spec("self-attention.positional_encoding", entry="sinusoidal_positional_encoding",
      kernel="self_attention.sinusoidal_positional_encoding",
      mutants=["self_attention.pe_concatenated_halves", "self_attention.pe_sin_cos_swapped",
               "self_attention.pe_exponent_per_column", "self_attention.pe_positions_from_one",
               "self_attention.pe_inverted_frequencies"],
      hints=["Build a column of positions 0..L-1 (shape (L, 1)) and a row of frequencies (shape "
             "(1, d_model)); broadcasting gives the (L, d_model) table of angles.",
             "Columns 2i and 2i+1 share one frequency, 1 / base^(2i / d_model); for column j that "
             "is i = j // 2.",
             "Even columns take the sine of the angle, odd columns the cosine; np.where on "
             "np.arange(d_model) % 2 == 0 picks between them.",
             "pos = np.arange(L)[:, None]; two_i = 2 * (np.arange(d) // 2); "
             "angle = pos / base ** (two_i / d); "
             "return np.where(np.arange(d) % 2 == 0, np.sin(angle), np.cos(angle))"])
def positional_encoding_cases(t):
    """Sinusoidal positional encoding tables: several lengths and widths (odd widths too), the
    paper's base 10000 and smaller bases; hidden: long tables and random sizes."""
    yield case("L=10, d_model=8", 10, 8)
    yield case("L=1, d_model=4 (position 0 only)", 1, 4)
    yield case("odd width: L=7, d_model=5", 7, 5)
    yield case("L=20, d_model=6, base=100", 20, 6, base=100.0)
    if t.hidden:
        yield case("L=128, d_model=32", 128, 32)
        r = t.rng("random-size")
        L, d = int(r.integers(2, 60)), int(r.integers(3, 40))
        yield case(f"random size L={L}, d_model={d}", L, d)
        yield case("L=3, d_model=1", 3, 1)


# --- advanced: permutation equivariance ---------------------------------------------------------

def scrambling_permutation(r, L):
    """A random permutation that is not its own inverse (so perm and argsort(perm) differ)."""
    while True:
        p = r.permutation(L)
        if not np.array_equal(p[p], np.arange(L)):
            return p


@spec("self-attention.equivariance", entry="equivariance_gap", kernel="self_attention.equivariance_gap",
      mutants=["self_attention.eq_pe_moves_with_tokens", "self_attention.eq_inverse_permutation",
               "self_attention.eq_outputs_not_permuted", "self_attention.eq_no_scaling"],
      hints=["Write f(z) = self-attention of z + pe (pe = 0 when it is None). Reorder the tokens "
             "with x[..., perm, :] so the batch axes stay put.",
             "The position codes stay with the positions: the permuted input is x[..., perm, :] + pe, "
             "not (x + pe)[..., perm, :].",
             "Equivariance says f(x_p)[i] = f(x)[perm[i]], so compare with f(x)[..., perm, :]; the gap "
             "of each token is the Euclidean norm over the last axis.",
             "diff = f(x[..., perm, :] + pe) - f(x + pe)[..., perm, :]; "
             "return np.sqrt((diff ** 2).sum(-1))"])
def equivariance_cases(t):
    """Per-token equivariance gap of single-head self-attention: without a positional encoding
    (the gap is 0 up to rounding) and with a learned (random) position table (it is not),
    float64 and float32, with and without a batch axis."""
    for i, (use_pe, dt) in enumerate([(False, np.float64), (True, np.float64), (False, np.float32),
                                      (True, np.float32)]):
        r = t.rng(f"random-{i}")
        batch, L, d_model, d_k, d_v = random_dims(r)
        L = max(L, 4)
        pe = (0.8 * r.normal(size=(L, d_model))).astype(dt) if use_pe else None
        yield case(f"x {batch + (L, d_model)}, {'with' if use_pe else 'no'} positional table, {dname(dt)}",
                   tokens(r, batch + (L, d_model), dt), scrambling_permutation(r, L), pe,
                   **projections(r, d_model, d_k, d_v, dt))
    if t.hidden:
        r = t.rng("cycle")
        L = 6
        yield case("cyclic shift by one, x (2, 6, 5), with positional table",
                   tokens(r, (2, L, 5)), np.roll(np.arange(L), 1), 0.8 * r.normal(size=(L, 5)),
                   **projections(r, 5, 3, 4))
        r = t.rng("no-pe-big")
        yield case("no positional table, x (3, 9, 8)", tokens(r, (3, 9, 8)),
                   scrambling_permutation(r, 9), None, **projections(r, 8, 4, 4))


# --- advanced: memory-efficient attention --------------------------------------------------------

@spec("self-attention.tiled", entry="tiled_attention", kernel="self_attention.tiled_attention",
      mutants=["self_attention.tiled_acc_not_rescaled", "self_attention.tiled_den_not_rescaled",
               "self_attention.tiled_no_max_subtraction", "self_attention.tiled_no_scaling",
               "self_attention.tiled_drops_last_block", "self_attention.tiled_per_block_softmax"],
      hints=["Keep three running quantities per query: the max m of the logits seen so far "
             "(start at -inf), the denominator l (start at 0) and the output accumulator acc "
             "(zeros, (..., Lq, d_v)).",
             "For each tile of keys k[..., j:j+block_size, :]: compute its logits, the new max "
             "m_new = max(m, tile max), and r = exp(m - m_new), the factor that re-bases old sums.",
             "Update l = r * l + rowsum(exp(s - m_new)) and acc = r * acc + exp(s - m_new) @ v_tile; "
             "after the last tile return acc / l. Slicing past the end gives the short last tile.",
             "for j in range(0, Lk, block_size): s = q @ k[..., j:j+B, :].swapaxes(-1, -2) * scale; "
             "m_new = np.maximum(m, s.max(-1, keepdims=True)); p = np.exp(s - m_new); "
             "r = np.exp(m - m_new); l = r * l + p.sum(-1, keepdims=True); "
             "acc = r * acc + p @ v[..., j:j+B, :]; m = m_new"])
def tiled_cases(t):
    """Key-tiled attention with an online softmax: several tiles with a shorter last one,
    float64 and float32, tiles of one key, one tile covering every key, keys whose logits grow
    from tile to tile, huge growing logits that overflow exp() without a running max; hidden: a
    long float32 case."""
    for i in range(3):
        r = t.rng(f"random-{i}")
        B, Lq, d_k, d_v, block = (int(n) for n in r.integers([1, 1, 2, 1, 2], [4, 7, 9, 7, 5]))
        Lk = block * int(r.integers(2, 5)) + int(r.integers(1, block))  # a short last tile
        dt = FLOATS[i % 2]
        yield case(f"q ({B}, {Lq}, {d_k}), Lk={Lk}, block_size={block}, {dname(dt)}",
                   tokens(r, (B, Lq, d_k), dt), tokens(r, (B, Lk, d_k), dt),
                   tokens(r, (B, Lk, d_v), dt), block)
    r = t.rng("growing")
    k = np.linspace(0.3, 3.0, 11)[:, None] * r.normal(size=(11, 4))
    yield case("logits grow from tile to tile: Lk=11, block_size=3", tokens(r, (5, 4)), k,
               tokens(r, (11, 2)), 3)
    r = t.rng("block-one")
    yield case("block_size=1, q (2, 3, 3), Lk=5", tokens(r, (2, 3, 3)), tokens(r, (2, 5, 3)),
               tokens(r, (2, 5, 2)), 1)
    r = t.rng("one-tile")
    yield case("block_size=16 >= Lk=6 (a single tile)", tokens(r, (4, 3)), tokens(r, (6, 3)),
               tokens(r, (6, 3)), 16)
    r = t.rng("huge")
    q, k = 0.5 + np.abs(r.normal(size=(3, 4))), 0.5 + np.abs(r.normal(size=(20, 4)))
    k *= np.linspace(1.0, 2000.0, 20)[:, None]  # positive logits growing past 1000 (q.k >= 1)
    yield case("huge logits growing from tile to tile: Lk=20, block_size=3", q, k,
               tokens(r, (20, 2)), 3)
    if t.hidden:
        r = t.rng("long")
        yield case("Lq=9, Lk=50, block_size=8, float32", tokens(r, (2, 9, 8), np.float32),
                   tokens(r, (2, 50, 8), np.float32), tokens(r, (2, 50, 5), np.float32), 8)


# --- advanced: KV cache ------------------------------------------------------------------------

@spec("self-attention.kv_cache", entry="kv_cache_attention", kernel="self_attention.kv_cache_attention",
      mutants=["self_attention.kv_top_left_mask", "self_attention.kv_no_mask",
               "self_attention.kv_mask_inverted", "self_attention.kv_cache_not_updated",
               "self_attention.kv_new_first", "self_attention.kv_no_scaling"],
      hints=["Project only the new tokens. Append their keys and values *after* the cached ones "
             "(np.concatenate along axis -2) and return the grown caches.",
             "The new tokens are at absolute positions T..T+n-1, where T is the cache length. New "
             "token i may attend to keys 0..T+i.",
             "The (n, T+n) allowed matrix is np.arange(T+n)[None, :] <= T + np.arange(n)[:, None]; "
             "mask with -inf before the softmax, then weights @ v_all.",
             "q = x_new @ w_q.T + b_q; k_all = np.concatenate([k_cache, x_new @ w_k.T + b_k], -2); "
             "likewise v_all; s = q @ k_all.swapaxes(-1, -2) / math.sqrt(d_k); mask; softmax; "
             "return a @ v_all, k_all, v_all"])
def kv_cache_cases(t):
    """One incremental decoding step: random cache lengths T and chunk sizes n (single-token
    steps and chunks of several tokens), an empty cache (prefill), float64 and float32; the
    output and both grown caches are compared."""
    for i in range(3):
        r = t.rng(f"random-{i}")
        B, T, n, d_model, d_k, d_v = (int(v) for v in r.integers([1, 1, 2, 2, 2, 1], [4, 7, 5, 8, 7, 6]))
        dt = FLOATS[i % 2]
        yield case(f"cache T={T}, n={n} new tokens, B={B}, d_model={d_model}, {dname(dt)}",
                   tokens(r, (B, n, d_model), dt), tokens(r, (B, T, d_k), dt), tokens(r, (B, T, d_v), dt),
                   **projections(r, d_model, d_k, d_v, dt))
    r = t.rng("prefill")
    yield case("empty cache (T=0, prefill of n=4 tokens)", tokens(r, (2, 4, 5)), np.zeros((2, 0, 3)),
               np.zeros((2, 0, 2)), **projections(r, 5, 3, 2))
    r = t.rng("one-step")
    yield case("a single new token after T=5, no batch axis", tokens(r, (1, 4)), tokens(r, (5, 3)),
               tokens(r, (5, 4)), **projections(r, 4, 3, 4))
    if t.hidden:
        r = t.rng("long-cache")
        yield case("cache T=12, n=3 new tokens, float32", tokens(r, (2, 3, 6), np.float32),
                   tokens(r, (2, 12, 4), np.float32), tokens(r, (2, 12, 3), np.float32),
                   **projections(r, 6, 4, 3, np.float32))

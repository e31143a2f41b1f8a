"""Specs of the multi-head attention topic.

basic: split_heads, merge_heads.  intermediate: attention (masked, over heads),
multi_head_attention (equal to nn.MultiheadAttention), mha_cost.  advanced: cross_attention
(kdim/vdim), grouped_query_attention, masked_heads_attention (head ablation).

Inputs are drawn so that logits stay O(1) (inputs ~ N(0, 1), weights ~ N(0, 1/fan_in)):
scaled and unscaled attention then differ clearly.  Every case draws from its own
``t.rng(name)`` generator.
"""
import numpy as np

from grader.checks import case, spec

A = "multi-head-attention"
F64, F32 = np.float64, np.float32


def _dt(i):
    """float64 for even case numbers, float32 for odd ones."""
    return F32 if i % 2 else F64


def _w(r, out, inp, dtype):
    """A weight matrix (out, in) ~ N(0, 1/in): keeps projections O(1)."""
    return (r.normal(size=(out, inp)) / np.sqrt(inp)).astype(dtype)


def _b(r, n, dtype):
    return (0.5 * r.normal(size=n)).astype(dtype)


def _x(r, shape, dtype, scale=1.0):
    return (scale * r.normal(size=shape)).astype(dtype)


def _mha_weights(r, E, dtype, kdim=None, vdim=None):
    """Keyword arguments W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o."""
    return dict(W_q=_w(r, E, E, dtype), W_k=_w(r, E, kdim or E, dtype), W_v=_w(r, E, vdim or E, dtype),
                W_o=_w(r, E, E, dtype), b_q=_b(r, E, dtype), b_k=_b(r, E, dtype), b_v=_b(r, E, dtype),
                b_o=_b(r, E, dtype))


def _padding(r, B, Lk, full_row=None):
    """A key padding mask (B, Lk): each row pads a random suffix, keeping >= 1 key, unless
    ``full_row`` names a batch element whose keys are all padded."""
    m = np.zeros((B, Lk), dtype=bool)
    for b in range(B):
        m[b, int(r.integers(1, Lk + 1)):] = True
    if full_row is not None:
        m[full_row] = True
    return m


# ----------------------------------------------------------------------------- basic


@spec(f"{A}.split_heads", entry="split_heads", kernel="multi_head_attention.split_heads",
      framework="torch",
      mutants=["multi_head_attention.split_view_instead_of_permute",
               "multi_head_attention.split_interleaved",
               "multi_head_attention.split_head_axis_not_moved"],
      hints=["The output is (B, H, L, d_k) with d_k = E // H, and head h holds the features "
             "h*d_k:(h+1)*d_k of every position.",
             "x.reshape(B, H, L, d_k) has the right shape but the wrong contents: memory is read "
             "in (B, L, E) order. First cut the feature axis: (B, L, H, d_k).",
             "return x.reshape(B, L, H, E // H).transpose(1, 2)"])
def split_heads(t):
    """split_heads(x, num_heads): (B, L, E) -> (B, H, L, d_k); random shapes with H, d_k >= 2
    and L != H, float64 and float32, plus the edge cases H = 1 and d_k = 1."""
    for i in range(4):
        r = t.rng(f"split-{i}")
        B, H, d = int(r.integers(1, 4)), int(r.integers(2, 5)), int(r.integers(2, 5))
        L = H + int(r.integers(1, 4))
        yield case(f"x of shape ({B}, {L}, {H * d}), H={H}, {np.dtype(_dt(i)).name}",
                   _x(r, (B, L, H * d), _dt(i)), H)
    r = t.rng("split-one-head")
    yield case("one head (H = 1, d_k = E)", _x(r, (2, 3, 4), F64), 1)
    r = t.rng("split-width-one")
    yield case("one feature per head (d_k = 1)", _x(r, (1, 5, 3), F64), 3)
    if t.hidden:
        r = t.rng("split-hidden")
        yield case("x of shape (3, 7, 12), H=4", _x(r, (3, 7, 12), F64), 4)


@spec(f"{A}.merge_heads", entry="merge_heads", kernel="multi_head_attention.merge_heads",
      framework="torch",
      mutants=["multi_head_attention.merge_view_instead_of_permute",
               "multi_head_attention.merge_interleaved",
               "multi_head_attention.merge_mean"],
      hints=["merge_heads must undo split_heads: merge_heads(split_heads(x, H)) == x.",
             "Bring the head axis next to the feature axis first: (B, H, L, d_k) -> (B, L, H, d_k). "
             "Only then flatten the last two axes.",
             "return x.transpose(1, 2).reshape(B, L, H * d_k)  # reshape, not view: the transpose is not contiguous"])
def merge_heads(t):
    """merge_heads(x): (B, H, L, d_k) -> (B, L, H * d_k); random shapes with H, d_k >= 2,
    float64 and float32, plus one head and d_k = 1."""
    for i in range(4):
        r = t.rng(f"merge-{i}")
        B, H, d, L = (int(r.integers(1, 4)), int(r.integers(2, 5)), int(r.integers(2, 5)),
                      int(r.integers(2, 6)))
        yield case(f"x of shape ({B}, {H}, {L}, {d}), {np.dtype(_dt(i)).name}",
                   _x(r, (B, H, L, d), _dt(i)))
    r = t.rng("merge-one-head")
    yield case("one head", _x(r, (2, 1, 3, 4), F64))
    r = t.rng("merge-width-one")
    yield case("one feature per head (d_k = 1)", _x(r, (1, 3, 4, 1), F64))
    if t.hidden:
        r = t.rng("merge-hidden")
        yield case("x of shape (3, 4, 6, 3)", _x(r, (3, 4, 6, 3), F64))


# ----------------------------------------------------------------------------- intermediate


@spec(f"{A}.attention", entry="attention", kernel="multi_head_attention.attention",
      framework="torch",
      mutants=["multi_head_attention.attention_no_scaling",
               "multi_head_attention.attention_scale_by_d_k",
               "multi_head_attention.attention_wrong_axis",
               "multi_head_attention.attention_mask_after_softmax",
               "multi_head_attention.attention_mask_inverted",
               "multi_head_attention.attention_no_max_subtraction",
               "multi_head_attention.attention_nan_rows"],
      hints=["logits = q @ k.transpose(-2, -1) / sqrt(d_k) has shape (B, H, Lq, Lk); each query's "
             "row is normalised over the keys.",
             "Block pairs by filling their logits with -inf *before* the softmax "
             "(logits.masked_fill(mask, float('-inf'))): True means blocked.",
             "A row with every key blocked is softmax of all -inf = NaN. Set the weights of such rows "
             "to 0: w.masked_fill(mask.all(dim=-1, keepdim=True), 0.0)."])
def attention_cases(t):
    """attention(q, k, v, mask): no mask, key-padding masks (B, 1, 1, Lk), a causal (Lq, Lk)
    mask, a full (B, H, Lq, Lk) mask with a fully masked row; float64 and float32; hidden: large
    logits in float32 (overflow without max-subtraction)."""
    def qkv(r, B, H, Lq, Lk, d, dv, dtype, scale=1.0):
        return (_x(r, (B, H, Lq, d), dtype, scale), _x(r, (B, H, Lk, d), dtype),
                _x(r, (B, H, Lk, dv), dtype))

    for i in range(2):
        r = t.rng(f"attn-plain-{i}")
        B, H, Lq, Lk = 2, int(r.integers(2, 4)), int(r.integers(2, 5)), int(r.integers(3, 6))
        yield case(f"no mask, Lq={Lq}, Lk={Lk}, {np.dtype(_dt(i)).name}",
                   *qkv(r, B, H, Lq, Lk, 4, 3, _dt(i), 1.5))
    for i in range(2):
        r = t.rng(f"attn-pad-{i}")
        B, H, Lq, Lk = 3, 2, 3, 5
        yield case(f"key padding mask (B, 1, 1, Lk), {np.dtype(_dt(i)).name}",
                   *qkv(r, B, H, Lq, Lk, 4, 2, _dt(i), 1.5), mask=_padding(r, B, Lk)[:, None, None, :])
    r = t.rng("attn-causal")
    causal = np.triu(np.ones((4, 4), dtype=bool), 1)
    yield case("causal mask (Lq, Lk) = (4, 4)", *qkv(r, 2, 2, 4, 4, 4, 3, F64, 1.5), mask=causal)
    r = t.rng("attn-full-row")
    m = r.random((1, 2, 3, 4)) < 0.4
    m[..., 3] = False
    m[0, 1, 2, :] = True  # head 1, query 2: every key blocked
    yield case("per-head mask with one fully masked row (expect weights 0, output 0)",
               *qkv(r, 1, 2, 3, 4, 3, 2, F64, 1.5), mask=m)
    if t.hidden:
        r = t.rng("attn-large")
        k = _x(r, (1, 2, 4, 16), F32)
        yield case("large logits in float32 (q = 40 k)", 40 * k, k, _x(r, (1, 2, 4, 3), F32))
        r = t.rng("attn-hidden-mask")
        yield case("key padding mask, d_k = 8", *qkv(r, 2, 3, 2, 6, 8, 4, F64, 1.2),
                   mask=_padding(r, 2, 6)[:, None, None, :])


def _mha_case(r, name, B, Lq, Lk, H, d, dtype, *, self_attn=False, batch_first=True,
              pad=False, full_row=None, causal=False, average=True):
    E = H * d
    q = _x(r, (B, Lq, E), dtype)
    k = q if self_attn else _x(r, (B, Lk, E), dtype)
    v = q if self_attn else _x(r, (B, Lk, E), dtype)
    if not batch_first:
        q, k, v = (np.ascontiguousarray(a.transpose(1, 0, 2)) for a in (q, k, v))
    kw = _mha_weights(r, E, dtype)
    if pad:
        kw["key_padding_mask"] = _padding(r, B, Lk, full_row)
    if causal:
        kw["attn_mask"] = np.triu(np.ones((Lq, Lk), dtype=bool), 1)
    return case(name, q, k, v, H, **kw, batch_first=batch_first, average_attn_weights=average)


@spec(f"{A}.forward", entry="multi_head_attention", kernel="multi_head_attention.multi_head_attention",
      framework="torch",
      mutants=["multi_head_attention.mha_transposed_weights",
               "multi_head_attention.mha_bias_dropped",
               "multi_head_attention.mha_view_instead_of_permute",
               "multi_head_attention.mha_interleaved_heads",
               "multi_head_attention.mha_no_scaling",
               "multi_head_attention.mha_scale_by_embed_dim",
               "multi_head_attention.mha_ignores_batch_first",
               "multi_head_attention.mha_padding_mask_inverted",
               "multi_head_attention.mha_mask_after_softmax",
               "multi_head_attention.mha_nan_rows",
               "multi_head_attention.mha_weights_summed"],
      hints=["Project with F.linear(x, W, b) (that is x @ W.T + b), split each projection into heads, "
             "call your attention(), merge the heads and apply the output projection.",
             "With batch_first=False the inputs are (L, B, E): transpose(0, 1) them on the way in and "
             "the output on the way out. The returned weights are always batch first.",
             "Combine the masks into one boolean (B, 1, Lq, Lk) tensor: "
             "key_padding_mask[:, None, None, :] | attn_mask. The scale is 1/sqrt(E // H).",
             "Averaged weights are w.mean(dim=1) over the head axis of (B, H, Lq, Lk)."])
def forward(t):
    """multi_head_attention(...) against the reference (itself tested against
    nn.MultiheadAttention): self- and cross-attention, batch_first both ways, key_padding_mask,
    a causal attn_mask, averaged and per-head weights, float64 and float32; hidden: a batch
    element whose keys are all padded."""
    yield _mha_case(t.rng("fwd-self"), "self-attention, batch_first, averaged weights",
                    2, 4, 4, 2, 3, F64, self_attn=True)
    yield _mha_case(t.rng("fwd-cross-32"), "cross-attention Lq=3, Lk=5, per-head weights, float32",
                    2, 3, 5, 3, 2, F32, average=False)
    yield _mha_case(t.rng("fwd-seq-first"), "batch_first=False with key_padding_mask",
                    3, 3, 4, 2, 4, F64, batch_first=False, pad=True)
    yield _mha_case(t.rng("fwd-causal"), "causal attn_mask, self-attention, per-head weights",
                    2, 5, 5, 4, 2, F64, self_attn=True, causal=True, average=False)
    yield _mha_case(t.rng("fwd-pad-32"), "key_padding_mask, float32, averaged weights",
                    2, 2, 6, 2, 4, F32, pad=True)
    if t.hidden:
        yield _mha_case(t.rng("fwd-full-row"), "all keys of batch element 1 padded (expect out == b_o)",
                        3, 3, 4, 2, 3, F64, pad=True, full_row=1, average=False)
        yield _mha_case(t.rng("fwd-hidden"), "batch_first=False, causal and padding, averaged",
                        2, 4, 4, 3, 3, F64, batch_first=False, pad=True, causal=True)


@spec(f"{A}.cost", entry="mha_cost", kernel="multi_head_attention.mha_cost",
      mutants=["multi_head_attention.cost_no_bias",
               "multi_head_attention.cost_macs",
               "multi_head_attention.cost_projections_only",
               "multi_head_attention.cost_times_heads",
               "multi_head_attention.cost_query_length_everywhere"],
      hints=["Parameters: four (E, E) matrices and four (E,) biases. Return "
             "{\"params\": P, \"flops\": F} with Python ints.",
             "A matrix product (n, k) @ (k, m) costs 2 n k m FLOPs. Count the four projections "
             "(Q and the output at L_q rows, K and V at L_k rows), then Q K^T and weights @ V.",
             "Across all heads, Q K^T costs H * 2 L_q L_k d_k = 2 L_q L_k E per batch element: "
             "the number of heads cancels."])
def cost(t):
    """mha_cost(E, H, L_q, L_k, batch) -> {"params": ..., "flops": ...} as exact integers, for
    random sizes with L_q != L_k and H > 1."""
    # A dict of Python ints, not a tuple: the grader's wire format currently turns 0-d arrays
    # (what a tuple of ints becomes) into shape (1,), so a tuple would fail in trusted grading.
    for i in range(3):
        r = t.rng(f"cost-{i}")
        H, d = int(r.integers(2, 9)), int(r.integers(4, 65))
        Lq = int(r.integers(1, 50))
        Lk = Lq + int(r.integers(1, 50))
        B = int(r.integers(1, 5))
        yield case(f"E={H * d}, H={H}, L_q={Lq}, L_k={Lk}, batch={B}", H * d, H, Lq, Lk, batch=B)
    yield case("BERT-base-sized layer: E=768, H=12, L=512", 768, 12, 512, 512)
    if t.hidden:
        yield case("E=64, H=8, L_q=10, L_k=30, batch=2", 64, 8, 10, 30, batch=2)


# ----------------------------------------------------------------------------- advanced


def _cross_case(r, name, B, Lq, Lk, H, d, kdim, vdim, dtype, pad=False, full_row=None):
    E = H * d
    kw = _mha_weights(r, E, dtype, kdim, vdim)
    if pad:
        kw["key_padding_mask"] = _padding(r, B, Lk, full_row)
    return case(name, _x(r, (B, Lq, E), dtype), _x(r, (B, Lk, kdim), dtype),
                _x(r, (B, Lk, vdim), dtype), H, **kw)


@spec(f"{A}.cross", entry="cross_attention", kernel="multi_head_attention.cross_attention",
      framework="torch",
      mutants=["multi_head_attention.cross_scale_by_kdim",
               "multi_head_attention.cross_scale_by_embed_dim",
               "multi_head_attention.cross_transposed_weights",
               "multi_head_attention.cross_swapped_kv",
               "multi_head_attention.cross_bias_dropped",
               "multi_head_attention.cross_padding_mask_inverted",
               "multi_head_attention.cross_nan_rows"],
      hints=["W_k is (E, kdim): F.linear(key, W_k, b_k) maps the kdim key features to E. "
             "After the three projections everything is as in ordinary multi-head attention.",
             "The scale is 1/sqrt(E // H): what matters is the width of the projected keys each "
             "head compares, not kdim.",
             "A query whose keys are all padded: replace the NaN weights by 0 (torch.nan_to_num), "
             "so its output is b_o."])
def cross(t):
    """cross_attention(x, key, value, ...) with kdim != vdim != E, kdim == vdim != E, and
    kdim == vdim == E; key_padding_mask; float64 and float32; hidden: a fully padded element."""
    yield _cross_case(t.rng("cross-0"), "kdim=5, vdim=3, E=6", 2, 3, 4, 2, 3, 5, 3, F64)
    yield _cross_case(t.rng("cross-1"), "kdim=7, vdim=2, E=8, padding, float32", 2, 2, 5, 4, 2, 7, 2,
                      F32, pad=True)
    yield _cross_case(t.rng("cross-2"), "kdim = vdim = 10, E=4", 1, 4, 3, 2, 2, 10, 10, F64)
    yield _cross_case(t.rng("cross-3"), "kdim = vdim = E = 6 (plain multi-head attention)",
                      2, 3, 3, 3, 2, 6, 6, F64, pad=True)
    if t.hidden:
        yield _cross_case(t.rng("cross-full"), "every key of batch element 0 padded (expect out == b_o)",
                          2, 2, 4, 2, 3, 4, 5, F64, pad=True, full_row=0)


def _gqa_case(r, name, B, Lq, Lk, H, G, d, dtype, causal=True, shared=False):
    E = H * d
    x_kv = _x(r, (B, Lk, E), dtype)
    x_q = np.ascontiguousarray(x_kv[:, Lk - Lq:]) if shared else _x(r, (B, Lq, E), dtype)
    return case(name, x_q, x_kv, H, G, W_q=_w(r, E, E, dtype), W_k=_w(r, G * d, E, dtype),
                W_v=_w(r, G * d, E, dtype), W_o=_w(r, E, E, dtype), causal=causal)


@spec(f"{A}.gqa", entry="grouped_query_attention", kernel="multi_head_attention.grouped_query_attention",
      framework="torch",
      mutants=["multi_head_attention.gqa_round_robin_groups",
               "multi_head_attention.gqa_top_left_causal",
               "multi_head_attention.gqa_causal_blocks_diagonal",
               "multi_head_attention.gqa_no_scaling",
               "multi_head_attention.gqa_view_instead_of_permute"],
      hints=["Project K and V to G heads only (W_k is (G*d_k, E)), then give every query head its "
             "group's key/value head.",
             "Query head h belongs to group h // (H // G): k.repeat_interleave(H // G, dim=1) builds "
             "exactly that; k.repeat(1, H // G, 1, 1) does not.",
             "The queries are the last Lq of Lk positions: block key j for query i when "
             "j > i + (Lk - Lq), i.e. torch.ones(Lq, Lk, dtype=torch.bool).triu(Lk - Lq + 1)."])
def gqa(t):
    """grouped_query_attention(x_q, x_kv, H, G, ...): G between 1 and H, causal self-attention
    (Lq = Lk), decoding with a KV cache (Lq < Lk, bottom-right causal mask), one new token, and
    no mask; float64 and float32."""
    yield _gqa_case(t.rng("gqa-self"), "H=4, G=2, causal self-attention, L=5", 2, 5, 5, 4, 2, 3, F64,
                    shared=True)
    yield _gqa_case(t.rng("gqa-cache"), "H=6, G=3, 3 new queries over a cache of 7, float32",
                    1, 3, 7, 6, 3, 2, F32, shared=True)
    yield _gqa_case(t.rng("gqa-mqa"), "H=4, G=1 (multi-query), one new token over 6 keys",
                    2, 1, 6, 4, 1, 3, F64)
    yield _gqa_case(t.rng("gqa-nomask"), "H=4, G=4 (plain multi-head), no causal mask",
                    2, 3, 4, 4, 4, 2, F64, causal=False)
    if t.hidden:
        yield _gqa_case(t.rng("gqa-hidden"), "H=8, G=2, 2 new queries over a cache of 6",
                        2, 2, 6, 8, 2, 2, F64)


def _gate_case(r, name, B, L, H, d, gates, dtype):
    E = H * d
    return case(name, _x(r, (B, L, E), dtype), H, **_mha_weights(r, E, dtype),
                head_mask=np.asarray(gates, dtype=dtype))


@spec(f"{A}.head_mask", entry="masked_heads_attention", kernel="multi_head_attention.masked_heads_attention",
      framework="torch",
      mutants=["multi_head_attention.gated_on_queries",
               "multi_head_attention.gated_interleaved",
               "multi_head_attention.gated_rescaled",
               "multi_head_attention.gated_bias_dropped"],
      hints=["Compute every head as usual; multiply head h's attention output (B, L, d_k) by "
             "head_mask[h] before merging the heads.",
             "head_mask[:, None, None] broadcasts against (B, H, L, d_k). The output bias b_o is added "
             "once, after W_o, whatever the gates are.",
             "Do not rescale the surviving heads: an ablated head simply contributes nothing."])
def head_mask(t):
    """masked_heads_attention(x, H, ..., head_mask): all heads kept (equals nn.MultiheadAttention),
    one head removed, several removed, fractional gates; float64 and float32."""
    yield _gate_case(t.rng("gate-all"), "all gates 1", 2, 4, 3, 2, [1, 1, 1], F64)
    yield _gate_case(t.rng("gate-one"), "head 1 of 4 removed", 2, 5, 4, 2, [1, 0, 1, 1], F64)
    yield _gate_case(t.rng("gate-two"), "heads 0 and 2 of 3 removed, float32", 1, 4, 3, 3, [0, 1, 0], F32)
    if t.hidden:
        yield _gate_case(t.rng("gate-frac"), "fractional gates", 2, 3, 2, 4, [0.25, 0.0], F64)
        yield _gate_case(t.rng("gate-none"), "every head removed (expect out == b_o)", 1, 3, 2, 2, [0, 0], F64)

"""Known-wrong multi-head attention implementations: the mistakes made most often.

Each public function has the signature of its reference kernel and makes exactly one
mistake.  The private helpers below are the reference computation with switches, so each
mutant reads as "the right thing, except ...".
"""
import math

import torch
import torch.nn.functional as F

from grader.checks import mutant

# ----------------------------------------------------------------------------- helpers


def _split(x, H, how="ok"):
    """(B, L, E) -> (B, H, L, d) correctly, or with one of the classic layout mistakes."""
    B, L, E = x.shape
    d = E // H
    if how == "view":  # reinterpret memory as (B, H, L, d): mixes positions and features
        return x.reshape(B, H, L, d)
    if how == "interleave":  # head h takes features h, h+H, h+2H, ...
        return x.reshape(B, L, d, H).permute(0, 3, 1, 2)
    return x.reshape(B, L, H, d).transpose(1, 2)


def _merge(x, how="ok"):
    """(B, H, L, d) -> (B, L, H*d) correctly, or with the mistake matching ``_split``."""
    B, H, L, d = x.shape
    if how == "view":
        return x.reshape(B, L, H * d)
    if how == "interleave":
        return x.permute(0, 2, 3, 1).reshape(B, L, d * H)
    return x.transpose(1, 2).reshape(B, L, H * d)


def _lin(x, W, b, transposed=False):
    return (x @ W if transposed else x @ W.T) + (0 if b is None else b)


def _attend(q, k, v, mask=None, *, scale="sqrt", axis=-1, after=False, invert=False,
            nan_rows=False, manual_exp=False):
    d = q.shape[-1]
    logits = q @ k.transpose(-2, -1)
    logits = logits / {"sqrt": math.sqrt(d), "none": 1.0, "d": float(d)}[scale]
    if mask is not None and invert:
        mask = ~mask
    if mask is not None and not after:
        logits = logits.masked_fill(mask, float("-inf"))
    if manual_exp:
        e = torch.exp(logits)
        w = e / e.sum(dim=axis, keepdim=True)
    else:
        w = torch.softmax(logits, dim=axis)
    if mask is not None and after:
        w = w.masked_fill(mask, 0.0)
    elif mask is not None and not nan_rows:
        w = w.masked_fill(mask.expand_as(w).all(dim=-1, keepdim=True), 0.0)
    return w @ v, w


# ----------------------------------------------------------------------------- basic: split / merge


@mutant("split by reshaping straight to (B, H, L, d_k)",
        "view/reshape only reinterprets memory: each 'head' gets a block of whole positions "
        "instead of a slice of every position's features; split to (B, L, H, d_k) then transpose(1, 2)")
def split_view_instead_of_permute(x, num_heads):
    return _split(x, num_heads, "view")


@mutant("split with interleaved features (wrong head order)",
        "head h received features h, h+H, h+2H, ... instead of the contiguous block "
        "h*d_k:(h+1)*d_k that nn.MultiheadAttention uses")
def split_interleaved(x, num_heads):
    return _split(x, num_heads, "interleave")


@mutant("split without moving the head axis",
        "the result is (B, L, H, d_k); attention needs (B, H, L, d_k) so each head sees all positions")
def split_head_axis_not_moved(x, num_heads):
    B, L, E = x.shape
    return x.reshape(B, L, num_heads, E // num_heads)


@mutant("merge by reshaping (B, H, L, d_k) straight to (B, L, E)",
        "without transpose(1, 2) first, the rows of the result mix positions from one head "
        "instead of concatenating all heads at one position")
def merge_view_instead_of_permute(x):
    return _merge(x, "view")


@mutant("merge in interleaved order (wrong head-concatenation order)",
        "features of the heads were interleaved (h0[0], h1[0], ...) instead of concatenated "
        "head after head, so W_o reads the wrong columns")
def merge_interleaved(x):
    return _merge(x, "interleave")


@mutant("heads averaged instead of concatenated",
        "the output has width d_k, not H * d_k: merging concatenates the heads")
def merge_mean(x):
    return x.mean(dim=1)


# ----------------------------------------------------------------------------- intermediate: attention


@mutant("attention without the 1/sqrt(d_k) scaling",
        "logits grow with d_k, so the softmax is too peaked")
def attention_no_scaling(q, k, v, mask=None):
    return _attend(q, k, v, mask, scale="none")


@mutant("attention scaled by 1/d_k instead of 1/sqrt(d_k)",
        "the weights come out too flat; the dot product's standard deviation grows like sqrt(d_k)")
def attention_scale_by_d_k(q, k, v, mask=None):
    return _attend(q, k, v, mask, scale="d")


@mutant("softmax over the queries axis",
        "softmax(dim=-2) normalises each key's column; every query's weights must sum to 1 over the keys (dim=-1)")
def attention_wrong_axis(q, k, v, mask=None):
    return _attend(q, k, v, mask, axis=-2)


@mutant("mask applied after the softmax",
        "zeroing weights after normalising leaves rows that no longer sum to 1; fill the logits with -inf first")
def attention_mask_after_softmax(q, k, v, mask=None):
    return _attend(q, k, v, mask, after=True)


@mutant("mask inverted",
        "True in the mask means 'blocked' here (the nn.MultiheadAttention convention), "
        "but your code attends only to the blocked keys")
def attention_mask_inverted(q, k, v, mask=None):
    return _attend(q, k, v, mask, invert=True)


@mutant("softmax without max-subtraction",
        "exp() of large logits overflows to inf and the weights become NaN")
def attention_no_max_subtraction(q, k, v, mask=None):
    return _attend(q, k, v, mask, manual_exp=True)


@mutant("fully masked rows left as NaN",
        "a query whose keys are all blocked gives softmax of all -inf = NaN; this course's "
        "convention is weights 0 and output 0 for such rows")
def attention_nan_rows(q, k, v, mask=None):
    return _attend(q, k, v, mask, nan_rows=True)


# ----------------------------------------------------------------------------- intermediate: forward


def _mha(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o, key_padding_mask=None,
         attn_mask=None, batch_first=True, average_attn_weights=True, *, layout="ok", transposed=False,
         no_bias=False, ignore_batch_first=False, pad_inverted=False, attend=None, reduce="mean"):
    if not batch_first and not ignore_batch_first:
        query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
    if no_bias:
        b_q = b_k = b_v = b_o = None
    B, Lq, E = query.shape
    Lk = key.shape[1]
    H = num_heads
    q = _split(_lin(query, W_q, b_q, transposed), H, layout)
    k = _split(_lin(key, W_k, b_k, transposed), H, layout)
    v = _split(_lin(value, W_v, b_v, transposed), H, layout)
    mask = torch.zeros(B, 1, Lq, Lk, dtype=torch.bool)
    if key_padding_mask is not None:
        kpm = ~key_padding_mask if pad_inverted else key_padding_mask
        mask = mask | kpm[:, None, None, :]
    if attn_mask is not None:
        mask = mask | attn_mask
    o, w = (attend or _attend)(q, k, v, mask)
    out = _lin(_merge(o, layout), W_o, b_o, transposed)
    if not batch_first and not ignore_batch_first:
        out = out.transpose(0, 1)
    if average_attn_weights:
        w = w.mean(dim=1) if reduce == "mean" else w.sum(dim=1)
    return out, w


@mutant("projection weights used untransposed (x @ W instead of x @ W.T)",
        "nn.Linear and nn.MultiheadAttention store W as (out_features, in_features) and compute x @ W.T + b")
def mha_transposed_weights(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None, attn_mask=None, batch_first=True, average_attn_weights=True):
    return _mha(**locals(), transposed=True)


@mutant("biases dropped", "the projections must add b_q, b_k, b_v and the output bias b_o")
def mha_bias_dropped(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None, attn_mask=None, batch_first=True, average_attn_weights=True):
    return _mha(**locals(), no_bias=True)


@mutant("heads split and merged with a plain reshape (view instead of permute)",
        "reshaping (B, L, E) straight to (B, H, L, d_k) mixes positions and features; "
        "reshape to (B, L, H, d_k) and transpose(1, 2)")
def mha_view_instead_of_permute(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None, attn_mask=None, batch_first=True, average_attn_weights=True):
    return _mha(**locals(), layout="view")


@mutant("heads taken from interleaved features (wrong head-concatenation order)",
        "head h must own features h*d_k:(h+1)*d_k of each projection, as in nn.MultiheadAttention")
def mha_interleaved_heads(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None, attn_mask=None, batch_first=True, average_attn_weights=True):
    return _mha(**locals(), layout="interleave")


@mutant("multi-head attention without the 1/sqrt(d_k) scaling",
        "the logits of each head must be divided by sqrt(d_k) = sqrt(E / H)")
def mha_no_scaling(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None, attn_mask=None, batch_first=True, average_attn_weights=True):
    return _mha(**locals(), attend=lambda q, k_, v, m: _attend(q, k_, v, m, scale="none"))


@mutant("multi-head attention scaled by 1/sqrt(E) instead of 1/sqrt(d_k)",
        "each head's dot products have d_k = E / H terms, so the scale is 1/sqrt(E / H)")
def mha_scale_by_embed_dim(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None, attn_mask=None, batch_first=True, average_attn_weights=True):
    # q is (B, H, Lq, d_k): dividing it by sqrt(H) makes the total scale 1/sqrt(H d_k) = 1/sqrt(E)
    return _mha(**locals(), attend=lambda q, k_, v, m: _attend(q / math.sqrt(q.shape[1]), k_, v, m))


@mutant("batch_first ignored",
        "with batch_first=False the inputs are (L, B, E): swap the first two axes before attending "
        "and swap them back at the end")
def mha_ignores_batch_first(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None, attn_mask=None, batch_first=True, average_attn_weights=True):
    return _mha(**locals(), ignore_batch_first=True)


@mutant("key_padding_mask inverted",
        "True in key_padding_mask marks a padded key that must be ignored")
def mha_padding_mask_inverted(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None, attn_mask=None, batch_first=True, average_attn_weights=True):
    return _mha(**locals(), pad_inverted=True)


@mutant("mask applied after the softmax",
        "blocked keys must get -inf logits before the softmax so the allowed weights renormalise")
def mha_mask_after_softmax(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None, attn_mask=None, batch_first=True, average_attn_weights=True):
    return _mha(**locals(), attend=lambda q, k_, v, m: _attend(q, k_, v, m, after=True))


@mutant("fully masked rows left as NaN (nn.MultiheadAttention's behaviour)",
        "this course's convention is weights 0 and attention output 0 for a query with no allowed key")
def mha_nan_rows(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None, attn_mask=None, batch_first=True, average_attn_weights=True):
    return _mha(**locals(), attend=lambda q, k_, v, m: _attend(q, k_, v, m, nan_rows=True))


@mutant("attention weights summed over heads instead of averaged",
        "average_attn_weights=True returns the mean over the H heads, so each row still sums to 1")
def mha_weights_summed(query, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None, attn_mask=None, batch_first=True, average_attn_weights=True):
    return _mha(**locals(), reduce="sum")


# ----------------------------------------------------------------------------- intermediate: cost


def _cost(E, H, Lq, Lk, B, *, bias=True, macs=False, attention=True, per_head=False, self_len=False):
    params = 4 * E * E + (4 * E if bias else 0)
    proj = 2 * B * E * E * (4 * Lq if self_len else 2 * Lq + 2 * Lk)
    attn = 4 * B * Lq * Lk * E * (H if per_head else 1) if attention else 0
    flops = proj + attn
    return {"params": params, "flops": flops // 2 if macs else flops}


@mutant("parameters counted without the biases", "each of the four projections has an E-vector bias: 4E more")
def cost_no_bias(embed_dim, num_heads, L_q, L_k, batch=1):
    return _cost(embed_dim, num_heads, L_q, L_k, batch, bias=False)


@mutant("multiply-adds counted instead of FLOPs", "a multiply-add is two FLOPs, by this exercise's rule")
def cost_macs(embed_dim, num_heads, L_q, L_k, batch=1):
    return _cost(embed_dim, num_heads, L_q, L_k, batch, macs=True)


@mutant("the two attention matrix products left out", "Q K^T and weights @ V cost 2 B L_q L_k E FLOPs each")
def cost_projections_only(embed_dim, num_heads, L_q, L_k, batch=1):
    return _cost(embed_dim, num_heads, L_q, L_k, batch, attention=False)


@mutant("attention FLOPs multiplied by the number of heads",
        "each head works on d_k = E / H features, so the H heads together cost the same as one head of width E")
def cost_times_heads(embed_dim, num_heads, L_q, L_k, batch=1):
    return _cost(embed_dim, num_heads, L_q, L_k, batch, per_head=True)


@mutant("key and value projections counted at the query length",
        "K and V are projected from the L_k key positions, not the L_q queries")
def cost_query_length_everywhere(embed_dim, num_heads, L_q, L_k, batch=1):
    return _cost(embed_dim, num_heads, L_q, L_k, batch, self_len=True)


# ----------------------------------------------------------------------------- advanced: cross-attention


def _cross(x, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o, key_padding_mask=None, *,
           scale=None, transposed=False, swap_kv=False, no_bias=False, pad_inverted=False,
           nan_rows=False):
    if no_bias:
        b_q = b_k = b_v = b_o = None
    if swap_kv:
        key, value = value, key
        W_k, W_v, b_k, b_v = W_v, W_k, b_v, b_k
    H = num_heads
    q = _split(_lin(x, W_q, b_q, transposed), H)
    k = _split(_lin(key, W_k, b_k, transposed), H)
    v = _split(_lin(value, W_v, b_v, transposed), H)
    if scale is not None:  # replace 1/sqrt(d_k) by 1/sqrt(scale)
        q = q * math.sqrt(q.shape[-1]) / math.sqrt(scale)
    mask = None
    if key_padding_mask is not None:
        mask = (~key_padding_mask if pad_inverted else key_padding_mask)[:, None, None, :]
    o, w = _attend(q, k, v, mask, nan_rows=nan_rows)
    return _lin(_merge(o), W_o, b_o, transposed), w


@mutant("cross-attention scaled by 1/sqrt(kdim)",
        "the scale depends on the per-head query/key width d_k = E / H after projection, not on the raw key width")
def cross_scale_by_kdim(x, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None):
    return _cross(**locals(), scale=key.shape[-1])


@mutant("cross-attention scaled by 1/sqrt(E) instead of 1/sqrt(d_k)",
        "each head compares d_k = E / H features, so the scale is 1/sqrt(E / H)")
def cross_scale_by_embed_dim(x, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None):
    return _cross(**locals(), scale=x.shape[-1])


@mutant("projection weights used untransposed (x @ W instead of x @ W.T)",
        "W_k is (E, kdim) and W_v is (E, vdim): they map kdim/vdim features to E, as key @ W_k.T")
def cross_transposed_weights(x, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None):
    return _cross(**locals(), transposed=True)


@mutant("keys and values swapped",
        "keys (with W_k) decide where to look, values (with W_v) are what is read out")
def cross_swapped_kv(x, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None):
    return _cross(**locals(), swap_kv=True)


@mutant("biases dropped", "add b_q, b_k, b_v in the projections and b_o after the output projection")
def cross_bias_dropped(x, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None):
    return _cross(**locals(), no_bias=True)


@mutant("key_padding_mask inverted", "True in key_padding_mask marks a padded key that must be ignored")
def cross_padding_mask_inverted(x, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None):
    return _cross(**locals(), pad_inverted=True)


@mutant("fully padded rows left as NaN",
        "this course's convention: a query with every key padded gets weights 0 and output b_o")
def cross_nan_rows(x, key, value, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
        key_padding_mask=None):
    return _cross(**locals(), nan_rows=True)


# ----------------------------------------------------------------------------- advanced: grouped-query attention


def _gqa(x_q, x_kv, num_heads, num_kv_heads, W_q, W_k, W_v, W_o, causal=True, *, grouping="interleave",
         align="bottom-right", scale=True, layout="ok"):
    H, G = num_heads, num_kv_heads
    Lq, Lk = x_q.shape[1], x_kv.shape[1]
    q = _split(x_q @ W_q.T, H, layout)  # (B, H, Lq, d)
    k = _split(x_kv @ W_k.T, G, layout)  # (B, G, Lk, d)
    v = _split(x_kv @ W_v.T, G, layout)
    rep = H // G
    if grouping == "interleave":
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    else:  # head h uses kv head h % G
        k, v = k.repeat(1, rep, 1, 1), v.repeat(1, rep, 1, 1)
    logits = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1.0)
    if causal:
        diag = {"bottom-right": Lk - Lq + 1, "top-left": 1, "strict": Lk - Lq}[align]
        logits = logits.masked_fill(torch.ones(Lq, Lk, dtype=torch.bool).triu(diag), float("-inf"))
    w = torch.softmax(logits, dim=-1)
    return _merge(w @ v, layout) @ W_o.T, w


@mutant("query heads grouped round-robin (h % G) instead of in consecutive blocks (h // (H/G))",
        "k.repeat(...) tiles the key/value heads; repeat_interleave gives each block of H/G query heads one key/value head")
def gqa_round_robin_groups(x_q, x_kv, num_heads, num_kv_heads, W_q, W_k, W_v, W_o, causal=True):
    return _gqa(**locals(), grouping="repeat")


@mutant("causal mask aligned top-left",
        "with a KV cache the Lq queries are the last positions: query i may see keys j <= i + (Lk - Lq)")
def gqa_top_left_causal(x_q, x_kv, num_heads, num_kv_heads, W_q, W_k, W_v, W_o, causal=True):
    return _gqa(**locals(), align="top-left")


@mutant("causal mask that also blocks the current position",
        "a position may attend to itself: block only keys j > i + (Lk - Lq)")
def gqa_causal_blocks_diagonal(x_q, x_kv, num_heads, num_kv_heads, W_q, W_k, W_v, W_o, causal=True):
    return _gqa(**locals(), align="strict")


@mutant("grouped-query attention without the 1/sqrt(d_k) scaling",
        "each head's logits must be divided by sqrt(d_k)")
def gqa_no_scaling(x_q, x_kv, num_heads, num_kv_heads, W_q, W_k, W_v, W_o, causal=True):
    return _gqa(**locals(), scale=False)


@mutant("heads split and merged with a plain reshape (view instead of permute)",
        "reshape (B, L, H*d_k) to (B, L, H, d_k) and then transpose(1, 2)")
def gqa_view_instead_of_permute(x_q, x_kv, num_heads, num_kv_heads, W_q, W_k, W_v, W_o, causal=True):
    return _gqa(**locals(), layout="view")


# ----------------------------------------------------------------------------- advanced: head gates


def _gated(x, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o, head_mask, *, where="output",
           layout="ok", no_bias=False, rescale=False):
    if no_bias:
        b_q = b_k = b_v = b_o = None
    H = num_heads
    q = _split(_lin(x, W_q, b_q), H, layout)
    k = _split(_lin(x, W_k, b_k), H, layout)
    v = _split(_lin(x, W_v, b_v), H, layout)
    g = head_mask[:, None, None]
    if where == "query":
        q = q * g
    o, w = _attend(q, k, v)
    if where == "output":
        o = o * g
        if rescale:
            o = o * (H / head_mask.sum().clamp(min=1))
    return _lin(_merge(o, layout), W_o, b_o), w


@mutant("gate applied to the head's queries",
        "zeroing a head's queries makes its attention uniform, it does not remove the head; gate the head's output")
def gated_on_queries(x, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o, head_mask):
    return _gated(**locals(), where="query")


@mutant("gates applied to interleaved features (wrong head order)",
        "head h owns features h*d_k:(h+1)*d_k, so gate h must scale exactly that block")
def gated_interleaved(x, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o, head_mask):
    return _gated(**locals(), layout="interleave")


@mutant("surviving heads rescaled by H / (number kept)",
        "that is inverted dropout; an ablation removes a head's contribution and leaves the others unchanged")
def gated_rescaled(x, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o, head_mask):
    return _gated(**locals(), rescale=True)


@mutant("biases dropped", "add b_q, b_k, b_v in the projections and b_o once after the output projection")
def gated_bias_dropped(x, num_heads, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o, head_mask):
    return _gated(**locals(), no_bias=True)

"""Known-wrong stacked-attention implementations: the mistakes made most often."""
import math

import torch

from grader.checks import mutant
from solutions.kernels.vqa import san_layer


# --- regions_from_feature_map ------------------------------------------------------------

@mutant("reshape without moving the channel axis",
        "reshape(B, H*W, d) on a (B, d, H, W) map mixes channels of different cells into one region")
def regions_view_not_permute(fmap):
    B, d, H, W = fmap.shape
    return fmap.reshape(B, H * W, d)


@mutant("regions in column-major order",
        "region r must be cell (r // W, r % W); transposing H and W first lists the cells column by column")
def regions_column_major(fmap):
    B, d, H, W = fmap.shape
    return fmap.transpose(2, 3).reshape(B, d, H * W).transpose(1, 2)


# --- san_layer ---------------------------------------------------------------------------

@mutant("attention layer with no residual query",
        "u_next must be v_tilde + u (eq. 18); returning v_tilde alone drops the question")
def san_no_residual(v, u, W_I, W_Q, b_A, W_P, b_P):
    u_next, p = san_layer(v, u, W_I, W_Q, b_A, W_P, b_P)
    return u_next - u, p


@mutant("softmax over the batch instead of the regions",
        "each example's weights must sum to 1 over its R regions (softmax along dim=-1)")
def san_softmax_over_batch(v, u, W_I, W_Q, b_A, W_P, b_P):
    h = torch.tanh(v @ W_I.T + (u @ W_Q.T + b_A)[:, None, :])
    p = torch.softmax(h @ W_P + b_P, dim=0)
    return (p[:, :, None] * v).sum(1) + u, p


@mutant("attention without the tanh",
        "h_A = tanh(W_I v + W_Q u + b_A); without it the logits are linear and the query term cancels in the softmax")
def san_no_tanh(v, u, W_I, W_Q, b_A, W_P, b_P):
    h = v @ W_I.T + (u @ W_Q.T + b_A)[:, None, :]
    p = torch.softmax(h @ W_P + b_P, dim=-1)
    return (p[:, :, None] * v).sum(1) + u, p


@mutant("image and question projections swapped",
        "W_I projects the regions v and W_Q projects the query u, not the other way round")
def san_swapped_projections(v, u, W_I, W_Q, b_A, W_P, b_P):
    return san_layer(v, u, W_Q, W_I, b_A, W_P, b_P)


@mutant("attention bias b_A dropped",
        "the bias inside the tanh shifts where it saturates; leaving it out changes the weights")
def san_no_bias(v, u, W_I, W_Q, b_A, W_P, b_P):
    return san_layer(v, u, W_I, W_Q, torch.zeros_like(b_A), W_P, b_P)


# --- encode_question ---------------------------------------------------------------------

def _lstm_states(tokens, E, W_ih, W_hh, b_ih, b_hh, order=(0, 1, 2, 3), squash_cell=True):
    x = E[tokens]
    B, L = tokens.shape
    h = x.new_zeros(B, W_hh.shape[1])
    c = torch.zeros_like(h)
    states = []
    for t in range(L):
        chunks = (x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
        i, f, g, o = (chunks[j] for j in order)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * (torch.tanh(c) if squash_cell else c)
        states.append(h)
    return torch.stack(states, 1)


@mutant("question state read after the padding",
        "the state at the last position L-1 has run through the <pad> tokens; read it at lengths-1")
def lstm_state_after_padding(tokens, lengths, E, W_ih, W_hh, b_ih, b_hh):
    return _lstm_states(tokens, E, W_ih, W_hh, b_ih, b_hh)[:, -1]


@mutant("LSTM gates unpacked as (i, f, o, g)",
        "torch.nn.LSTM stacks the gates as input, forget, cell (g), output; the last two are swapped")
def lstm_gate_order(tokens, lengths, E, W_ih, W_hh, b_ih, b_hh):
    H = _lstm_states(tokens, E, W_ih, W_hh, b_ih, b_hh, order=(0, 1, 3, 2))
    return H[torch.arange(tokens.shape[0]), lengths - 1]


@mutant("LSTM output without tanh on the cell",
        "h_t = o * tanh(c_t); o * c_t is unbounded")
def lstm_no_cell_tanh(tokens, lengths, E, W_ih, W_hh, b_ih, b_hh):
    H = _lstm_states(tokens, E, W_ih, W_hh, b_ih, b_hh, squash_cell=False)
    return H[torch.arange(tokens.shape[0]), lengths - 1]


@mutant("question state read one word early",
        "lengths counts the real words, so the last one is at index lengths-1, not lengths-2")
def lstm_off_by_one(tokens, lengths, E, W_ih, W_hh, b_ih, b_hh):
    H = _lstm_states(tokens, E, W_ih, W_hh, b_ih, b_hh)
    return H[torch.arange(tokens.shape[0]), (lengths - 2).clamp(min=0)]


# --- stacked_attention -------------------------------------------------------------------

@mutant("stacked attention with no residual query",
        "u^k = v_tilde^k + u^(k-1) (the stacked residual); without it each layer forgets the question")
def stacked_no_residual(v, q, W_I, W_Q, b_A, W_P, b_P):
    u, maps = q, []
    for k in range(W_I.shape[0]):
        u_next, p = san_layer(v, u, W_I[k], W_Q[k], b_A[k], W_P[k], b_P[k])
        u = u_next - u
        maps.append(p)
    return u, torch.stack(maps, 1)


@mutant("every layer attends with the original question",
        "layer k must attend with the refined query u^(k-1), not with v_Q")
def stacked_query_not_refined(v, q, W_I, W_Q, b_A, W_P, b_P):
    u, maps = q, []
    for k in range(W_I.shape[0]):
        u_next, p = san_layer(v, q, W_I[k], W_Q[k], b_A[k], W_P[k], b_P[k])
        u = u + (u_next - q)
        maps.append(p)
    return u, torch.stack(maps, 1)


@mutant("the residual adds the question, not the previous query",
        "u^k = v_tilde^k + u^(k-1); adding v_Q throws away what the earlier layers found")
def stacked_residual_from_question(v, q, W_I, W_Q, b_A, W_P, b_P):
    u, maps = q, []
    for k in range(W_I.shape[0]):
        u_next, p = san_layer(v, u, W_I[k], W_Q[k], b_A[k], W_P[k], b_P[k])
        u = u_next - u + q
        maps.append(p)
    return u, torch.stack(maps, 1)


@mutant("every layer reuses the first layer's weights",
        "each layer k has its own W_I^k, W_Q^k, b_A^k, W_P^k, b_P^k: index them with k")
def stacked_shared_weights(v, q, W_I, W_Q, b_A, W_P, b_P):
    u, maps = q, []
    for _ in range(W_I.shape[0]):
        u, p = san_layer(v, u, W_I[0], W_Q[0], b_A[0], W_P[0], b_P[0])
        maps.append(p)
    return u, torch.stack(maps, 1)


# --- attention_mass ----------------------------------------------------------------------

def _covered(p, box, size, closed=False, transpose=False):
    B, R = p.shape
    G = math.isqrt(R)
    s = size / G
    start = torch.arange(G, dtype=p.dtype) * s
    box = box.to(p.dtype)
    if closed:
        cols = (box[:, None, 0] <= start + s) & (box[:, None, 2] >= start)
        rows = (box[:, None, 1] <= start + s) & (box[:, None, 3] >= start)
    else:
        cols = (box[:, None, 0] < start + s) & (box[:, None, 2] > start)
        rows = (box[:, None, 1] < start + s) & (box[:, None, 3] > start)
    covered = cols[:, :, None] & rows[:, None, :] if transpose else rows[:, :, None] & cols[:, None, :]
    return covered.reshape(B, R)


@mutant("cells indexed column-major (x and y swapped)",
        "cell index is row * G + col with the row from y; swapping them reads the transposed grid")
def mass_xy_swapped(p, boxes, target, size):
    box = boxes[torch.arange(p.shape[0]), target]
    return (p * _covered(p, box, size, transpose=True)).sum(-1)


@mutant("a box edge touching a cell border counts as overlap",
        "overlap needs positive area: use strict < and >, or a box ending at x=8 also claims the cell from 8 on")
def mass_closed_intervals(p, boxes, target, size):
    box = boxes[torch.arange(p.shape[0]), target]
    return (p * _covered(p, box, size, closed=True)).sum(-1)


@mutant("mass measured on the first object instead of the target",
        "index the boxes with target: boxes[arange(B), target]")
def mass_first_object(p, boxes, target, size):
    return (p * _covered(p, boxes[:, 0], size)).sum(-1)


@mutant("only the cell of the box centre counted",
        "a box that straddles a border covers several cells; all of them count")
def mass_centre_cell_only(p, boxes, target, size):
    B, R = p.shape
    G = math.isqrt(R)
    box = boxes[torch.arange(B), target].to(p.dtype)
    col = ((box[:, 0] + box[:, 2]) / 2 // (size / G)).long().clamp(0, G - 1)
    row = ((box[:, 1] + box[:, 3]) / 2 // (size / G)).long().clamp(0, G - 1)
    return p[torch.arange(B), row * G + col]


# --- fit_predict -------------------------------------------------------------------------

@mutant("a model that always gives the most common answer",
        "it never looks at the scene or the question: about 1 in 6 right on three balanced question types")
def fit_majority_answer(V_train, Q_train, y_train, V_test, Q_test, seed):
    top = torch.bincount(torch.as_tensor(y_train)).argmax()
    M, R = V_test.shape[0], V_test.shape[1]
    return torch.full((M,), int(top), dtype=torch.int64), torch.full((M, R), 1.0 / R)


def _uniform_layer(v, u, W_I, W_Q, b_A, W_P, b_P):
    p = torch.full(v.shape[:2], 1.0 / v.shape[1], dtype=v.dtype)
    return v.mean(1) + u, p


@mutant("attention replaced by a uniform average",
        "averaging all 16 regions loses which colour goes with which shape and place: about chance")
def fit_uniform_attention(V_train, Q_train, y_train, V_test, Q_test, seed):
    import solutions.kernels.vqa as kernels

    layer = kernels.san_layer
    kernels.san_layer = _uniform_layer  # the reference network, with every p = 1/R
    try:
        return kernels.fit_predict(V_train, Q_train, y_train, V_test, Q_test, seed)
    finally:
        kernels.san_layer = layer

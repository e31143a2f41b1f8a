"""Reference kernels for the vqa topic: stacked attention networks (Yang et al., 2016,
"Stacked Attention Networks for Image Question Answering", CVPR), on Sort-of-CLEVR scenes."""
import math

import numpy as np
import torch
import torch.nn.functional as F


def regions_from_feature_map(fmap):
    """Turn a CNN feature map into a list of region vectors, one per grid cell.

    Args:
        fmap: ``(B, d, H, W)`` float tensor (float32 or float64), channels first as a
            ``torch.nn.Conv2d`` produces it.

    Returns:
        ``(B, H * W, d)`` tensor of the same dtype; region ``r = row * W + col`` holds the
        channel vector ``fmap[b, :, row, col]`` (row-major order, as ``v_I`` in the paper).

    Raises:
        RuntimeError: (from torch) when ``fmap`` does not have four axes.

    Source: Yang et al. (2016), section 3.1: the 14 x 14 x 512 pool5 map becomes 196 region
    vectors ``v_i`` of 512 dimensions each.
    """
    B, d, H, W = fmap.shape
    return fmap.reshape(B, d, H * W).transpose(1, 2)  # (B, d, R) -> (B, R, d)


def san_layer(v, u, W_I, W_Q, b_A, W_P, b_P):
    """One stacked-attention layer: the query picks regions, their average refines the query.

    Args:
        v: region features ``(B, R, d)``, float32 or float64.
        u: query ``(B, d)`` (the question vector ``v_Q`` in the first layer), same dtype.
        W_I: ``(k, d)`` image projection; W_Q: ``(k, d)`` query projection; b_A: ``(k,)``.
        W_P: ``(k,)`` attention scoring vector; b_P: 0-d bias of the logits.

    Returns:
        ``(u_next, p)``: the refined query ``u_next = v_tilde + u`` of shape ``(B, d)`` and the
        attention weights ``p`` of shape ``(B, R)`` (non-negative, each row sums to 1 over the
        regions).

    Raises:
        RuntimeError: (from torch) when the shapes above disagree.

    Source: Yang et al. (2016), section 3.3, eqs. (15)-(18) for one layer:
    h_A = tanh(W_I v + (W_Q u + b_A)),  p = softmax(W_P h_A + b_P) over the R regions,
    v_tilde = sum_i p_i v_i,  u_next = v_tilde + u.
    """
    h = torch.tanh(v @ W_I.T + (u @ W_Q.T + b_A)[:, None, :])  # (B, R, k)
    p = torch.softmax(h @ W_P + b_P, dim=-1)  # (B, R) one logit per region
    v_tilde = (p[:, :, None] * v).sum(1)  # (B, d) attention-weighted average of the regions
    return v_tilde + u, p


def encode_question(tokens, lengths, E, W_ih, W_hh, b_ih, b_hh):
    """Encode padded questions with a one-layer LSTM; keep the state after the last word.

    Args:
        tokens: ``(B, L)`` int64 word ids, right-padded (positions ``>= lengths[b]`` are
            padding and must not influence the result).
        lengths: ``(B,)`` int64 number of real words, ``1 <= lengths[b] <= L``.
        E: ``(V, e)`` word embedding table, float32 or float64.
        W_ih: ``(4 d, e)``; W_hh: ``(4 d, d)``; b_ih, b_hh: ``(4 d,)``: the gate weights stacked
            in PyTorch's order (input i, forget f, cell g, output o), as in ``torch.nn.LSTM``.

    Returns:
        ``(B, d)`` hidden state ``h_t`` at ``t = lengths[b] - 1`` (the question vector ``v_Q``),
        dtype of ``E``; the initial state is zero.

    Raises:
        IndexError: (from torch) when a token id is outside the embedding table.

    Source: Hochreiter & Schmidhuber (1997), as written in Yang et al. (2016), section 3.2:
    i, f, o = sigma(.), g = tanh(.), c_t = f c_{t-1} + i g, h_t = o tanh(c_t), with each
    gate W_ih x_t + b_ih + W_hh h_{t-1} + b_hh.
    """
    x = E[tokens]  # (B, L, e)
    B, L = tokens.shape
    h = x.new_zeros(B, W_hh.shape[1])  # (B, d)
    c = torch.zeros_like(h)
    states = []
    for t in range(L):
        i, f, g, o = (x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)  # 4 x (B, d)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        states.append(h)
    return torch.stack(states, 1)[torch.arange(B), lengths - 1]  # (B, L, d) -> (B, d)


def stacked_attention(v, q, W_I, W_Q, b_A, W_P, b_P):
    """K stacked attention layers: each layer attends with the query refined by the one before.

    Args:
        v: region features ``(B, R, d)``, float32 or float64.
        q: question vector ``(B, d)``.
        W_I, W_Q: ``(K, k, d)``; b_A: ``(K, k)``; W_P: ``(K, k)``; b_P: ``(K,)``: the weights
            of ``san_layer`` for layers ``1..K`` stacked on a leading axis.

    Returns:
        ``(u, p)``: the final query ``u^K`` of shape ``(B, d)`` (fed to the answer classifier)
        and every layer's attention ``p`` of shape ``(B, K, R)``.

    Raises:
        RuntimeError: (from torch) when the shapes above disagree.

    Source: Yang et al. (2016), section 3.3 (stacked attention): u^0 = v_Q, then for k = 1..K
    h^k = tanh(W_I^k v + (W_Q^k u^{k-1} + b_A^k)), p^k = softmax(W_P^k h^k + b_P^k),
    u^k = sum_i p^k_i v_i + u^{k-1}.
    """
    u, maps = q, []
    for k in range(W_I.shape[0]):
        u, p = san_layer(v, u, W_I[k], W_Q[k], b_A[k], W_P[k], b_P[k])
        maps.append(p)
    return u, torch.stack(maps, 1)  # (B, d), (B, K, R)


def attention_mass(p, boxes, target, size):
    """How much attention falls on the queried object: the weight of the cells its box covers.

    Args:
        p: ``(B, R)`` attention over a square grid of ``R = G * G`` cells in row-major order
            (cell ``row * G + col``), float32 or float64.
        boxes: ``(B, n, 4)`` object boxes ``(x0, y0, x1, y1)`` in pixels (x to the right, y
            down), on a canvas of ``size x size`` pixels.
        target: ``(B,)`` int64 index of the queried object in ``boxes``.
        size: canvas side in pixels; cell ``(row, col)`` covers
            ``[col * s, (col + 1) * s) x [row * s, (row + 1) * s)`` with ``s = size / G``.

    Returns:
        ``(B,)`` tensor, dtype of ``p``: the sum of ``p`` over the cells whose square overlaps
        the target box with positive area (a box edge that only touches a cell border does
        not count).  Uniform attention gives (number of covered cells) / R.

    Raises:
        ValueError: when ``R`` is not a perfect square.

    Source: no single paper; it is the share of attention inside a ground-truth region, the
    usual way to read whether an attention map found the object a question is about
    (here the box that ``sort_of_clevr`` records for every object).
    """
    B, R = p.shape
    G = math.isqrt(R)
    if G * G != R:
        raise ValueError(f"p has {R} regions, not a square grid")
    s = size / G
    box = boxes[torch.arange(B), target].to(p.dtype)  # (B, 4)
    start = torch.arange(G, dtype=p.dtype) * s  # (G,) left / top edge of each column / row
    cols = (box[:, None, 0] < start + s) & (box[:, None, 2] > start)  # (B, G) overlapped columns
    rows = (box[:, None, 1] < start + s) & (box[:, None, 3] > start)  # (B, G) overlapped rows
    covered = rows[:, :, None] & cols[:, None, :]  # (B, G, G) row-major
    return (p * covered.reshape(B, R)).sum(-1)


class SANClassifier(torch.nn.Module):
    """A small stacked attention network that answers Sort-of-CLEVR questions.

    Regions: fixed features ``V: (B, R, f)`` (``sort_of_clevr.region_features``) go through
    ``v = tanh(Linear(V))``, as SAN projects its VGG vectors (section 3.1).  Question: the
    sum of its word embeddings through a tanh (a bag of words: the templates differ in their
    words, so order adds little here; an LSTM as in ``encode_question`` works too).  Then
    ``layers`` calls of ``san_layer`` and a linear answer classifier on ``u^K`` (softmax over answers, section 3.3).

    Args:
        n_features: f; n_words: vocabulary size (id 0 is padding); n_answers: classes.
        d: width of regions, question and attention (k = d); layers: K.
    """

    def __init__(self, n_features, n_words, n_answers, d=96, layers=1):
        super().__init__()
        self.regions = torch.nn.Linear(n_features, d)
        self.words = torch.nn.EmbeddingBag(n_words, d, mode="sum", padding_idx=0)
        torch.nn.init.normal_(self.words.weight, std=0.3)  # a sum of ~10 words stays O(1) in tanh
        self.W_I = torch.nn.Parameter(torch.randn(layers, d, d) / math.sqrt(d))
        self.W_Q = torch.nn.Parameter(torch.randn(layers, d, d) / math.sqrt(d))
        self.b_A = torch.nn.Parameter(torch.zeros(layers, d))
        self.W_P = torch.nn.Parameter(torch.randn(layers, d) / math.sqrt(d))
        self.b_P = torch.nn.Parameter(torch.zeros(layers))
        self.answer = torch.nn.Linear(d, n_answers)

    def forward(self, V, Q):
        """V: (B, R, f) float32 region features, Q: (B, L) int64 tokens -> (logits (B, A),
        attention (B, K, R))."""
        v = torch.tanh(self.regions(V))  # (B, R, d)
        u = torch.tanh(self.words(Q))  # (B, d) question vector v_Q
        maps = []
        for k in range(self.W_I.shape[0]):
            u, p = san_layer(v, u, self.W_I[k], self.W_Q[k], self.b_A[k], self.W_P[k], self.b_P[k])
            maps.append(p)
        return self.answer(u), torch.stack(maps, 1)


def fit_predict(V_train, Q_train, y_train, V_test, Q_test, seed):
    """Train a stacked attention network on (regions, question, answer) and answer new ones.

    Args:
        V_train: ``(N, R, f)`` float32 region features (``region_features`` of the scenes).
        Q_train: ``(N, L)`` int64 question tokens, 0-padded; y_train: ``(N,)`` int64 answers.
        V_test: ``(M, R, f)``; Q_test: ``(M, L)``: the held-out scenes and questions.
        seed: int; the same seed must give the same predictions.

    Returns:
        ``(answers, attention)``: ``(M,)`` int64 predicted answer ids and ``(M, R)`` float32
        attention of the last layer over the regions (rows sum to 1).

    Raises:
        RuntimeError: (from torch) when the arrays' shapes disagree.

    Source: Yang et al. (2016), section 3.3, trained with cross-entropy and Adam.
    Runs on one CPU thread (small matrices: threads cost more than they give).
    """
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    V_train, Q_train, y_train = torch.as_tensor(V_train), torch.as_tensor(Q_train), torch.as_tensor(y_train)
    n_words = int(max(Q_train.max(), torch.as_tensor(Q_test).max())) + 1
    model = SANClassifier(V_train.shape[-1], n_words, int(y_train.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(20):
        order = torch.randperm(len(y_train))
        for i in range(0, len(order), 64):
            b = order[i:i + 64]
            loss = F.cross_entropy(model(V_train[b], Q_train[b])[0], y_train[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        logits, maps = model(torch.as_tensor(V_test), torch.as_tensor(Q_test))
    return logits.argmax(1), maps[:, -1]

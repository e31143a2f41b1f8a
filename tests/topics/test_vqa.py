"""Oracle tests of the vqa kernels and the Sort-of-CLEVR generator.

Oracles are independent of the kernels: torch.nn.Linear / torch.nn.LSTM modules with the
same weights copied in, torch.softmax, explicit loops, pixel counting; all in float64.
"""
import time

import numpy as np
import pytest
import torch

from grader.data import sort_of_clevr as soc
from solutions.kernels.vqa import (attention_mass, encode_question, regions_from_feature_map,
                                   san_layer, stacked_attention)


def _rng(i):
    return np.random.default_rng(1000 + i)


def _layer_weights(r, k, d):
    t = lambda *s: torch.tensor(r.normal(size=s))  # noqa: E731
    return t(k, d) / d ** 0.5, t(k, d) / d ** 0.5, t(k) * 0.5, t(k) * 2 / k ** 0.5, t() * 0.5


def _oracle_layer(v, u, W_I, W_Q, b_A, W_P, b_P):
    """SAN eqs. (15)-(18) with torch.nn.Linear modules holding copies of the weights."""
    k, d = W_I.shape
    img, qry, score = (torch.nn.Linear(d, k, bias=False).double(), torch.nn.Linear(d, k).double(),
                       torch.nn.Linear(k, 1).double())
    with torch.no_grad():
        img.weight.copy_(W_I)
        qry.weight.copy_(W_Q)
        qry.bias.copy_(b_A)
        score.weight.copy_(W_P[None])
        score.bias.copy_(b_P.reshape(1))
    h = torch.tanh(img(v) + qry(u).unsqueeze(1))
    p = torch.softmax(score(h).squeeze(-1), dim=1)
    return torch.bmm(p.unsqueeze(1), v).squeeze(1) + u, p


@pytest.mark.parametrize("i", range(4))
def test_regions_match_permute_and_loops(i):
    r = _rng(i)
    B, d, H, W = (int(x) for x in r.integers(1, 6, size=4))
    fmap = torch.tensor(r.normal(size=(B, d, H, W)))
    got = regions_from_feature_map(fmap)
    assert torch.equal(got, fmap.permute(0, 2, 3, 1).reshape(B, H * W, d))
    for row in range(H):
        for col in range(W):
            assert torch.equal(got[:, row * W + col], fmap[:, :, row, col])


@pytest.mark.parametrize("i", range(5))
def test_san_layer_matches_linear_modules(i):
    r = _rng(10 + i)
    B, R, d, k = int(r.integers(1, 5)), int(r.integers(1, 10)), int(r.integers(1, 7)), int(r.integers(1, 7))
    v, u = torch.tensor(r.normal(size=(B, R, d))), torch.tensor(r.normal(size=(B, d)))
    w = _layer_weights(r, k, d)
    got_u, got_p = san_layer(v, u, *w)
    want_u, want_p = _oracle_layer(v, u, *w)
    torch.testing.assert_close(got_p, want_p, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_u, want_u, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_p.sum(1), torch.ones(B, dtype=torch.float64))


def test_san_layer_properties():
    r = _rng(20)
    v, u = torch.tensor(r.normal(size=(3, 1, 4))), torch.tensor(r.normal(size=(3, 4)))
    w = _layer_weights(r, 5, 4)
    u1, p = san_layer(v, u, *w)
    assert torch.equal(p, torch.ones(3, 1, dtype=torch.float64))  # one region: weight 1
    torch.testing.assert_close(u1, v[:, 0] + u)
    # b_P shifts every logit of a row equally, so it cannot change the weights
    v = torch.tensor(r.normal(size=(2, 6, 4)))
    _, p0 = san_layer(v, u[:2], *w[:4], torch.tensor(0.0, dtype=torch.float64))
    _, p1 = san_layer(v, u[:2], *w[:4], torch.tensor(3.0, dtype=torch.float64))
    torch.testing.assert_close(p0, p1)


def test_san_layer_gradcheck():
    r = _rng(21)
    v = torch.tensor(r.normal(size=(2, 5, 3)), requires_grad=True)
    u = torch.tensor(r.normal(size=(2, 3)), requires_grad=True)
    w = tuple(x.clone().requires_grad_(True) for x in _layer_weights(r, 4, 3))
    assert torch.autograd.gradcheck(lambda *a: san_layer(*a)[0], (v, u, *w))


def _padded(r, B, L, V):
    lengths = r.integers(1, L + 1, size=B)
    lengths[0] = L
    tokens = r.integers(1, V, size=(B, L))
    tokens[np.arange(L)[None] >= lengths[:, None]] = 0
    return torch.tensor(tokens), torch.tensor(lengths)


@pytest.mark.parametrize("i", range(4))
def test_encode_question_matches_nn_lstm(i):
    r = _rng(30 + i)
    B, L, V, e, d = int(r.integers(1, 6)), int(r.integers(1, 9)), 9, int(r.integers(1, 6)), int(r.integers(1, 6))
    tokens, lengths = _padded(r, B, L, V)
    lstm = torch.nn.LSTM(e, d, batch_first=True).double()
    E = torch.tensor(r.normal(size=(V, e)))
    with torch.no_grad():
        for p in lstm.parameters():
            p.copy_(torch.tensor(r.normal(size=tuple(p.shape)) * 0.6))
        packed = torch.nn.utils.rnn.pack_padded_sequence(E[tokens], lengths, batch_first=True,
                                                         enforce_sorted=False)
        _, (h_n, _) = lstm(packed)  # the state after each sequence's last real word
    got = encode_question(tokens, lengths, E, lstm.weight_ih_l0, lstm.weight_hh_l0,
                          lstm.bias_ih_l0, lstm.bias_hh_l0)
    torch.testing.assert_close(got, h_n[0], rtol=1e-10, atol=1e-12)


def test_encode_question_ignores_padding_tokens():
    r = _rng(40)
    tokens, lengths = _padded(r, 4, 6, 7)
    w = [torch.tensor(r.normal(size=s)) for s in [(7, 3), (8, 3), (8, 2), (8,), (8,)]]
    other = tokens.clone()
    other[tokens == 0] = 5  # garbage after the end of each question
    torch.testing.assert_close(encode_question(tokens, lengths, *w), encode_question(other, lengths, *w))


@pytest.mark.parametrize("K", [1, 2, 3])
def test_stacked_attention_is_a_chain_of_layers(K):
    r = _rng(50 + K)
    v, q = torch.tensor(r.normal(size=(3, 7, 4))), torch.tensor(r.normal(size=(3, 4)))
    layers = [_layer_weights(r, 5, 4) for _ in range(K)]
    stacked = [torch.stack([w[j] for w in layers]) for j in range(5)]
    u, maps = stacked_attention(v, q, *stacked)
    want, ps = q, []
    for w in layers:
        want, p = _oracle_layer(v, want, *w)
        ps.append(p)
    torch.testing.assert_close(u, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(maps, torch.stack(ps, 1), rtol=1e-12, atol=1e-12)


def _mass_by_pixels(p, boxes, target, size, sub=4):
    """Oracle: rasterise each target box on a fine sub-pixel lattice and count the cells hit."""
    B, R = p.shape
    G = int(round(R ** 0.5))
    s = size / G
    out = np.zeros(B)
    for b in range(B):
        x0, y0, x1, y1 = boxes[b, target[b]]
        for row in range(G):
            for col in range(G):
                ox = min(x1, (col + 1) * s) - max(x0, col * s)
                oy = min(y1, (row + 1) * s) - max(y0, row * s)
                if ox > 0 and oy > 0:
                    out[b] += p[b, row * G + col]
    return out


@pytest.mark.parametrize("i", range(4))
def test_attention_mass_matches_overlap_areas(i):
    r = _rng(60 + i)
    G, s = int(r.integers(2, 5)), 8.0
    B, n = 7, 3
    x0 = r.uniform(0, G * s - 1, size=(B, n))
    y0 = r.uniform(0, G * s - 1, size=(B, n))
    w = r.uniform(0.5, 1.5 * s, size=(B, n, 2))
    boxes = np.stack([x0, y0, np.minimum(x0 + w[..., 0], G * s), np.minimum(y0 + w[..., 1], G * s)], -1)
    boxes[0, 0] = (s, s, 2 * s, 2 * s)  # exactly one cell: touching edges must not count
    logits = r.normal(size=(B, G * G))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    target = r.integers(0, n, size=B)
    target[0] = 0
    got = attention_mass(torch.tensor(p), torch.tensor(boxes), torch.tensor(target), G * s)
    np.testing.assert_allclose(got.numpy(), _mass_by_pixels(p, boxes, target, G * s), rtol=1e-12)
    assert abs(float(got[0]) - p[0, G + 1]) < 1e-12


def test_attention_mass_on_generated_scenes_is_the_target_cell():
    d = soc.make_dataset(50, seed=3)
    p = np.random.default_rng(0).dirichlet(np.ones(16), size=50)
    got = attention_mass(torch.tensor(p), torch.tensor(d["boxes"]), torch.tensor(d["target"]), 32)
    cells = d["cells"][np.arange(50), d["target"]]
    np.testing.assert_allclose(got.numpy(), p[np.arange(50), cells], rtol=1e-12)
    uniform = attention_mass(torch.full((50, 16), 1 / 16, dtype=torch.float64), torch.tensor(d["boxes"]), torch.tensor(d["target"]), 32)
    np.testing.assert_allclose(uniform.numpy(), 1 / 16)


def test_attention_mass_rejects_non_square_grids():
    with pytest.raises(ValueError):
        attention_mass(torch.ones(1, 6) / 6, torch.zeros(1, 1, 4), torch.zeros(1, dtype=torch.long), 12)


# --- the data generator ------------------------------------------------------------------

def test_generator_is_deterministic_and_seed_dependent():
    a, b, c = soc.make_dataset(64, seed=7), soc.make_dataset(64, seed=7), soc.make_dataset(64, seed=8)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["images"], c["images"])


def test_scenes_follow_the_sort_of_clevr_layout():
    d = soc.make_dataset(300, seed=11)
    n = 300
    assert d["images"].shape == (n, 32, 32, 3) and d["images"].dtype == np.float32
    assert all(len(set(row)) == 6 for row in d["cells"])  # six objects, six distinct cells
    cx = (d["boxes"][..., 0] + d["boxes"][..., 2]) / 2
    cy = (d["boxes"][..., 1] + d["boxes"][..., 3]) / 2
    assert np.array_equal((cy // 8) * 4 + cx // 8, d["cells"])  # each box inside its cell
    assert np.array_equal(d["boxes"][..., :2] // 8, (d["boxes"][..., 2:] - 1e-4) // 8)
    for j, rgb in enumerate(soc.RGB):  # exactly one object of each colour, painted in its box
        x0, y0, x1, y1 = d["boxes"][0, j]
        patch = d["images"][0, int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))]
        assert (np.abs(patch - rgb).sum(-1) < 1e-6).any()


def test_answers_agree_with_the_pixels():
    d = soc.make_dataset(400, seed=5)
    feats = soc.region_features(d["images"])
    i = np.arange(400)
    obj = feats[i[:, None], d["cells"]]  # (n, 6, 9) features of the six objects' cells
    assert np.array_equal(obj[..., :6].argmax(-1), np.broadcast_to(np.arange(6), (400, 6)))
    seen_shape = (obj[..., 6] > 0.99).astype(int)  # corner ink: square
    assert (seen_shape == d["shapes"]).mean() > 0.98  # tiny circles may rasterise to squares
    for n in range(400):
        t, c = int(d["qtype"][n]), int(d["colour"][n])
        x, y = obj[n, c, 7], obj[n, c, 8]
        word = soc.ANSWERS[d["answers"][n]]
        if t == 1:
            assert word == ("left" if x < 0.5 else "right")
        if t == 2:
            assert word == ("top" if y < 0.5 else "bottom")
        if t == 5:
            assert int(word) == int((d["shapes"][n] == d["shapes"][n, c]).sum())
        assert soc.COLOURS[c] in soc.decode_question(d["questions"][n])


def test_generator_builds_a_data_set_in_seconds():
    start = time.perf_counter()
    d = soc.make_dataset(3000, seed=1, qtypes=soc.NON_RELATIONAL)
    soc.region_features(d["images"])
    assert time.perf_counter() - start < 20  # about 1 s on an idle core

"""Oracle tests of the image-captioning kernels and the scene generator.

Oracles are independent of the kernels: PyTorch built-ins in float64 (nn.LSTMCell with
copied weights, F.cross_entropy with ignore_index, torch.softmax), explicit loops, brute-force
enumeration for beam search, pixel rasterisation for the localisation score, and
torch.autograd.gradcheck for the differentiable kernels.
"""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grader.data import scenes
from grader.specs.image_captioning import caption_scores
from solutions.kernels import image_captioning as K

DT = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=torch.float64)


# ---------------------------------------------------------------- scenes


def test_scenes_are_deterministic_and_seed_dependent():
    a, b, c = scenes.make_scenes(20, 3), scenes.make_scenes(20, 3), scenes.make_scenes(20, 4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.images, c.images)


def test_scenes_boxes_hold_their_objects_and_captions_match():
    s = scenes.make_scenes(200, 0, noise=0.0)
    colour_of = {scenes.WORD_ID[n]: np.array(v, np.float32) for n, v in scenes.COLOURS.items()}
    for i in range(len(s.images)):
        img, k = s.images[i], int(s.n_objects[i])
        lit = img.max(axis=0) > 0
        masks = scenes.box_masks(s.boxes[i, :k], img.shape[-1])
        assert not (lit & ~masks.any(axis=0)).any(), "a lit pixel outside every box"
        for j in range(k):
            x0, y0, x1, y1 = s.boxes[i, j]
            assert x1 - x0 == y1 - y0 == scenes.SIZES[scenes.VOCAB[s.captions[i, 4 * j + 2 * j + 2]]]
            col = s.captions[i][(s.word_obj[i] == j)][1]  # size, colour, shape: the colour word
            patch = img[:, y0:y1, x0:x1][:, masks[j, y0:y1, x0:x1] & lit[y0:y1, x0:x1]]
            np.testing.assert_allclose(patch.mean(axis=1), colour_of[int(col)], atol=1e-6)
        if k == 2:
            assert s.boxes[i, 0, 2] <= s.boxes[i, 1, 0], "objects must be ordered left to right"
        words = scenes.decode(s.captions[i]).split()
        assert len(words) == (4 if k == 1 else 10)
        assert (s.word_obj[i] >= 0).sum() == 3 * k


def test_scenes_build_quickly():
    import time
    t = time.process_time()
    scenes.make_scenes(2000, 1)
    assert time.process_time() - t < 5.0


def test_bleu_is_sacrebleu_on_decoded_words():
    s = scenes.make_scenes(30, 2)
    assert scenes.bleu(s.captions, s.captions) == pytest.approx(100.0)
    shuffled = s.captions[::-1]
    assert scenes.bleu(shuffled, s.captions) < 60.0


# ---------------------------------------------------------------- basic


def test_flatten_grid_matches_loop():
    x = randn(gen(0), 2, 3, 4, 5)
    out = K.flatten_grid(x)
    for y, xx in itertools.product(range(4), range(5)):
        torch.testing.assert_close(out[:, y * 5 + xx], x[:, :, y, xx], rtol=0, atol=0)


def _soft_attention_oracle(a, h, W_a, W_h, b, w):
    """Per-image, per-location loop with nn.Linear layers holding copied weights."""
    D, A = W_a.shape
    lin_a = torch.nn.Linear(D, A, bias=True, dtype=DT)
    lin_h = torch.nn.Linear(W_h.shape[0], A, bias=False, dtype=DT)
    with torch.no_grad():
        lin_a.weight.copy_(W_a.T), lin_a.bias.copy_(b), lin_h.weight.copy_(W_h.T)
    alphas, zs = [], []
    for i in range(a.shape[0]):
        e = torch.stack([w @ torch.tanh(lin_a(a[i, l]) + lin_h(h[i])) for l in range(a.shape[1])])
        al = torch.softmax(e, dim=0)
        alphas.append(al)
        zs.append(sum(al[l] * a[i, l] for l in range(a.shape[1])))
    return torch.stack(alphas), torch.stack(zs)


@pytest.mark.parametrize("seed", range(3))
def test_soft_attention_matches_oracle(seed):
    g = gen(seed)
    B, L, D, n, A = 3, 7, 4, 5, 6
    args = (randn(g, B, L, D), randn(g, B, n), randn(g, D, A) / 2, randn(g, n, A) / 2, randn(g, A), randn(g, A))
    alpha, z = K.soft_attention(*args)
    ref_alpha, ref_z = _soft_attention_oracle(*args)
    torch.testing.assert_close(alpha, ref_alpha)
    torch.testing.assert_close(z, ref_z)
    torch.testing.assert_close(alpha.sum(1), torch.ones(B, dtype=DT))


def test_soft_attention_gradcheck():
    g = gen(5)
    args = tuple(x.requires_grad_() for x in (randn(g, 2, 5, 3), randn(g, 2, 4), randn(g, 3, 4),
                                               randn(g, 4, 4), randn(g, 4), randn(g, 4)))
    assert torch.autograd.gradcheck(lambda *x: K.soft_attention(*x), args)


# ---------------------------------------------------------------- intermediate


@pytest.mark.parametrize("seed", range(3))
def test_attend_lstm_step_matches_lstmcell(seed):
    g = gen(seed)
    B, L, D, n, m, A = 3, 6, 4, 5, 3, 4
    att = (randn(g, D, A) / 2, randn(g, n, A) / 2, randn(g, A), randn(g, A))
    w_beta, b_beta = randn(g, n), randn(g, ())
    cell = torch.nn.LSTMCell(m + D, n, dtype=DT)
    y, h, c, a = randn(g, B, m), randn(g, B, n), randn(g, B, n), randn(g, B, L, D)
    lstm = tuple(p.detach().clone() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))
    h1, c1, alpha, beta = K.attend_lstm_step(y, h, c, a, att, (w_beta, b_beta), lstm)
    ref_alpha, ref_z = _soft_attention_oracle(a, h, *att)
    ref_beta = torch.sigmoid(torch.stack([h[i] @ w_beta + b_beta for i in range(B)]))
    with torch.no_grad():
        ref_h, ref_c = cell(torch.cat([y, ref_beta[:, None] * ref_z], 1), (h, c))
    torch.testing.assert_close(alpha, ref_alpha)
    torch.testing.assert_close(beta, ref_beta)
    torch.testing.assert_close(h1, ref_h)
    torch.testing.assert_close(c1, ref_c)


def test_doubly_stochastic_penalty_matches_loop():
    g = gen(1)
    B, T, L, lam = 3, 5, 4, 0.7
    alpha = torch.softmax(randn(g, B, T, L), dim=2)
    lengths = [5, 2, 3]
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    ref = lam * np.mean([sum((1 - sum(float(alpha[b, t, i]) for t in range(lengths[b]))) ** 2
                             for i in range(L)) for b in range(B)])
    assert float(K.doubly_stochastic_penalty(alpha, mask, lam)) == pytest.approx(ref, rel=1e-12)
    uniform = torch.full((1, 4, 4), 0.25, dtype=DT)  # 4 steps spread evenly over 4 cells: every cell covered once
    assert float(K.doubly_stochastic_penalty(uniform, torch.ones(1, 4, dtype=torch.bool), 1.0)) == pytest.approx(0.0)


def test_doubly_stochastic_penalty_gradcheck():
    g = gen(2)
    alpha = torch.softmax(randn(g, 2, 4, 3), 2).requires_grad_()
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda x: K.doubly_stochastic_penalty(x, mask, 0.5), (alpha,))


def test_caption_loss_matches_cross_entropy_ignore_index():
    s = scenes.make_scenes(5, 7)
    caps = torch.as_tensor(s.captions)
    logits = randn(gen(3), 5, caps.shape[1] - 1, len(scenes.VOCAB)) * 2
    ref = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), caps[:, 1:].reshape(-1),
                          ignore_index=scenes.PAD)
    torch.testing.assert_close(K.caption_loss(logits, caps), ref)
    x = logits.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda l: K.caption_loss(l, caps), (x,))


# ---------------------------------------------------------------- advanced


def _brute_beam(scores, logp, finished, eos):
    N, Kb, V = logp.shape
    out = []
    for nn_ in range(N):
        cands = []
        for k in range(Kb):
            if finished[nn_, k]:
                cands.append((float(scores[nn_, k]), k, eos))
            else:
                cands += [(float(scores[nn_, k] + logp[nn_, k, v]), k, v) for v in range(V)]
        out.append(sorted(cands, key=lambda c: -c[0])[:Kb])
    return out


@pytest.mark.parametrize("seed", range(3))
def test_beam_step_matches_brute_force(seed):
    g = gen(seed)
    N, Kb, V = 2, 3, 7
    logp = torch.log_softmax(randn(g, N, Kb, V) * 2, dim=2)
    scores = -(torch.rand(N, Kb, generator=g, dtype=DT) * 5 + 0.5).sort(dim=1).values  # best first
    finished = torch.tensor([[True, False, False], [False, True, False]])
    top, parents, tokens = K.beam_step(scores, logp, finished, eos=2)
    for nn_, best in enumerate(_brute_beam(scores, logp, finished, 2)):
        assert [round(b[0], 10) for b in best] == [round(float(x), 10) for x in top[nn_]]
        assert [b[1] for b in best] == parents[nn_].tolist()
        assert [b[2] for b in best] == tokens[nn_].tolist()


def test_beam_search_with_wide_beam_is_exhaustive():
    """With K >= V^T every sequence survives, so beam search finds the most probable one."""
    g = gen(4)
    V, T, eos = 3, 3, 0
    table = torch.log_softmax(randn(g, T, V, V) * 2, dim=2)  # time-varying bigram model
    Kb = V ** T
    scores = torch.full((1, Kb), -float("inf"), dtype=DT)
    scores[0, 0] = 0
    finished = torch.zeros(1, Kb, dtype=torch.bool)
    prev = torch.ones(Kb, dtype=torch.int64)  # <start> = 1
    seqs = [[] for _ in range(Kb)]
    for t in range(T):
        scores, parents, tok = K.beam_step(scores, table[t][prev][None], finished, eos)
        seqs = [seqs[p] + [int(v)] for p, v in zip(parents[0].tolist(), tok[0])]
        finished = finished[0, parents[0]][None] | (tok == eos)
        prev = tok[0]

    def logprob(seq):
        lp, p = 0.0, 1
        for t, v in enumerate(seq):
            lp += float(table[t, p, v])
            if v == eos:
                break
            p = v
        return lp

    best = max(itertools.product(range(V), repeat=T), key=logprob)
    trunc = lambda s: tuple(s[:s.index(eos) + 1]) if eos in s else tuple(s)
    assert trunc(seqs[0]) == trunc(list(best))
    assert float(scores[0, 0]) == pytest.approx(logprob(list(best)))


def _pixel_oracle(alpha, boxes, word_obj, hw):
    """Spread each cell's weight over its pixels (upsampling), sum inside the box mask."""
    B, T, Hg, Wg = alpha.shape
    H, W = hw
    up = F.interpolate(alpha, size=(H, W), mode="nearest") * (Hg * Wg) / (H * W)
    mass = torch.zeros(B, T, dtype=DT)
    for b, t in itertools.product(range(B), range(T)):
        if word_obj[b, t] >= 0:
            mask = torch.as_tensor(scenes.box_masks(boxes[b, word_obj[b, t]].numpy(), H))
            mass[b, t] = (up[b, t] * mask[:H, :W]).sum()
    return mass


def test_localisation_matches_pixel_oracle():
    g = gen(6)
    B, T, Hg, Wg, H = 3, 5, 8, 8, 32
    alpha = torch.softmax(randn(g, B, T, Hg * Wg) * 2, 2).view(B, T, Hg, Wg)
    boxes = torch.tensor([[[1, 2, 9, 13], [20, 5, 31, 16]], [[0, 0, 32, 32], [3, 3, 4, 4]],
                          [[5, 17, 16, 28], [17, 9, 24, 16]]])
    word_obj = torch.tensor([[-1, 0, 0, 1, -1], [0, 1, -1, -1, 1], [1, 1, 0, -1, 0]])
    mass, score = K.localisation_score(alpha, boxes, word_obj, (H, H))
    ref = _pixel_oracle(alpha, boxes, word_obj, (H, H))
    torch.testing.assert_close(mass, ref)
    torch.testing.assert_close(score, ref.sum() / (word_obj >= 0).sum())
    torch.testing.assert_close(mass[1, 0], torch.tensor(1.0, dtype=DT))  # whole-image box


def test_caption_scores_agree_with_localisation_kernel():
    s = scenes.make_scenes(6, 11)
    g = gen(7)
    alpha = torch.softmax(randn(g, 6, scenes.CAPTION_LEN - 1, 64), 2).view(6, -1, 8, 8)
    tokens = s.captions[:, 1:].copy()
    tokens[0, 2] = scenes.WORD_ID["circle"] if tokens[0, 2] != scenes.WORD_ID["circle"] else scenes.WORD_ID["square"]
    expect = dict(captions=s.captions, word_obj=s.word_obj, boxes=s.boxes, size=32)
    b, loc = caption_scores(tokens, alpha.float().numpy(), expect)
    hit = (tokens == s.captions[:, 1:]) & (s.word_obj[:, 1:] >= 0)
    _, ref = K.localisation_score(alpha, torch.as_tensor(s.boxes), torch.as_tensor(np.where(hit, s.word_obj[:, 1:], -1)), (32, 32))
    assert loc == pytest.approx(float(ref), rel=1e-5)
    assert b < 100.0


def test_fit_predict_output_contract_on_a_tiny_run():
    """Two epochs on 64 scenes: shapes, dtypes, maps that sum to 1, <pad> after <end>."""
    tr, te = scenes.make_scenes(64, 0), scenes.make_scenes(8, 1)
    model = K.train_captioner(tr.images, tr.captions, seed=0, epochs=2)
    for beam in (1, 3):
        tokens, alpha = K.caption_images(model, te.images, beam_size=beam)
        assert tokens.shape == (8, scenes.CAPTION_LEN - 1) and tokens.dtype == np.int64
        assert alpha.shape == (8, scenes.CAPTION_LEN - 1, 8, 8) and alpha.dtype == np.float32
        live = tokens != scenes.PAD
        np.testing.assert_allclose(alpha.reshape(8, tokens.shape[1], -1).sum(-1)[live], 1.0, atol=1e-5)
        for row in tokens:
            if scenes.END in row:
                assert (row[list(row).index(scenes.END) + 1:] == scenes.PAD).all()

"""Specs of the image-captioning topic (Show, Attend and Tell on synthetic scenes).

basic: flatten_grid, soft_attention.  intermediate: attend_lstm_step,
doubly_stochastic_penalty, caption_loss.  advanced: beam_step, localisation_score and the
trained captioner fit_predict (graded on held-out scenes by BLEU and attention localisation).
"""
import numpy as np

from grader.checks import case, spec
from grader.data.scenes import CAPTION_LEN, END, PAD, START, VOCAB, bleu, box_masks, make_scenes


def _dtype(i):
    return np.float64 if i % 2 == 0 else np.float32


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------------------- basic

@spec("image-captioning.flatten_grid", entry="flatten_grid", kernel="image_captioning.flatten_grid",
      framework="torch",
      mutants=["image_captioning.grid_view_not_permute", "image_captioning.grid_column_major",
               "image_captioning.grid_channels_first"],
      hints=["The output's last axis must be the channels: move C to the end before merging "
             "the two grid axes.",
             "A plain reshape of (B, C, H, W) to (B, H*W, C) reinterprets memory; it does not "
             "move the channel axis. Permute first.",
             "return fmap.permute(0, 2, 3, 1).reshape(B, H * W, C)"])
def flatten_grid_cases(t):
    """Feature map (B, C, H, W) to annotation vectors (B, H*W, C), row-major over the grid:
    random shapes with H != W and C != H*W, float64 and float32."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        B, C = int(r.integers(1, 4)), int(r.integers(2, 6))
        H, W = int(r.integers(2, 5)), int(r.integers(5, 7))
        yield case(f"fmap (B, C, H, W) = {(B, C, H, W)}, {np.dtype(_dtype(i)).name}",
                   r.normal(size=(B, C, H, W)).astype(_dtype(i)))
    if t.hidden:
        r = t.rng("hidden-8x8")
        yield case("an 8x8 grid with 3 channels", r.normal(size=(2, 3, 8, 8)))


def _att_params(r, D, n, A, dtype):
    return (r.normal(size=(D, A)) / np.sqrt(D), r.normal(size=(n, A)) / np.sqrt(n),
            r.normal(size=A) * 0.5, r.normal(size=A) * 1.5)


@spec("image-captioning.soft_attention", entry="soft_attention", kernel="image_captioning.soft_attention",
      framework="torch",
      mutants=["image_captioning.att_ignores_state", "image_captioning.att_softmax_batch_axis",
               "image_captioning.att_tanh_outside", "image_captioning.att_sigmoid",
               "image_captioning.att_uniform_context"],
      hints=["Project the annotations (a @ W_a, shape (B, L, A)) and the state (h @ W_h, shape "
             "(B, A)); add them with broadcasting over L, then b; tanh; then dot with w.",
             "The softmax runs over the L locations of each image (dim=1), and the context is "
             "sum_i alpha_i a_i: weight the *annotations*, not their projections.",
             "e = torch.tanh(a @ W_a + (h @ W_h)[:, None, :] + b) @ w; alpha = torch.softmax(e, 1); "
             "z = (alpha[:, :, None] * a).sum(1)"])
def soft_attention_cases(t):
    """Additive soft attention over L locations: random B, L, D, n, A in float64 and float32
    with O(1) logits; a single location; a zero decoder state."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        B, L, D, n, A = (int(v) for v in r.integers([2, 3, 2, 2, 2], [5, 10, 7, 6, 7]))
        dt = _dtype(i)
        a, h = r.normal(size=(B, L, D)), r.normal(size=(B, n))
        yield case(f"B={B}, L={L}, D={D}, n={n}, A={A}, {np.dtype(dt).name}",
                   *(x.astype(dt) for x in (a, h, *_att_params(r, D, n, A, dt))))
    r = t.rng("one-location")
    yield case("a single location (L = 1): alpha = 1, z = a_1", r.normal(size=(2, 1, 3)),
               r.normal(size=(2, 4)), *_att_params(r, 3, 4, 5, np.float64))
    if t.hidden:
        r = t.rng("zero-state")
        yield case("first step, h = 0", r.normal(size=(3, 16, 4)), np.zeros((3, 5)),
                   *_att_params(r, 4, 5, 6, np.float64))
        r = t.rng("hidden-grid")
        yield case("an 8x8 grid (L = 64), B = 4", r.normal(size=(4, 64, 8)), r.normal(size=(4, 6)),
                   *_att_params(r, 8, 6, 8, np.float64))


# ----------------------------------------------------------------------------- intermediate

def _step_args(r, B, L, D, n, m, dt):
    lstm = (r.normal(size=(4 * n, m + D)) / np.sqrt(m + D), r.normal(size=(4 * n, n)) / np.sqrt(n),
            r.normal(size=4 * n) * 0.3, r.normal(size=4 * n) * 0.3)
    gate = (r.normal(size=n), np.array(r.normal() * 0.5))
    args = (r.normal(size=(B, m)), r.normal(size=(B, n)) * 0.7, r.normal(size=(B, n)),
            r.normal(size=(B, L, D)), _att_params(r, D, n, 5, dt), gate, lstm)

    def cast(x):
        return tuple(cast(v) for v in x) if isinstance(x, tuple) else np.asarray(x).astype(dt)
    return cast(args)


@spec("image-captioning.attend_lstm_step", entry="attend_lstm_step",
      kernel="image_captioning.attend_lstm_step", framework="torch",
      mutants=["image_captioning.step_no_beta", "image_captioning.step_beta_gates_embedding",
               "image_captioning.step_gate_order", "image_captioning.step_no_forget"],
      hints=["Order: attention with h_{t-1} (your soft_attention), beta from h_{t-1}, then the "
             "LSTM on x = [E y_{t-1}, beta * z].",
             "beta = sigmoid(h @ w_beta + b_beta) is one number per example: it scales the "
             "context z only, not the word embedding.",
             "gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh; i, f, g, o = gates.chunk(4, 1); "
             "c' = sigmoid(f) c + sigmoid(i) tanh(g); h' = sigmoid(o) tanh(c')"])
def attend_lstm_step_cases(t):
    """One Show-Attend-Tell decoder step (attention, beta gate, LSTM in nn.LSTMCell layout):
    random sizes in float64 and float32."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        B, L, D, n, m = (int(v) for v in r.integers([1, 2, 2, 2, 2], [4, 10, 6, 6, 6]))
        yield case(f"B={B}, L={L}, D={D}, n={n}, m={m}, {np.dtype(_dtype(i)).name}",
                   *_step_args(r, B, L, D, n, m, _dtype(i)))
    if t.hidden:
        r = t.rng("hidden-grid")
        yield case("an 8x8 grid, D = 6, n = 8, m = 4", *_step_args(r, 3, 64, 6, 8, 4, np.float64))


def _alpha_and_mask(r, B, T, L, dt, pad=True):
    alpha = _softmax(r.normal(size=(B, T, L)) * 2, axis=2).astype(dt)
    lengths = r.integers(1, T + 1, size=B) if pad else np.full(B, T)
    if pad:
        lengths[0] = max(1, T - 2)  # at least one caption with padding
    return alpha, np.arange(T)[None, :] < lengths[:, None]


@spec("image-captioning.doubly_stochastic_penalty", entry="doubly_stochastic_penalty",
      kernel="image_captioning.doubly_stochastic_penalty", framework="torch",
      mutants=["image_captioning.penalty_wrong_axis", "image_captioning.penalty_unmasked",
               "image_captioning.penalty_abs", "image_captioning.penalty_mean_locations"],
      hints=["First the coverage of each location: sum alpha over the time axis (dim=1), "
             "using only unpadded steps.",
             "Then sum (1 - coverage)^2 over the locations, average over the batch, times lam.",
             "cov = (alpha * mask[:, :, None]).sum(1); return lam * ((1 - cov) ** 2).sum(1).mean()"])
def doubly_stochastic_penalty_cases(t):
    """lam * mean_b sum_i (1 - sum_t alpha_bti)^2 over unpadded steps: random B, T, L, lam,
    float64 and float32, padded captions; one batch with no padding."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        B, T, L = int(r.integers(2, 5)), int(r.integers(4, 9)), int(r.integers(3, 10))
        alpha, mask = _alpha_and_mask(r, B, T, L, _dtype(i))
        yield case(f"B={B}, T={T}, L={L}, padded, {np.dtype(_dtype(i)).name}", alpha, mask,
                   float(r.uniform(0.5, 2.0)))
    r = t.rng("no-padding")
    alpha, mask = _alpha_and_mask(r, 2, 5, 4, np.float64, pad=False)
    yield case("no padding, lam = 1", alpha, mask, 1.0)
    if t.hidden:
        r = t.rng("hidden-grid")
        alpha, mask = _alpha_and_mask(r, 3, 11, 64, np.float64)
        yield case("an 8x8 grid, 11 steps, lam = 0.3", alpha, mask, 0.3)


def _captions(r, B, T, V, pad=True):
    """(B, T+1) token ids: <start>, random words, <end>, <pad>...; lengths vary."""
    caps = np.full((B, T + 1), PAD, np.int64)
    for b in range(B):
        n_words = int(r.integers(1, T)) if pad else T - 1
        if pad and b == 0:
            n_words = max(1, T - 3)
        caps[b, 0] = START
        caps[b, 1:1 + n_words] = r.integers(3, V, size=n_words)
        caps[b, 1 + n_words] = END
    return caps


@spec("image-captioning.caption_loss", entry="caption_loss", kernel="image_captioning.caption_loss",
      framework="torch",
      mutants=["image_captioning.loss_unmasked", "image_captioning.loss_not_shifted",
               "image_captioning.loss_mask_from_inputs", "image_captioning.loss_mean_of_means"],
      hints=["logits[:, t] is scored against captions[:, t+1]: shift the captions by one to get "
             "the targets.",
             "Take log_softmax over the vocabulary, pick each target's log-probability (gather), "
             "and build the mask from the *targets* (target != pad_id).",
             "targets = captions[:, 1:]; lp = logits.log_softmax(-1).gather(-1, targets[..., None])[..., 0]; "
             "mask = targets != pad_id; return -(lp * mask).sum() / mask.sum()"])
def caption_loss_cases(t):
    """Masked teacher-forcing cross-entropy, mean over real target tokens: random B, T, V,
    captions of different lengths, float64 and float32; one batch with no padding."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        B, T, V = int(r.integers(2, 5)), int(r.integers(4, 9)), int(r.integers(6, 12))
        yield case(f"B={B}, T={T}, V={V}, {np.dtype(_dtype(i)).name}",
                   (r.normal(size=(B, T, V)) * 2).astype(_dtype(i)), _captions(r, B, T, V))
    r = t.rng("no-padding")
    yield case("every caption fills all T steps", r.normal(size=(3, 5, 7)) * 2,
               _captions(r, 3, 5, 7, pad=False))
    if t.hidden:
        r = t.rng("hidden-scenes")
        s = make_scenes(6, seed=int(r.integers(2 ** 31)))
        yield case("captions of six synthetic scenes, V = 15",
                   r.normal(size=(6, CAPTION_LEN - 1, len(VOCAB))) * 2, s.captions)


# ----------------------------------------------------------------------------- advanced

def _beam_case(r, N, K, V, first, dt):
    logp = np.log(_softmax(r.normal(size=(N, K, V)) * 2, axis=2))
    eos = int(r.integers(0, V))
    if first:
        scores = np.full((N, K), -np.inf)
        scores[:, 0] = 0.0
        finished = np.zeros((N, K), bool)
    else:
        scores = -np.sort(r.uniform(0.5, 6.0, size=(N, K)), axis=1)
        finished = r.random((N, K)) < 0.4
        finished[:, -1] = False  # at least one live hypothesis per input
        finished[0, 0] = True  # the best hypothesis of input 0 has ended
    return scores.astype(dt), logp.astype(dt), finished, eos


@spec("image-captioning.beam_step", entry="beam_step", kernel="image_captioning.beam_step",
      framework="torch",
      mutants=["image_captioning.beam_extends_finished", "image_captioning.beam_per_hypothesis_best",
               "image_captioning.beam_not_accumulated", "image_captioning.beam_parent_divisor"],
      hints=["Candidate scores are scores[:, :, None] + logp: (N, K, V). Keep the K best of all "
             "K*V candidates per input, not the best of each hypothesis.",
             "A finished hypothesis gets one candidate: eos with its unchanged score (every other "
             "token -inf). Flatten to (N, K*V), topk, then flat index j is parent j // V, token j % V.",
             "cand = torch.where(finished[..., None], stay, scores[..., None] + logp) where stay is "
             "-inf except stay[:, :, eos] = scores; top, j = cand.reshape(N, -1).topk(K, 1); "
             "return top, j // V, j % V"])
def beam_step_cases(t):
    """One beam-search pruning step: the first step (one live hypothesis), mid-search beams
    with finished hypotheses, random N, K, V in float64 and float32."""
    r = t.rng("first-step")
    yield case("first step: only slot 0 is live, N=2, K=3, V=6", *_beam_case(r, 2, 3, 6, True, np.float64))
    for i in range(3):
        r = t.rng(f"random-{i}")
        N, K = int(r.integers(1, 4)), int(r.integers(2, 5))
        V = int(r.integers(K + 2, 10))
        yield case(f"mid-search, N={N}, K={K}, V={V}, {np.dtype(_dtype(i)).name}",
                   *_beam_case(r, N, K, V, False, _dtype(i)))
    if t.hidden:
        r = t.rng("hidden-vocab")
        yield case("scene vocabulary V = 15, K = 4, N = 5", *_beam_case(r, 5, 4, len(VOCAB), False, np.float64))


def _loc_case(r, B, T, K, Hg, Wg, H, W, dt):
    alpha = _softmax(r.normal(size=(B, T, Hg * Wg)) * 2, axis=2).reshape(B, T, Hg, Wg).astype(dt)
    x = np.sort(r.integers(0, W + 1, size=(B, K, 2)), axis=2)
    y = np.sort(r.integers(0, H + 1, size=(B, K, 2)), axis=2)
    x[..., 1] = np.maximum(x[..., 1], x[..., 0] + 1)
    y[..., 1] = np.maximum(y[..., 1], y[..., 0] + 1)
    boxes = np.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], axis=-1).astype(np.int64)
    word_obj = r.integers(-1, K, size=(B, T)).astype(np.int64)
    word_obj[:, 0] = 0  # every caption names something
    word_obj[0, 1:] = -1  # and one caption names only one thing
    return alpha, boxes, word_obj, (H, W)


@spec("image-captioning.localisation_score", entry="localisation_score",
      kernel="image_captioning.localisation_score", framework="torch",
      mutants=["image_captioning.loc_xy_swapped", "image_captioning.loc_touching_cells",
               "image_captioning.loc_all_tokens", "image_captioning.loc_mean_of_means"],
      hints=["Work per axis: the share of cell row y inside the box is the overlap of "
             "[y*H/Hg, (y+1)*H/Hg) with [y0, y1), divided by the cell height. Same for columns.",
             "The share of cell (y, x) inside the box is the product of the two 1-D shares; the "
             "mass is sum over cells of alpha times that share. Pick each token's box with word_obj.",
             "oy = (min(y1, top_edges) - max(y0, bottom_edges)).clamp(min=0) / (H/Hg); likewise ox; "
             "mass = einsum('btyx,bty,btx->bt', alpha, oy, ox) * named; score = mass.sum() / named.sum()"])
def localisation_score_cases(t):
    """Attention mass inside the named object's box: random boxes not aligned with the grid,
    square and non-square grids and images, float64 and float32."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        Hg, Wg = (4, 4) if i < 2 else (3, 5)
        B, T, K = int(r.integers(2, 4)), int(r.integers(3, 7)), int(r.integers(1, 4))
        H, W = Hg * int(r.integers(2, 5)), Wg * int(r.integers(2, 5))
        yield case(f"B={B}, T={T}, {K} objects, grid {Hg}x{Wg}, image {H}x{W}, {np.dtype(_dtype(i)).name}",
                   *_loc_case(r, B, T, K, Hg, Wg, H, W, _dtype(i)))
    r = t.rng("whole-image")
    alpha, _, word_obj, hw = _loc_case(r, 2, 4, 1, 4, 4, 16, 16, np.float64)
    yield case("a box covering the whole image: every named mass is 1", alpha,
               np.array([[[0, 0, 16, 16]]] * 2, np.int64), word_obj, hw)
    if t.hidden:
        r = t.rng("hidden-scenes")
        yield case("8x8 grid on a 32x32 image, 11 tokens, 2 objects",
                   *_loc_case(r, 4, 11, 2, 8, 8, 32, 32, np.float64))
        r = t.rng("hidden-fractional")
        yield case("cells of 3.2 pixels (image 16x16, grid 5x5)", *_loc_case(r, 3, 5, 2, 5, 5, 16, 16, np.float64))


# ----------------------------------------------------------------------------- advanced: training

def caption_scores(tokens, alpha, expect):
    """BLEU-4 and attention localisation of predicted captions on held-out scenes.

    Args:
        tokens: (M, CAPTION_LEN-1) int predicted tokens after <start>.
        alpha: (M, CAPTION_LEN-1, 8, 8) float attention maps behind each token.
        expect: dict with the held-out ``captions``, ``word_obj``, ``boxes`` (see
            ``grader.data.scenes.Scenes``) and the image size ``size``.

    Returns:
        (bleu, loc): sacrebleu BLEU in [0, 100]; loc = mean share of attention inside the
        named object's box over the predicted words that name an object and equal the
        reference word at the same position (0 when there is none).  A cell's weight is
        spread evenly over its pixels (pixel masks, independent of the learner's kernel).
    """
    caps, word_obj, size = expect["captions"], expect["word_obj"][:, 1:], expect["size"]
    score = bleu(tokens, caps)
    hit = (tokens == caps[:, 1:]) & (word_obj >= 0)
    if not hit.any():
        return score, 0.0
    Hg, Wg = alpha.shape[2:]
    pix = np.repeat(np.repeat(alpha, size // Hg, axis=2), size // Wg, axis=3) / ((size // Hg) * (size // Wg))
    b, tt = np.nonzero(hit)
    masks = box_masks(expect["boxes"][b, word_obj[b, tt]], size)  # (n_hit, size, size)
    return score, float((pix[b, tt] * masks).sum(axis=(1, 2)).mean())


def _judge_captions(c, out):
    ex = c.expect
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return "fit_predict must return a pair (tokens, alpha)"
    tokens, alpha = (np.asarray(o) for o in out)
    M, T = ex["captions"].shape[0], CAPTION_LEN - 1
    if tokens.shape != (M, T) or tokens.dtype.kind not in "iu":
        return f"tokens: expected an int array of shape {(M, T)}, got {tokens.dtype} {tokens.shape}"
    if alpha.shape != (M, T, 8, 8) or alpha.dtype.kind != "f":
        return f"alpha: expected a float array of shape {(M, T, 8, 8)}, got {alpha.dtype} {alpha.shape}"
    if tokens.min() < 0 or tokens.max() >= len(VOCAB):
        return f"tokens must be ids in [0, {len(VOCAB)}), got values in [{tokens.min()}, {tokens.max()}]"
    sums = alpha.reshape(M, T, -1).sum(-1)[tokens != PAD]
    if (alpha < -1e-6).any() or not np.allclose(sums, 1.0, atol=1e-3):
        return "alpha: every generated token's map must be non-negative and sum to 1"
    score, loc = caption_scores(tokens, alpha, ex)
    msgs = []
    if score < ex["min_bleu"]:
        msgs.append(f"BLEU {score:.1f} is below the pass mark {ex['min_bleu']}")
    if loc < ex["min_loc"]:
        msgs.append(f"attention localisation {loc:.3f} is below the pass mark {ex['min_loc']}")
    return "; ".join(msgs) or None


# Thresholds (see the advanced notebook's closing note for the measurements behind them).
VISIBLE = dict(n_train=200, n_test=100, min_bleu=15.0, min_loc=0.0)
HIDDEN = dict(n_train=1000, n_test=300, min_bleu=40.0, min_loc=0.15)


def _scene_case(t, name, cfg, what):
    r = t.rng(name)
    tr = make_scenes(cfg["n_train"], seed=int(r.integers(2 ** 31)))
    te = make_scenes(cfg["n_test"], seed=int(r.integers(2 ** 31)))
    expect = dict(captions=te.captions, word_obj=te.word_obj, boxes=te.boxes, size=te.images.shape[-1],
                  min_bleu=cfg["min_bleu"], min_loc=cfg["min_loc"])
    return case(f"{what}: {cfg['n_train']} training scenes, {cfg['n_test']} held-out scenes",
                tr.images, tr.captions, te.images, int(r.integers(2 ** 31)), expect=expect)


@spec("image-captioning.fit_predict", entry="fit_predict", kernel="image_captioning.fit_predict",
      framework="numpy", judge=_judge_captions, timeout=600.0,
      mutants=["image_captioning.fit_majority_caption", "image_captioning.fit_uniform_attention"],
      hints=["Train with teacher forcing (your caption_loss) and decode greedily: feed the argmax "
             "back in until <end>; return the attention map of every generated token too.",
             "If BLEU is fine but localisation is low, check that your attention depends on the "
             "decoder state and that the grid features know their position (coordinate channels).",
             "The reference: ShowAttendTell (32-dim annotations, 64-unit LSTM) trained 60 epochs "
             "with Adam (lr 5e-3, batch 64, grad-norm clip 1), then caption_images(model, X, 1)."])
def fit_predict_cases(t):
    """Train on synthetic scenes, caption held-out scenes generated from the grading seed;
    pass marks on BLEU-4 (sacrebleu) and on the share of attention inside the box of each
    correctly predicted object word."""
    if not t.hidden:
        yield _scene_case(t, "visible", VISIBLE, "quick run")
    else:
        yield _scene_case(t, "hidden", HIDDEN, "held-out evaluation")

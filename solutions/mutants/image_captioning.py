"""Known-wrong versions of the image-captioning kernels: the mistakes learners make."""
import math

import numpy as np
import torch

from grader.checks import mutant
from grader.data.scenes import CAPTION_LEN, PAD
from solutions.kernels import image_captioning as k

# ---------------------------------------------------------------- flatten_grid


@mutant("reshape without moving the channels last (a view, not a permute)",
        "each 'annotation vector' mixes several locations of one channel")
def grid_view_not_permute(fmap):
    B, C, H, W = fmap.shape
    return fmap.reshape(B, H * W, C)


@mutant("locations ordered column by column (x*H + y)",
        "location i no longer matches cell (i // W, i % W), so attention maps are drawn transposed")
def grid_column_major(fmap):
    B, C, H, W = fmap.shape
    return fmap.permute(0, 3, 2, 1).reshape(B, H * W, C)


@mutant("grid flattened to (B, C, L) without the transpose",
        "the annotation axis and the feature axis are swapped")
def grid_channels_first(fmap):
    B, C, H, W = fmap.shape
    return fmap.reshape(B, C, H * W)


# ---------------------------------------------------------------- soft_attention


@mutant("attention scores that ignore the decoder state",
        "every step attends to the same places whatever word comes next")
def att_ignores_state(a, h, W_a, W_h, b, w):
    e = torch.tanh(a @ W_a + b) @ w
    alpha = torch.softmax(e, dim=1)
    return alpha, (alpha[:, :, None] * a).sum(dim=1)


@mutant("softmax taken over the batch axis instead of the locations",
        "weights of one image do not sum to 1; images compete for attention")
def att_softmax_batch_axis(a, h, W_a, W_h, b, w):
    e = torch.tanh(a @ W_a + (h @ W_h)[:, None, :] + b) @ w
    alpha = torch.softmax(e, dim=0)
    return alpha, (alpha[:, :, None] * a).sum(dim=1)


@mutant("tanh applied to the scores instead of the hidden layer",
        "e = tanh(w^T(...)) squashes the logits into (-1, 1), so attention can never be sharp")
def att_tanh_outside(a, h, W_a, W_h, b, w):
    e = torch.tanh((a @ W_a + (h @ W_h)[:, None, :] + b) @ w)
    alpha = torch.softmax(e, dim=1)
    return alpha, (alpha[:, :, None] * a).sum(dim=1)


@mutant("sigmoid weights instead of a softmax",
        "the weights do not sum to 1, so the context is not an average of annotations")
def att_sigmoid(a, h, W_a, W_h, b, w):
    e = torch.tanh(a @ W_a + (h @ W_h)[:, None, :] + b) @ w
    alpha = torch.sigmoid(e)
    return alpha, (alpha[:, :, None] * a).sum(dim=1)


@mutant("context vector as the plain average of the annotations",
        "the weights are computed but not used: attention is uniform")
def att_uniform_context(a, h, W_a, W_h, b, w):
    e = torch.tanh(a @ W_a + (h @ W_h)[:, None, :] + b) @ w
    alpha = torch.softmax(e, dim=1)
    return alpha, a.mean(dim=1)


# ---------------------------------------------------------------- attend_lstm_step


def _lstm(x, h, c, lstm, order="ifgo", forget=True):
    W_ih, W_hh, b_ih, b_hh = lstm
    parts = dict(zip(order, (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)))
    i, f, g, o = parts["i"], parts["f"], parts["g"], parts["o"]
    c_new = (torch.sigmoid(f) * c if forget else 0) + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


@mutant("the gating scalar beta dropped",
        "the LSTM sees the raw context z_t instead of beta_t * z_t")
def step_no_beta(y_emb, h, c, a, att, gate, lstm):
    alpha, z = k.soft_attention(a, h, *att)
    beta = torch.sigmoid(h @ gate[0] + gate[1])
    h_new, c_new = _lstm(torch.cat([y_emb, z], dim=1), h, c, lstm)
    return h_new, c_new, alpha, beta


@mutant("beta gating the whole LSTM input, word embedding included",
        "beta should scale only the context vector")
def step_beta_gates_embedding(y_emb, h, c, a, att, gate, lstm):
    alpha, z = k.soft_attention(a, h, *att)
    beta = torch.sigmoid(h @ gate[0] + gate[1])
    h_new, c_new = _lstm(beta[:, None] * torch.cat([y_emb, z], dim=1), h, c, lstm)
    return h_new, c_new, alpha, beta


@mutant("LSTM gates read in the order (input, forget, output, cell)",
        "PyTorch's LSTMCell stacks its weight rows as input, forget, cell (g), output")
def step_gate_order(y_emb, h, c, a, att, gate, lstm):
    alpha, z = k.soft_attention(a, h, *att)
    beta = torch.sigmoid(h @ gate[0] + gate[1])
    h_new, c_new = _lstm(torch.cat([y_emb, beta[:, None] * z], dim=1), h, c, lstm, order="ifog")
    return h_new, c_new, alpha, beta


@mutant("the forget gate ignored (c_t = i * g)",
        "the cell state forgets everything at every step")
def step_no_forget(y_emb, h, c, a, att, gate, lstm):
    alpha, z = k.soft_attention(a, h, *att)
    beta = torch.sigmoid(h @ gate[0] + gate[1])
    h_new, c_new = _lstm(torch.cat([y_emb, beta[:, None] * z], dim=1), h, c, lstm, forget=False)
    return h_new, c_new, alpha, beta


# ---------------------------------------------------------------- doubly_stochastic_penalty


@mutant("attention regulariser summed over the wrong axis (over locations, not time)",
        "sum_i alpha_ti is always 1, so the penalty no longer depends on where the model looked")
def penalty_wrong_axis(alpha, mask, lam):
    s = (alpha * mask[:, :, None]).sum(dim=2)  # (B, T)
    return lam * ((1.0 - s) ** 2).sum(dim=1).mean()


@mutant("padded steps counted in the regulariser",
        "attention at <pad> positions adds to the coverage of each location")
def penalty_unmasked(alpha, mask, lam):
    return lam * ((1.0 - alpha.sum(dim=1)) ** 2).sum(dim=1).mean()


@mutant("absolute value instead of the square in the regulariser",
        "the penalty is |1 - sum_t alpha_ti|, not its square")
def penalty_abs(alpha, mask, lam):
    return lam * (1.0 - (alpha * mask[:, :, None]).sum(dim=1)).abs().sum(dim=1).mean()


@mutant("regulariser averaged over locations instead of summed",
        "the penalty is L times too small")
def penalty_mean_locations(alpha, mask, lam):
    return lam * ((1.0 - (alpha * mask[:, :, None]).sum(dim=1)) ** 2).mean(dim=1).mean()


# ---------------------------------------------------------------- caption_loss


def _nll(logits, targets):
    return -torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]


@mutant("padding not masked", "<pad> targets are scored as if they were words")
def loss_unmasked(logits, captions, pad_id=PAD):
    return _nll(logits, captions[:, 1:]).mean()


@mutant("targets not shifted (each position scored against its own input token)",
        "the decoder is asked to copy its input instead of predicting the next word")
def loss_not_shifted(logits, captions, pad_id=PAD):
    targets = captions[:, :-1]
    mask = targets != pad_id
    return (_nll(logits, targets) * mask).sum() / mask.sum()


@mutant("padding mask taken from the input tokens instead of the targets",
        "the step that reads <end> and must predict <pad> is counted; the mask is off by one")
def loss_mask_from_inputs(logits, captions, pad_id=PAD):
    mask = captions[:, :-1] != pad_id
    return (_nll(logits, captions[:, 1:]) * mask).sum() / mask.sum()


@mutant("mean of per-caption means",
        "short captions weigh as much as long ones; the loss is not per token")
def loss_mean_of_means(logits, captions, pad_id=PAD):
    mask = captions[:, 1:] != pad_id
    return ((_nll(logits, captions[:, 1:]) * mask).sum(1) / mask.sum(1)).mean()


# ---------------------------------------------------------------- beam_step


@mutant("finished hypotheses extended like live ones",
        "after <end> a hypothesis keeps adding log-probabilities and is unfairly penalised")
def beam_extends_finished(scores, logp, finished, eos):
    N, K, V = logp.shape
    top, idx = (scores[:, :, None] + logp).reshape(N, K * V).topk(K, dim=1)
    return top, idx // V, idx % V


@mutant("each hypothesis extended only by its own best token",
        "the top-K must be taken over all K*V candidates; this is K parallel greedy searches")
def beam_per_hypothesis_best(scores, logp, finished, eos):
    N, K, V = logp.shape
    cand = scores[:, :, None] + logp
    stay = torch.full_like(cand, -math.inf)
    stay[:, :, eos] = scores
    best, tok = torch.where(finished[:, :, None], stay, cand).max(dim=2)  # (N, K)
    top, order = best.sort(dim=1, descending=True)
    return top, order, tok.gather(1, order)


@mutant("scores not accumulated (only the last token's log-probability)",
        "hypotheses are ranked by their last step alone, not by the whole sequence")
def beam_not_accumulated(scores, logp, finished, eos):
    N, K, V = logp.shape
    live = torch.where(torch.isinf(scores), scores, torch.zeros_like(scores))
    cand = live[:, :, None] + logp
    stay = torch.full_like(cand, -math.inf)
    stay[:, :, eos] = 0.0
    cand = torch.where(finished[:, :, None] & ~torch.isinf(scores)[:, :, None], stay, cand)
    top, idx = cand.reshape(N, K * V).topk(K, dim=1)
    return top, idx // V, idx % V


@mutant("parent index computed by dividing by K instead of V",
        "flat index j over K*V candidates is parent j // V, token j % V")
def beam_parent_divisor(scores, logp, finished, eos):
    N, K, V = logp.shape
    cand = scores[:, :, None] + logp
    stay = torch.full_like(cand, -math.inf)
    stay[:, :, eos] = scores
    top, idx = torch.where(finished[:, :, None], stay, cand).reshape(N, K * V).topk(K, dim=1)
    return top, idx // K, idx % V


# ---------------------------------------------------------------- localisation_score


def _overlaps(alpha, boxes, word_obj, image_hw):
    B, T, Hg, Wg = alpha.shape
    H, W = image_hw
    box = boxes[torch.arange(B)[:, None], word_obj.clamp(min=0)].to(alpha.dtype)
    ey = torch.arange(Hg + 1, dtype=alpha.dtype) * (H / Hg)
    ex = torch.arange(Wg + 1, dtype=alpha.dtype) * (W / Wg)
    oy = (torch.minimum(box[..., 3:4], ey[1:]) - torch.maximum(box[..., 1:2], ey[:-1])).clamp(min=0) / (H / Hg)
    ox = (torch.minimum(box[..., 2:3], ex[1:]) - torch.maximum(box[..., 0:1], ex[:-1])).clamp(min=0) / (W / Wg)
    return oy, ox


@mutant("box x and y swapped", "the box is read as (y0, x0, y1, x1), i.e. mirrored about the diagonal")
def loc_xy_swapped(alpha, boxes, word_obj, image_hw):
    oy, ox = _overlaps(alpha, boxes[..., [1, 0, 3, 2]], word_obj, image_hw[::-1])
    named = word_obj >= 0
    mass = torch.einsum("btyx,bty,btx->bt", alpha, oy, ox) * named
    return mass, mass.sum() / named.sum()


@mutant("every cell the box touches counted whole",
        "cells only partly inside the box should count in proportion to the covered area")
def loc_touching_cells(alpha, boxes, word_obj, image_hw):
    oy, ox = _overlaps(alpha, boxes, word_obj, image_hw)
    named = word_obj >= 0
    mass = torch.einsum("btyx,bty,btx->bt", alpha, (oy > 0).to(alpha.dtype), (ox > 0).to(alpha.dtype)) * named
    return mass, mass.sum() / named.sum()


@mutant("score averaged over every token, not only the words that name an object",
        "tokens such as 'a', 'left', 'of' and <end> add zeros to the average")
def loc_all_tokens(alpha, boxes, word_obj, image_hw):
    oy, ox = _overlaps(alpha, boxes, word_obj, image_hw)
    mass = torch.einsum("btyx,bty,btx->bt", alpha, oy, ox) * (word_obj >= 0)
    return mass, mass.mean()


@mutant("score as the mean of per-caption means",
        "captions with few naming words weigh as much as long ones")
def loc_mean_of_means(alpha, boxes, word_obj, image_hw):
    oy, ox = _overlaps(alpha, boxes, word_obj, image_hw)
    named = word_obj >= 0
    mass = torch.einsum("btyx,bty,btx->bt", alpha, oy, ox) * named
    return mass, (mass.sum(1) / named.sum(1)).mean()


# ---------------------------------------------------------------- fit_predict


@mutant("the most frequent training caption for every image",
        "the model did not learn to look at the image")
def fit_majority_caption(train_images, train_captions, test_images, seed):
    rows, counts = np.unique(train_captions, axis=0, return_counts=True)
    best = rows[np.argmax(counts)][1:]  # drop <start>
    n, L = len(test_images), CAPTION_LEN - 1
    alpha = np.full((n, L, 8, 8), 1 / 64, np.float32) * (best != PAD)[None, :, None, None]
    return np.tile(best, (n, 1)).astype(np.int64), alpha.astype(np.float32)


class _UniformAttention(k.ShowAttendTell):
    """The same captioner with its scoring vector frozen at zero: every alpha is uniform."""

    def __init__(self, vocab_size):
        super().__init__(vocab_size)
        del self.w
        self.register_buffer("w", torch.zeros(self.W_a.shape[1]))


@mutant("attention replaced by a uniform average of the grid",
        "the context is the same mean feature at every step, so the words cannot be grounded")
def fit_uniform_attention(train_images, train_captions, test_images, seed):
    torch.manual_seed(seed)
    model = k.train_captioner(train_images, train_captions, seed,
                              model=_UniformAttention(len(k.VOCAB)))
    return k.caption_images(model, test_images, beam_size=1)

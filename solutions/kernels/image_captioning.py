"""Reference kernels for attention-based image captioning (Show, Attend and Tell).

Basic: the grid of annotation vectors and soft additive attention over it.
Intermediate: one attention-LSTM decoder step with the gating scalar beta, the doubly
stochastic attention regulariser, and the teacher-forcing loss with a padding mask.
Advanced: one beam-search step, the attention-localisation score, and a captioner trained
on the synthetic scenes of ``grader.data.scenes``.

Paper: K. Xu et al., "Show, Attend and Tell: Neural Image Caption Generation with Visual
Attention", ICML 2015 (equation numbers below refer to it).
"""
import math

import numpy as np
import torch

from grader.data.scenes import CAPTION_LEN, END, PAD, START, VOCAB


def flatten_grid(fmap):
    """Turn a CNN feature map into the list of annotation vectors a_1..a_L.

    Args:
        fmap: (B, C, H, W) float tensor, channels first (PyTorch's conv layout).

    Returns:
        (B, L, C) tensor with L = H*W: location i = y*W + x (row-major over the grid)
        holds the C features of grid cell (y, x).  Same dtype as ``fmap``.

    Source: Xu et al. 2015, section 3.1.1: a = {a_1, ..., a_L}, a_i in R^D, one vector
    per location of a lower convolutional layer.
    """
    B, C, H, W = fmap.shape
    return fmap.permute(0, 2, 3, 1).reshape(B, H * W, C)  # channels last, then merge (H, W)


def soft_attention(a, h, W_a, W_h, b, w):
    """Soft additive attention of a decoder state over a grid of annotation vectors.

    Args:
        a: (B, L, D) annotation vectors (the keys and values).
        h: (B, n) previous decoder hidden state h_{t-1} (the query).
        W_a: (D, A) projection of the annotations.
        W_h: (n, A) projection of the hidden state.
        b: (A,) bias of the hidden layer.
        w: (A,) output vector of the scoring MLP.
        All float tensors of one dtype (float32 or float64).

    Returns:
        alpha: (B, L) attention weights, non-negative, each row sums to 1.
        z: (B, D) context vector, the alpha-weighted average of the annotations.

    Source: Xu et al. 2015, eq. (4)-(5) with the additive scoring of Bahdanau et al. 2015:
    e_ti = w^T tanh(W_a^T a_i + W_h^T h_{t-1} + b),  alpha_ti = softmax_i(e_ti),
    and the soft ("deterministic") context of eq. (13): z_t = sum_i alpha_ti a_i.
    """
    e = torch.tanh(a @ W_a + (h @ W_h)[:, None, :] + b) @ w  # (B, L) logits
    alpha = torch.softmax(e, dim=1)  # normalise over the L locations
    z = (alpha[:, :, None] * a).sum(dim=1)  # (B, D)
    return alpha, z


def attend_lstm_step(y_emb, h, c, a, att, gate, lstm):
    """One decoder step of Show, Attend and Tell: attend, gate the context, run the LSTM.

    Args:
        y_emb: (B, m) embedding E y_{t-1} of the previous word.
        h, c: (B, n) previous hidden and cell state.
        a: (B, L, D) annotation vectors.
        att: (W_a (D, A), W_h (n, A), b (A,), w (A,)): the scoring MLP of
            :func:`soft_attention`.
        gate: (w_beta (n,), b_beta ()): the gating scalar's linear layer.
        lstm: (W_ih (4n, m+D), W_hh (4n, n), b_ih (4n,), b_hh (4n,)) in the layout of
            ``torch.nn.LSTMCell`` (gate rows ordered input, forget, cell, output).  The
            LSTM input is the concatenation [E y_{t-1}, beta * z].
        All float tensors of one dtype.

    Returns:
        h_new, c_new: (B, n) new states.
        alpha: (B, L) attention weights of this step.
        beta: (B,) gating scalar in (0, 1).

    Source: Xu et al. 2015, eq. (1)-(3) (LSTM), (4)-(6) (attention), section 4.2.1:
    beta_t = sigmoid(f_beta(h_{t-1})) and the context fed to the LSTM is beta_t * z_t.
    """
    W_ih, W_hh, b_ih, b_hh = lstm
    w_beta, b_beta = gate
    alpha, z = soft_attention(a, h, *att)
    beta = torch.sigmoid(h @ w_beta + b_beta)  # (B,)
    x = torch.cat([y_emb, beta[:, None] * z], dim=1)  # (B, m + D)
    i, f, g, o = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)  # each (B, n)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    return h_new, c_new, alpha, beta


def doubly_stochastic_penalty(alpha, mask, lam):
    """Doubly stochastic attention regulariser: every location should be attended about once.

    Args:
        alpha: (B, T, L) attention weights of T decoder steps over L locations.
        mask: (B, T) bool, True for real tokens; padded steps do not count.
        lam: float, the weight lambda (>= 0).

    Returns:
        0-d tensor (alpha's dtype): lam * mean over the batch of
        sum_i (1 - sum_t alpha_ti)^2, the sums over t running over unpadded steps only.

    Source: Xu et al. 2015, eq. (14): L_d = -log P(y|x) + lambda sum_i (1 - sum_t alpha_ti)^2.
    """
    coverage = (alpha * mask[:, :, None]).sum(dim=1)  # (B, L): total attention per location
    return lam * ((1.0 - coverage) ** 2).sum(dim=1).mean()


def caption_loss(logits, captions, pad_id=PAD):
    """Teacher-forcing cross-entropy of a caption decoder, ignoring padding.

    Args:
        logits: (B, T, V) float scores; logits[:, t] is the prediction made after reading
            captions[:, :t+1] (teacher forcing), so it is scored against captions[:, t+1].
        captions: (B, T+1) int64 token ids: <start>, words, <end>, then ``pad_id``.
        pad_id: id of the padding token.

    Returns:
        0-d tensor: mean negative log-likelihood (nats per token) over every target token
        that is not padding (the <end> token counts).  NaN when there is none.

    Source: Xu et al. 2015, eq. (14), first term -log P(y | x) = -sum_t log p(y_t | y_<t, x),
    averaged per token.
    """
    targets = captions[:, 1:]  # shift: position t predicts the next token
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]  # (B, T)
    mask = targets != pad_id
    return -(logp * mask).sum() / mask.sum()


def beam_step(scores, logp, finished, eos):
    """One pruning step of beam search, for N inputs with K hypotheses each.

    Args:
        scores: (N, K) float, total log-probability of each hypothesis; -inf marks an
            empty slot (at the first step only slot 0 is live).
        logp: (N, K, V) float, log-probabilities of the next token for each hypothesis.
        finished: (N, K) bool, hypotheses that already emitted ``eos``.
        eos: int, the end-of-sequence token id.

    Returns:
        new_scores: (N, K) the K best scores of the N*K*V candidates, best first.
        parents: (N, K) int64, which hypothesis each survivor extends.
        tokens: (N, K) int64, the token appended to it.
        A finished hypothesis has exactly one candidate: itself, extended by ``eos`` with
        its score unchanged.  Each input keeps its own K best (a global top-K over K*V).

    Source: beam search as used in Sutskever et al. 2014 and Xu et al. 2015 (sec. 5):
    score(y_1..y_t) = sum_s log p(y_s | y_<s, x).
    """
    N, K, V = logp.shape
    cand = scores[:, :, None] + logp  # (N, K, V) extended scores
    stay = torch.full_like(cand, -math.inf)
    stay[:, :, eos] = scores  # a finished hypothesis only carries itself forward
    cand = torch.where(finished[:, :, None], stay, cand)
    top, idx = cand.reshape(N, K * V).topk(K, dim=1)  # global top-K per input
    return top, idx // V, idx % V


def localisation_score(alpha, boxes, word_obj, image_hw):
    """Share of attention mass inside the ground-truth box of the object a word names.

    A grid cell's weight is spread evenly over its pixels, so a cell half covered by the
    box contributes half its weight.

    Args:
        alpha: (B, T, Hg, Wg) float attention maps over a Hg x Wg grid that tiles the image
            (one map per caption token).
        boxes: (B, K, 4) int pixel boxes (x0, y0, x1, y1), half-open.
        word_obj: (B, T) int64, index of the object token t names, -1 when it names none.
        image_hw: (H, W) image size in pixels; cell (y, x) covers rows
            [y H/Hg, (y+1) H/Hg) and columns [x W/Wg, (x+1) W/Wg).

    Returns:
        mass: (B, T) alpha's dtype, attention mass inside the named box (0 where
            word_obj is -1).
        score: 0-d tensor, the mean of ``mass`` over all naming tokens of the batch
            (NaN if there is none).

    Source: the attention-correctness idea of Liu et al. 2017 ("Attention Correctness in
    Neural Image Captioning"): sum of the attention weights inside the grounded region.
    """
    B, T, Hg, Wg = alpha.shape
    H, W = image_hw
    box = boxes[torch.arange(B)[:, None], word_obj.clamp(min=0)].to(alpha.dtype)  # (B, T, 4)
    ey = torch.arange(Hg + 1, dtype=alpha.dtype) * (H / Hg)  # cell edges, pixels
    ex = torch.arange(Wg + 1, dtype=alpha.dtype) * (W / Wg)
    oy = (torch.minimum(box[..., 3:4], ey[1:]) - torch.maximum(box[..., 1:2], ey[:-1])).clamp(min=0) / (H / Hg)
    ox = (torch.minimum(box[..., 2:3], ex[1:]) - torch.maximum(box[..., 0:1], ex[:-1])).clamp(min=0) / (W / Wg)
    named = word_obj >= 0
    mass = torch.einsum("btyx,bty,btx->bt", alpha, oy, ox) * named  # (B, T)
    return mass, mass.sum() / named.sum()


class ShowAttendTell(torch.nn.Module):
    """A small Show, Attend and Tell captioner for 32x32 scenes.

    Encoder: two stride-2 convolutions and one more conv give an 8x8 grid of D-dim
    annotation vectors; two coordinate channels (x, y in [-1, 1]) are appended to the
    image so the features know where they are ("left of" needs it).  Decoder: the
    attention-LSTM step of :func:`attend_lstm_step`, initial state from the mean annotation
    (Xu et al. sec. 3.1.2), and a linear read-out of [h_t; beta_t z_t]
    (a minimal form of the deep output layer, eq. 7).

    Args:
        vocab_size: V.
        d, n, m, att: annotation, hidden, embedding and attention sizes.
    """

    def __init__(self, vocab_size, d=32, n=64, m=16, att=32):
        super().__init__()
        nn = torch.nn
        self.encoder = nn.Sequential(
            nn.Conv2d(5, 24, 3, stride=2, padding=1), nn.ReLU(),  # 32x32 -> 16x16
            nn.Conv2d(24, d, 3, stride=2, padding=1), nn.ReLU(),  # 16x16 -> 8x8
            nn.Conv2d(d, d, 3, padding=1), nn.ReLU())
        self.embed = nn.Embedding(vocab_size, m)
        self.init_h, self.init_c = nn.Linear(d, n), nn.Linear(d, n)
        self.W_a = nn.Parameter(torch.randn(d, att) / math.sqrt(d))
        self.W_h = nn.Parameter(torch.randn(n, att) / math.sqrt(n))
        self.b = nn.Parameter(torch.zeros(att))
        self.w = nn.Parameter(torch.randn(att) / math.sqrt(att))
        self.w_beta, self.b_beta = nn.Parameter(torch.zeros(n)), nn.Parameter(torch.zeros(()))
        self.cell = nn.LSTMCell(m + d, n)
        self.out = nn.Linear(n + d, vocab_size)

    def encode(self, images):
        """(B, 3, H, W) float32 -> annotations (B, L, d) and the grid size (Hg, Wg)."""
        B, _, H, W = images.shape
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
        x = torch.cat([images, xs.expand(B, 1, H, W), ys.expand(B, 1, H, W)], dim=1)
        fmap = self.encoder(x)  # (B, d, Hg, Wg)
        return flatten_grid(fmap), fmap.shape[2:]

    def init_state(self, a):
        """Initial (h, c), each (B, n), from the mean annotation vector."""
        mean = a.mean(dim=1)
        return torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))

    def step(self, a, y, h, c):
        """Previous tokens y (B,) -> next-token log-probs (B, V), new h, c, alpha (B, L)."""
        cell = self.cell
        h, c, alpha, beta = attend_lstm_step(
            self.embed(y), h, c, a, (self.W_a, self.W_h, self.b, self.w), (self.w_beta, self.b_beta),
            (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))
        z = beta[:, None] * (alpha[:, :, None] * a).sum(dim=1)  # the gated context again
        return torch.log_softmax(self.out(torch.cat([h, z], dim=1)), dim=-1), h, c, alpha

    def forward(self, images, tokens):
        """Teacher forcing: tokens (B, T) inputs -> logits (B, T, V), alpha (B, T, L)."""
        a, _ = self.encode(images)
        h, c = self.init_state(a)
        logps, alphas = [], []
        for t in range(tokens.shape[1]):
            logp, h, c, alpha = self.step(a, tokens[:, t], h, c)
            logps.append(logp)
            alphas.append(alpha)
        return torch.stack(logps, dim=1), torch.stack(alphas, dim=1)


def train_captioner(images, captions, seed, model=None, epochs=60, batch=64, lr=5e-3, lam=0.0):
    """Train a captioner with teacher forcing, Adam and the doubly stochastic regulariser.

    Args:
        images: (N, 3, H, W) float32 array of scenes (``grader.data.scenes``).
        captions: (N, T+1) int64 array of token ids (<start> ... <end> <pad>...).
        seed: int; fixes the initialisation and the batch order.
        model: an untrained ``torch.nn.Module`` with ``forward``/``encode``/``init_state``/
            ``step`` like :class:`ShowAttendTell` (default: ``ShowAttendTell(len(VOCAB))``).
        epochs, batch, lr: optimisation settings (Adam, gradients clipped to norm 1).
        lam: lambda of eq. (14).  Default 0: with captions of T <= 11 tokens over L = 64
            cells, sum_t alpha_ti cannot reach 1 for every cell, and the penalty pulls
            attention towards uniform (it lowered BLEU on these scenes when we tried it).

    Returns:
        The trained model, in eval mode.  Runs on one CPU thread (small ops: more threads only add overhead on a shared machine).

    Source: Xu et al. 2015, eq. (14), trained with Adam (Kingma & Ba 2015).
    """
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = ShowAttendTell(len(VOCAB)) if model is None else model
    X, Y = torch.as_tensor(images, dtype=torch.float32), torch.as_tensor(captions, dtype=torch.int64)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(X), generator=gen).split(batch):
            y = Y[idx]
            y = y[:, :int((y != PAD).sum(1).max())]  # trim columns that are padding everywhere
            logits, alpha = model(X[idx], y[:, :-1])
            loss = caption_loss(logits, y) + doubly_stochastic_penalty(alpha, y[:, 1:] != PAD, lam)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    return model.eval()


@torch.no_grad()
def caption_images(model, images, beam_size=1, max_len=CAPTION_LEN - 1):
    """Caption images with beam search (greedy decoding when ``beam_size`` is 1).

    Args:
        model: a trained captioner (see :func:`train_captioner`).
        images: (N, 3, H, W) float32 array.
        beam_size: K >= 1 hypotheses kept per image (:func:`beam_step`).
        max_len: maximum number of generated tokens, <end> included.

    Returns:
        tokens: (N, max_len) int64 array, the best hypothesis' tokens after <start>: words,
            <end>, then <pad> (0).
        alpha: (N, max_len, Hg, Wg) float32 array, the attention map behind each token
            (zeros after <end>).
    """
    X = torch.as_tensor(images, dtype=torch.float32)
    N, K = len(X), beam_size
    a, (Hg, Wg) = model.encode(X)
    a = a.repeat_interleave(K, dim=0)  # (N*K, L, d): row n*K + k is hypothesis k of image n
    h, c = model.init_state(a)
    y = torch.full((N * K,), START)
    scores = torch.full((N, K), -math.inf)
    scores[:, 0] = 0.0
    finished = torch.zeros(N, K, dtype=torch.bool)
    toks, alphas = torch.zeros(N * K, 0, dtype=torch.int64), torch.zeros(N * K, 0, Hg * Wg)
    for _ in range(max_len):
        logp, h, c, alpha = model.step(a, y, h, c)
        scores, parent, tok = beam_step(scores, logp.view(N, K, -1), finished, END)
        rows = (torch.arange(N)[:, None] * K + parent).reshape(-1)  # surviving rows
        h, c, y = h[rows], c[rows], tok.reshape(-1)
        toks = torch.cat([toks[rows], y[:, None]], dim=1)
        alphas = torch.cat([alphas[rows], alpha[rows][:, None]], dim=1)
        finished = finished.reshape(-1)[rows].view(N, K) | (tok == END)
        if finished.all():
            break
    toks, alphas = toks.view(N, K, -1)[:, 0], alphas.view(N, K, -1, Hg * Wg)[:, 0]  # best beam
    after_end = (toks == END).int().cumsum(dim=1) - (toks == END).int() > 0
    toks[after_end], alphas[after_end] = PAD, 0.0
    out_t = np.zeros((N, max_len), np.int64)
    out_a = np.zeros((N, max_len, Hg, Wg), np.float32)
    out_t[:, :toks.shape[1]] = toks.numpy()
    out_a[:, :toks.shape[1]] = alphas.view(N, -1, Hg, Wg).numpy()
    return out_t, out_a


def fit_predict(train_images, train_captions, test_images, seed):
    """Train a captioner on scenes and caption held-out scenes greedily.

    Args:
        train_images: (N, 3, 32, 32) float32 array; train_captions: (N, 12) int64 array
            (``grader.data.scenes.make_scenes``).
        test_images: (M, 3, 32, 32) float32 array.
        seed: int, seeds all randomness of training.

    Returns:
        tokens: (M, 11) int64 array of generated tokens (words, <end>, <pad>...).
        alpha: (M, 11, 8, 8) float32 array, the attention map behind each token.
        Graded by BLEU-4 against the held-out captions and by the attention-localisation
        score of the correctly predicted words that name an object.

    Source: Xu et al. 2015 (soft attention, eq. 4-6, 14).
    """
    model = train_captioner(train_images, train_captions, seed)
    return caption_images(model, test_images, beam_size=1)

"""Reference kernels for the rnn-on-images topic.

basic: one Elman RNN step and an RNN reading an image row by row (NumPy).
intermediate: a GRU cell, attention pooling over time steps, and a row-reading GRU
classifier trained on the bundled digits (PyTorch).
advanced: the recurrent attention model of Mnih et al. (2014): the glimpse sensor, the
REINFORCE loss with a baseline, and a model trained on cluttered digits (PyTorch).
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------- basic


def rnn_step(x, h, W_xh, W_hh, b):
    """One step of an Elman RNN: h_new = tanh(x @ W_xh + h @ W_hh + b).

    Args:
        x: input at this time step, float ``(B, D)``.
        h: previous hidden state, float ``(B, H)``.
        W_xh: input-to-hidden weights ``(D, H)``; W_hh: hidden-to-hidden weights ``(H, H)``
            (row i of W_hh says how old unit i feeds every new unit); b: bias ``(H,)``.
        All arrays share one float dtype (float32 or float64).

    Returns:
        The new hidden state, ``(B, H)``, same dtype, every entry in (-1, 1).

    Raises:
        ValueError: (from NumPy's matmul) when the inner dimensions do not match.

    Source: Elman (1990), "Finding structure in time"; Goodfellow, Bengio & Courville,
    Deep Learning, eqs. 10.8-10.9 (a_t = b + W h_{t-1} + U x_t, h_t = tanh(a_t)), written
    here for row vectors.
    """
    return np.tanh(x @ W_xh + h @ W_hh + b)  # (B, H)


def rnn_over_rows(images, h0, W_xh, W_hh, b):
    """Read each image top row first as a sequence and return every hidden state.

    Row t of the image is the input at time step t: x_t = images[:, t, :], so an image
    of R rows and C columns is a sequence of R steps of C features.

    Args:
        images: float ``(B, R, C)``.
        h0: initial hidden state ``(B, H)`` (not necessarily zeros).
        W_xh ``(C, H)``, W_hh ``(H, H)``, b ``(H,)``: as in :func:`rnn_step`.

    Returns:
        hs: ``(B, R, H)``, same dtype; hs[:, t] is the state after reading rows 0..t, so
        hs[:, -1] summarises the whole image.

    Raises:
        ValueError: when C does not match W_xh's first dimension.

    Source: the Elman recurrence h_t = tanh(x_t W_xh + h_{t-1} W_hh + b) (see
    :func:`rnn_step`) unrolled over the rows, as in the "pixel-by-pixel / row-by-row
    MNIST" benchmarks (Le, Jaitly & Hinton 2015, Sec. 4.1).
    """
    xs = np.transpose(images, (1, 0, 2))  # (R, B, C): time-major, one row per step
    h, hs = h0, []
    for x in xs:
        h = rnn_step(x, h, W_xh, W_hh, b)  # (B, H)
        hs.append(h)
    return np.stack(hs, axis=1)  # (B, R, H)


# ----------------------------------------------------------------------------- intermediate


def gru_cell(x, h, W_ih, W_hh, b_ih, b_hh):
    """One GRU step, with the weight layout and gate order of ``torch.nn.GRUCell``.

    Args:
        x: input, float tensor ``(B, D)``; h: previous state ``(B, H)``.
        W_ih: ``(3H, D)``, rows stacked as [reset r; update z; candidate n].
        W_hh: ``(3H, H)``, same stacking.  b_ih, b_hh: ``(3H,)``, same stacking.
        All tensors share one float dtype.

    Returns:
        The new state ``(B, H)``, same dtype:

            r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
            z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
            n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
            h_new = (1 - z) * n + z * h

    Raises:
        RuntimeError: (from torch) when the shapes do not fit together.

    Source: Cho et al. (2014), "Learning phrase representations using RNN encoder-decoder",
    eqs. 5-8, with the reset gate applied after the recurrent product as in cuDNN and
    PyTorch; z close to 1 keeps the old state.
    """
    i_r, i_z, i_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)  # each (B, H)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=1)  # each (B, H)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def attention_pool(hs, W, b, v):
    """Attention pooling over time steps: score each hidden state, softmax over time, average.

    Args:
        hs: hidden states, float tensor ``(B, T, H)`` (one per row of an image).
        W: ``(H, A)``, b: ``(A,)``, v: ``(A,)``: the scoring network's parameters.

    Returns:
        ``(context, alpha)``: context ``(B, H)`` = sum_t alpha[:, t] * hs[:, t], and the
        attention weights alpha ``(B, T)`` (non-negative, each row sums to 1); same dtype.

            e_t = v . tanh(h_t W + b)        (logits, one per time step)
            alpha = softmax(e) over t

    Raises:
        RuntimeError: (from torch) when H or A do not match.

    Source: Raffel & Ellis (2015), "Feed-forward networks with attention can solve some
    long-term memory problems", eqs. 1-3 (e_t = a(h_t), alpha = softmax(e), c = sum alpha h),
    with the additive scoring function of Bahdanau et al. (2015), eq. 6.
    """
    e = torch.tanh(hs @ W + b) @ v  # (B, T) logits
    alpha = torch.softmax(e, dim=1)  # (B, T) over time steps
    return (alpha.unsqueeze(-1) * hs).sum(dim=1), alpha  # (B, H), (B, T)


def random_shift(images, gen):
    """Move every image by -1, 0 or +1 pixel along each axis (data augmentation).

    Args:
        images: float tensor ``(B, R, C)``; gen: a ``torch.Generator`` (the offsets).

    Returns:
        ``(B, R, C)``, same dtype; pixels moved in from outside are 0.

    Raises:
        ValueError: (from unpacking) when images is not 3-D.

    Source: translation augmentation as in Simard, Steinkraus & Platt (2003), "Best practices
    for convolutional neural networks applied to visual document analysis", Sec. 2.
    """
    B, R, C = images.shape
    padded = F.pad(images, (1, 1, 1, 1))  # (B, R + 2, C + 2)
    dy, dx = torch.randint(0, 3, (2, B), generator=gen)
    rows = dy[:, None] + torch.arange(R)  # (B, R)
    cols = dx[:, None] + torch.arange(C)  # (B, C)
    return padded[torch.arange(B)[:, None, None], rows[:, :, None], cols[:, None, :]]


class RowAttentionGRU(torch.nn.Module):
    """Classify an image by reading its rows with a bidirectional GRU and pooling the
    row states with :func:`attention_pool`.

    ``forward(images)`` takes float32 ``(B, R, C)`` images (R rows = time steps of C
    features) and returns class logits ``(B, n_classes)`` and the attention weights over rows
    ``(B, R)``.  Source: bidirectional RNN (Schuster & Paliwal 1997) of GRUs (Cho et al.
    2014), attention pooling as in :func:`attention_pool`.
    """

    def __init__(self, n_cols=8, n_hidden=64, n_att=32, n_classes=10):
        super().__init__()
        H = 2 * n_hidden  # forward and backward states side by side
        self.gru = torch.nn.GRU(n_cols, n_hidden, batch_first=True, bidirectional=True)
        self.W = torch.nn.Parameter(torch.randn(H, n_att) / math.sqrt(H))
        self.b = torch.nn.Parameter(torch.zeros(n_att))
        self.v = torch.nn.Parameter(torch.randn(n_att) / math.sqrt(n_att))
        self.out = torch.nn.Linear(H, n_classes)

    def forward(self, images):
        hs, _ = self.gru(images)  # (B, R, 2 * n_hidden): one state per row
        context, alpha = attention_pool(hs, self.W, self.b, self.v)
        return self.out(context), alpha


def train_row_gru(X, y, seed, epochs=30, batch=64, lr=1e-2):
    """Train a :class:`RowAttentionGRU` with Adam and a one-cycle learning rate.

    Args:
        X: float tensor ``(N, R, C)`` images in [0, 1]; y: int64 tensor ``(N,)`` labels 0..9.
        seed: int; fixes the initial weights, the batch order and the random shifts.
        epochs, batch, lr: passes over the data, batch size, peak learning rate.

    Returns:
        ``(model, losses)``: the trained model (in eval mode) and the training loss of every
        batch (a list of floats).

    Raises:
        RuntimeError: (from torch) when X is not ``(N, R, C)`` or y holds labels outside 0..9.

    Source: Adam (Kingma & Ba 2015, Algorithm 1) with the one-cycle schedule (Smith &
    Topin 2019), minimising the cross-entropy of :class:`RowAttentionGRU`'s logits.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    X, y = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)
    model = RowAttentionGRU(n_cols=X.shape[2])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * math.ceil(len(X) / batch))
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch):
            idx = perm[i:i + batch]
            logits, _ = model(random_shift(X[idx], gen))
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
    return model.eval(), losses


def fit_predict_digits(X_train, y_train, X_test, seed):
    """Train on labelled digit images and predict the labels of held-out ones.

    Args:
        X_train: float32 tensor ``(N, 8, 8)`` in [0, 1]; y_train: int64 tensor ``(N,)``.
        X_test: float32 tensor ``(M, 8, 8)``; seed: int (all randomness of training).

    Returns:
        int64 tensor ``(M,)`` of predicted labels 0..9.  Must run in well under the grader's
        time limit on 2 CPU cores.

    Source: a GRU (Cho et al. 2014) reading rows, with attention pooling over time
    (Raffel & Ellis 2015); see :func:`train_row_gru`.
    """
    torch.set_num_threads(1)  # tiny matrices: one thread is as fast and shares the machine
    model, _ = train_row_gru(X_train, y_train, seed)
    with torch.no_grad():
        logits, _ = model(torch.as_tensor(X_test, dtype=torch.float32))
    return logits.argmax(dim=1)


# ----------------------------------------------------------------------------- advanced


def glimpse_sensor(images, loc, size, n_scales):
    """The retina of the recurrent attention model: ``n_scales`` square crops centred on one
    location, each twice as wide as the previous one, all average-pooled to ``size x size``.

    Args:
        images: float tensor ``(B, H, W)``.
        loc: ``(B, 2)`` glimpse centres as (row, col) in [-1, 1]: -1 is the top/left edge, +1
            the bottom/right edge; values outside are clamped to [-1, 1].  The centre pixel is
            cy = floor((loc[:, 0] + 1) / 2 * H), cx = floor((loc[:, 1] + 1) / 2 * W).
        size: side g of every glimpse in pixels (int >= 1); n_scales: number of scales k.

    Returns:
        ``(B, n_scales, size, size)``, same dtype.  Scale s (0-based) covers the
        ``size * 2**s`` pixels square whose top-left pixel is (cy - size * 2**s // 2,
        cx - size * 2**s // 2), averaged over ``2**s x 2**s`` blocks; pixels outside the image
        count as 0.  Scale 0 is the sharpest, the last one the coarsest.

    Raises:
        RuntimeError: (from torch) when loc is not ``(B, 2)``.

    Source: Mnih, Heess, Graves & Kavukcuoglu (2014), "Recurrent models of visual
    attention", Sec. 3.1 (the glimpse sensor rho(x_t, l_{t-1}) and its retina-like
    representation of k progressively coarser patches).
    """
    B, H, W = images.shape
    pad = size * 2 ** (n_scales - 1) // 2 + 1  # the widest crop always fits in the padding
    padded = F.pad(images, (pad, pad, pad, pad))  # (B, H + 2 pad, W + 2 pad), zeros outside
    loc = loc.clamp(-1, 1)
    cy = torch.floor((loc[:, 0] + 1) / 2 * H).long() + pad  # (B,) centre, padded coordinates
    cx = torch.floor((loc[:, 1] + 1) / 2 * W).long() + pad
    batch = torch.arange(B)[:, None, None]
    out = []
    for s in range(n_scales):
        side = size * 2 ** s
        rows = cy[:, None] - side // 2 + torch.arange(side)  # (B, side)
        cols = cx[:, None] - side // 2 + torch.arange(side)
        crop = padded[batch, rows[:, :, None], cols[:, None, :]]  # (B, side, side)
        out.append(F.avg_pool2d(crop[:, None], 2 ** s)[:, 0])  # (B, size, size)
    return torch.stack(out, dim=1)  # (B, n_scales, size, size)


def reinforce_loss(log_pi, reward, baseline):
    """REINFORCE with a learned baseline, for the location policy of the attention model.

    Args:
        log_pi: ``(B, T)`` log-density of each sampled location under the policy (carries
            the gradient to the location network).
        reward: ``(B,)`` episode reward (1 for a correct classification, else 0).
        baseline: ``(B, T)`` predicted reward b_t at each step (carries the gradient to the
            baseline network).  All float tensors of one dtype.

    Returns:
        ``(policy_loss, baseline_loss)``, two scalar tensors:

            A[b, t] = reward[b] - baseline[b, t], treated as a constant (detached)
            policy_loss = -mean_b sum_t log_pi[b, t] * A[b, t]
            baseline_loss = mean_{b, t} (baseline[b, t] - reward[b])^2

        Minimising policy_loss follows the REINFORCE gradient; the detach keeps the policy
        loss from moving the baseline, which learns only from baseline_loss.

    Source: Williams (1992), eq. for the REINFORCE update with a reinforcement baseline;
    Mnih et al. (2014), Sec. 3.2, eq. 2 (the gradient estimate with baseline b_t).
    """
    advantage = (reward[:, None] - baseline).detach()  # (B, T), no gradient
    policy_loss = -(log_pi * advantage).sum(dim=1).mean()
    baseline_loss = ((baseline - reward[:, None]) ** 2).mean()
    return policy_loss, baseline_loss


class RAM(torch.nn.Module):
    """The recurrent attention model: glimpse network, recurrent core, Gaussian location
    policy, baseline and classifier (Mnih et al. 2014, Sec. 3 and Fig. 1).

    ``forward(images, sample=True)`` takes float32 ``(B, H, W)`` canvases and returns
    ``(logits (B, n_classes), log_pi (B, T-1), baseline (B, T-1), locs (B, T, 2))`` for
    T = n_glimpses; the first glimpse is at the centre, each later one at a location drawn
    from N(mu_t, sigma^2) (or at mu_t with ``sample=False``).
    """

    def __init__(self, size=4, n_scales=3, n_glimpses=5, n_hidden=128, sigma=0.15, n_classes=10):
        super().__init__()
        self.size, self.n_scales, self.n_glimpses, self.sigma = size, n_scales, n_glimpses, sigma
        self.what = torch.nn.Linear(n_scales * size * size, n_hidden)  # glimpse pixels -> features
        self.where = torch.nn.Linear(2, n_hidden)  # glimpse location -> features
        self.core = torch.nn.GRUCell(n_hidden, n_hidden)
        self.locator = torch.nn.Linear(n_hidden, 2)  # mean of the next location
        self.baseliner = torch.nn.Linear(n_hidden, 1)
        self.classifier = torch.nn.Linear(n_hidden, n_classes)

    def forward(self, images, sample=True):
        B = images.shape[0]
        h = images.new_zeros(B, self.core.hidden_size)
        loc = images.new_zeros(B, 2)  # first glimpse at the centre
        locs, log_pi, base = [loc], [], []
        for t in range(self.n_glimpses):
            g = glimpse_sensor(images, loc, self.size, self.n_scales).flatten(1)  # (B, k g g)
            h = self.core(F.relu(self.what(g) + self.where(loc)), h)  # (B, n_hidden)
            if t == self.n_glimpses - 1:
                break
            mu = torch.tanh(self.locator(h.detach()))  # (B, 2); REINFORCE trains the locator
            loc = (mu + self.sigma * torch.randn_like(mu)).detach() if sample else mu.detach()
            log_pi.append((-((loc - mu) / self.sigma) ** 2 / 2 - math.log(self.sigma * math.sqrt(2 * math.pi))).sum(1))
            base.append(self.baseliner(h.detach())[:, 0])
            loc = loc.clamp(-1, 1)
            locs.append(loc)
        return self.classifier(h), torch.stack(log_pi, 1), torch.stack(base, 1), torch.stack(locs, 1)


def train_ram(X, y, seed, epochs=20, batch=64, lr=5e-3):
    """Train a :class:`RAM` with the hybrid loss: cross-entropy for the classifier and the
    core, REINFORCE with a baseline for the location policy, squared error for the baseline.

    Args:
        X: float tensor ``(N, H, W)`` canvases in [0, 1]; y: int64 ``(N,)`` labels.
        seed: int (initial weights, batch order, location samples).
        epochs, batch, lr: passes over the data, batch size, peak learning rate (one-cycle).

    Returns:
        ``(model, history)``: the model in eval mode and, per batch, a dict with the
        "loss" and the mean "reward" (training accuracy with sampled glimpses).

    Raises:
        RuntimeError: (from torch) when X is not ``(N, H, W)`` or y holds labels outside 0..9.

    Source: Mnih et al. (2014), Sec. 3.2 (the hybrid loss: supervised cross-entropy for the
    action network plus REINFORCE with a baseline, eq. 2, for the location network).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    X, y = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)
    model = RAM()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * math.ceil(len(X) / batch))
    history = []
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch):
            idx = perm[i:i + batch]
            logits, log_pi, base, _ = model(X[idx])
            reward = (logits.argmax(1) == y[idx]).float()  # (B,) 1 if correct
            policy_loss, baseline_loss = reinforce_loss(log_pi, reward, base)
            loss = F.cross_entropy(logits, y[idx]) + policy_loss + baseline_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            history.append({"loss": loss.item(), "reward": reward.mean().item()})
    return model.eval(), history


def fit_predict_cluttered(X_train, y_train, X_test, seed):
    """Train a recurrent attention model on cluttered canvases and classify held-out ones.

    Args:
        X_train: float32 tensor ``(N, 16, 16)`` in [0, 1]; y_train: int64 ``(N,)``.
        X_test: float32 ``(M, 16, 16)``; seed: int (all randomness of training).

    Returns:
        int64 tensor ``(M,)`` of predicted labels, glimpses placed at the policy's mean
        (no sampling at test time).

    Source: Mnih et al. (2014), Sec. 3-4; see :func:`train_ram`.
    """
    torch.set_num_threads(1)  # tiny matrices: one thread is as fast and shares the machine
    model, _ = train_ram(X_train, y_train, seed)
    with torch.no_grad():
        logits = model(torch.as_tensor(X_test, dtype=torch.float32), sample=False)[0]
    return logits.argmax(dim=1)

"""Known-wrong implementations for the rnn-on-images topic: the mistakes learners make most."""
import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import mutant

# ----------------------------------------------------------------------------- rnn_step


@mutant("an RNN step with no tanh", "the state is a linear function of the inputs and can grow without bound")
def step_no_tanh(x, h, W_xh, W_hh, b):
    return x @ W_xh + h @ W_hh + b


@mutant("an RNN step with a ReLU instead of tanh",
        "negative pre-activations become 0 and positive ones are not squashed into (-1, 1)")
def step_relu(x, h, W_xh, W_hh, b):
    return np.maximum(x @ W_xh + h @ W_hh + b, 0.0)


@mutant("an RNN step with the recurrent weights transposed",
        "h @ W_hh.T sends old unit j to new unit i instead of i to j")
def step_transposed_recurrent(x, h, W_xh, W_hh, b):
    return np.tanh(x @ W_xh + h @ W_hh.T + b)


@mutant("an RNN step with the bias dropped", "every pre-activation misses b")
def step_no_bias(x, h, W_xh, W_hh, b):
    return np.tanh(x @ W_xh + h @ W_hh)


# ----------------------------------------------------------------------------- rnn_over_rows


def _unroll(xs, h0, W_xh, W_hh, b, reset=False):
    h, hs = h0, []
    for x in xs:
        h = np.tanh(x @ W_xh + (h0 if reset else h) @ W_hh + b)
        hs.append(h)
    return hs


@mutant("an RNN that reads columns instead of rows", "x_t must be row t, images[:, t, :], not column t")
def rows_read_columns(images, h0, W_xh, W_hh, b):
    return np.stack(_unroll(np.transpose(images, (2, 0, 1)), h0, W_xh, W_hh, b), axis=1)


@mutant("an RNN that reshapes (B, R, C) to (R, B, C) instead of transposing",
        "reshape keeps the memory order, so each 'row' mixes pixels of different images")
def rows_reshape_not_transpose(images, h0, W_xh, W_hh, b):
    B, R, C = images.shape
    return np.stack(_unroll(images.reshape(R, B, C), h0, W_xh, W_hh, b), axis=1)


@mutant("an RNN that restarts from h0 at every row",
        "each state sees one row only; nothing is carried from the rows above")
def rows_reset_state(images, h0, W_xh, W_hh, b):
    return np.stack(_unroll(np.transpose(images, (1, 0, 2)), h0, W_xh, W_hh, b, reset=True), axis=1)


@mutant("an RNN that reads the rows bottom to top", "step t must read row t counted from the top")
def rows_bottom_up(images, h0, W_xh, W_hh, b):
    return np.stack(_unroll(np.transpose(images, (1, 0, 2))[::-1], h0, W_xh, W_hh, b), axis=1)


@mutant("an RNN that ignores h0 and starts from zeros", "the given initial state must be used")
def rows_zero_start(images, h0, W_xh, W_hh, b):
    return np.stack(_unroll(np.transpose(images, (1, 0, 2)), np.zeros_like(h0), W_xh, W_hh, b), axis=1)


@mutant("an RNN that returns the states time-major (R, B, H)", "the output must be batch-first (B, R, H)")
def rows_time_major(images, h0, W_xh, W_hh, b):
    return np.stack(_unroll(np.transpose(images, (1, 0, 2)), h0, W_xh, W_hh, b), axis=0)


# ----------------------------------------------------------------------------- gru_cell


def _gates(x, h, W_ih, W_hh, b_ih, b_hh):
    return (x @ W_ih.T + b_ih).chunk(3, dim=1), (h @ W_hh.T + b_hh).chunk(3, dim=1)


@mutant("a GRU with the update gate inverted", "h_new = z * n + (1 - z) * h keeps the candidate where it should keep the old state")
def gru_update_inverted(x, h, W_ih, W_hh, b_ih, b_hh):
    (i_r, i_z, i_n), (h_r, h_z, h_n) = _gates(x, h, W_ih, W_hh, b_ih, b_hh)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return z * n + (1 - z) * h


@mutant("a GRU with the gate blocks read in the order (z, r, n)",
        "torch.nn.GRUCell stacks the rows of W_ih and W_hh as reset, update, candidate")
def gru_gate_order(x, h, W_ih, W_hh, b_ih, b_hh):
    (i_z, i_r, i_n), (h_z, h_r, h_n) = _gates(x, h, W_ih, W_hh, b_ih, b_hh)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


@mutant("a GRU with the reset gate applied before the recurrent product",
        "W_hn (r * h) is the original Cho et al. variant; torch computes r * (W_hn h + b_hn)")
def gru_reset_before_matmul(x, h, W_ih, W_hh, b_ih, b_hh):
    (i_r, i_z, i_n), (h_r, h_z, _) = _gates(x, h, W_ih, W_hh, b_ih, b_hh)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    H = h.shape[1]
    n = torch.tanh(i_n + (r * h) @ W_hh[2 * H:].T + b_hh[2 * H:])
    return (1 - z) * n + z * h


@mutant("a GRU with the reset gate dropped", "the candidate always sees the whole old state")
def gru_no_reset(x, h, W_ih, W_hh, b_ih, b_hh):
    (i_r, i_z, i_n), (h_r, h_z, h_n) = _gates(x, h, W_ih, W_hh, b_ih, b_hh)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + h_n)
    return (1 - z) * n + z * h


@mutant("a GRU with the recurrent candidate bias outside the reset gate",
        "b_hn must be multiplied by r together with W_hn h")
def gru_bias_outside_reset(x, h, W_ih, W_hh, b_ih, b_hh):
    (i_r, i_z, i_n), (h_r, h_z, h_n) = _gates(x, h, W_ih, W_hh, b_ih, b_hh)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    H = h.shape[1]
    n = torch.tanh(i_n + r * (h_n - b_hh[2 * H:]) + b_hh[2 * H:])
    return (1 - z) * n + z * h


# ----------------------------------------------------------------------------- attention_pool


@mutant("attention pooling with the softmax over the batch axis",
        "weights must sum to 1 over the time steps of each image, not over the images")
def pool_softmax_batch(hs, W, b, v):
    alpha = torch.softmax(torch.tanh(hs @ W + b) @ v, dim=0)
    return (alpha.unsqueeze(-1) * hs).sum(dim=1), alpha


@mutant("attention replaced by a uniform average over time steps",
        "the scores are ignored: every row gets weight 1/T")
def pool_uniform(hs, W, b, v):
    alpha = torch.full(hs.shape[:2], 1.0 / hs.shape[1], dtype=hs.dtype)
    return hs.mean(dim=1), alpha


@mutant("attention pooling with no tanh in the scoring network",
        "the logits become linear in h_t: e_t = (h_t W + b) . v")
def pool_no_tanh(hs, W, b, v):
    alpha = torch.softmax((hs @ W + b) @ v, dim=1)
    return (alpha.unsqueeze(-1) * hs).sum(dim=1), alpha


@mutant("attention pooling that returns the last hidden state as the context",
        "the weights are computed but the context must be their weighted average of all states")
def pool_last_state(hs, W, b, v):
    alpha = torch.softmax(torch.tanh(hs @ W + b) @ v, dim=1)
    return hs[:, -1], alpha


# ----------------------------------------------------------------------------- training (both tiers)


def _majority(X_train, y_train, X_test, seed):
    y = torch.as_tensor(y_train).long()
    return torch.full((len(X_test),), int(torch.bincount(y, minlength=10).argmax()), dtype=torch.int64)


def _guess(X_train, y_train, X_test, seed):
    return torch.randint(0, 10, (len(X_test),), generator=torch.Generator().manual_seed(int(seed)))


@mutant("a classifier that always predicts the most frequent training label",
        "it did not learn from the images (accuracy near 1 in 10)")
def digits_majority(X_train, y_train, X_test, seed):
    return _majority(X_train, y_train, X_test, seed)


@mutant("a classifier that guesses labels at random", "it did not learn from the images (accuracy near 1 in 10)")
def digits_random(X_train, y_train, X_test, seed):
    return _guess(X_train, y_train, X_test, seed)


@mutant("a model that always predicts the most frequent training label",
        "it did not learn from the canvases (accuracy near 1 in 10)")
def cluttered_majority(X_train, y_train, X_test, seed):
    return _majority(X_train, y_train, X_test, seed)


@mutant("a model that guesses labels at random", "it did not learn from the canvases (accuracy near 1 in 10)")
def cluttered_random(X_train, y_train, X_test, seed):
    return _guess(X_train, y_train, X_test, seed)


# ----------------------------------------------------------------------------- glimpse_sensor


def _retina(images, loc, size, n_scales, corner=False, stride=False, pad_mode="constant"):
    B, H, W = images.shape
    pad = size * 2 ** n_scales + 1
    padded = F.pad(images[:, None], (pad, pad, pad, pad), mode=pad_mode)[:, 0]
    loc = loc.clamp(-1, 1)
    cy = torch.floor((loc[:, 0] + 1) / 2 * H).long() + pad
    cx = torch.floor((loc[:, 1] + 1) / 2 * W).long() + pad
    out = []
    for s in range(n_scales):
        side, f = size * 2 ** s, 2 ** s
        off = 0 if corner else side // 2
        rows = cy[:, None] - off + torch.arange(side)
        cols = cx[:, None] - off + torch.arange(side)
        crop = padded[torch.arange(B)[:, None, None], rows[:, :, None], cols[:, None, :]]
        out.append(crop[:, ::f, ::f] if stride else F.avg_pool2d(crop[:, None], f)[:, 0])
    return torch.stack(out, dim=1)


@mutant("a glimpse sensor with the scales swapped (coarsest first)",
        "scale 0 must be the sharpest, smallest crop; the order of the k patches matters to the network")
def glimpse_scales_swapped(images, loc, size, n_scales):
    return _retina(images, loc, size, n_scales).flip(1)


@mutant("a glimpse sensor that subsamples every 2**s-th pixel instead of averaging",
        "strided sampling skips most pixels of the coarse crops; each output pixel must average its block")
def glimpse_strided(images, loc, size, n_scales):
    return _retina(images, loc, size, n_scales, stride=True)


@mutant("a glimpse sensor with (row, col) swapped in loc", "loc[:, 0] is the row (y), loc[:, 1] the column (x)")
def glimpse_xy_swapped(images, loc, size, n_scales):
    return _retina(images, loc.flip(1), size, n_scales)


@mutant("a glimpse sensor that puts the crop's top-left corner at the location",
        "the location is the centre of every crop, not its corner")
def glimpse_corner(images, loc, size, n_scales):
    return _retina(images, loc, size, n_scales, corner=True)


@mutant("a glimpse sensor that pads with edge pixels instead of zeros",
        "outside the image there is nothing: pixels beyond the border must count as 0")
def glimpse_edge_padding(images, loc, size, n_scales):
    return _retina(images, loc, size, n_scales, pad_mode="replicate")


# ----------------------------------------------------------------------------- reinforce_loss


@mutant("REINFORCE with no baseline subtracted", "the advantage must be reward - baseline, not the raw reward")
def reinforce_no_baseline(log_pi, reward, baseline):
    policy = -(log_pi * reward[:, None]).sum(1).mean()
    return policy, ((baseline - reward[:, None]) ** 2).mean()


@mutant("REINFORCE with the sign flipped", "minimising -log_pi * A makes rewarded locations more likely; +log_pi * A does the opposite")
def reinforce_sign_flipped(log_pi, reward, baseline):
    policy = (log_pi * (reward[:, None] - baseline).detach()).sum(1).mean()
    return policy, ((baseline - reward[:, None]) ** 2).mean()


@mutant("REINFORCE averaged over time steps instead of summed",
        "the episode's log-probability is the sum over its steps; averaging shrinks the gradient by T")
def reinforce_time_mean(log_pi, reward, baseline):
    policy = -(log_pi * (reward[:, None] - baseline).detach()).mean()
    return policy, ((baseline - reward[:, None]) ** 2).mean()


@mutant("REINFORCE with the baseline added to the reward", "the advantage is reward minus baseline")
def reinforce_baseline_added(log_pi, reward, baseline):
    policy = -(log_pi * (reward[:, None] + baseline).detach()).sum(1).mean()
    return policy, ((baseline - reward[:, None]) ** 2).mean()

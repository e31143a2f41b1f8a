"""Oracle tests of the rnn-on-images kernels and data, in float64 against PyTorch built-ins:
nn.RNNCell / nn.RNN (with copied weights) for the Elman step and the row reader,
nn.GRUCell for the GRU step, F.scaled_dot_product_attention for attention pooling, an
explicit loop-and-average crop for the glimpse sensor, and torch.autograd (gradcheck plus
the REINFORCE detach rule) for the REINFORCE loss.  The data generators are checked for
determinism, ranges and disjoint train/test sources."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grader.data import digits
from solutions.kernels import rnn_on_images as K

SEEDS = range(5)
f64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(4000 + seed)


def dims(g, n=3, lo=2, hi=6):
    return [int(v) for v in torch.randint(lo, hi + 1, (n,), generator=g)]


def randn(g, *shape, scale=1.0):
    return scale * torch.randn(*shape, generator=g, dtype=f64)


# ------------------------------------------------------------------------------ basic

@pytest.mark.parametrize("seed", SEEDS)
def test_rnn_step_matches_rnncell(seed):
    g = gen(seed)
    B, D, H = dims(g)
    x, h = randn(g, B, D), torch.tanh(randn(g, B, H))
    W_xh, W_hh, b = randn(g, D, H, scale=D ** -0.5), randn(g, H, H, scale=H ** -0.5), randn(g, H, scale=0.5)
    cell = torch.nn.RNNCell(D, H, nonlinearity="tanh").double()
    with torch.no_grad():
        cell.weight_ih.copy_(W_xh.T)
        cell.weight_hh.copy_(W_hh.T)
        cell.bias_ih.copy_(b)
        cell.bias_hh.zero_()
        want = cell(x, h).numpy()
    got = K.rnn_step(x.numpy(), h.numpy(), W_xh.numpy(), W_hh.numpy(), b.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_rnn_step_keeps_float32():
    a = lambda *s: np.ones(s, np.float32) * 0.1
    assert K.rnn_step(a(2, 3), a(2, 4), a(3, 4), a(4, 4), a(4)).dtype == np.float32


@pytest.mark.parametrize("seed", SEEDS)
def test_rnn_over_rows_matches_nn_rnn(seed):
    g = gen(seed)
    B, R, C = dims(g)
    H = dims(g, 1)[0]
    images, h0 = torch.rand(B, R, C, generator=g, dtype=f64), torch.tanh(randn(g, B, H))
    W_xh, W_hh, b = randn(g, C, H, scale=C ** -0.5), randn(g, H, H, scale=H ** -0.5), randn(g, H, scale=0.5)
    rnn = torch.nn.RNN(C, H, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(W_xh.T)
        rnn.weight_hh_l0.copy_(W_hh.T)
        rnn.bias_ih_l0.copy_(b)
        rnn.bias_hh_l0.zero_()
        want, h_last = rnn(images, h0[None])
    got = K.rnn_over_rows(images.numpy(), h0.numpy(), W_xh.numpy(), W_hh.numpy(), b.numpy())
    assert got.shape == (B, R, H)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[:, -1], h_last[0].numpy(), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------- intermediate

@pytest.mark.parametrize("seed", SEEDS)
def test_gru_cell_matches_grucell(seed):
    g = gen(seed)
    B, D, H = dims(g)
    cell = torch.nn.GRUCell(D, H).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(randn(g, *p.shape, scale=0.7))
    x, h = randn(g, B, D), torch.tanh(randn(g, B, H))
    got = K.gru_cell(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    torch.testing.assert_close(got, cell(x, h), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed", SEEDS)
def test_attention_pool_matches_sdpa(seed):
    """Additive-score pooling is dot-product attention with keys tanh(h W + b), one query
    sqrt(A) * v (cancelling SDPA's 1/sqrt(A)) and the states as values."""
    g = gen(seed)
    B, T, H = dims(g, 3, 2, 7)
    A = dims(g, 1)[0]
    hs, W, b, v = torch.tanh(randn(g, B, T, H, scale=1.5)), randn(g, H, A, scale=H ** -0.5), randn(g, A), randn(g, A)
    ctx, alpha = K.attention_pool(hs, W, b, v)
    keys = torch.tanh(hs @ W + b)  # (B, T, A)
    query = (v * A ** 0.5).expand(B, 1, A)
    want = F.scaled_dot_product_attention(query, keys, hs)[:, 0]
    torch.testing.assert_close(ctx, want, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(alpha, torch.softmax(torch.einsum("bta,a->bt", keys, v), dim=1), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(alpha.sum(1), torch.ones(B, dtype=f64))


def test_attention_pool_gradcheck():
    g = gen(0)
    args = [torch.tanh(randn(g, 2, 4, 3)), randn(g, 3, 2), randn(g, 2), randn(g, 2)]
    for a in args:
        a.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda *a: K.attention_pool(*a)[0], args)


def test_row_attention_gru_shapes():
    torch.manual_seed(0)
    logits, alpha = K.RowAttentionGRU()(torch.rand(5, 8, 8))
    assert logits.shape == (5, 10) and alpha.shape == (5, 8)
    torch.testing.assert_close(alpha.sum(1), torch.ones(5))


# ------------------------------------------------------------------------------ data

def test_digits_split_is_deterministic_and_disjoint():
    a = digits.digits_split(7, n_test=100, n_train=300)
    b = digits.digits_split(7, n_test=100, n_train=300)
    c = digits.digits_split(8, n_test=100, n_train=300)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[2], c[2])
    Xtr, ytr, Xte, yte = a
    assert Xtr.shape == (300, 8, 8) and Xte.shape == (100, 8, 8) and Xtr.dtype == np.float32
    assert ytr.dtype == np.int64 and set(np.unique(yte)) <= set(range(10))
    assert 0.0 <= Xtr.min() and Xtr.max() <= 1.0
    with pytest.raises(ValueError):
        digits.digits_split(0, n_test=1000, n_train=1000)


def test_jitter_moves_by_at_most_one_pixel():
    x, _ = digits.load_digits_images()
    out = digits.jitter(x[:50], 3, shift=1, noise=0.0)
    for img, moved in zip(x[:50], out):
        pad = np.pad(img, 1)
        assert any(np.array_equal(moved, pad[dy:dy + 8, dx:dx + 8]) for dy in range(3) for dx in range(3))


def test_cluttered_canvases_contain_their_digit():
    x, y = digits.load_digits_images()
    X, labels, corners = digits.cluttered(x[:20], y[:20], 30, 5, canvas=16, n_clutter=3)
    assert X.shape == (30, 16, 16) and X.dtype == np.float32 and labels.dtype == np.int64
    for canvas, lab, (r, c) in zip(X, labels, corners):
        patch = canvas[r:r + 8, c:c + 8]
        # the digit is there (clutter can only raise pixels, by the maximum) and has this label
        hits = [i for i in range(20) if np.all(patch >= x[i] - 1e-7) and y[i] == lab]
        assert hits


def test_cluttered_split_deterministic_and_sources_disjoint():
    a = digits.cluttered_split(3, n_train=50, n_test=40, canvas=16)
    b = digits.cluttered_split(3, n_train=50, n_test=40, canvas=16)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    Xtr, ytr, Xte, yte, corners = a
    assert Xtr.shape == (50, 16, 16) and Xte.shape == (40, 16, 16) and corners.shape == (40, 2)
    assert (corners >= 0).all() and (corners <= 8).all()


# --------------------------------------------------------------------------- advanced

def glimpse_loops(img, ly, lx, size, n_scales):
    """Independent oracle: explicit pixel loops over one (H, W) float64 image."""
    H, W = img.shape
    ly, lx = min(max(ly, -1.0), 1.0), min(max(lx, -1.0), 1.0)
    cy, cx = int(np.floor((ly + 1) / 2 * H)), int(np.floor((lx + 1) / 2 * W))
    out = np.zeros((n_scales, size, size))
    for s in range(n_scales):
        side, f = size * 2 ** s, 2 ** s
        top, left = cy - side // 2, cx - side // 2
        for i in range(size):
            for j in range(size):
                total = 0.0
                for di in range(f):
                    for dj in range(f):
                        r, c = top + i * f + di, left + j * f + dj
                        if 0 <= r < H and 0 <= c < W:
                            total += img[r, c]
                out[s, i, j] = total / f ** 2
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_glimpse_sensor_matches_pixel_loops(seed):
    g = gen(seed)
    B, H, W = dims(g, 1, 1, 3)[0], *dims(g, 2, 5, 13)
    size, k = dims(g, 1, 1, 4)[0], dims(g, 1, 1, 3)[0]
    images = torch.rand(B, H, W, generator=g, dtype=f64)
    loc = torch.rand(B, 2, generator=g, dtype=f64) * 2.4 - 1.2  # some outside [-1, 1]: clamped
    got = K.glimpse_sensor(images, loc, size, k)
    assert got.shape == (B, k, size, size) and got.dtype == f64
    for b in range(B):
        want = glimpse_loops(images[b].numpy(), float(loc[b, 0]), float(loc[b, 1]), size, k)
        np.testing.assert_allclose(got[b].numpy(), want, rtol=1e-12, atol=1e-14)


def test_glimpse_coarsest_scale_at_centre_sees_whole_canvas():
    images = torch.rand(2, 16, 16, dtype=f64)
    g = K.glimpse_sensor(images, torch.zeros(2, 2, dtype=f64), 4, 3)
    torch.testing.assert_close(g[:, 2], F.avg_pool2d(images[:, None], 4)[:, 0])


def reinforce_loops(log_pi, reward, baseline):
    B, T = log_pi.shape
    pol = -sum(log_pi[b, t] * (reward[b] - baseline[b, t]) for b in range(B) for t in range(T)) / B
    val = sum((baseline[b, t] - reward[b]) ** 2 for b in range(B) for t in range(T)) / (B * T)
    return pol, val


@pytest.mark.parametrize("seed", SEEDS)
def test_reinforce_loss_values_and_gradients(seed):
    g = gen(seed)
    B, T = dims(g, 2, 2, 7)
    log_pi = (randn(g, B, T) - 1).requires_grad_(True)
    reward = (torch.rand(B, generator=g, dtype=f64) < 0.5).to(f64)
    base = torch.rand(B, T, generator=g, dtype=f64).requires_grad_(True)
    pol, val = K.reinforce_loss(log_pi, reward, base)
    want = reinforce_loops(log_pi.detach().numpy(), reward.numpy(), base.detach().numpy())
    np.testing.assert_allclose([pol.item(), val.item()], want, rtol=1e-12)
    # REINFORCE: d pol / d log_pi = -(R - b) / B, and no gradient into the baseline
    d_log_pi, d_base = torch.autograd.grad(pol, [log_pi, base], allow_unused=True)
    torch.testing.assert_close(d_log_pi, -(reward[:, None] - base.detach()) / B)
    assert d_base is None or torch.all(d_base == 0)
    # the baseline learns from the squared error only
    (d_base_val,) = torch.autograd.grad(val, [base])
    torch.testing.assert_close(d_base_val, 2 * (base.detach() - reward[:, None]) / (B * T))


def test_reinforce_loss_gradcheck():
    """Each loss is differentiable in the input it is meant to train (the other is held fixed:
    finite differences through the detached advantage would not match, by design)."""
    g = gen(1)
    log_pi, base = randn(g, 3, 2).requires_grad_(True), torch.rand(3, 2, generator=g, dtype=f64).requires_grad_(True)
    reward = torch.tensor([1.0, 0.0, 1.0], dtype=f64)
    assert torch.autograd.gradcheck(lambda lp: K.reinforce_loss(lp, reward, base.detach())[0], (log_pi,))
    assert torch.autograd.gradcheck(lambda b: K.reinforce_loss(log_pi.detach(), reward, b)[1], (base,))


def test_ram_forward_shapes_and_gaussian_log_density():
    torch.manual_seed(0)
    model = K.RAM()
    x = torch.rand(3, 16, 16)
    logits, log_pi, base, locs = model(x, sample=True)
    T = model.n_glimpses
    assert logits.shape == (3, 10) and log_pi.shape == (3, T - 1) and base.shape == (3, T - 1)
    assert locs.shape == (3, T, 2) and locs.abs().max() <= 1
    # at the policy mean the log-density is the Gaussian's peak, summed over the 2 coordinates
    _, log_pi_mean, _, _ = model(x, sample=False)
    peak = torch.distributions.Normal(0.0, model.sigma).log_prob(torch.tensor(0.0)) * 2
    torch.testing.assert_close(log_pi_mean, peak.expand(3, T - 1))

"""Oracle tests of the softmax kernels against PyTorch in float64: torch.softmax,
torch.log_softmax, masked_fill + softmax (with the project's zero convention for fully
masked rows), torch.autograd for the backward (plus gradcheck), and the full softmax for the
online and streaming versions."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from solutions.kernels import softmax as K

SEEDS = range(5)
f64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(2000 + seed)


def rand_shape(g, ndim_lo=1, ndim_hi=4, lo=1, hi=6):
    ndim = int(torch.randint(ndim_lo, ndim_hi + 1, (1,), generator=g))
    return tuple(int(s) for s in torch.randint(lo, hi + 1, (ndim,), generator=g))


def rand_axis(g, ndim):
    return int(torch.randint(-ndim, ndim, (1,), generator=g))


def logits(g, *shape, scale=2.0):
    return scale * torch.randn(*shape, generator=g, dtype=f64)


# ------------------------------------------------------------------------------ basic

@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_matches_torch(seed):
    g = gen(seed)
    shape = rand_shape(g)
    axis = rand_axis(g, len(shape))
    x = logits(g, *shape)
    np.testing.assert_allclose(K.softmax(x.numpy(), axis=axis), torch.softmax(x, dim=axis).numpy(),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("x", [[1000.0, 1.0, 2.0, 3.0], [3.0, 3.0, 3.0], [0.7], [-np.inf, 0.5, 2.0],
                               [-800.0, 800.0, 0.0]])
def test_softmax_edge_cases_match_torch(x):
    x = torch.tensor(x, dtype=f64)
    got = K.softmax(x.numpy())
    np.testing.assert_allclose(got, torch.softmax(x, dim=0).numpy(), rtol=1e-12, atol=1e-300)
    assert np.isfinite(got).all() and abs(got.sum() - 1) < 1e-12


def test_softmax_keeps_float32():
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    assert K.softmax(x).dtype == np.float32


@pytest.mark.parametrize("seed", SEEDS)
def test_logsumexp_matches_torch(seed):
    g = gen(seed)
    shape = rand_shape(g)
    axis = rand_axis(g, len(shape))
    x = logits(g, *shape, scale=3.0)
    got = K.logsumexp(x.numpy(), axis=axis)
    np.testing.assert_allclose(got, torch.logsumexp(x, dim=axis).numpy(), rtol=1e-12, atol=1e-14)
    n = shape[axis]
    mx = x.numpy().max(axis=axis)
    assert (mx <= got + 1e-12).all() and (got <= mx + np.log(n) + 1e-12).all()  # a smooth max


@pytest.mark.parametrize("x", [[1000.0, 1.0, 2.0, 3.0], [3.0, 3.0, 3.0], [0.7], [-np.inf, 0.5, 2.0],
                               [-1000.0, -1001.0], [-np.inf, -np.inf]])
def test_logsumexp_edge_cases_match_torch(x):
    x = torch.tensor(x, dtype=f64)
    got = K.logsumexp(x.numpy(), axis=0)
    assert got.shape == ()
    np.testing.assert_allclose(got, torch.logsumexp(x, dim=0).numpy(), rtol=1e-12)
    assert not np.isnan(got)


def test_logsumexp_float32_and_softmax_identity():
    x = logits(gen(8), 3, 5).numpy()
    np.testing.assert_allclose(np.exp(x - K.logsumexp(x)[:, None]), K.softmax(x), rtol=1e-12)
    assert K.logsumexp(x.astype(np.float32)).dtype == np.float32


# ----------------------------------------------------------------------- intermediate

def torch_masked_softmax(x, mask, dim):
    """The oracle: masked_fill with -inf, torch.softmax, then the project's convention
    (fully masked slices, which torch leaves as NaN, become all zeros)."""
    y = torch.softmax(x.masked_fill(~mask, float("-inf")), dim=dim)
    return torch.nan_to_num(y, nan=0.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_masked_softmax_matches_torch(seed):
    g = gen(seed)
    shape = rand_shape(g, 2, 4, 2, 6)
    axis = rand_axis(g, len(shape))
    x = logits(g, *shape)
    mask = torch.rand(*shape, generator=g) < 0.6
    got = K.masked_softmax(x.numpy(), mask.numpy(), axis=axis)
    np.testing.assert_allclose(got, torch_masked_softmax(x, mask, axis).numpy(), rtol=1e-12, atol=1e-15)
    assert not np.isnan(got).any()
    assert (got[~mask.numpy()] == 0).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_masked_softmax_weights_equal_sdpa_with_bool_mask(seed):
    """F.scaled_dot_product_attention with V = I returns the attention weights themselves;
    torch 2.x gives zeros for fully masked rows, the same convention as the kernel."""
    g = gen(seed)
    B, Lq, Lk, d = 2, 4, 5, 3
    q, k = torch.randn(B, Lq, d, generator=g, dtype=f64), torch.randn(B, Lk, d, generator=g, dtype=f64)
    mask = torch.rand(B, Lq, Lk, generator=g) < 0.5
    mask[0, 0] = False  # one fully masked row
    eye = torch.eye(Lk, dtype=f64).expand(B, Lk, Lk)
    ref = F.scaled_dot_product_attention(q, k, eye, attn_mask=mask)
    scores = (q @ k.mT / d**0.5).numpy()
    np.testing.assert_allclose(K.masked_softmax(scores, mask.numpy()), ref.numpy(), rtol=1e-10, atol=1e-12)


def test_masked_softmax_fully_masked_convention():
    x = np.array([[0.3, 1.0, -2.0], [5.0, 1.0, 0.0], [-np.inf, -np.inf, 1.0]])
    mask = np.array([[False, False, False], [True, True, True], [True, True, False]])
    got = K.masked_softmax(x, mask)
    assert (got[0] == 0).all(), "fully masked row: all weights 0"
    assert (got[2] == 0).all(), "kept logits all -inf: treated as fully masked, all weights 0"
    np.testing.assert_allclose(got[1], K.softmax(x[1]), rtol=1e-15)


def test_masked_softmax_all_true_is_softmax_and_broadcasts():
    g = gen(7)
    x = logits(g, 3, 4, 5).numpy()
    np.testing.assert_allclose(K.masked_softmax(x, np.ones(5, bool)), K.softmax(x), rtol=1e-15)
    key_pad = np.array([True, True, False, True, False])
    np.testing.assert_allclose(K.masked_softmax(x, key_pad),
                               torch_masked_softmax(torch.from_numpy(x), torch.from_numpy(key_pad), -1),
                               rtol=1e-12)
    assert K.masked_softmax(x.astype(np.float32), key_pad).dtype == np.float32


@pytest.mark.parametrize("seed", SEEDS)
def test_log_softmax_matches_torch(seed):
    g = gen(seed)
    shape = rand_shape(g)
    axis = rand_axis(g, len(shape))
    x = logits(g, *shape, scale=3.0)
    np.testing.assert_allclose(K.log_softmax(x.numpy(), axis=axis), torch.log_softmax(x, dim=axis).numpy(),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("x", [[1000.0, 1.0, 2.0, 3.0], [0.0, -800.0, 1.0], [0.5, -np.inf, 1.5],
                               [-np.inf, -np.inf], [2.0]])
def test_log_softmax_edge_cases_match_torch(x):
    """Finite where log(softmax) underflows to -inf; -inf entries stay -inf; an all -inf slice
    is NaN in both."""
    x = torch.tensor(x, dtype=f64)
    with np.errstate(invalid="ignore"):
        got = K.log_softmax(x.numpy())
    np.testing.assert_allclose(got, torch.log_softmax(x, dim=0).numpy(), rtol=1e-12, equal_nan=True)
    assert (np.isfinite(got) == torch.isfinite(x).numpy()).all() or np.isnan(got).all()


def test_log_softmax_float32_far_logits():
    x = np.array([0.0, -120.0, 3.0], dtype=np.float32)
    got = K.log_softmax(x)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    np.testing.assert_allclose(got, torch.log_softmax(torch.from_numpy(x).double(), 0).numpy(), rtol=1e-6)


# --------------------------------------------------------------------------- advanced

@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_backward_matches_autograd(seed):
    g = gen(seed)
    shape = rand_shape(g, 1, 4, 1, 6)
    axis = rand_axis(g, len(shape))
    x = logits(g, *shape).requires_grad_()
    dy = torch.randn(*shape, generator=g, dtype=f64)
    y = torch.softmax(x, dim=axis)
    (gx,) = torch.autograd.grad(y, x, dy)
    got = K.softmax_backward(y.detach().numpy(), dy.numpy(), axis=axis)
    np.testing.assert_allclose(got, gx.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(got.sum(axis=axis), 0.0, atol=1e-12)


class NumpySoftmax(torch.autograd.Function):
    """softmax whose forward and backward are the NumPy kernels, for gradcheck."""

    @staticmethod
    def forward(ctx, x, axis):
        y = torch.from_numpy(K.softmax(x.detach().numpy(), axis=axis))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        return torch.from_numpy(K.softmax_backward(y.numpy(), dy.numpy(), axis=ctx.axis)), None


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_backward_gradcheck(axis):
    x = logits(gen(11), 3, 4, 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: NumpySoftmax.apply(t, axis), (x,), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("block", [1, 3, 4, 64])
def test_online_softmax_equals_full_softmax(seed, block):
    g = gen(seed)
    n, length = int(torch.randint(1, 5, (1,), generator=g)), int(torch.randint(1, 14, (1,), generator=g))
    x = logits(g, n, length, scale=3.0)
    y, m, l = K.online_softmax(x.numpy(), block)
    n_blocks = -(-length // block)
    assert m.shape == l.shape == (n, n_blocks)
    np.testing.assert_allclose(y, torch.softmax(x, -1).numpy(), rtol=1e-12, atol=1e-15)
    # the running statistics after each block are those of the prefix read so far
    for b in range(n_blocks):
        prefix = x[:, :(b + 1) * block]
        np.testing.assert_allclose(m[:, b], prefix.max(-1).values.numpy(), rtol=0)
        np.testing.assert_allclose(np.log(l[:, b]) + m[:, b], torch.logsumexp(prefix, -1).numpy(), rtol=1e-12)


def test_online_softmax_masked_blocks_and_float32():
    x = np.array([[-np.inf, -np.inf, 0.5, 2.0, -np.inf], [1.0, -np.inf, -np.inf, -np.inf, 3.0]])
    y, m, l = K.online_softmax(x, 2)
    np.testing.assert_allclose(y, torch.softmax(torch.from_numpy(x), -1).numpy(), rtol=1e-12)
    assert m[0, 0] == -np.inf and l[0, 0] == 0 and np.isfinite(l).all()
    y32, _, _ = K.online_softmax(x.astype(np.float32), 2)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y, rtol=1e-6)
    with pytest.raises(ValueError):
        K.online_softmax(x, 0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("block", [1, 2, 5, 32])
def test_streaming_attention_matches_sdpa(seed, block):
    """softmax(scores) @ V; scores are passed to SDPA as q k^T / sqrt(d) with k = sqrt(L) I."""
    g = gen(seed)
    n, length, d = 3, int(torch.randint(1, 12, (1,), generator=g)), 4
    scores = logits(g, n, length)
    v = torch.randn(n, length, d, generator=g, dtype=f64)
    k = (length**0.5) * torch.eye(length, dtype=f64).expand(n, length, length)
    ref = F.scaled_dot_product_attention(scores[:, None, :], k, v)[:, 0]
    got = K.streaming_attention(scores.numpy(), v.numpy(), block)
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-10, atol=1e-12)


def test_streaming_attention_masked_first_block():
    g = gen(3)
    scores = logits(g, 2, 6)
    scores[:, :2] = float("-inf")
    v = torch.randn(2, 6, 3, generator=g, dtype=f64)
    ref = torch.einsum("nl,nld->nd", torch.softmax(scores, -1), v)
    np.testing.assert_allclose(K.streaming_attention(scores.numpy(), v.numpy(), 2), ref.numpy(), rtol=1e-12)
    with pytest.raises(ValueError):
        K.streaming_attention(scores.numpy(), v.numpy(), 0)

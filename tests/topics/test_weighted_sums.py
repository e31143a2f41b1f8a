"""Oracle tests of the weighted-sums kernels: torch in float64 (bmm, softmax, cdist,
scaled_dot_product_attention with a boolean mask), scikit-learn's KNeighborsRegressor with
Gaussian distance weights (which is exactly Nadaraya-Watson) and its leave-one-out
cross-validation, and the temperature limits taken numerically."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.neighbors import KNeighborsRegressor

from grader.data.regression_1d import make_regression_1d, target_function
from solutions.kernels import weighted_sums as K

SEEDS = range(5)
f64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(3000 + seed)


def sizes(g, n, lo=1, hi=6):
    return [int(x) for x in torch.randint(lo, hi + 1, (n,), generator=g)]


def positive(g, *shape):
    return 0.1 + 2 * torch.rand(*shape, generator=g, dtype=f64)


def randn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=f64)


def sklearn_nw(bandwidth, n_neighbors):
    """Nadaraya-Watson as a k-NN regressor over all points with Gaussian distance weights."""
    return KNeighborsRegressor(n_neighbors=n_neighbors,
                               weights=lambda d: np.exp(-d**2 / (2 * bandwidth**2)))


# ------------------------------------------------------------------------------ basic

@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_average_matches_bmm(seed):
    g = gen(seed)
    n, s, d = sizes(g, 3)
    w, v = positive(g, n, s), randn(g, n, s, d)
    ref = torch.bmm(F.normalize(w, p=1, dim=1)[:, None, :], v)[:, 0]
    got = K.weighted_average(w.numpy(), v.numpy())
    assert got.shape == (n, d)
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-12, atol=1e-14)


def test_weighted_average_is_convex_and_scale_free():
    g = gen(9)
    w, v = positive(g, 4, 6).numpy(), randn(g, 4, 6, 3).numpy()
    out = K.weighted_average(w, v)
    assert (out <= v.max(axis=1) + 1e-12).all() and (out >= v.min(axis=1) - 1e-12).all()
    np.testing.assert_allclose(K.weighted_average(1000 * w, v), out, rtol=1e-12)
    np.testing.assert_allclose(K.weighted_average(np.eye(6)[[1, 4, 0, 5]], v), v[np.arange(4), [1, 4, 0, 5]])
    assert K.weighted_average(w.astype(np.float32), v.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("seed", SEEDS)
def test_batched_average_matches_matmul(seed):
    g = gen(seed)
    n, t, s, d = sizes(g, 4)
    w, v = positive(g, n, t, s), randn(g, n, s, d)
    got = K.batched_average(w.numpy(), v.numpy())
    np.testing.assert_allclose(got, (F.normalize(w, p=1, dim=-1) @ v).numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[:, 0], K.weighted_average(w[:, 0].numpy(), v.numpy()), rtol=1e-12)


# ----------------------------------------------------------------------- intermediate

@pytest.mark.parametrize("seed", SEEDS)
def test_gaussian_weights_match_torch_softmax_of_distances(seed):
    g = gen(seed)
    q, k = 5 * torch.rand(7, generator=g, dtype=f64), 5 * torch.rand(11, generator=g, dtype=f64)
    h = 0.2 + float(torch.rand(1, generator=g))
    ref = torch.softmax(-torch.cdist(q[:, None], k[:, None]) ** 2 / (2 * h**2), dim=1)
    got = K.gaussian_weights(q.numpy(), k.numpy(), h)
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-12)


def test_gaussian_weights_far_query_goes_to_nearest_key():
    keys = np.array([0.0, 1.0, 2.0, 4.0])
    w = K.gaussian_weights(np.array([30.0, -30.0]), keys, 0.1)
    assert np.isfinite(w).all()
    np.testing.assert_allclose(w, np.eye(4)[[3, 0]], atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("h", [0.15, 0.5, 2.0])
def test_nadaraya_watson_matches_sklearn_weighted_knn(seed, h):
    x, y = make_regression_1d(seed, n=30)
    q = np.linspace(-0.5, 5.5, 17)
    ref = sklearn_nw(h, len(x)).fit(x[:, None], y).predict(q[:, None])
    np.testing.assert_allclose(K.nadaraya_watson(q, x, y, h), ref, rtol=1e-9, atol=1e-12)


def test_nadaraya_watson_bandwidth_limits():
    x, y = make_regression_1d(4, n=25)
    q = np.array([0.3, 2.2, 4.9])
    np.testing.assert_allclose(K.nadaraya_watson(q, x, y, 1e4), np.full(3, y.mean()), rtol=1e-6)
    nearest = y[np.abs(q[:, None] - x[None, :]).argmin(1)]
    np.testing.assert_allclose(K.nadaraya_watson(q, x, y, 1e-4), nearest, rtol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_nadaraya_watson_beats_the_mean_on_held_out_points(seed):
    """A real property, not a score: with a sensible bandwidth the kernel regression is closer
    to the noiseless curve than the constant mean prediction."""
    x, y = make_regression_1d(seed, n=60)
    q = np.linspace(0.2, 4.8, 50)
    err_nw = np.mean((K.nadaraya_watson(q, x, y, 0.3) - target_function(q)) ** 2)
    err_mean = np.mean((y.mean() - target_function(q)) ** 2)
    assert err_nw < 0.5 * err_mean


@pytest.mark.parametrize("seed", SEEDS)
def test_loo_mse_matches_deleting_each_point(seed):
    """Oracle: for each i, drop point i from the data and predict it with torch (softmax of
    the squared distances to the remaining points)."""
    x, y = make_regression_1d(100 + seed, n=int(10 + 3 * seed))
    hs = np.array([0.05, 0.4, 1.5])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    ref = []
    for h in hs:
        pred = torch.stack([torch.softmax(-(xt[i] - torch.cat([xt[:i], xt[i + 1:]])) ** 2 / (2 * h**2), 0)
                            @ torch.cat([yt[:i], yt[i + 1:]]) for i in range(len(x))])
        ref.append(torch.mean((pred - yt) ** 2).item())
    np.testing.assert_allclose(K.loo_mse(x, y, hs), ref, rtol=1e-10)


def test_loo_mse_matches_sklearn_leave_one_out():
    x, y = make_regression_1d(7, n=10)
    hs = np.array([0.2, 0.8])
    ref = [np.mean((cross_val_predict(sklearn_nw(h, len(x) - 1), x[:, None], y, cv=LeaveOneOut()) - y) ** 2)
           for h in hs]
    np.testing.assert_allclose(K.loo_mse(x, y, hs), ref, rtol=1e-9)


def test_loo_mse_narrow_bandwidth_is_nearest_neighbour_and_float32():
    x, y = np.array([0.0, 1.0, 2.0, 3.5, 5.0]), np.array([1.0, -1.0, 0.5, 2.0, 0.0])
    # with h -> 0 each point is predicted by its nearest other point (ties split evenly)
    pred = np.array([-1.0, 0.75, -1.0, 0.25, 2.0])
    np.testing.assert_allclose(K.loo_mse(x, y, np.array([0.01])), [np.mean((pred - y) ** 2)], rtol=1e-12)
    got32 = K.loo_mse(x.astype(np.float32), y.astype(np.float32), np.array([0.7]))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, K.loo_mse(x, y, np.array([0.7])), rtol=1e-5)


# --------------------------------------------------------------------------- advanced

@pytest.mark.parametrize("seed", SEEDS)
def test_masked_average_matches_sdpa_with_padding_mask(seed):
    """softmax(scores) @ V through SDPA: q = scores, k = sqrt(S) I, so q k^T / sqrt(S) = scores;
    attn_mask is the boolean padding mask.  torch 2.x returns 0 for fully masked rows, the
    project's convention."""
    g = gen(seed)
    n, s, d = 4, int(torch.randint(2, 8, (1,), generator=g)), 3
    scores, v = 1.5 * randn(g, n, s), randn(g, n, s, d)
    lengths = torch.randint(0, s + 1, (n,), generator=g)
    lengths[0] = 0  # always one empty sequence
    keep = torch.arange(s)[None, :] < lengths[:, None]
    k = (s**0.5) * torch.eye(s, dtype=f64).expand(n, s, s)
    ref = F.scaled_dot_product_attention(scores[:, None, :], k, v, attn_mask=keep[:, None, :])[:, 0]
    got = K.masked_average(scores.numpy(), v.numpy(), lengths.numpy())
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-10, atol=1e-12)
    assert (got[0] == 0).all()


def test_masked_average_ignores_padding_content():
    g = gen(5)
    scores, v = randn(g, 2, 5).numpy(), randn(g, 2, 5, 2).numpy()
    lengths = np.array([3, 1])
    scores2, v2 = scores.copy(), v.copy()
    scores2[:, 3:], v2[:, 3:] = 100.0, -7.0  # change only the padding
    scores2[1, 1:], v2[1, 1:] = 100.0, -7.0
    np.testing.assert_allclose(K.masked_average(scores2, v2, lengths), K.masked_average(scores, v, lengths))
    np.testing.assert_allclose(K.masked_average(scores, v, lengths)[1], v[1, 0])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("temperature", [0.3, 1.0, 4.0])
def test_tempered_average_matches_torch(seed, temperature):
    g = gen(seed)
    scores, v = randn(g, 3, 6), randn(g, 3, 6, 2)
    ref = torch.einsum("ns,nsd->nd", torch.softmax(scores / temperature, -1), v)
    np.testing.assert_allclose(K.tempered_average(scores.numpy(), v.numpy(), temperature), ref.numpy(),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed", SEEDS)
def test_tempered_average_limits_are_the_limits(seed):
    g = gen(seed)
    scores, v = randn(g, 3, 6).numpy(), randn(g, 3, 6, 2).numpy()
    hard = K.tempered_average(scores, v, 0.0)
    np.testing.assert_allclose(hard, v[np.arange(3), scores.argmax(1)], rtol=1e-15)
    np.testing.assert_allclose(K.tempered_average(scores, v, 1e-5), hard, atol=1e-6)
    flat = K.tempered_average(scores, v, np.inf)
    np.testing.assert_allclose(flat, v.mean(1), rtol=1e-14)
    np.testing.assert_allclose(K.tempered_average(scores, v, 1e7), flat, atol=1e-6)


def test_tempered_average_ties_and_errors():
    scores = np.array([[1.0, 3.0, 3.0, 0.0]])
    v = np.arange(8.0).reshape(1, 4, 2)
    np.testing.assert_allclose(K.tempered_average(scores, v, 0.0), [(v[0, 1] + v[0, 2]) / 2])
    np.testing.assert_allclose(K.tempered_average(scores, v, 1e-4), [(v[0, 1] + v[0, 2]) / 2], rtol=1e-12)
    with pytest.raises(ValueError):
        K.tempered_average(scores, v, -1.0)

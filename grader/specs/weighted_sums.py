"""Specs of the weighted-sums topic: weighted averages (basic), Nadaraya-Watson attention
pooling (intermediate), masked averages and the temperature limits (advanced)."""
import numpy as np

from grader.checks import case, spec
from grader.data.regression_1d import make_regression_1d


def _dtype(i):
    return np.float32 if i % 2 else np.float64


# --- basic ----------------------------------------------------------------------------

@spec("weighted-sums.average", entry="weighted_average", kernel="weighted_sums.weighted_average",
      mutants=["weighted_sums.never_sums", "weighted_sums.not_normalised",
               "weighted_sums.normalised_over_batch", "weighted_sums.plain_mean",
               "weighted_sums.sums_features"],
      hints=["The output has one D-vector per batch element: multiply each value vector by its "
             "weight and add them up over the S positions.",
             "The weights you are given do not sum to 1. Divide each row by its own sum "
             "(over S, `keepdims=True`) before using it.",
             "a = weights / weights.sum(axis=1, keepdims=True); return np.einsum('ns,nsd->nd', a, values)"])
def average(t):
    """Weighted average of (N, S, D) values with unnormalised (N, S) weights: random shapes in
    float64 and float32, zero weights, one-hot weights, S = 1, and scale invariance."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        n, s, d = (int(v) for v in r.integers(2, 6, size=3))
        dt = _dtype(i)
        yield case(f"random N={n}, S={s}, D={d}, {np.dtype(dt).name}",
                   r.uniform(0.1, 2.0, size=(n, s)).astype(dt), r.normal(size=(n, s, d)).astype(dt))
    r = t.rng("zeros")
    w = r.uniform(0.5, 1.5, size=(3, 5))
    w[:, 1::2] = 0.0
    yield case("some weights exactly 0", w, r.normal(size=(3, 5, 2)))
    r = t.rng("one-hot")
    yield case("one-hot weights pick one value vector", np.eye(4)[[2, 0, 3]], r.normal(size=(3, 4, 3)))
    r = t.rng("single")
    yield case("a single position (S = 1)", np.array([[0.3], [2.0]]), r.normal(size=(2, 1, 4)))
    if t.hidden:
        r = t.rng("scaled")
        w = r.uniform(0.1, 2.0, size=(4, 6))
        yield case("weights scaled by 1000 (the average must not change)", 1000 * w,
                   r.normal(size=(4, 6, 3)))
        r = t.rng("normalised")
        w = r.uniform(0.1, 1.0, size=(3, 7))
        yield case("weights that already sum to 1", w / w.sum(1, keepdims=True), r.normal(size=(3, 7, 2)))


@spec("weighted-sums.batched", entry="batched_average", kernel="weighted_sums.batched_average",
      mutants=["weighted_sums.normalised_over_queries", "weighted_sums.batched_not_normalised",
               "weighted_sums.mixes_batches", "weighted_sums.first_query_only"],
      hints=["For each batch element n and query t you want the average of values[n] weighted "
             "by weights[n, t]: that is a matrix product of a (T, S) and an (S, D) matrix.",
             "Normalise over the last axis (the positions S), not over the queries.",
             "a = weights / weights.sum(axis=-1, keepdims=True); return a @ values"])
def batched(t):
    """T weighted averages per batch element, A @ V with A normalised over S: random shapes in
    float64 and float32, T = 1, and one-hot rows."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        n, q, s, d = (int(v) for v in r.integers(2, 6, size=4))
        dt = _dtype(i)
        yield case(f"random N={n}, T={q}, S={s}, D={d}, {np.dtype(dt).name}",
                   r.uniform(0.1, 2.0, size=(n, q, s)).astype(dt), r.normal(size=(n, s, d)).astype(dt))
    r = t.rng("one-query")
    yield case("a single query (T = 1)", r.uniform(0.1, 2.0, size=(3, 1, 4)), r.normal(size=(3, 4, 2)))
    if t.hidden:
        r = t.rng("one-hot")
        w = np.stack([np.eye(4)[[1, 3, 0]], np.eye(4)[[2, 2, 1]]])  # (2, 3, 4)
        yield case("one-hot rows copy one value vector each", w, r.normal(size=(2, 4, 5)))


# --- intermediate ---------------------------------------------------------------------

@spec("weighted-sums.gaussian", entry="gaussian_weights", kernel="weighted_sums.gaussian_weights",
      mutants=["weighted_sums.kernel_not_normalised", "weighted_sums.kernel_over_queries",
               "weighted_sums.distance_sign_flipped", "weighted_sums.bandwidth_not_squared",
               "weighted_sums.kernel_no_max_subtraction"],
      hints=["Build the (M, N) matrix of differences queries[:, None] - keys[None, :] by "
             "broadcasting; the logits are minus their squares over 2 h^2.",
             "Each row (one query) must sum to 1: it is a softmax over the keys, axis 1.",
             "For a query far from every key all the exp() underflow to 0. Subtract each row's "
             "maximum logit before exponentiating.",
             "z = -(queries[:, None] - keys[None, :])**2 / (2 * bandwidth**2); "
             "e = np.exp(z - z.max(1, keepdims=True)); return e / e.sum(1, keepdims=True)"])
def gaussian(t):
    """Gaussian attention weights of 1-D queries over 1-D keys: synthetic regression inputs,
    several bandwidths, float32, and a query far from every key with a narrow bandwidth."""
    for i, h in enumerate([0.3, 0.7, 1.6]):
        r = t.rng(f"random-{i}")
        keys, _ = make_regression_1d(r, n=int(r.integers(5, 15)))
        queries = r.uniform(-0.5, 5.5, size=int(r.integers(2, 8)))
        h = h * r.uniform(0.9, 1.1)
        yield case(f"{len(queries)} queries, {len(keys)} keys, bandwidth {h:.3f}", queries, keys, h)
    r = t.rng("float32")
    keys, _ = make_regression_1d(r, n=8)
    yield case("float32 inputs, bandwidth 0.5", r.uniform(0, 5, size=4).astype(np.float32),
               keys.astype(np.float32), 0.5)
    if t.hidden:
        r = t.rng("far")
        keys, _ = make_regression_1d(r, n=10)
        yield case("a query at 30 (far from every key), bandwidth 0.1", np.array([1.0, 30.0]), keys, 0.1)


@spec("weighted-sums.nadaraya_watson", entry="nadaraya_watson", kernel="weighted_sums.nadaraya_watson",
      mutants=["weighted_sums.nw_mean", "weighted_sums.nw_nearest", "weighted_sums.nw_not_normalised",
               "weighted_sums.nw_over_queries"],
      hints=["The prediction at a query is the average of the training targets, weighted by "
             "the query's row of Gaussian weights.",
             "The weights are the (M, N) Gaussian weights of Exercise 1 (write them again here, "
             "so this function stands alone); combine them with the (N,) targets.",
             "Compute the stable softmax a of -(queries[:, None] - keys[None, :])**2 / (2 * "
             "bandwidth**2) over axis 1, then return a @ values."])
def nadaraya_watson(t):
    """Nadaraya-Watson predictions on synthetic 1-D data: several bandwidths and sizes,
    float32, and queries outside the training range."""
    for i, h in enumerate([0.2, 0.5, 1.3]):
        r = t.rng(f"random-{i}")
        keys, vals = make_regression_1d(r, n=int(r.integers(10, 40)))
        queries = np.linspace(0, 5, int(r.integers(3, 12)))
        yield case(f"{len(queries)} queries, {len(keys)} samples, bandwidth {h}", queries, keys, vals, h)
    r = t.rng("float32")
    keys, vals = make_regression_1d(r, n=20)
    yield case("float32 data, bandwidth 0.4", np.linspace(0, 5, 6, dtype=np.float32),
               keys.astype(np.float32), vals.astype(np.float32), 0.4)
    if t.hidden:
        r = t.rng("outside")
        keys, vals = make_regression_1d(r, n=25)
        yield case("queries outside the data range, bandwidth 0.3", np.array([-2.0, 2.5, 9.0]),
                   keys, vals, 0.3)


@spec("weighted-sums.loo", entry="loo_mse", kernel="weighted_sums.loo_mse",
      mutants=["weighted_sums.loo_includes_self", "weighted_sums.loo_mask_after_softmax",
               "weighted_sums.loo_no_max_subtraction", "weighted_sums.loo_rmse"],
      hints=["For one bandwidth, the (N, N) weight matrix of the training inputs against "
             "themselves has the self-similarity on its diagonal. Point i must not see y_i.",
             "Exclude the diagonal *before* normalising: set those logits to -inf (np.eye as a "
             "boolean mask), then softmax over the last axis.",
             "Broadcast over the K bandwidths with h of shape (K, 1, 1): logits (K, N, N), "
             "predictions a @ y of shape (K, N), then mean over N of the squared errors."])
def loo(t):
    """Leave-one-out MSE of Nadaraya-Watson for several bandwidths at once: synthetic data,
    float32, and well separated points with a very narrow bandwidth."""
    hs = np.array([0.05, 0.2, 0.5, 1.5, 4.0])
    for i in range(3):
        r = t.rng(f"random-{i}")
        x, y = make_regression_1d(r, n=int(r.integers(8, 40)))
        yield case(f"{len(x)} samples, bandwidths {hs.tolist()}", x, y, hs)
    r = t.rng("float32")
    x, y = make_regression_1d(r, n=15)
    yield case("float32 data", x.astype(np.float32), y.astype(np.float32), np.array([0.3, 1.0]))
    yield case("two points", np.array([0.0, 1.0]), np.array([1.0, -1.0]), np.array([0.5]))
    if t.hidden:
        r = t.rng("separated")
        x = np.array([0.0, 1.0, 2.0, 3.5, 5.0])
        yield case("well separated points, bandwidth 0.01", x, r.normal(size=5), np.array([0.01, 0.3]))


# --- advanced -------------------------------------------------------------------------

def _lengths(r, n, s):
    """Valid lengths in 1..S with at least one padded and one full sequence."""
    lengths = r.integers(1, s, size=n)
    lengths[-1] = s
    return lengths


@spec("weighted-sums.masked", entry="masked_average", kernel="weighted_sums.masked_average",
      mutants=["weighted_sums.mask_inverted", "weighted_sums.mask_after_softmax",
               "weighted_sums.mask_multiplies_scores", "weighted_sums.mask_off_by_one",
               "weighted_sums.empty_row_nan", "weighted_sums.empty_row_uniform"],
      hints=["Build a boolean (N, S) mask of real positions from the lengths with broadcasting: "
             "np.arange(S)[None, :] < lengths[:, None].",
             "Mask the logits, not the weights: padded logits become -inf so that exp() gives "
             "them weight 0 and the real weights still sum to 1.",
             "A row of length 0 has only -inf logits; the max is -inf and exp(-inf - -inf) is "
             "NaN. Shift such rows by 0 instead and divide by 1 where the sum is 0, so the output "
             "is the zero vector."])
def masked(t):
    """Softmax-weighted averages over padded batches: random lengths, float32, an empty
    sequence (length 0: the zero vector by convention), and huge logits on the padding."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        n, s, d = int(r.integers(2, 5)), int(r.integers(3, 8)), int(r.integers(1, 5))
        dt = _dtype(i)
        yield case(f"random N={n}, S={s}, D={d}, {np.dtype(dt).name}",
                   (1.5 * r.normal(size=(n, s))).astype(dt), r.normal(size=(n, s, d)).astype(dt),
                   _lengths(r, n, s))
    r = t.rng("empty")
    yield case("one sequence of length 0 (output: zero vector)", r.normal(size=(3, 4)),
               r.normal(size=(3, 4, 2)), np.array([2, 0, 4]))
    if t.hidden:
        r = t.rng("padding-huge")
        scores = r.normal(size=(2, 5))
        scores[:, 3:] = 50.0  # padding with big logits: any leak shows
        yield case("large logits on the padding", scores, r.normal(size=(2, 5, 3)), np.array([3, 2]))
        r = t.rng("empty-f32")
        yield case("float32 with an empty sequence", r.normal(size=(2, 3)).astype(np.float32),
                   r.normal(size=(2, 3, 2)).astype(np.float32), np.array([0, 3]))


@spec("weighted-sums.temperature", entry="tempered_average", kernel="weighted_sums.tempered_average",
      mutants=["weighted_sums.temperature_zero_nan", "weighted_sums.temperature_multiplies",
               "weighted_sums.temperature_zero_first_argmax", "weighted_sums.temperature_limits_swapped"],
      hints=["For 0 < T < inf the weights are softmax(scores / T) over S (subtract the max).",
             "scores / 0 is not a number you can softmax. Work out the limits by hand: as T "
             "grows the logits flatten to 0; as T -> 0+ only the largest scores survive.",
             "T = 0: weights 1 on every position equal to the row maximum, 0 elsewhere, then "
             "normalise (ties share the weight). T = inf: all weights equal."])
def temperature(t):
    """Tempered softmax averages: random scores at several temperatures in float64 and
    float32, T = inf (the mean), T = 0 (hard attention) with and without ties."""
    for i, temp in enumerate([0.5, 2.0, 0.2, 5.0]):
        r = t.rng(f"random-{i}")
        n, s, d = int(r.integers(2, 5)), int(r.integers(2, 7)), int(r.integers(1, 4))
        dt = _dtype(i)
        yield case(f"random N={n}, S={s}, D={d}, T={temp}, {np.dtype(dt).name}",
                   (1.5 * r.normal(size=(n, s))).astype(dt), r.normal(size=(n, s, d)).astype(dt), temp)
    r = t.rng("inf")
    yield case("T = inf (uniform weights)", r.normal(size=(3, 5)), r.normal(size=(3, 5, 2)), np.inf)
    r = t.rng("zero")
    yield case("T = 0, unique maxima (one-hot weights)", r.normal(size=(3, 5)), r.normal(size=(3, 5, 2)), 0.0)
    if t.hidden:
        r = t.rng("ties")
        scores = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [0.0, -1.0, 5.0, 4.0]])
        yield case("T = 0 with tied maxima (they share the weight)", scores, r.normal(size=(3, 4, 2)), 0.0)
        r = t.rng("small")
        yield case("T = 0.01 (nearly hard, still a softmax)", r.normal(size=(2, 6)),
                   r.normal(size=(2, 6, 3)), 0.01)

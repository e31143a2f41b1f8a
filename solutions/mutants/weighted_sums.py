"""Known-wrong weighted sums, attention pooling, masking and temperature: one function per
common mistake, each with the signature of its reference kernel."""
import numpy as np

from grader.checks import mutant


# --- weighted_average (basic) ---------------------------------------------------------

@mutant("a weighted sum that never sums", "it returns the weighted values a[n, s] * v[n, s], "
        "shape (N, S, D), instead of adding them up over S")
def never_sums(weights, values):
    a = weights / weights.sum(axis=1, keepdims=True)
    return a[:, :, None] * values


@mutant("weights not normalised", "sum_s w_s v_s is only an average when the weights sum to 1")
def not_normalised(weights, values):
    return np.einsum("ns,nsd->nd", weights, values)


@mutant("weights normalised over the batch axis", "each weight is divided by a column sum over "
        "N instead of its own row sum over S")
def normalised_over_batch(weights, values):
    a = weights / weights.sum(axis=0, keepdims=True)
    return np.einsum("ns,nsd->nd", a, values)


@mutant("the plain mean of the values", "the weights are ignored, every position counts 1/S")
def plain_mean(weights, values):
    return values.mean(axis=1)


@mutant("sum over the feature axis", "the reduction runs over D instead of S, giving one number "
        "per position")
def sums_features(weights, values):
    a = weights / weights.sum(axis=1, keepdims=True)
    return np.einsum("ns,nsd->ns", a, values)


# --- batched_average (basic) ----------------------------------------------------------

@mutant("weights normalised over the queries", "the division uses a sum over T (axis 1) instead "
        "of over the positions S")
def normalised_over_queries(weights, values):
    a = weights / weights.sum(axis=1, keepdims=True)
    return a @ values


@mutant("batched weights not normalised", "A @ V is only a set of averages when each row of A sums to 1")
def batched_not_normalised(weights, values):
    return weights @ values


@mutant("values shared across the batch", "the values are summed over N before the product, so "
        "every batch element sees the others' values")
def mixes_batches(weights, values):
    a = weights / weights.sum(axis=-1, keepdims=True)
    return a @ values.sum(axis=0)


@mutant("only the first query", "the weights of query 0 are used for every query")
def first_query_only(weights, values):
    a = weights / weights.sum(axis=-1, keepdims=True)
    return np.repeat(a[:, :1] @ values, weights.shape[1], axis=1)


# --- gaussian_weights (intermediate) --------------------------------------------------

@mutant("kernel values without normalisation", "exp(-d^2 / 2h^2) are not weights until each row "
        "is divided by its sum")
def kernel_not_normalised(queries, keys, bandwidth):
    return np.exp(-(queries[:, None] - keys[None, :]) ** 2 / (2 * bandwidth**2))


@mutant("Gaussian weights normalised over the queries", "each column (key) sums to 1 instead of "
        "each row (query)")
def kernel_over_queries(queries, keys, bandwidth):
    logits = -(queries[:, None] - keys[None, :]) ** 2 / (2 * bandwidth**2)
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


@mutant("the sign of the distance flipped", "softmax(+d^2 / 2h^2) puts the most weight on the "
        "farthest keys")
def distance_sign_flipped(queries, keys, bandwidth):
    logits = (queries[:, None] - keys[None, :]) ** 2 / (2 * bandwidth**2)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@mutant("bandwidth not squared", "dividing d^2 by 2h instead of 2h^2 changes the kernel width "
        "whenever h != 1")
def bandwidth_not_squared(queries, keys, bandwidth):
    logits = -(queries[:, None] - keys[None, :]) ** 2 / (2 * bandwidth)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@mutant("Gaussian weights without max-subtraction", "far from every key all exp() underflow to 0 "
        "and 0 / 0 gives NaN")
def kernel_no_max_subtraction(queries, keys, bandwidth):
    k = np.exp(-(queries[:, None] - keys[None, :]) ** 2 / (2 * bandwidth**2))
    return k / k.sum(axis=1, keepdims=True)


# --- nadaraya_watson (intermediate) ---------------------------------------------------

@mutant("the mean of the targets", "the prediction ignores the query: this is the bandwidth -> "
        "infinity limit")
def nw_mean(queries, keys, values, bandwidth):
    return np.full(queries.shape, values.mean(), dtype=values.dtype)


@mutant("nearest-neighbour prediction", "hard argmax attention returns the target of the closest "
        "key instead of a kernel-weighted average")
def nw_nearest(queries, keys, values, bandwidth):
    return values[np.argmin(np.abs(queries[:, None] - keys[None, :]), axis=1)]


@mutant("kernel regression without normalisation", "sum_j K(x - x_j) y_j grows with the number of "
        "nearby points; divide by sum_j K(x - x_j)")
def nw_not_normalised(queries, keys, values, bandwidth):
    return np.exp(-(queries[:, None] - keys[None, :]) ** 2 / (2 * bandwidth**2)) @ values


@mutant("regression weights normalised over the queries", "each key's weights sum to 1 over the "
        "queries instead of each query's over the keys")
def nw_over_queries(queries, keys, values, bandwidth):
    logits = -(queries[:, None] - keys[None, :]) ** 2 / (2 * bandwidth**2)
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    return (e / e.sum(axis=0, keepdims=True)) @ values


# --- loo_mse (intermediate) -----------------------------------------------------------

@mutant("each point predicts itself", "without masking the diagonal the error tends to 0 as the "
        "bandwidth shrinks, so the smallest bandwidth always looks best")
def loo_includes_self(x, y, bandwidths):
    h = np.asarray(bandwidths, dtype=x.dtype)[:, None, None]
    logits = -(x[:, None] - x[None, :]) ** 2 / (2 * h**2)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    a = e / e.sum(axis=-1, keepdims=True)
    return ((a @ y - y) ** 2).mean(axis=-1)


@mutant("the self-weight zeroed after the softmax", "masking after normalising leaves rows that "
        "sum to less than 1, so predictions shrink towards 0")
def loo_mask_after_softmax(x, y, bandwidths):
    h = np.asarray(bandwidths, dtype=x.dtype)[:, None, None]
    logits = -(x[:, None] - x[None, :]) ** 2 / (2 * h**2)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    a = np.where(np.eye(len(x), dtype=bool), 0.0, e / e.sum(axis=-1, keepdims=True))
    return ((a @ y - y) ** 2).mean(axis=-1)


@mutant("leave-one-out without max-subtraction", "for small bandwidths every exp() of an isolated "
        "point underflows and 0 / 0 gives NaN")
def loo_no_max_subtraction(x, y, bandwidths):
    h = np.asarray(bandwidths, dtype=x.dtype)[:, None, None]
    k = np.exp(-(x[:, None] - x[None, :]) ** 2 / (2 * h**2))
    k = np.where(np.eye(len(x), dtype=bool), 0.0, k)
    a = k / k.sum(axis=-1, keepdims=True)
    return ((a @ y - y) ** 2).mean(axis=-1)


@mutant("root mean squared error", "the square root of the MSE is reported; the exercise asks "
        "for the mean of the squared errors")
def loo_rmse(x, y, bandwidths):
    h = np.asarray(bandwidths, dtype=x.dtype)[:, None, None]
    logits = -(x[:, None] - x[None, :]) ** 2 / (2 * h**2)
    logits = np.where(np.eye(len(x), dtype=bool), -np.inf, logits)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    a = e / e.sum(axis=-1, keepdims=True)
    return np.sqrt(((a @ y - y) ** 2).mean(axis=-1))


# --- masked_average (advanced) --------------------------------------------------------

@mutant("padding mask inverted", "the padding positions are attended to and the real tokens are "
        "ignored")
def mask_inverted(scores, values, lengths):
    keep = np.arange(scores.shape[1])[None, :] < np.asarray(lengths)[:, None]
    a = np.where(~keep, np.exp(scores - scores.max(axis=1, keepdims=True)), 0.0)
    total = a.sum(axis=1, keepdims=True)
    return np.einsum("ns,nsd->nd", a / np.where(total > 0, total, 1.0), values)


@mutant("mask applied after the softmax", "zeroing padded weights after normalising leaves weights "
        "that sum to less than 1")
def mask_after_softmax(scores, values, lengths):
    keep = np.arange(scores.shape[1])[None, :] < np.asarray(lengths)[:, None]
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    a = np.where(keep, e / e.sum(axis=1, keepdims=True), 0.0)
    return np.einsum("ns,nsd->nd", a, values)


@mutant("padding logits set to 0 instead of -inf", "multiplying the scores by the mask gives "
        "padded positions logit 0, which still has weight exp(0)")
def mask_multiplies_scores(scores, values, lengths):
    keep = np.arange(scores.shape[1])[None, :] < np.asarray(lengths)[:, None]
    z = scores * keep
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.einsum("ns,nsd->nd", e / e.sum(axis=1, keepdims=True), values)


@mutant("padding mask off by one", "position lengths[n] (the first pad) is kept: the comparison "
        "should be s < lengths[n]")
def mask_off_by_one(scores, values, lengths):
    keep = np.arange(scores.shape[1])[None, :] <= np.asarray(lengths)[:, None]
    z = np.where(keep, scores, -np.inf)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.einsum("ns,nsd->nd", e / e.sum(axis=1, keepdims=True), values)


@mutant("NaN for an empty sequence", "with -inf fill and no guard a length-0 row is 0 / 0; the "
        "convention is a zero output")
def empty_row_nan(scores, values, lengths):
    keep = np.arange(scores.shape[1])[None, :] < np.asarray(lengths)[:, None]
    z = np.where(keep, scores, -np.inf)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.einsum("ns,nsd->nd", e / e.sum(axis=1, keepdims=True), values)


@mutant("a large negative fill (-1e9) with no empty-row guard", "a length-0 row gets uniform "
        "weights over the padding instead of the zero output of the convention")
def empty_row_uniform(scores, values, lengths):
    keep = np.arange(scores.shape[1])[None, :] < np.asarray(lengths)[:, None]
    z = np.where(keep, scores, -1e9)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.einsum("ns,nsd->nd", e / e.sum(axis=1, keepdims=True), values)


# --- tempered_average (advanced) ------------------------------------------------------

@mutant("temperature 0 divided by directly", "scores / 0 is +-inf and the softmax gives NaN; "
        "T = 0 must be handled as the limit")
def temperature_zero_nan(scores, values, temperature):
    z = scores / temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.einsum("ns,nsd->nd", e / e.sum(axis=1, keepdims=True), values)


@mutant("temperature multiplied instead of divided", "softmax(T * scores) sharpens when T grows: "
        "the limits come out swapped")
def temperature_multiplies(scores, values, temperature):
    z = scores * temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.einsum("ns,nsd->nd", e / e.sum(axis=1, keepdims=True), values)


@mutant("T = 0 breaks ties by the first maximum", "np.argmax keeps only the first of equal scores; "
        "the limit T -> 0+ shares the weight among all of them")
def temperature_zero_first_argmax(scores, values, temperature):
    if temperature == 0:
        return values[np.arange(len(values)), np.argmax(scores, axis=1)]
    if np.isinf(temperature):
        return values.mean(axis=1)
    z = scores / temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.einsum("ns,nsd->nd", e / e.sum(axis=1, keepdims=True), values)


@mutant("temperature limits swapped", "T = 0 must give hard (one-hot) attention and T = inf the "
        "plain mean, not the other way round")
def temperature_limits_swapped(scores, values, temperature):
    if np.isinf(temperature):
        w = (scores == scores.max(axis=1, keepdims=True)).astype(values.dtype)
        return np.einsum("ns,nsd->nd", w / w.sum(axis=1, keepdims=True), values)
    if temperature == 0:
        return values.mean(axis=1)
    z = scores / temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.einsum("ns,nsd->nd", e / e.sum(axis=1, keepdims=True), values)

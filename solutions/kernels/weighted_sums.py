"""Reference kernels for the weighted-sums topic: weighted averages of value vectors
(basic), Nadaraya-Watson attention pooling (intermediate), masked averages over padded
batches and the temperature limits (advanced)."""
import numpy as np


def weighted_average(weights, values):
    """Average the value vectors of each batch element, weighting position s by weights[n, s].

    Args:
        weights: ``(N, S)`` float, non-negative, each row with a positive sum (the rows need
            not sum to 1: they are normalised here).
        values: ``(N, S, D)`` float, one D-dimensional value vector per position.

    Returns:
        ``(N, D)`` array, dtype of the inputs: ``out[n] = sum_s a[n, s] * values[n, s]`` with
        ``a[n, s] = weights[n, s] / sum_t weights[n, t]``, a convex combination of the values.

    Raises:
        ValueError: (from ``np.einsum``) when the S axes of ``weights`` and ``values`` differ.

    Source: the context vector of Bahdanau et al. (2015), eq. (5), c_i = sum_j alpha_ij h_j,
    with alpha a normalised weight vector.
    """
    a = weights / weights.sum(axis=1, keepdims=True)  # (N, S), each row sums to 1
    return np.einsum("ns,nsd->nd", a, values)  # (N, D)


def batched_average(weights, values):
    """Weighted averages of the values for T queries at once: one weight row per query.

    Args:
        weights: ``(N, T, S)`` float, non-negative; row ``weights[n, t]`` weighs the S
            positions for query t and has a positive sum (normalised here, over S).
        values: ``(N, S, D)`` float, shared by the T queries of batch element n.

    Returns:
        ``(N, T, D)`` array, dtype of the inputs: ``out[n, t] = sum_s a[n, t, s] values[n, s]``
        with ``a = weights / weights.sum(-1)``.  This is the ``A @ V`` product of attention.

    Raises:
        ValueError: (from ``np.matmul``) when the S axes differ or N does not broadcast.

    Source: Vaswani et al. (2017), eq. (1): Attention(Q, K, V) = A V with A row-stochastic.
    """
    a = weights / weights.sum(axis=-1, keepdims=True)  # (N, T, S), normalised over S
    return a @ values  # (N, T, S) @ (N, S, D) -> (N, T, D)


def gaussian_weights(queries, keys, bandwidth):
    """Attention weights of 1-D queries over 1-D keys with a Gaussian kernel.

    Args:
        queries: ``(M,)`` float, the points where we want a prediction.
        keys: ``(N,)`` float, the training inputs.
        bandwidth: positive float h, the kernel width (same units as the inputs).

    Returns:
        ``(M, N)`` array, dtype of the inputs, each row non-negative and summing to 1:
        ``a[i, j] = softmax_j(-(queries[i] - keys[j])**2 / (2 h**2))``.  The max of each row
        of logits is subtracted first, so a query far from every key still gets finite
        weights (its nearest keys win) instead of 0/0.

    Raises:
        Nothing itself; ``bandwidth <= 0`` gives meaningless (inf/NaN) weights.

    Source: Nadaraya (1964) and Watson (1964): a(x, x_j) = K(x - x_j) / sum_l K(x - x_l)
    with the Gaussian kernel K(u) = exp(-u**2 / (2 h**2)).
    """
    logits = -(queries[:, None] - keys[None, :]) ** 2 / (2 * bandwidth**2)  # (M, N)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))  # the nearest key gets exp(0) = 1
    return e / e.sum(axis=1, keepdims=True)


def nadaraya_watson(queries, keys, values, bandwidth):
    """Nadaraya-Watson kernel regression: attention pooling of the training targets.

    Args:
        queries: ``(M,)`` float, inputs to predict at.
        keys: ``(N,)`` float, training inputs x_j.
        values: ``(N,)`` float, training targets y_j.
        bandwidth: positive float h of the Gaussian kernel.

    Returns:
        ``(M,)`` array of predictions ``f(queries[i]) = sum_j a[i, j] values[j]`` where
        ``a[i] = softmax_j(-(queries[i] - keys[j])**2 / (2 h**2))`` (stable: max subtracted).

    Raises:
        ValueError: (from matmul) when ``keys`` and ``values`` differ in length.

    Source: Nadaraya (1964), Watson (1964): f(x) = sum_j K(x - x_j) y_j / sum_l K(x - x_l).
    """
    logits = -(queries[:, None] - keys[None, :]) ** 2 / (2 * bandwidth**2)  # (M, N)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)) @ values  # (M, N) @ (N,) -> (M,)


def loo_mse(x, y, bandwidths):
    """Leave-one-out mean squared error of Nadaraya-Watson regression, per bandwidth.

    Each training point is predicted from the *other* N - 1 points (its own logit is set to
    -inf before the softmax, so it gets weight exactly 0); the error is averaged over points.

    Args:
        x: ``(N,)`` float training inputs, N >= 2.
        y: ``(N,)`` float training targets.
        bandwidths: ``(K,)`` float, positive bandwidths to score.

    Returns:
        ``(K,)`` array: ``mse[k] = mean_i (f_{-i}(x_i) - y_i)**2`` at bandwidth k, in squared
        units of y.

    Raises:
        Nothing itself; with N < 2 a point has no other point to learn from (NaN).

    Source: leave-one-out cross-validation (Stone, 1974) of the Nadaraya-Watson estimator.
    """
    h = np.asarray(bandwidths, dtype=x.dtype)[:, None, None]  # (K, 1, 1)
    logits = -(x[:, None] - x[None, :]) ** 2 / (2 * h**2)  # (K, N, N)
    logits = np.where(np.eye(len(x), dtype=bool), -np.inf, logits)  # no point sees itself
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    a = e / e.sum(axis=-1, keepdims=True)  # (K, N, N), rows sum to 1
    return ((a @ y - y) ** 2).mean(axis=-1)  # (K,)


def masked_average(scores, values, lengths):
    """Softmax-weighted average over a padded batch, ignoring the padding.

    Sequence n holds ``lengths[n]`` real positions followed by padding up to S.  Padded
    positions get weight exactly 0 and the weights of the real ones sum to 1.

    Convention (the project's, for every fully masked row): a sequence of length 0 has
    nothing to attend to; its weights are all 0 and its output is the zero vector, never NaN.

    Args:
        scores: ``(N, S)`` float logits.
        values: ``(N, S, D)`` float value vectors.
        lengths: ``(N,)`` int, each in ``0..S``: the number of real positions.

    Returns:
        ``(N, D)`` array, dtype of ``values``.

    Raises:
        ValueError: (from broadcasting/einsum) when N or S disagree between the arguments.

    Source: masked attention, Vaswani et al. (2017) sec. 3.2.3: logits of illegal positions
    are set to -inf before the softmax.
    """
    keep = np.arange(scores.shape[1])[None, :] < np.asarray(lengths)[:, None]  # (N, S)
    z = np.where(keep, scores, -np.inf)
    m = z.max(axis=1, keepdims=True)  # (N, 1); -inf on empty rows
    e = np.where(keep, np.exp(z - np.where(np.isfinite(m), m, 0.0)), 0.0)
    total = e.sum(axis=1, keepdims=True)
    a = e / np.where(total > 0, total, 1.0)  # empty rows: 0 / 1 = 0
    return np.einsum("ns,nsd->nd", a, values)  # (N, D)


def tempered_average(scores, values, temperature):
    """Average of the values with weights softmax(scores / T), including the limits T = 0
    and T = inf.

    Args:
        scores: ``(N, S)`` float logits.
        values: ``(N, S, D)`` float value vectors.
        temperature: float T >= 0 (dimensionless); ``0`` and ``np.inf`` are allowed.

    Returns:
        ``(N, D)`` array, dtype of ``values``.  For ``0 < T < inf`` the weights are
        softmax(scores / T).  ``T = inf`` gives the plain mean of the values (uniform
        weights).  ``T = 0`` gives the limit T -> 0+: uniform weights over the positions
        that share the maximum score (a one-hot weight when the maximum is unique).

    Raises:
        ValueError: when ``temperature < 0``.

    Source: the tempered softmax q_i = exp(z_i / T) / sum_j exp(z_j / T) of Hinton et al.
    (2015), eq. (1); the limits follow from exp((z_i - max z) / T) -> 1[z_i = max z] as T -> 0.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        w = (scores == scores.max(axis=1, keepdims=True)).astype(values.dtype)  # ties share
    elif np.isinf(temperature):
        w = np.ones_like(scores)
    else:
        z = scores / temperature
        w = np.exp(z - z.max(axis=1, keepdims=True))
    a = w / w.sum(axis=1, keepdims=True)  # (N, S)
    return np.einsum("ns,nsd->nd", a, values)  # (N, D)

"""Reference kernels for the softmax topic (basic, intermediate, advanced)."""
import numpy as np


def softmax(x, axis=-1):
    """Numerically stable softmax of ``x`` along ``axis``.

    Args:
        x: logits, float array of any shape ``(..., n, ...)``; entries may be ``-inf``.
        axis: the axis to normalise over (default the last).

    Returns:
        Array of the same shape and dtype as ``x``; non-negative, sums to 1 along ``axis``.
        A slice whose entries are all ``-inf`` gives NaN (there is nothing to normalise).

    Source: Bridle (1990), softmax(x)_i = exp(x_i) / sum_j exp(x_j); subtracting
    max_j x_j first leaves the value unchanged and keeps exp() from overflowing.
    """
    z = x - np.max(x, axis=axis, keepdims=True)  # largest logit becomes 0
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)

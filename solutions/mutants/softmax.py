"""Known-wrong softmax implementations: the mistakes learners make most."""
import numpy as np

from grader.checks import mutant


@mutant("softmax without max-subtraction", "exp() overflows to inf for logits above ~709, giving NaN")
def no_max_subtraction(x, axis=-1):
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


@mutant("softmax normalised over the wrong axis", "each slice along `axis` no longer sums to 1")
def wrong_axis(x, axis=-1):
    ax = 0 if (axis % x.ndim) != 0 else -1
    z = x - np.max(x, axis=ax, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=ax, keepdims=True)


@mutant("softmax normalised over the whole array", "the sum is taken over every entry, not along `axis`")
def global_sum(x, axis=-1):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


@mutant("softmax shifted by the minimum instead of the maximum",
        "the largest logit minus the smallest can still exceed ~709 and overflow")
def min_subtraction(x, axis=-1):
    e = np.exp(x - np.min(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)

"""Synthetic 1-D regression data for attention pooling (Nadaraya-Watson, weighted-sums topic).

The inputs are sorted uniform draws on [low, high]; the targets are a smooth curve plus
Gaussian noise.  Everything is a deterministic function of the seed (or generator) passed in,
so notebooks, specs and tests see the same data for the same seed.
"""
import numpy as np


def target_function(x):
    """The noiseless curve f(x) = sin(2x) + 0.4 x, elementwise; ``x`` is any float array."""
    return np.sin(2 * x) + 0.4 * x


def make_regression_1d(rng, n=40, noise=0.25, low=0.0, high=5.0):
    """Noisy samples of :func:`target_function`.

    Args:
        rng: an int seed or a ``np.random.Generator`` (used as is).
        n: number of samples.
        noise: standard deviation of the additive Gaussian noise (units of y).
        low, high: the input interval.

    Returns:
        ``(x, y)``, two float64 arrays of shape ``(n,)``; ``x`` is sorted ascending.
    """
    rng = np.random.default_rng(rng)
    x = np.sort(rng.uniform(low, high, size=n))
    y = target_function(x) + noise * rng.normal(size=n)
    return x, y

"""Specs of the softmax topic: stable softmax (basic), masked and log-softmax
(intermediate), softmax backward and online softmax (advanced)."""
import numpy as np

from grader.checks import case, spec


def random_shape(rng, ndim_min=1, ndim_max=3, lo=1, hi=7):
    """A random shape with ``ndim_min..ndim_max`` axes of length ``lo..hi``."""
    return tuple(int(n) for n in rng.integers(lo, hi + 1, size=rng.integers(ndim_min, ndim_max + 1)))


@spec("softmax.stable", entry="softmax", kernel="softmax.softmax",
      mutants=["softmax.no_max_subtraction", "softmax.wrong_axis", "softmax.global_sum",
               "softmax.min_subtraction"],
      hints=["Exponentiate, then divide by the sum along `axis`; keep the summed axis with "
             "`keepdims=True` so it broadcasts back.",
             "exp(1000) is inf in float64. Softmax is unchanged when you subtract the same "
             "constant from every logit of a slice: which constant keeps every exponent <= 0?",
             "z = x - x.max(axis=axis, keepdims=True); e = np.exp(z); return e / e.sum(axis=axis, keepdims=True)"])
def stable(t):
    """Stable softmax along an axis: random shapes and axes, float64 and float32, and the
    edge cases all-equal, single element, one huge logit, and -inf entries."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        shape = random_shape(r, 2, 3, 2, 6)
        axis = int(r.integers(-len(shape), len(shape)))
        dtype = np.float32 if i % 2 else np.float64
        yield case(f"random logits, shape {shape}, axis {axis}, {np.dtype(dtype).name}",
                   (r.normal(size=shape) * 2).astype(dtype), axis=axis)
    yield case("all logits equal", np.full(5, 3.0))
    yield case("a single element", np.array([0.7]))
    yield case("one huge logit [1000, 1, 2, 3]", np.array([1000.0, 1.0, 2.0, 3.0]))
    yield case("-inf entries (already masked)", np.array([[0.5, -np.inf, 1.5], [-np.inf, 2.0, 0.0]]))
    if t.hidden:
        r = t.rng("hidden-large")
        x = r.normal(size=(3, 4)) + np.array([[800.0], [-800.0], [0.0]])
        yield case("large positive and negative rows, axis 1", x, axis=1)
        yield case("huge logits along axis 0", np.array([[750.0, 1.0], [-3.0, 720.0]]), axis=0)

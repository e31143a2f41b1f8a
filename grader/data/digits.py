"""Handwritten digits, offline: scikit-learn's bundled 8x8 digits and cluttered canvases.

Two data sets for the rnn-on-images topic, both built in well under a second and fully
determined by a seed (an ``int`` or a ``np.random.Generator``; nothing is downloaded):

* :func:`digits_split` - the 1,797 bundled digits (Alpaydin & Kaynak, UCI optdigits, as
  shipped by ``sklearn.datasets.load_digits``), split into train and held-out test images
  by a seeded permutation, each image moved by up to one pixel and lightly noised so the
  held-out images are new pixel arrays every time (a lookup in the bundled set fails).
* :func:`cluttered_split` - canvases in the spirit of "cluttered MNIST" (Mnih et al. 2014,
  Sec. 4.1): one digit placed at a random position on a larger empty canvas, plus small
  fragments cut from *other* digits as distractors.  Train and test canvases take their
  digits from disjoint halves of the bundled set.

Pixel values are float32 in [0, 1] (the bundled 0..16 grey levels divided by 16); labels are
int64 in 0..9.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

DIGIT = 8  # side of a bundled digit, pixels


@lru_cache(maxsize=1)
def _bundled() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits as images.

    Returns:
        images: float32 ``(1797, 8, 8)`` in [0, 1]; labels: int64 ``(1797,)`` in 0..9.
    """
    x, y = _bundled()
    return x.copy(), y.copy()


def jitter(images: np.ndarray, rng, shift: int = 1, noise: float = 0.05) -> np.ndarray:
    """Move each image by a random integer offset and add Gaussian pixel noise.

    Args:
        images: float ``(N, H, W)`` in [0, 1].
        rng: seed or ``np.random.Generator``.
        shift: largest offset in pixels along each axis (pixels moved out are dropped,
            pixels moved in are 0).
        noise: standard deviation of the added noise, in pixel units of [0, 1].

    Returns:
        float32 ``(N, H, W)``, clipped to [0, 1].
    """
    rng = np.random.default_rng(rng)
    n, h, w = images.shape
    pad = np.pad(images, ((0, 0), (shift, shift), (shift, shift)))
    dy, dx = rng.integers(0, 2 * shift + 1, size=(2, n))
    rows = dy[:, None] + np.arange(h)  # (N, H) rows of the padded image to keep
    cols = dx[:, None] + np.arange(w)  # (N, W)
    out = pad[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    out = out + noise * rng.standard_normal(out.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def digits_split(seed, n_test: int = 500, n_train: int | None = None, shift: int = 1,
                 noise: float = 0.05):
    """A seeded train / held-out split of the bundled digits, jittered (see :func:`jitter`).

    Args:
        seed: int or ``np.random.Generator``; the split and the jitter depend only on it.
        n_test: number of held-out images (taken first from the permutation).
        n_train: number of training images (default: all the rest, 1797 - n_test).

    Returns:
        ``(X_train, y_train, X_test, y_test)``: float32 ``(N, 8, 8)`` images, int64 labels.

    Raises:
        ValueError: when n_train + n_test exceeds 1797.
    """
    x, y = _bundled()
    n_train = len(x) - n_test if n_train is None else n_train
    if n_test + n_train > len(x):
        raise ValueError(f"asked for {n_train} + {n_test} images, the set has {len(x)}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))
    te, tr = perm[:n_test], perm[n_test:n_test + n_train]
    return (jitter(x[tr], rng, shift, noise), y[tr].copy(),
            jitter(x[te], rng, shift, noise), y[te].copy())


def cluttered(images: np.ndarray, labels: np.ndarray, n: int, rng, canvas: int = 24,
              n_clutter: int = 4, piece: int = 3):
    """``n`` canvases, each with one digit at a random place and ``n_clutter`` fragments.

    Each canvas is ``canvas x canvas`` zeros; a random digit from ``images`` is written at a
    random top-left corner (it always fits entirely), then ``n_clutter`` random
    ``piece x piece`` crops of other random digits are laid at random places, combined with
    the canvas by a pixel-wise maximum (distractors may touch the digit).

    Args:
        images: float ``(M, 8, 8)`` source digits; labels: int ``(M,)``.
        n: number of canvases.  rng: seed or ``np.random.Generator``.

    Returns:
        ``(X, y, corners)``: float32 ``(n, canvas, canvas)``, int64 ``(n,)`` labels, and int64
        ``(n, 2)`` (row, col) of each digit's top-left pixel (to draw where the digit is).
    """
    rng = np.random.default_rng(rng)
    m, d, _ = images.shape
    X = np.zeros((n, canvas, canvas), np.float32)
    pick = rng.integers(0, m, size=n)
    corners = rng.integers(0, canvas - d + 1, size=(n, 2))
    src = rng.integers(0, m, size=(n, n_clutter))  # digit each fragment is cut from
    cut = rng.integers(0, d - piece + 1, size=(n, n_clutter, 2))  # where in that digit
    at = rng.integers(0, canvas - piece + 1, size=(n, n_clutter, 2))  # where on the canvas
    for i in range(n):
        r, c = corners[i]
        X[i, r:r + d, c:c + d] = images[pick[i]]
        for k in range(n_clutter):
            (sr, sc), (ar, ac) = cut[i, k], at[i, k]
            frag = images[src[i, k], sr:sr + piece, sc:sc + piece]
            X[i, ar:ar + piece, ac:ac + piece] = np.maximum(X[i, ar:ar + piece, ac:ac + piece], frag)
    return X, labels[pick].astype(np.int64), corners.astype(np.int64)


def cluttered_split(seed, n_train: int = 3000, n_test: int = 1000, canvas: int = 24,
                    n_clutter: int = 4, piece: int = 3):
    """Train and held-out cluttered canvases from disjoint halves of the bundled digits.

    Args:
        seed: int or ``np.random.Generator``; everything depends only on it.
        n_train, n_test: numbers of canvases; canvas, n_clutter, piece: see :func:`cluttered`.

    Returns:
        ``(X_train, y_train, X_test, y_test, corners_test)``; X float32
        ``(N, canvas, canvas)`` in [0, 1], y int64, corners_test int64 ``(n_test, 2)``.
    """
    x, y = _bundled()
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))
    half = len(x) // 2
    tr, te = perm[half:], perm[:half]
    Xtr, ytr, _ = cluttered(x[tr], y[tr], n_train, rng, canvas, n_clutter, piece)
    Xte, yte, corners = cluttered(x[te], y[te], n_test, rng, canvas, n_clutter, piece)
    return Xtr, ytr, Xte, yte, corners

"""A Sort-of-CLEVR-style visual question answering data set, generated offline from a seed.

After Santoro et al. (2017), "A simple neural network module for relational reasoning",
section 4.1: every scene holds six objects, one of each colour, each a circle or a square.
Each scene comes with one templated question about the object of a given colour, either
non-relational (its shape, whether it is left or right, top or bottom) or relational (the
shape of the object nearest to / farthest from it, how many objects share its shape).

Layout.  The canvas of ``size x size`` pixels is cut into a ``grid x grid`` lattice of cells
(the attention regions of the exercises).  Objects sit in six distinct cells and never cross
a cell border, so "the region of an object" is well defined and its box is known exactly.

Everything is a NumPy array; the same seed always gives the same data set::

    from grader.data.sort_of_clevr import make_dataset, ANSWERS, decode_question
    d = make_dataset(2000, seed=0)
    d["images"].shape      # (2000, 32, 32, 3) float32 in [0, 1]
    decode_question(d["questions"][0]), ANSWERS[d["answers"][0]]
"""
from __future__ import annotations

import numpy as np

COLOURS = ("red", "green", "blue", "orange", "gray", "yellow")
RGB = np.array([[0.90, 0.10, 0.10], [0.10, 0.60, 0.15], [0.15, 0.25, 0.90],
                [1.00, 0.55, 0.00], [0.50, 0.50, 0.50], [0.85, 0.80, 0.05]], dtype=np.float32)
SHAPES = ("circle", "square")
ANSWERS = ("circle", "square", "left", "right", "top", "bottom", "1", "2", "3", "4", "5", "6")
QUESTION_TYPES = ("shape", "horizontal", "vertical", "nearest-shape", "farthest-shape", "count-same-shape")
NON_RELATIONAL = (0, 1, 2)
RELATIONAL = (3, 4, 5)
_TEMPLATES = (
    "what shape is the {c} object ?",
    "is the {c} object on the left or right ?",
    "is the {c} object at the top or bottom ?",
    "what shape is the object nearest to the {c} one ?",
    "what shape is the object farthest from the {c} one ?",
    "how many objects have the same shape as the {c} one ?",
)
PAD = "<pad>"
VOCAB = (PAD,) + tuple(sorted({w for t in _TEMPLATES for w in t.format(c="").split()} | set(COLOURS)))
_WORD_ID = {w: i for i, w in enumerate(VOCAB)}
MAX_LEN = max(len(t.format(c="red").split()) for t in _TEMPLATES)
N_OBJECTS = len(COLOURS)


def encode_question(qtype: int, colour: int) -> np.ndarray:
    """Token ids ``(MAX_LEN,)`` int64 of the question of type ``qtype`` about ``colour``,
    right-padded with 0 (``<pad>``)."""
    words = _TEMPLATES[qtype].format(c=COLOURS[colour]).split()
    out = np.zeros(MAX_LEN, dtype=np.int64)
    out[:len(words)] = [_WORD_ID[w] for w in words]
    return out


def decode_question(tokens) -> str:
    """The question text of token ids ``(L,)`` (padding dropped)."""
    return " ".join(VOCAB[int(i)] for i in np.asarray(tokens) if int(i) != 0)


def make_scenes(n: int, seed: int, size: int = 32, grid: int = 4):
    """Random scenes: ``n`` layouts of six objects, rendered.

    Args:
        n: number of scenes.
        seed: integer seed; the output depends on nothing else.
        size: canvas side in pixels; must be a multiple of ``grid``.
        grid: cells per side (``grid * grid >= 6``).

    Returns:
        ``(images, boxes, shapes, cells)``: images ``(n, size, size, 3)`` float32 in [0, 1]
        (white background); boxes ``(n, 6, 4)`` float32 ``(x0, y0, x1, y1)`` in pixels,
        object ``j`` having colour ``COLOURS[j]``; shapes ``(n, 6)`` int64 (0 circle,
        1 square); cells ``(n, 6)`` int64 row-major cell index ``row * grid + col``.

    Raises:
        ValueError: when ``size`` is not a multiple of ``grid`` or the grid has < 6 cells.
    """
    if size % grid or grid * grid < N_OBJECTS:
        raise ValueError(f"need size % grid == 0 and grid**2 >= 6, got size={size}, grid={grid}")
    rng = np.random.default_rng(seed)
    cell = size / grid
    cells = np.argsort(rng.random((n, grid * grid)), axis=1)[:, :N_OBJECTS]  # 6 distinct cells
    shapes = rng.integers(0, 2, size=(n, N_OBJECTS))
    half = rng.uniform(0.33, 0.42, size=(n, N_OBJECTS)) * cell  # half side / radius
    slack = cell / 2 - half - 0.5  # room to move without leaving the cell
    cx = (cells % grid + 0.5) * cell + rng.uniform(-1, 1, size=(n, N_OBJECTS)) * slack
    cy = (cells // grid + 0.5) * cell + rng.uniform(-1, 1, size=(n, N_OBJECTS)) * slack
    ys, xs = (np.mgrid[0:size, 0:size] + 0.5).astype(np.float32)  # pixel centres
    images = np.ones((n, size, size, 3), dtype=np.float32)
    for j in range(N_OBJECTS):  # objects never overlap: painting order does not matter
        dx = np.abs(xs - cx[:, j, None, None].astype(np.float32))  # (n, size, size)
        dy = np.abs(ys - cy[:, j, None, None].astype(np.float32))
        h = half[:, j, None, None].astype(np.float32)
        disc = dx * dx + dy * dy <= h * h
        box = np.maximum(dx, dy) <= h
        images[np.where(shapes[:, j, None, None] == 0, disc, box)] = RGB[j]
    boxes = np.stack([cx - half, cy - half, cx + half, cy + half], axis=-1).astype(np.float32)
    return images, boxes, shapes.astype(np.int64), cells.astype(np.int64)


def answer(qtype: int, colour: int, boxes: np.ndarray, shapes: np.ndarray, size: int = 32):
    """Ground truth of one question about one scene.

    Args:
        qtype: index into ``QUESTION_TYPES``.
        colour: the queried object's index (= its colour).
        boxes: ``(6, 4)`` boxes of the scene; shapes: ``(6,)`` shapes of the scene.
        size: canvas side (the left/right, top/bottom split is at ``size / 2``).

    Returns:
        ``(answer id into ANSWERS, index of the object the answer is about)``.
    """
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    if qtype == 0:
        return int(shapes[colour]), colour
    if qtype == 1:
        return 2 + int(centres[colour, 0] >= size / 2), colour
    if qtype == 2:
        return 4 + int(centres[colour, 1] >= size / 2), colour
    if qtype in (3, 4):
        dist = np.linalg.norm(centres - centres[colour], axis=1)
        dist[colour] = np.inf if qtype == 3 else -np.inf
        other = int(np.argmin(dist) if qtype == 3 else np.argmax(dist))
        return int(shapes[other]), other
    if qtype == 5:
        return 5 + int(np.sum(shapes == shapes[colour])), colour
    raise ValueError(f"unknown question type {qtype}")


def make_dataset(n: int, seed: int, size: int = 32, grid: int = 4, qtypes=QUESTION_TYPES):
    """``n`` (scene, question, answer) triples, one question per scene.

    Args:
        n: number of examples.
        seed: integer seed; the data depend only on ``(n, seed, size, grid, qtypes)``.
        size, grid: canvas side in pixels and cells per side (see :func:`make_scenes`).
        qtypes: the question types to draw from uniformly (names or indices of
            ``QUESTION_TYPES``).

    Returns:
        A dict of NumPy arrays:
        ``images (n, size, size, 3) float32``, ``questions (n, MAX_LEN) int64`` (token ids,
        0-padded), ``lengths (n,) int64``, ``qtype (n,) int64``, ``colour (n,) int64`` (the
        queried object's index), ``answers (n,) int64`` (into ``ANSWERS``), ``boxes (n, 6, 4)
        float32``, ``shapes (n, 6) int64``, ``cells (n, 6) int64``, ``target (n,) int64``
        (the queried object) and ``about (n,) int64`` (the object the answer describes:
        the queried one, or its nearest/farthest neighbour).
    """
    types = np.array([QUESTION_TYPES.index(q) if isinstance(q, str) else int(q) for q in qtypes])
    images, boxes, shapes, cells = make_scenes(n, seed, size, grid)
    rng = np.random.default_rng([seed, 1])  # questions drawn apart from the scenes
    qtype = types[rng.integers(0, len(types), size=n)]
    colour = rng.integers(0, N_OBJECTS, size=n)
    answers, about = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for i in range(n):
        answers[i], about[i] = answer(int(qtype[i]), int(colour[i]), boxes[i], shapes[i], size)
    questions = np.stack([encode_question(int(t), int(c)) for t, c in zip(qtype, colour)])
    return {"images": images, "questions": questions, "lengths": (questions != 0).sum(1),
            "qtype": qtype.astype(np.int64), "colour": colour.astype(np.int64), "answers": answers,
            "boxes": boxes, "shapes": shapes, "cells": cells, "target": colour.astype(np.int64),
            "about": about}


FEATURES = COLOURS + ("corners", "x", "y")


def region_features(images: np.ndarray, grid: int = 4) -> np.ndarray:
    """Fixed (not learned) descriptors of the ``grid x grid`` cells of each image.

    They play the part of the frozen CNN feature map of Yang et al. (2016), who attend over
    the 14 x 14 grid of VGG pool5 vectors: one vector per region, computed once.

    Args:
        images: ``(n, size, size, 3)`` float in [0, 1], white background (``make_scenes``).
        grid: cells per side; ``size`` must be a multiple of it.

    Returns:
        ``(n, grid * grid, 9)`` float32, regions in row-major order (``row * grid + col``),
        features ``FEATURES``: a colour histogram (for each of the six palette colours, the
        share of the cell's ink pixels, those not white, that are nearest to it: one-hot for
        a cell holding an object, all 0 for an empty cell), the fraction of
        the four corners of the ink's bounding box that are ink (1 for a square, 0 for a
        circle or an empty cell; the smallest circles can rasterise to a square, about 1 in
        150), and the cell's column and row scaled to [0, 1].
    """
    n, size = images.shape[0], images.shape[1]
    c = size // grid
    cells = images.reshape(n, grid, c, grid, c, 3).transpose(0, 1, 3, 2, 4, 5)  # (n, G, G, c, c, 3)
    palette = np.concatenate([RGB, np.ones((1, 3), np.float32)])  # six colours, then white
    score = cells @ palette.T - 0.5 * (palette ** 2).sum(-1)  # larger = nearer, (n, G, G, c, c, 7)
    nearest = np.argmax(score, axis=-1)  # (n, G, G, c, c)
    ink = nearest < N_OBJECTS
    hist = (nearest[..., None] == np.arange(N_OBJECTS)).sum((3, 4)) / np.maximum(ink.sum((3, 4)), 1)[..., None]
    rows_in, cols_in = ink.any(-1), ink.any(-2)  # (n, G, G, c): which rows / columns hold ink
    r0, r1 = rows_in.argmax(-1), c - 1 - rows_in[..., ::-1].argmax(-1)  # bounding box of the ink
    c0, c1 = cols_in.argmax(-1), c - 1 - cols_in[..., ::-1].argmax(-1)
    corner = sum(np.take_along_axis(np.take_along_axis(ink, r[..., None, None], -2)[..., 0, :],
                                    k[..., None], -1)[..., 0] for r in (r0, r1) for k in (c0, c1)) / 4.0
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    pos = np.broadcast_to(np.stack([cols, rows], -1) / max(grid - 1, 1), (n, grid, grid, 2))
    feats = np.concatenate([hist, corner[..., None], pos], -1)
    return feats.reshape(n, grid * grid, len(FEATURES)).astype(np.float32)

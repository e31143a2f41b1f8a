"""Comparing a learner's output with the reference, with messages a learner can act on.

Order of checks: structure (tuple arity), shape, dtype, NaN/Inf, then values.  Values use
dtype-dependent tolerances: float64 outputs must match a float64 reference to a relative
error of 1e-8; float32 (and lower) outputs are compared with the float64 reference at
atol 1e-5, rtol 1e-4 unless the spec says otherwise.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(x: Any) -> Any:
    """Convert an output tree to NumPy: torch tensors, scalars and nested tuples/lists.

    Tensors are detached and moved to CPU; Python and NumPy scalars become 0-d arrays.
    Anything else (strings, None, dicts) is returned unchanged.
    """
    if isinstance(x, (tuple, list)):
        return type(x)(to_numpy(v) for v in x) if isinstance(x, tuple) else [to_numpy(v) for v in x]
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # torch.Tensor, without importing torch
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (bool, int, float, np.generic)):
        return np.asarray(x)
    return x


def _fmt(a: np.ndarray, limit: int = 8) -> str:
    flat = np.asarray(a).ravel()
    body = np.array2string(flat[:limit], precision=6, separator=", ", max_line_width=10_000)
    return body[:-1] + ", ...]" if flat.size > limit else body


def compare(got: Any, expected: Any, exact_expected: Any = None, *, rtol64: float = 1e-8,
            atol32: float = 1e-5, rtol32: float = 1e-4, path: str = "output") -> str | None:
    """Compare ``got`` with ``expected``; return None when they agree, else a message.

    Args:
        got: the learner's output (array, scalar, or tuple/list of them).
        expected: the reference output on the *same* inputs (gives shape and dtype).
        exact_expected: the reference output on float64 copies of the inputs, used for
            values; defaults to ``expected``.
        rtol64: relative tolerance for float64 values.
        atol32, rtol32: tolerances for float32/float16 values against float64.
        path: how to name this value in messages (``"output[1]"``).

    Returns:
        ``None`` if equal within tolerance; otherwise one sentence naming the first
        difference, e.g. ``"expected shape (2, 5), got (5, 2)"``.
    """
    got, expected = to_numpy(got), to_numpy(expected)
    exact_expected = expected if exact_expected is None else to_numpy(exact_expected)
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"{path}: expected a tuple of {len(expected)} values, got {type(got).__name__}"
        if len(got) != len(expected):
            return f"{path}: expected {len(expected)} returned values, got {len(got)}"
        for i, (g, e, x) in enumerate(zip(got, expected, exact_expected)):
            msg = compare(g, e, x, rtol64=rtol64, atol32=atol32, rtol32=rtol32, path=f"{path}[{i}]")
            if msg:
                return msg
        return None
    if not isinstance(expected, np.ndarray):
        return None if got == expected else f"{path}: expected {expected!r}, got {got!r}"
    if not isinstance(got, np.ndarray):
        return f"{path}: expected an array of shape {expected.shape}, got {type(got).__name__}"
    if got.shape != expected.shape:
        return f"{path}: expected shape {expected.shape}, got {got.shape}"
    if expected.dtype.kind == "f" and got.dtype != expected.dtype:
        return f"{path}: expected dtype {expected.dtype}, got {got.dtype}"
    if expected.dtype.kind in "biu":
        if got.dtype.kind not in "biu" or not np.array_equal(got, expected):
            return _first_mismatch(got, expected, path, "exactly")
        return None
    exact = np.asarray(exact_expected, dtype=np.float64)
    g = got.astype(np.float64)
    bad_nan = np.isnan(g) & ~np.isnan(exact)
    if bad_nan.any():
        idx = tuple(int(i) for i in np.argwhere(bad_nan)[0])
        return f"{path}: contains NaN at index {idx}; expected {exact[idx]:.6g}"
    bad_inf = np.isinf(g) & ~np.isinf(exact)
    if bad_inf.any():
        idx = tuple(int(i) for i in np.argwhere(bad_inf)[0])
        return f"{path}: contains {g[idx]} at index {idx}; expected {exact[idx]:.6g}"
    if got.dtype == np.float64:
        atol, rtol = 1e-12, rtol64
    else:
        atol, rtol = atol32, rtol32
    if not np.allclose(g, exact, rtol=rtol, atol=atol, equal_nan=True):
        return _first_mismatch(g, exact, path, f"within rtol={rtol:g}, atol={atol:g}", rtol, atol)
    return None


def _first_mismatch(got, exp, path, how, rtol=0.0, atol=0.0) -> str:
    with np.errstate(invalid="ignore"):
        bad = ~np.isclose(got, exp, rtol=rtol, atol=atol, equal_nan=True)
    idx = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
    n, total = int(bad.sum()), bad.size
    return (f"{path}: {n} of {total} values differ ({how}); first at index {idx}: "
            f"expected {np.asarray(exp)[idx]:.6g}, got {np.asarray(got)[idx]:.6g}.\n"
            f"    expected {_fmt(exp)}\n    got      {_fmt(got)}")


def same(a: Any, b: Any) -> bool:
    """Loose equality used for mistake diagnosis: same structure, shape and values.

    NaNs compare equal and a float32 tolerance is used, so an output that overflowed the
    same way a mutant does is recognised as that mutant.
    """
    a, b = to_numpy(a), to_numpy(b)
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return (isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b)
                and all(same(x, y) for x, y in zip(a, b)))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.shape != b.shape:
            return False
        if a.dtype.kind not in "fciub" or b.dtype.kind not in "fciub":
            return bool(np.array_equal(a, b))
        with np.errstate(invalid="ignore"):
            return bool(np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=1e-4,
                                    atol=1e-6, equal_nan=True))
    try:
        return bool(a == b)
    except Exception:
        return False

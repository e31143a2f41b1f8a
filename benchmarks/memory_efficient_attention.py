"""Measure the extra memory of key-tiled attention (online softmax) against full attention.

Both columns run the same reference kernel, ``solutions.kernels.self_attention.tiled_attention``:
with ``block_size = L`` there is a single tile, so it materialises the whole (L, L) logit matrix
(full attention); with a fixed ``block_size`` only an (L, block_size) tile exists at a time.
Peak memory is measured with ``tracemalloc``, which sees every NumPy buffer; the inputs are
allocated before tracing starts, so the figures are the *extra* memory of one call.

Usage::

    .venv/bin/python benchmarks/memory_efficient_attention.py [--d 64] [--block 64] [--lengths 256 512 ...]
"""
from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from solutions.kernels.self_attention import tiled_attention  # noqa: E402


def peak_extra_bytes(fn, *args) -> tuple[int, float]:
    """(peak bytes allocated during ``fn(*args)`` above what was live before, seconds taken)."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    fn(*args)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return peak, seconds


def main(argv=None) -> None:
    """Print, per sequence length, the peak extra MiB of full and tiled attention side by side,
    their ratio, the theoretical sizes L*L*8 and L*(block+d)*8 bytes, and the max difference."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=64, help="d_k = d_v (default 64)")
    ap.add_argument("--block", type=int, default=64, help="keys per tile (default 64)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"float64, one sequence (Lq = Lk = L), d_k = d_v = {args.d}, tile = {args.block} keys")
    print(f"{'L':>6} {'full MiB':>10} {'tiled MiB':>10} {'full/tiled':>11} "
          f"{'L*L*8 MiB':>10} {'L*(B+d)*8 MiB':>14} {'max |diff|':>11} {'full s':>8} {'tiled s':>8}")
    prev = None
    for L in args.lengths:
        q, k, v = (rng.normal(size=(L, args.d)) for _ in range(3))
        full, t_full = peak_extra_bytes(tiled_attention, q, k, v, L)
        tiled, t_tiled = peak_extra_bytes(tiled_attention, q, k, v, args.block)
        diff = np.abs(tiled_attention(q, k, v, L) - tiled_attention(q, k, v, args.block)).max()
        mib = 2.0 ** 20
        print(f"{L:>6} {full / mib:>10.2f} {tiled / mib:>10.2f} {full / tiled:>11.1f} "
              f"{L * L * 8 / mib:>10.2f} {L * (args.block + args.d) * 8 / mib:>14.2f} "
              f"{diff:>11.1e} {t_full:>8.3f} {t_tiled:>8.3f}")
        if prev is not None:
            pL, pf, pt = prev
            print(f"{'':>6} growth vs L={pL}: full x{full / pf:.2f}, tiled x{tiled / pt:.2f} "
                  f"(L grew x{L / pL:.0f})")
        prev = (L, full, tiled)


if __name__ == "__main__":
    main()

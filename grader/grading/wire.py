"""The wire format between the trusted grader and a sandboxed worker: plain data only.

A message is ``<4-byte header length><JSON header><8-byte blob length><blob>``.  Arrays
travel as raw bytes in the blob, described in the header by dtype, shape, offset and size;
numbers, strings, booleans, None, lists and tuples travel as JSON.  Nothing is ever
pickled, and the decoder accepts only a fixed list of numeric dtypes, so a message from
student code can carry numbers but never an object or code.
"""
from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

import numpy as np

ALLOWED_DTYPES = {np.dtype(t).str for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64)}
MAX_MESSAGE = 1 << 30  # 1 GiB: a larger message is refused, not read


class WireError(ValueError):
    """A message is malformed or carries something that is not plain data."""


def _enc(x: Any, blobs: list[bytes], offset: list[int]) -> Any:
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, (int, float)) and type(x) in (int, float):
        return x
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if isinstance(x, np.ndarray):
        a = np.array(x, copy=True, order="C", subok=False)  # keeps 0-d arrays 0-d
        if a.dtype.str not in ALLOWED_DTYPES:
            raise WireError(f"arrays of dtype {a.dtype} cannot be sent; use a numeric dtype")
        data = a.tobytes()
        blobs.append(data)
        ref = {"nd": [a.dtype.str, list(a.shape), offset[0], len(data)]}
        offset[0] += len(data)
        return ref
    if isinstance(x, tuple):
        return {"tuple": [_enc(v, blobs, offset) for v in x]}
    if isinstance(x, list):
        return [_enc(v, blobs, offset) for v in x]
    if isinstance(x, dict) and all(isinstance(k, str) for k in x):
        return {"dict": {k: _enc(v, blobs, offset) for k, v in x.items()}}
    raise WireError(f"a {type(x).__name__} is not plain data (arrays, numbers, strings, tuples)")


def encode(obj: Any) -> bytes:
    """Serialise ``obj`` (plain data) to one message.  Raises WireError otherwise."""
    blobs: list[bytes] = []
    header = json.dumps(_enc(obj, blobs, [0]), allow_nan=True).encode()
    blob = b"".join(blobs)
    return struct.pack("<I", len(header)) + header + struct.pack("<Q", len(blob)) + blob


def _dec(x: Any, blob: memoryview) -> Any:
    if isinstance(x, list):
        return [_dec(v, blob) for v in x]
    if isinstance(x, dict):
        if set(x) == {"nd"}:
            dtype, shape, off, n = x["nd"]
            if dtype not in ALLOWED_DTYPES:
                raise WireError(f"dtype {dtype!r} is not allowed")
            shape = tuple(int(s) for s in shape)
            if any(s < 0 for s in shape) or off < 0 or off + n > len(blob):
                raise WireError("array reference out of range")
            dt = np.dtype(dtype)
            if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != n:
                raise WireError("array size does not match its shape")
            return np.frombuffer(blob[off:off + n], dtype=dt).reshape(shape).copy()
        if set(x) == {"tuple"}:
            return tuple(_dec(v, blob) for v in x["tuple"])
        if set(x) == {"dict"}:
            return {str(k): _dec(v, blob) for k, v in x["dict"].items()}
        raise WireError("unknown tagged value")
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise WireError(f"unexpected {type(x).__name__}")


def decode(header: bytes, blob: bytes) -> Any:
    """Inverse of :func:`encode`, given the header and blob of one message."""
    try:
        tree = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WireError(f"header is not JSON: {e}") from None
    return _dec(tree, memoryview(blob))


def _read_exact(f: BinaryIO, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        b = f.read(n - got)
        if not b:
            raise EOFError("the other side closed the channel")
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def read_message(f: BinaryIO) -> Any:
    """Read and decode one message from a binary stream (blocking)."""
    (hlen,) = struct.unpack("<I", _read_exact(f, 4))
    if hlen > MAX_MESSAGE:
        raise WireError("header too large")
    header = _read_exact(f, hlen)
    (blen,) = struct.unpack("<Q", _read_exact(f, 8))
    if blen > MAX_MESSAGE:
        raise WireError("message too large")
    return decode(header, _read_exact(f, blen))


def write_message(f: BinaryIO, obj: Any) -> None:
    f.write(encode(obj))
    f.flush()

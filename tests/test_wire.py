"""The wire format carries plain data only and refuses everything else."""
import io

import numpy as np
import pytest

from grader.grading.wire import WireError, decode, encode, read_message


def roundtrip(x):
    return read_message(io.BytesIO(encode(x)))


def test_arrays_numbers_and_nesting_roundtrip():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = roundtrip({"x": (a, [1, 2.5, None, "s", True], np.bool_(True))})
    np.testing.assert_array_equal(out["x"][0], a)
    assert out["x"][0].dtype == np.float32 and isinstance(out["x"], tuple)
    assert out["x"][1] == [1, 2.5, None, "s", True]
    assert out["x"][2].dtype == np.bool_


@pytest.mark.parametrize("bad", [np.array([object()], dtype=object), object(), lambda: 1,
                                 np.array(["a"]), {1: 2}])
def test_non_plain_data_is_refused(bad):
    with pytest.raises(WireError):
        encode(bad)


def test_forged_headers_are_refused():
    with pytest.raises(WireError):
        decode(b'{"nd": ["|O", [1], 0, 8]}', b"\0" * 8)  # object dtype
    with pytest.raises(WireError):
        decode(b'{"nd": ["<f8", [4], 0, 32]}', b"\0" * 8)  # out of range
    with pytest.raises(WireError):
        decode(b'{"pickle": "gASV"}', b"")
    with pytest.raises(WireError):
        decode(b"not json", b"")

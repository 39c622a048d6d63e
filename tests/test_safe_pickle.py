"""The restricted unpickler: admits numpy arrays, refuses any other global without running it."""

import gzip
import os
import pickle

import numpy as np
import pytest

from dualspace import safe_pickle


class _Evil:
    # Unpickling this with pickle.load would call os.system(...).
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_numpy_arrays_roundtrip(tmp_path, protocol):
    data = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [1, 2, 3],
            "f": np.linspace(0, 1, 5), "obj": np.array(["a", "bc"], dtype=object)}
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    out = safe_pickle.load(path)
    np.testing.assert_array_equal(out[b"data"], data[b"data"])
    np.testing.assert_array_equal(out["f"], data["f"])
    assert out[b"labels"] == [1, 2, 3] and list(out["obj"]) == ["a", "bc"]


@pytest.mark.parametrize("gz", [False, True])
def test_foreign_global_is_refused_and_not_run(tmp_path, gz):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"x": np.zeros(2), "evil": _Evil(marker)}, protocol=2)
    path = tmp_path / "evil.pkl.gz"
    path.write_bytes(gzip.compress(payload) if gz else payload)
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"(posix|os)\.system"):
        safe_pickle.load(path)
    assert not marker.exists()
    assert str(path) in str(pytest.raises(safe_pickle.UnsafePickleError, safe_pickle.load, path).value)


def test_reconstructor_only_builds_pandas_markers(tmp_path):
    # copyreg._reconstructor is admitted, but only for pandas containers: here it is asked to build
    # an ndarray through object.__new__, which must be refused.
    payload = b"ccopy_reg\n_reconstructor\n(cnumpy\nndarray\nc__builtin__\nobject\nNtR."
    path = tmp_path / "recon.pkl"
    path.write_bytes(payload)
    with pytest.raises(safe_pickle.UnsafePickleError, match="only pandas containers"):
        safe_pickle.load(path)


def test_hapt_frame_to_columns():
    # The shipped HAPT file: 30 subjects, 8 named columns per recording, one label per sample.
    from dualspace.data.series import hapt_source_path

    recordings = safe_pickle.load(hapt_source_path())
    assert sorted(recordings) == list(range(1, 31))
    cols = safe_pickle.frame_to_columns(recordings[1][0])
    assert list(cols) == ["acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z", "sequence", "label"]
    n = len(cols["label"])
    assert all(len(v) == n for v in cols.values())
    np.testing.assert_array_equal(cols["sequence"], np.arange(n))
    # total acceleration in g: the mean magnitude of a recording is close to 1 g
    mag = np.sqrt(sum(cols[f"acc-{a}"] ** 2 for a in "xyz"))
    assert 0.9 < mag.mean() < 1.1

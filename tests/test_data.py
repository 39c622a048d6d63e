"""Dataset contracts: shapes, ranges, normalization, splits, and the official file formats."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from dualspace.data import DataMissingError, load_dataset, one_hot, prepare, read_split
from dualspace.data.series import CHANNELS, sliding_windows, ucihar_channels
from dualspace.io import atomic_path

from conftest import SHARED_DATA


def _check_splits(ds, shape, n_classes, every_class_in_every_split=True):
    assert set(ds.splits) == {"train", "calib", "test"}
    for s in ds.splits.values():
        assert s.x.shape[1:] == shape and s.x.dtype == np.float32 and s.label.dtype == np.int64
        assert np.isfinite(s.x).all()
        present = set(np.unique(s.label).tolist())
        assert present == set(range(n_classes)) if every_class_in_every_split else present <= set(range(n_classes))


def test_digits_contract():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits", seed=0)
    _check_splits(ds, (1, 8, 8), 10)
    x = np.concatenate([s.x for s in ds.splits.values()])
    assert x.min() == -1.0 and x.max() == 1.0
    assert sum(len(s.label) for s in ds.splits.values()) == 1797
    # every prepared image is one of sklearn's images mapped by pixel / 8 - 1, with its own label
    ref = {img.tobytes(): t for img, t in zip((load_digits().images / 8.0 - 1).astype(np.float32), load_digits().target)}
    for s in ds.splits.values():
        assert all(ref[img[0].tobytes()] == lab for img, lab in zip(s.x, s.label))
    # same seed -> same split, other seed -> other split
    np.testing.assert_array_equal(load_dataset("digits", seed=0).splits["calib"].x, ds.splits["calib"].x)
    assert not np.array_equal(load_dataset("digits", seed=1).splits["calib"].x, ds.splits["calib"].x)


@pytest.fixture(scope="module")
def hapt():
    return load_dataset("hapt", seed=0)


def test_hapt_windows_and_splits(hapt):
    _check_splits(hapt, (9, 128), 6)
    total = sum(len(s.label) for s in hapt.splits.values())
    assert 9000 <= total <= 11000  # UCI HAR has 10,299 windows; HAPT rebuilt here gives ~10k
    train_subjects = set(hapt.splits["train"].groups.tolist())
    held = set(hapt.splits["calib"].groups.tolist()) | set(hapt.splits["test"].groups.tolist())
    assert not train_subjects & held
    assert train_subjects | held == set(range(1, 31))
    assert len(train_subjects) == 21  # 70% of 30
    # calib and test are a random split of the same held-out subjects
    assert set(hapt.splits["calib"].groups.tolist()) == set(hapt.splits["test"].groups.tolist())


def test_hapt_normalization(hapt):
    x = hapt.splits["train"].x
    np.testing.assert_allclose(x.mean(axis=(0, 2)), 0, atol=1e-3)
    np.testing.assert_allclose(x.std(axis=(0, 2)), 1, atol=1e-3)
    assert hapt.normalization["channels"] == CHANNELS
    # total_acc in g has a mean magnitude near 1 g (gravity); body_acc is centred on 0
    mean = hapt.normalization["mean"]
    assert 0.8 < np.linalg.norm(mean[6:9]) < 1.2
    assert np.abs(mean[0:3]).max() < 0.05


def test_gravity_separation_on_a_synthetic_signal():
    # 1 g on z plus a 2 Hz body motion: body_acc recovers the motion, total_acc is the input.
    t = np.arange(2000) / 50.0
    motion = 0.3 * np.sin(2 * np.pi * 2.0 * t)
    acc = np.stack([motion, np.zeros_like(t), np.ones_like(t)])
    gyro = np.stack([np.cos(t)] * 3)
    out = ucihar_channels(acc, gyro, cutoff_hz=0.3)
    assert out.shape == (9, 2000)
    mid = slice(300, 1700)  # away from the filter's edges
    np.testing.assert_allclose(out[0, mid], motion[mid], atol=0.02)
    np.testing.assert_allclose(out[2, mid], 0, atol=0.02)
    np.testing.assert_allclose(out[3:6], gyro, atol=1e-6)
    np.testing.assert_allclose(out[6:9], acc, atol=1e-6)


def test_sliding_windows_keep_single_label_basic_activities():
    labels = np.array([1] * 200 + [2] * 200 + [7] * 200 + [-1] * 100 + [6] * 300)
    starts, act = sliding_windows(labels, window=128, step=64)
    # brute force reference
    ref = [(s, labels[s] - 1) for s in range(0, len(labels) - 127, 64)
           if len(set(labels[s:s + 128])) == 1 and 1 <= labels[s] <= 6]
    assert list(zip(starts.tolist(), act.tolist())) == ref
    assert len(ref) > 0


def _write_cifar(root, n_per_batch=20, n_test=12):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else n_per_batch
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = (np.arange(n) % 10).tolist()
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"{i}.png".encode() for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        written[name] = (data, labels)
    return written


def test_cifar10_official_format(tmp_path):
    written = _write_cifar(tmp_path)
    ds = load_dataset("cifar10", seed=0, root=str(tmp_path), n_calib=10)
    _check_splits(ds, (3, 32, 32), 10, every_class_in_every_split=False)
    assert [len(ds.splits[k].label) for k in ("train", "calib", "test")] == [90, 10, 12]
    # test images in file order; pixel layout: 1024 red, 1024 green, 1024 blue, each row-major
    data, labels = written["test_batch"]
    np.testing.assert_array_equal(ds.splits["test"].label, labels)
    np.testing.assert_allclose(ds.splits["test"].x[3, 1, 2, 5], data[3, 1024 + 2 * 32 + 5] / 127.5 - 1, atol=1e-6)
    # train + calib is exactly the 100 official train images
    train_rows = {r.tobytes() for name, (d, _) in written.items() if name != "test_batch" for r in d}
    got = np.concatenate([ds.splits["train"].x, ds.splits["calib"].x])
    got_rows = {np.round((g + 1) * 127.5).astype(np.uint8).reshape(-1).tobytes() for g in got}
    assert got_rows == train_rows


def test_cifar10_missing_names_path_and_key(tmp_path):
    with pytest.raises(DataMissingError, match=r"cifar-10-batches-py.*cifar10\.data\.root"):
        load_dataset("cifar10", seed=0, root=str(tmp_path / "nowhere"))


def _write_har(root, n_train=24, n_test=18, length=128):
    rng = np.random.default_rng(1)
    for split, n, subjects in (("train", n_train, [1, 3, 5]), ("test", n_test, [2, 4])):
        sig = root / split / "Inertial Signals"
        sig.mkdir(parents=True)
        for c, name in enumerate(CHANNELS):
            np.savetxt(sig / f"{name}_{split}.txt", 10.0 * c + rng.normal(size=(n, length)), fmt="%.6e")
        np.savetxt(root / split / f"y_{split}.txt", np.arange(n) % 6 + 1, fmt="%d")
        np.savetxt(root / split / f"subject_{split}.txt", np.repeat(subjects, -(-n // len(subjects)))[:n], fmt="%d")


@pytest.mark.parametrize("file_length", [128, 120, 140])
def test_har_official_format(tmp_path, file_length):
    _write_har(tmp_path, length=file_length)
    ds = load_dataset("har", seed=0, root=str(tmp_path), length=128)
    _check_splits(ds, (9, 128), 6, every_class_in_every_split=False)
    assert len(ds.splits["train"].label) == 24 and len(ds.splits["calib"].label) + len(ds.splits["test"].label) == 18
    np.testing.assert_array_equal(ds.splits["train"].label, np.arange(24) % 6)  # 1..6 -> 0..5, file order
    # channels in UCI HAR order: the file of channel c carries offset 10 c
    np.testing.assert_allclose(ds.normalization["mean"], 10.0 * np.arange(9) * min(file_length, 128) / 128, atol=0.2)
    assert set(ds.splits["calib"].groups.tolist()) | set(ds.splits["test"].groups.tolist()) <= {2, 4}
    if file_length >= 128:
        np.testing.assert_allclose(ds.splits["train"].x.mean(axis=(0, 2)), 0, atol=1e-4)


def test_har_missing_names_path(tmp_path):
    with pytest.raises(DataMissingError, match=r"body_acc_x_train\.txt.*har\.data\.root"):
        load_dataset("har", seed=0, root=str(tmp_path))


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="shared MNIST files absent")
def test_mnist_from_shared_root():
    ds = load_dataset("mnist", seed=0, root=str(SHARED_DATA), n_calib=5000)
    _check_splits(ds, (1, 28, 28), 10)
    assert [len(ds.splits[k].label) for k in ("train", "calib", "test")] == [55000, 5000, 10000]
    assert ds.splits["train"].x.min() == -1.0 and ds.splits["train"].x.max() == 1.0


def test_mnist_missing_names_key(tmp_path):
    with pytest.raises(DataMissingError, match=r"mnist\.data\.root"):
        load_dataset("mnist", seed=0, root=str(tmp_path))


def test_unknown_dataset_and_option():
    with pytest.raises(KeyError, match="unknown dataset 'foo'"):
        load_dataset("foo", seed=0)
    with pytest.raises(TypeError, match=r"digits\.data.*bogus"):
        load_dataset("digits", seed=0, bogus=1)


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError):
        one_hot(np.array([3]), 3)


def test_prepare_writes_h5_with_stats_and_provenance(tmp_path):
    outputs = {s: tmp_path / f"{s}.h5" for s in ("train", "calib", "test")}
    ds = prepare("digits", seed=0, options={"calib_fraction": 0.2, "test_fraction": 0.2}, outputs=outputs)
    split, attrs = read_split(outputs["calib"])
    np.testing.assert_array_equal(split.x, ds.splits["calib"].x)
    assert attrs["dataset"] == "digits" and attrs["split"] == "calib" and attrs["n_classes"] == 10
    assert attrs["norm_scale"] == 8.0 and attrs["provenance_seed"] == 0
    assert attrs["class_counts"] == np.bincount(split.label, minlength=10).tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib.h5", "test.h5", "train.h5"]


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp, h5py.File(tmp, "w") as f:
            f["x"] = np.zeros(3)
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_value_grids_are_the_values_the_data_holds_and_snap_to_the_nearest():
    """digits' grid is exactly the set of values its split holds (17 grey levels, float32 bit for bit); snapping
    is idempotent on the grid and picks the nearest level (brute force), clipping outside [-1, 1]."""
    from dualspace.data import REGISTRY, load_dataset

    grid = REGISTRY["digits"].grid
    ds = load_dataset("digits", seed=0)
    seen = np.unique(np.concatenate([s.x.ravel() for s in ds.splits.values()]))
    np.testing.assert_array_equal(grid.levels(), seen)
    assert grid.levels().dtype == np.float32 and len(grid.levels()) == 17
    np.testing.assert_array_equal(grid.snap(seen), seen)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.3, 1.3, (500, 1, 2, 2)).astype(np.float32)
    snapped = grid.snap(x)
    levels = grid.levels().astype(np.float64)
    nearest = levels[np.abs(np.clip(x, -1, 1)[..., None] - levels).argmin(-1)]
    np.testing.assert_array_equal(snapped, nearest.astype(np.float32))
    assert snapped.shape == x.shape and snapped.dtype == np.float32
    eight_bit = REGISTRY["mnist"].grid  # pixel / 127.5 - 1 for pixel 0..255
    np.testing.assert_array_equal(eight_bit.levels(), (np.arange(256, dtype=np.float32) / 127.5 - 1).astype(np.float32))
    assert REGISTRY["cifar10"].grid == eight_bit and REGISTRY["hapt"].grid is None and REGISTRY["har"].grid is None

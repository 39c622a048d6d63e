"""Image datasets: scikit-learn digits (embedded), CIFAR-10 and MNIST (from a local root)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import safe_pickle
from .base import FRACTION, SIZE, DataMissingError, Dataset, Split, random_partition, to_unit_range

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST_FILE = "test_batch"


def _carve_calib(x: np.ndarray, y: np.ndarray, n_calib: int, rng: np.random.Generator) -> tuple[Split, Split]:
    """Draw n_calib examples at random from an official train split; the rest stays train."""
    if not 0 < n_calib < len(y):
        raise ValueError(f"n_calib={n_calib} must lie in (0, {len(y)}) for this train split")
    calib, train = random_partition(len(y), [n_calib], rng)
    return Split(x[train], y[train]), Split(x[calib], y[calib])


DIGITS_OPTIONS = {"calib_fraction": FRACTION, "test_fraction": FRACTION}
# the official train split's root folder, whether torchvision may download, calibration examples carved from train
ROOT_OPTIONS = {"root": {"type": "string"}, "download": {"type": "boolean"}, "n_calib": SIZE}


def check_digits(options: dict) -> list[str]:
    """Cross-key problems of `digits.data` that the schema cannot express."""
    if options.get("calib_fraction", 0.2) + options.get("test_fraction", 0.2) >= 1:
        return ["config keys digits.data.calib_fraction + digits.data.test_fraction must sum to < 1 "
                "(the rest is the train split)"]
    return []


def load_digits(seed: int, calib_fraction: float = 0.2, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images), (B,1,8,8) in [-1,1], random train/calib/test split."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = to_unit_range(bunch.images[:, None], 16.0)  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    n = len(y)
    rng = np.random.default_rng(seed)
    calib, test, train = random_partition(n, [round(n * calib_fraction), round(n * test_fraction)], rng)
    return Dataset(
        name="digits",
        kind="image",
        n_classes=10,
        class_names=[str(i) for i in range(10)],
        splits={"train": Split(x[train], y[train]), "calib": Split(x[calib], y[calib]), "test": Split(x[test], y[test])},
        normalization={"type": "affine", "scale": 8.0, "offset": 1.0, "note": "x = pixel / 8 - 1, pixel in 0..16"},
        provenance={"source": "sklearn.datasets.load_digits", "seed": seed},
    )


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> (N,3,32,32) uint8 and (N,) labels, via the restricted unpickler."""
    batch = safe_pickle.load(path)
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: not a CIFAR-10 batch (expected a dict)")
    get = lambda k: batch.get(k.encode(), batch.get(k))  # noqa: E731  (bytes keys in the official files)
    data, labels = get("data"), get("labels")
    if data is None or labels is None:
        raise ValueError(f"{path}: CIFAR-10 batch without 'data'/'labels'")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: data has shape {data.shape}, expected (N, 3072)")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def load_cifar10(seed: int, root: str, n_calib: int = 5000, download: bool = False) -> Dataset:
    """CIFAR-10 from `root`/cifar-10-batches-py (torchvision's layout): 45k/5k/10k, (B,3,32,32) in [-1,1]."""
    folder = Path(root) / "cifar-10-batches-py"
    if not folder.is_dir() and download:
        from torchvision.datasets import CIFAR10
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
    missing = [f for f in [*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE] if not (folder / f).is_file()]
    if missing:
        raise DataMissingError(
            f"CIFAR-10 files {missing} not found under {folder}. Download 'cifar-10-python.tar.gz' from "
            "https://www.cs.toronto.edu/~kriz/cifar.html and extract it into config key "
            "'cifar10.data.root' (or set 'cifar10.data.download: true')."
        )
    parts = [_read_cifar_batch(folder / f) for f in CIFAR10_TRAIN_FILES]
    x_tr = to_unit_range(np.concatenate([p[0] for p in parts]), 255.0)
    y_tr = np.concatenate([p[1] for p in parts])
    x_te, y_te = _read_cifar_batch(folder / CIFAR10_TEST_FILE)
    train, calib = _carve_calib(x_tr, y_tr, n_calib, np.random.default_rng(seed))
    return Dataset(
        name="cifar10",
        kind="image",
        n_classes=10,
        class_names=CIFAR10_CLASSES,
        splits={"train": train, "calib": calib, "test": Split(to_unit_range(x_te, 255.0), y_te)},
        normalization={"type": "affine", "scale": 127.5, "offset": 1.0, "note": "x = pixel / 127.5 - 1"},
        provenance={"source": str(folder), "seed": seed},
    )


def load_mnist(seed: int, root: str, n_calib: int = 5000, download: bool = False) -> Dataset:
    """MNIST via torchvision from `root` (torchvision's MNIST/raw layout), (B,1,28,28) in [-1,1]."""
    from torchvision.datasets import MNIST

    try:
        train_set = MNIST(root, train=True, download=download)
        test_set = MNIST(root, train=False, download=download)
    except RuntimeError as e:
        raise DataMissingError(
            f"MNIST not found under {Path(root) / 'MNIST' / 'raw'} ({e}). Put the four idx files there "
            "(config key 'mnist.data.root') or set 'mnist.data.download: true'."
        ) from None
    x_tr = to_unit_range(train_set.data.numpy()[:, None], 255.0)
    y_tr = train_set.targets.numpy().astype(np.int64)
    x_te = to_unit_range(test_set.data.numpy()[:, None], 255.0)
    y_te = test_set.targets.numpy().astype(np.int64)
    train, calib = _carve_calib(x_tr, y_tr, n_calib, np.random.default_rng(seed))
    return Dataset(
        name="mnist",
        kind="image",
        n_classes=10,
        class_names=[str(i) for i in range(10)],
        splits={"train": train, "calib": calib, "test": Split(x_te, y_te)},
        normalization={"type": "affine", "scale": 127.5, "offset": 1.0, "note": "x = pixel / 127.5 - 1"},
        provenance={"source": str(Path(root) / "MNIST" / "raw"), "seed": seed},
    )

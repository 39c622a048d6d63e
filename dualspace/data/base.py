"""The dataset contract every loader returns, and the split / normalization helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS = ("train", "calib", "test")


class DataMissingError(FileNotFoundError):
    """A raw data file is not where the config says; the message says how to obtain it."""


@dataclass
class Split:
    """One split: inputs in model space and integer labels."""

    x: np.ndarray  # (N, C, H, W) images or (N, C, T) series, float32
    label: np.ndarray  # (N,) int64 in [0, n_classes)
    groups: np.ndarray | None = None  # (N,) e.g. subject ids for HAR-like data


@dataclass
class Dataset:
    """A dataset in the contract of DESIGN.md: three splits plus what it takes to undo normalization."""

    name: str
    kind: str  # "image" or "series"
    n_classes: int
    class_names: list[str]
    splits: dict[str, Split]
    normalization: dict[str, Any]  # e.g. {"type": "affine", "scale": .., "offset": ..} or per-channel mean/std
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for name, s in self.splits.items():
            if s.x.dtype != np.float32 or s.label.dtype != np.int64 or len(s.x) != len(s.label):
                raise TypeError(f"{self.name}/{name}: x must be float32 and label int64 of equal length")
            if len(s.label) and (s.label.min() < 0 or s.label.max() >= self.n_classes):
                raise ValueError(f"{self.name}/{name}: labels outside [0, {self.n_classes})")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. (1, 8, 8) or (9, 128)."""
        return tuple(self.splits["train"].x.shape[1:])


def one_hot(label: np.ndarray, n_classes: int) -> np.ndarray:
    """(N,) int labels -> (N, n_classes) float32 one-hot, the form labels take at the model boundary."""
    label = np.asarray(label)
    if label.size and (label.min() < 0 or label.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}); got range [{label.min()}, {label.max()}]")
    out = np.zeros((len(label), n_classes), dtype=np.float32)
    out[np.arange(len(label)), label] = 1.0
    return out


def random_partition(n: int, sizes: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Split range(n) at random into consecutive parts of the given sizes (the last takes the rest)."""
    if sum(sizes) > n:
        raise ValueError(f"requested parts {sizes} exceed the {n} available examples")
    perm = rng.permutation(n)
    bounds = np.cumsum([0, *sizes, n - sum(sizes)])
    return [np.sort(perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def exchangeable_calib_test(n: int, calib_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split n held-out examples uniformly at random into calib and test, so the two are exchangeable."""
    n_calib = int(round(n * calib_fraction))
    calib, test = random_partition(n, [n_calib], rng)
    return calib, test


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over every axis but the channel axis (axis 1)."""
    axes = tuple(i for i in range(x.ndim) if i != 1)
    mean = x.mean(axis=axes, dtype=np.float64)
    std = x.std(axis=axes, dtype=np.float64)
    return mean.astype(np.float32), np.maximum(std, 1e-8).astype(np.float32)


def zscore(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std per channel (axis 1), float32."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return ((x - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)

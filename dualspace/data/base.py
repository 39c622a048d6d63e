"""The dataset contract every loader returns, and the split / normalization helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS = ("train", "calib", "test")

# JSON-schema pieces for the options of a loader (config section `<ds>.data`), beside each loader.
FRACTION = {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
SIZE = {"type": "integer", "minimum": 1}


def to_unit_range(x: np.ndarray, max_value: float) -> np.ndarray:
    """Raw levels [0, max_value] -> [-1, 1] in float32 (how image loaders store pixels)."""
    return (x.astype(np.float32) / (max_value / 2.0) - 1.0).astype(np.float32)


@dataclass(frozen=True)
class ValueGrid:
    """The only values a dataset's x holds: raw integer levels 0..max_value mapped to [-1, 1] by `to_unit_range`
    (digits: 17 grey levels, 8-bit images: 256). Drafts are snapped onto it (`sampler.quantize`), so a classifier
    or a metric never splits on values the data could not hold."""

    max_value: int  # number of levels - 1

    def levels(self) -> np.ndarray:
        """(max_value + 1,) float32: every value on the grid, bit-identical to what the loader stores."""
        return to_unit_range(np.arange(self.max_value + 1), self.max_value)

    def snap(self, x: np.ndarray) -> np.ndarray:
        """x in model space (any shape) -> the nearest grid value (clipped to [-1, 1]), float32."""
        k = np.clip(np.rint((np.asarray(x, np.float64) + 1.0) * (self.max_value / 2.0)), 0, self.max_value)
        return to_unit_range(k, self.max_value)


class DataMissingError(FileNotFoundError):
    """A raw data file is not where the config says; the message says how to obtain it."""


@dataclass
class Split:
    """One split: inputs in model space, integer labels, and named per-example extras.

    `extras` carries what a study needs beside x (a mask, per-step timing `dt`, static parameters,
    peak targets): each array has one row per example, and travels through `write_split` /
    `read_split` with its shape checked.
    """

    x: np.ndarray  # (N, C, H, W) images or (N, C, T) series, float32
    label: np.ndarray  # (N,) int64 in [0, n_classes)
    groups: np.ndarray | None = None  # (N,) e.g. subject ids for HAR-like data (stored as extra "group")
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N, ...) array

    def __post_init__(self):
        for name, arr in self.extras.items():
            if name in RESERVED:
                raise ValueError(f"split extra '{name}' clashes with a reserved name {sorted(RESERVED)}")
            if len(arr) != len(self.label):
                raise ValueError(f"split extra '{name}' has {len(arr)} rows for {len(self.label)} examples")

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the split by its name in the split file."""
        out = {"x": self.x, "label": self.label}
        if self.groups is not None:
            out["group"] = self.groups
        return {**out, **self.extras}


RESERVED = {"x", "label", "group"}  # array names of every split file; extras take other names


@dataclass
class Dataset:
    """A dataset in the contract of DESIGN.md: three splits plus what it takes to undo normalization."""

    name: str
    kind: str  # "image" or "series" (picks phi's network and the metrics' extras)
    n_classes: int
    class_names: list[str]
    splits: dict[str, Split]
    normalization: dict[str, Any]  # e.g. {"type": "affine", "scale": .., "offset": ..} or per-channel mean/std
    provenance: dict[str, Any] = field(default_factory=dict)
    channel_names: list[str] | None = None  # series: one name per channel (axis 1), for figures

    def __post_init__(self):
        for name, s in self.splits.items():
            if s.x.dtype != np.float32 or s.label.dtype != np.int64 or len(s.x) != len(s.label):
                raise TypeError(f"{self.name}/{name}: x must be float32 and label int64 of equal length")
            if len(s.label) and (s.label.min() < 0 or s.label.max() >= self.n_classes):
                raise ValueError(f"{self.name}/{name}: labels outside [0, {self.n_classes})")
        if self.channel_names is not None and len(self.channel_names) != self.shape[0]:
            raise ValueError(f"{self.name}: {len(self.channel_names)} channel names for {self.shape[0]} channels")

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

"""Dataset registry: `load_dataset(name, seed, **options)` and `prepare(...)`, which writes the split files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .. import __version__
from ..io import read_h5, read_h5_attrs, write_h5
from .base import SPLITS, DataMissingError, Dataset, Split, one_hot
from .images import load_cifar10, load_digits, load_mnist
from .series import load_har, load_hapt

__all__ = ["REGISTRY", "SPLITS", "DataMissingError", "Dataset", "Split", "load_dataset", "one_hot",
           "prepare", "read_split"]

# name -> loader(seed, **options); the options are the config section `<name>.data`.
REGISTRY: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "hapt": load_hapt,
    "cifar10": load_cifar10,
    "har": load_har,
    "mnist": load_mnist,
}


def load_dataset(name: str, seed: int, **options: Any) -> Dataset:
    """Build dataset `name` with its config options; unknown names and options fail with the valid ones listed."""
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset '{name}'; known: {sorted(REGISTRY)}")
    try:
        return REGISTRY[name](seed=seed, **options)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise TypeError(f"config section '{name}.data': {e}") from None
        raise


def prepare(name: str, seed: int, options: Mapping[str, Any], outputs: Mapping[str, str | Path]) -> Dataset:
    """Load dataset `name` and write one HDF5 file per split (x, label[, group]) with stats and provenance."""
    ds = load_dataset(name, seed, **dict(options))
    for split, path in outputs.items():
        s = ds.splits[split]
        arrays = {"x": s.x, "label": s.label}
        if s.groups is not None:
            arrays["group"] = s.groups
        attrs = {
            "dataset": ds.name, "split": split, "kind": ds.kind, "n_classes": ds.n_classes,
            "class_names": ds.class_names, "shape": list(ds.shape), "n": len(s.label),
            "class_counts": np.bincount(s.label, minlength=ds.n_classes).tolist(),
            "dualspace_version": __version__, "options": dict(options),
            **{f"provenance_{k}": v for k, v in ds.provenance.items()},
        }
        for key, value in ds.normalization.items():
            attrs[f"norm_{key}"] = value
        write_h5(path, arrays, attrs)
    return ds


def read_split(path: str | Path) -> tuple[Split, dict[str, Any]]:
    """Read a split file written by `prepare`: the Split and its attributes."""
    arrays = read_h5(path)
    return Split(arrays["x"], arrays["label"], arrays.get("group")), read_h5_attrs(path)

"""Split files: one write/read pair for results/{ds}/data/{split}.h5, every read checked against the
attributes the file was written with, so a damaged or hand-edited split is named where it is read
(not three stages later, as a NaN loss or a "wrong" checkpoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from .. import __version__
from ..io import existing_file, read_h5_attrs, write_h5
from .base import RESERVED, Dataset, Split

__all__ = ["SplitFileError", "write_split", "read_split", "split_meta"]


class SplitFileError(ValueError):
    """A split file does not hold what its attributes say; the message names the file and the fix."""


def write_split(path: str | Path, ds: Dataset, split: str, options: dict[str, Any] | None = None) -> None:
    """Write split `split` of `ds` (x, label, group and extras) with the attributes `read_split` checks."""
    s = ds.splits[split]
    attrs = {
        "dataset": ds.name, "split": split, "kind": ds.kind, "n_classes": ds.n_classes,
        "class_names": ds.class_names, "shape": list(ds.shape), "n": len(s.label),
        "class_counts": np.bincount(s.label, minlength=ds.n_classes).tolist(),
        "dualspace_version": __version__, "options": dict(options or {}),
        **{f"provenance_{k}": v for k, v in ds.provenance.items()},
        **{f"norm_{k}": v for k, v in ds.normalization.items()},
    }
    if s.extras:  # name -> (per-example shape, dtype)
        attrs["extras"] = {k: [list(v.shape[1:]), str(v.dtype)] for k, v in s.extras.items()}
    if ds.channel_names is not None:
        attrs["channel_names"] = list(ds.channel_names)
    write_h5(path, s.arrays(), attrs)


def _problems(arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> list[str]:
    """What in a split file disagrees with its own attributes (empty when it is sound)."""
    for key in ("dataset", "split", "kind", "n_classes", "shape", "n"):
        if key not in attrs:
            return [f"attribute '{key}' is missing (not a split file written by prepare_data)"]
    x, label, n = arrays["x"], arrays["label"], int(attrs["n"])
    want = (n, *map(int, attrs["shape"]))
    out = []
    if x.shape != want:
        out.append(f"x has shape {x.shape}, but the file was written with {want}")
    if x.dtype != np.float32:
        out.append(f"x has dtype {x.dtype}, expected float32")
    if label.shape != (n,):
        out.append(f"label has shape {label.shape}, but the file was written with ({n},)")
    if label.dtype != np.int64:
        out.append(f"label has dtype {label.dtype}, expected int64")
    if out:
        return out
    bad = np.flatnonzero(~np.isfinite(x.reshape(n, -1)).all(axis=1))
    if len(bad):
        out.append(f"x holds NaN or inf in {len(bad)} example(s) (first at index {bad[0]})")
    k = int(attrs["n_classes"])
    outside = np.flatnonzero((label < 0) | (label >= k))
    if len(outside):
        out.append(f"label {label[outside[0]]} at index {outside[0]} lies outside [0, {k}) "
                   f"({len(outside)} such label(s))")
    elif "class_counts" in attrs and np.bincount(label, minlength=k).tolist() != list(attrs["class_counts"]):
        out.append("the labels' class counts differ from those the file was written with")
    declared = dict(attrs.get("extras", {}))
    if "group" in arrays:
        declared.setdefault("group", [[], str(arrays["group"].dtype)])
    for name, (shape, dtype) in declared.items():
        if name not in arrays:
            out.append(f"extra '{name}' is declared but missing")
            continue
        a = arrays[name]
        if a.shape != (n, *shape) or str(a.dtype) != dtype:
            out.append(f"extra '{name}' has shape {a.shape} {a.dtype}, but was written as {(n, *shape)} {dtype}")
        elif a.dtype.kind == "f" and not np.isfinite(a).all():
            out.append(f"extra '{name}' holds NaN or inf")
    undeclared = sorted(set(arrays) - RESERVED - set(declared))
    if undeclared:
        out.append(f"arrays {undeclared} are not declared in the file's 'extras' attribute")
    return out


def read_split(path: str | Path, dataset: str | None = None, split: str | None = None) -> tuple[Split, dict[str, Any]]:
    """Read a split file written by `write_split`: the Split and its attributes, after checking shapes,
    dtypes, finite values, label range, class counts and extras against the attributes (and, when given,
    that it belongs to `dataset` / `split`)."""
    path = existing_file(path, "split file")
    fix = f"delete it and rerun `snakemake {path}` (rule prepare_data rebuilds it)"
    try:
        with h5py.File(path, "r") as f:
            arrays = {name: f[name][()] for name in f.keys()}
        attrs = read_h5_attrs(path)
    except OSError as e:
        raise SplitFileError(f"split file {path} is not a readable HDF5 file ({e}); {fix}") from None
    missing = [name for name in ("x", "label") if name not in arrays]
    problems = [f"dataset(s) {missing} missing"] if missing else _problems(arrays, attrs)
    for key, want in (("dataset", dataset), ("split", split)):
        if not problems and want is not None and attrs.get(key) != want:
            problems.append(f"it holds {key} '{attrs.get(key)}', but '{want}' is expected here")
    if problems:
        raise SplitFileError(f"split file {path}: " + "; ".join(problems) + f". D{fix[1:]}")
    extras = {k: v for k, v in arrays.items() if k not in RESERVED}
    return Split(arrays["x"], arrays["label"], arrays.get("group"), extras), attrs


def split_meta(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """What a generator checkpoint records about its training data (checked when it is loaded)."""
    meta = {"dataset": attrs["dataset"], "class_names": list(attrs["class_names"]), "kind": attrs["kind"]}
    if "channel_names" in attrs:
        meta["channel_names"] = list(attrs["channel_names"])
    return meta

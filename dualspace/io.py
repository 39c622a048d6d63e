"""Files a person can open: atomic writes, HDF5 split files, small JSON attributes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any, Iterator, Mapping

import h5py
import numpy as np

__all__ = ["CheckpointError", "atomic_path", "check_trained_for", "load_checkpoint", "package_dir", "save_torch",
           "sha256_file", "existing_file", "write_csv", "write_json", "read_json",
           "write_h5", "read_h5", "read_h5_attrs"]


class CheckpointError(ValueError):
    """A checkpoint that is damaged, foreign, or trained for other data; the message names it and the fix."""


def package_dir(package: str, missing: str, error: type[Exception] = FileNotFoundError) -> Path:
    """Folder of an installed package, found without importing it (importing may run code on its data files);
    `error(missing)` when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise error(missing)
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    An interrupted or failing writer leaves no file at `path` (and removes its temp file),
    so a half-written artifact never looks finished to Snakemake or to a reader.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def existing_file(path: str | Path, what: str) -> Path:
    """`path` as a Path, or FileNotFoundError naming it (`what` it is) and the command that builds it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist; build it with `snakemake {path}`")
    return path


def write_json(obj: Any, path: str | Path) -> None:
    """`obj` as indented JSON with sorted keys (byte-stable), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))


def read_json(path: str | Path, what: str, kind: type = dict) -> Any:
    """A JSON artifact (written by `write_json`) whose top level is a `kind`; a missing, damaged or foreign file is
    an error naming it and the command that rebuilds it."""
    path = existing_file(path, what)
    try:
        obj = json.loads(path.read_text())
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{what} {path} is damaged or not JSON ({e}); "
                         f"delete it and rerun `snakemake {path}`") from None
    if not isinstance(obj, kind):
        raise ValueError(f"{what} {path} holds a JSON {type(obj).__name__} where a {kind.__name__} is expected; "
                         f"delete it and rerun `snakemake {path}`")
    return obj


def write_csv(df, path: str | Path, *, float_format: str | None = None, index: bool = False) -> None:
    """A pandas DataFrame as CSV (`df.to_csv` with these options), atomically; the parent folder is created."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=index, float_format=float_format)


def save_torch(obj: Any, path: str | Path) -> None:
    """`torch.save` to `path` atomically, byte-for-byte reproducible.

    torch.save names the zip archive inside the file after the file it writes to; saving to the
    temp file of `atomic_path` would put its random name in the bytes, so equal objects (two runs with
    the same seed, a local and a SLURM run) would give different files. Saving to memory first
    names the archive "archive" every time.
    """
    import torch

    buf = BytesIO()
    torch.save(obj, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getbuffer())


def load_checkpoint(path: str | Path, what: str, rebuild: str | None = None) -> Any:
    """`torch.load(path, weights_only=True)`; a missing or damaged file is an error naming it and the fix.

    torch's own message for a file it cannot read suggests turning weights_only off, which would
    run code from the file: that hint is never passed on.
    """
    import torch

    path = existing_file(path, what)
    rebuild = rebuild or f"delete it and rerun `snakemake {path}` to rebuild it"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (bad zip), EOFError, ...
        raise CheckpointError(f"{what} {path} is damaged or not a dualspace checkpoint ({type(e).__name__}); "
                              f"it was not loaded. {rebuild[0].upper() + rebuild[1:]}") from None


def check_trained_for(path: str | Path, what: str, found: Mapping[str, Any], expect: Mapping[str, Any]) -> None:
    """Refuse a checkpoint whose recorded training data (`found`: dataset, kind, shape, ...) differs from `expect`."""
    for key, want in expect.items():
        if want is None:
            continue
        want = list(want) if isinstance(want, (tuple, list)) else want
        got = found.get(key)
        got = list(got) if isinstance(got, (tuple, list)) else got
        if got != want:
            raise CheckpointError(f"{what} {path} was trained for {key}={got!r}, but {want!r} is expected here; "
                                  f"delete it and rerun `snakemake {path}` to retrain it")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _attr(value: Any) -> Any:
    # HDF5 attributes hold scalars, strings and arrays; anything else is stored as JSON text.
    if isinstance(value, (str, int, float, bool, np.integer, np.floating, np.ndarray)):
        return value
    return json.dumps(value)


def write_h5(
    path: str | Path,
    arrays: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any] | None = None,
    compression: str | None = "gzip",
) -> None:
    """Write `arrays` as datasets (chunked, compressed) and `attrs` as file attributes, atomically."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            chunks = (min(len(arr), 1024), *arr.shape[1:]) if arr.ndim and len(arr) else None
            f.create_dataset(name, data=arr, chunks=chunks, compression=compression if chunks else None)
        for key, value in (attrs or {}).items():
            f.attrs[key] = _attr(value)


def read_h5(path: str | Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Read datasets `names` (all when None) from an HDF5 file into memory."""
    path = existing_file(path, "HDF5 file")
    with h5py.File(path, "r") as f:
        names = list(f.keys()) if names is None else names
        missing = [n for n in names if n not in f]
        if missing:
            raise KeyError(f"{path} has no dataset(s) {missing}; it holds {sorted(f.keys())}")
        return {n: f[n][()] for n in names}


def read_h5_attrs(path: str | Path) -> dict[str, Any]:
    """File attributes of an HDF5 file, JSON text decoded back into Python objects."""
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        for key, value in f.attrs.items():
            if isinstance(value, str) and value[:1] in "[{":
                with contextlib.suppress(json.JSONDecodeError):
                    value = json.loads(value)
            out[key] = value
    return out

"""A restricted unpickler for legacy data files (HAPT pandas pickle, CIFAR-10 batches).

`pickle.load` runs whatever callable a file names. This reader admits only the globals
needed to rebuild numpy arrays and turns pandas containers into plain data, so a
file can at worst give wrong numbers, never run code. Any other global is refused
with `UnsafePickleError` before it is resolved.
"""

from __future__ import annotations

import codecs
import gzip
import pickle
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["UnsafePickleError", "PandasObject", "load", "frame_to_columns"]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle named a global outside the allow-list."""


class PandasObject:
    """Plain stand-in for a pickled pandas object: its class name and its raw state."""

    def __init__(self, cls_name: str):
        self.cls_name = cls_name
        self.state: Any = None

    def __setstate__(self, state):  # called by the BUILD opcode
        self.state = state

    def __repr__(self):
        return f"PandasObject({self.cls_name})"


class _PandasClass:
    """Marker for a pandas class named in the pickle; never the real class."""

    def __init__(self, name: str):
        self.name = name


# The pandas classes a DataFrame pickle may name; each becomes a PandasObject.
_PANDAS_CLASSES = {
    ("pandas.core.frame", "DataFrame"),
    ("pandas.core.series", "Series"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.internals", "BlockManager"),
    ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("pandas.core.indexes.numeric", "Int64Index"),
}


def _reconstructor(cls, base, state):
    # copyreg._reconstructor(cls, object, None): only pandas markers may be built.
    if not isinstance(cls, _PandasClass) or base is not object or state is not None:
        raise UnsafePickleError(f"copyreg._reconstructor called on {cls!r}; only pandas containers are allowed")
    return PandasObject(cls.name)


def _new_index(cls, d):
    # pandas.core.indexes.base._new_Index(cls, dict) -> plain dict with the index kind.
    if not isinstance(cls, _PandasClass) or not isinstance(d, dict):
        raise UnsafePickleError("pandas _new_Index with unexpected arguments")
    return {"index": cls.name, **d}


def _ndarray_reconstruct(subtype, shape, dtype):
    # numpy.core.multiarray._reconstruct: an empty ndarray that BUILD then fills.
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"ndarray subclass {subtype!r} is not allowed")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _frombuffer(buf, dtype, shape, order):
    # numpy._core.numeric._frombuffer (pickle protocol 5 arrays).
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy()


def _encode(obj, encoding="utf-8"):
    # _codecs.encode: protocol-2 pickles store bytes as latin-1 text.
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(obj, encoding)


_ALLOWED = {
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("numpy.core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _encode,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    ("__builtin__", "slice"): slice,
    ("builtins", "slice"): slice,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose `find_class` admits only the allow-list above."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if (module, name) in _PANDAS_CLASSES:
            return _PandasClass(name)
        raise UnsafePickleError(
            f"refusing to load global '{module}.{name}': only numpy arrays and pandas "
            "containers are admitted by dualspace.safe_pickle"
        )


def load(path: str | Path) -> Any:
    """Read a (optionally gzip'd) pickle at `path` with the restricted unpickler."""
    path = Path(path)
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, encoding="latin1").load()
        except UnsafePickleError as e:
            raise UnsafePickleError(f"{path}: {e}") from None


def frame_to_columns(frame: PandasObject) -> dict[str, np.ndarray]:
    """Turn a pickled pandas DataFrame (pandas >= 0.14 BlockManager state) into {column: 1-D array}."""
    if not isinstance(frame, PandasObject) or frame.cls_name != "DataFrame":
        raise ValueError(f"expected a pickled DataFrame, got {frame!r}")
    manager = frame.state["_data"] if isinstance(frame.state, dict) else None
    if not isinstance(manager, PandasObject) or not isinstance(manager.state, tuple):
        raise ValueError("unsupported DataFrame pickle layout (no BlockManager state)")
    extra = manager.state[3] if len(manager.state) > 3 else None
    if not isinstance(extra, dict) or "0.14.1" not in extra:
        raise ValueError("unsupported BlockManager pickle: expected the pandas >= 0.14.1 layout")
    state = extra["0.14.1"]
    columns = [str(c) for c in state["axes"][0]["data"]]
    out: dict[str, np.ndarray] = {}
    for block in state["blocks"]:
        values, locs = block["values"], block["mgr_locs"]
        idx = range(len(columns))[locs] if isinstance(locs, slice) else list(np.asarray(locs))
        for row, col in enumerate(idx):
            out[columns[col]] = np.asarray(values[row])
    return {c: out[c] for c in columns}

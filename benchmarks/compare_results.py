"""Are two results trees the same? Every artifact compared: csv / json / png / txt byte for byte, every HDF5 array
with np.array_equal (NaN equal to NaN), every tensor of a .pt checkpoint with torch.equal (strings and metadata
inside checkpoints are not compared); logs and benchmark timings are left out.

    .venv/bin/python benchmarks/compare_results.py /tmp/before/results /tmp/after/results

Prints each file that differs or is missing and a one-line count; exits 1 when anything differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np


def _same_h5(a: Path, b: Path) -> bool:
    with h5py.File(a) as x, h5py.File(b) as y:
        names: list[str] = []
        x.visit(lambda n: names.append(n) if isinstance(x[n], h5py.Dataset) else None)
        return all(n in y and np.array_equal(x[n][()], y[n][()], equal_nan=x[n].dtype.kind == "f") for n in names)


def _same_tensors(u, v) -> bool:
    import torch

    if isinstance(u, torch.Tensor):
        return isinstance(v, torch.Tensor) and torch.equal(u, v)
    if isinstance(u, dict):
        return isinstance(v, dict) and set(u) == set(v) and all(_same_tensors(u[k], v[k]) for k in u)
    if isinstance(u, (list, tuple)):
        return isinstance(v, (list, tuple)) and len(u) == len(v) and all(map(_same_tensors, u, v))
    return True


def same(a: Path, b: Path) -> bool:
    if a.suffix == ".h5":
        return _same_h5(a, b)
    if a.suffix == ".pt":
        import torch

        return _same_tensors(torch.load(a, weights_only=True), torch.load(b, weights_only=True))
    return a.read_bytes() == b.read_bytes()


def main() -> int:
    a, b = Path(sys.argv[1]), Path(sys.argv[2])
    counts = {"same": 0, "differ": 0, "missing": 0}
    for f in sorted(p for p in a.rglob("*") if p.is_file()):
        rel = f.relative_to(a)
        if {"logs", "benchmarks"} & set(rel.parts) or f.suffix in (".log", ".tsv"):
            continue
        g = b / rel
        if not g.is_file():
            counts["missing"] += 1
            print("missing", rel)
        elif same(f, g):
            counts["same"] += 1
        else:
            counts["differ"] += 1
            print("differs", rel)
    print(", ".join(f"{k} {v}" for k, v in counts.items()))
    return 1 if counts["differ"] or counts["missing"] else 0


if __name__ == "__main__":
    sys.exit(main())

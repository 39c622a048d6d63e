"""Do two finished runs hold the same numbers? Tau tables byte for byte, metrics.csv column by column.

Used to check that a refactoring left the outputs of `make run` unchanged at the same seed: columns only
one run has are listed, not compared.

    .venv/bin/python benchmarks/compare_runs.py /path/to/before/results results digits hapt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("datasets", nargs="+")
    args = ap.parse_args()
    same = True
    for ds in args.datasets:
        a, b = args.before / ds, args.after / ds
        taus = sorted(p.name for p in (a / "conformal").glob("tau_alpha*.csv"))
        differ = [t for t in taus if (a / "conformal" / t).read_bytes() != (b / "conformal" / t).read_bytes()]
        print(f"{ds}: {len(taus)} tau tables, {len(taus) - len(differ)} identical" + (f", differ: {differ}" if differ else ""))
        ma, mb = pd.read_csv(a / "metrics.csv", dtype={"class": str}), pd.read_csv(b / "metrics.csv", dtype={"class": str})
        common = [c for c in ma.columns if c in mb.columns]
        only = sorted(set(ma.columns) ^ set(mb.columns))
        unequal = []
        for col in common:
            x, y = ma[col].to_numpy(), mb[col].to_numpy()
            if x.dtype.kind == "f" and y.dtype.kind == "f":
                ok = np.array_equal(x, y, equal_nan=True)
            else:
                ok = ma[col].equals(mb[col])  # equal values, NaN in the same places
            if not ok:
                unequal.append(col)
        print(f"{ds}: metrics.csv {len(ma)} x {len(common)} common columns, equal: {len(common) - len(unequal)}"
              + (f", unequal: {unequal}" if unequal else "") + (f"; in one run only: {only}" if only else ""))
        same &= not differ and not unequal and len(ma) == len(mb)
    print("SAME NUMBERS" if same else "DIFFERENT")


if __name__ == "__main__":
    main()

"""Which generator change closes the realism gap of a dataset's drafts, per CPU-second? (issue 28, part 3)

Each variant is the dataset's configured diffusion generator with a few settings changed (schedule shift, the
window mean modelled apart, padding, steps). Every variant trains with the config's seed on the split files of a
finished run, draws K drafts per class with the configured sampler, and is scored per class by:
- realism (`dualspace.realism`): C2ST of drafts vs real test beside the floor (real train vs real test), both
  classifiers, and the gap;
- fidelity (`dualspace.fidelity`): std ratio, log10 low / high band power ratio, edge / interior ratio (and the
  `train` reference row of the same table);
- the phi space of the run (results/{ds}/phi/phi.pt): FD, MMD and PRDC of drafts vs real test;
- wall time of training and sampling on this machine.

    .venv/bin/python benchmarks/realism_generator.py hapt --results results --out /tmp/realism_gen \\
        --variants base shift25 apart --steps 800 1600

Trained models are cached in --out/{ds}/models/{variant}_s{steps} (delete one to retrain it). Writes every row to
--out/realism_generator.csv and prints a per-variant summary.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from threadpoolctl import threadpool_limits

from dualspace import distances
from dualspace.artifacts import DraftSamples
from dualspace.config import deep_merge
from dualspace.data import read_split
from dualspace.features import Phi
from dualspace.fidelity import FidelityConfig, fidelity_table
from dualspace.io import write_csv
from dualspace.realism import RealismConfig, realism_table
from dualspace.stages.generator import train_generator
from dualspace.stages.regions import sample_drafts

# name -> generator overrides (over `<ds>.generator.diffusion`)
VARIANTS = {
    "base": {},
    "shift50": {"schedule_shift": 0.5},
    "shift25": {"schedule_shift": 0.25},
    "shift10": {"schedule_shift": 0.1},
    "apart": {"slow_apart": 1},  # the window mean apart
    "slow4": {"slow_apart": 4},
    "slow8": {"slow_apart": 8},
    "slow16": {"slow_apart": 16},  # the whole low band (< 1/8 of Nyquist) for T = 128
    "slow8_shift50": {"slow_apart": 8, "schedule_shift": 0.5},
    "slow16_fast64": {"slow_apart": 16, "fast_apart": 64},  # the top half of the spectrum as coloured noise
    "apart_fast64": {"slow_apart": 1, "fast_apart": 64},
    "fast64": {"fast_apart": 64},
    "slow16_fast64_scale": {"slow_apart": 16, "fast_apart": 64, "fast_scale": True},  # still and fidgety windows
    "apart_fast64_scale": {"slow_apart": 1, "fast_apart": 64, "fast_scale": True},
    "slow16_fast64_scales": {"slow_apart": 16, "fast_apart": 64, "fast_scale": True, "rest_scale": True},
    "apart_reflect": {"slow_apart": 1, "net": {"padding": "reflect"}},
}


def phi_metrics(phi: Phi, test_x, test_label, drafts_x, drafts_label, k: int = 5) -> list[dict]:
    """Per class and pooled: FD, MMD and PRDC of drafts vs real test in the run's y = PCA(phi(x))."""
    _, ty = phi(test_x)
    _, dy = phi(drafts_x)
    rows = []
    for c in [*np.unique(test_label), "all"]:
        t = ty if c == "all" else ty[test_label == c]
        d = dy if c == "all" else dy[drafts_label == c]
        rows.append({"class": str(c), "fd_phi": distances.frechet_distance(t, d),
                     "mmd_phi": distances.mmd2_unbiased(t, d),
                     **{f"prdc_{key}": v for key, v in distances.prdc(t, d, k=k).items()}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="/tmp/realism_gen")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--variants", nargs="+", default=["base", "shift25", "apart"])
    ap.add_argument("--steps", nargs="+", type=int, default=None, help="training steps (default: the config's)")
    ap.add_argument("--K", type=int, default=256, help="drafts per class")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(Path(args.config).read_text())
    ds, section = args.dataset, config[args.dataset]
    gen_cfg = {"family": "diffusion", **section["generator"]["diffusion"]}
    data, out = Path(args.results) / ds / "data", Path(args.out)
    test, attrs = read_split(data / "test.h5", dataset=ds, split="test")
    train, _ = read_split(data / "train.h5", dataset=ds, split="train")
    kind, names = attrs["kind"], list(attrs["class_names"])
    phi = Phi.load(Path(args.results) / ds / "phi" / "phi.pt", dataset=ds)
    fcfg, rcfg = FidelityConfig.from_dict(config["fidelity"]), RealismConfig.from_dict(config["realism"])
    csv = out / "realism_generator.csv"
    rows = [pd.read_csv(csv)] if csv.is_file() else []
    for name in args.variants:
        for steps in args.steps or [gen_cfg["train"]["steps"]]:
            settings = deep_merge(gen_cfg, {**VARIANTS[name], "train": {"steps": steps}})
            folder = out / ds / "models" / f"{name}_s{steps}"
            folder.mkdir(parents=True, exist_ok=True)
            model, t_train = folder / "model.pt", float("nan")
            if not model.is_file():
                t0 = time.perf_counter()
                train_generator(data / "train.h5", model, settings, seed=config["seed"], dataset=ds, device="cpu")
                t_train = time.perf_counter() - t0
                (folder / "train_s.txt").write_text(f"{t_train:.1f}\n")
            else:
                t_train = float((folder / "train_s.txt").read_text()) if (folder / "train_s.txt").is_file() else t_train
            t0 = time.perf_counter()
            sample_drafts(model, folder / "samples.h5", args.K, section["sampler"]["diffusion"], seed=config["seed"],
                          dataset=ds, device="cpu")
            t_sample = time.perf_counter() - t0
            drafts = DraftSamples.read(folder / "samples.h5", dataset=ds)
            t0 = time.perf_counter()
            with threadpool_limits(args.threads):
                real = pd.DataFrame(realism_table(drafts.x, drafts.label, test.x, test.label, train.x, train.label,
                                                  kind, names, config["seed"], rcfg))
            t_realism = time.perf_counter() - t0
            wide = real.pivot(index="class", columns="classifier", values=["c2st", "floor", "realism_gap"])
            wide.columns = [f"{v}_{clf}" for v, clf in wide.columns]
            wide.index = wide.index.astype(str)
            fid = pd.DataFrame(fidelity_table(test.x, test.label, {"train": (train.x, train.label),
                                                                    "drafts": (drafts.x, drafts.label)}, kind, names,
                                              fcfg, seed=config["seed"]))
            fid["class"] = fid["class"].astype(str).map(lambda c: c if c == "all" else str(names.index(c))
                                                        if c in names else c)
            keep = [c for c in ("std_ratio", "psd_log10_low", "psd_log10_high", "edge_ratio") if c in fid.columns]
            fd = fid[fid["compared"] == "drafts"].set_index("class")[keep]
            ref = fid[fid["compared"] == "train"].set_index("class")[keep].add_prefix("train_")
            ph = pd.DataFrame(phi_metrics(phi, test.x, test.label, drafts.x, drafts.label)).set_index("class")
            table = wide.join(fd).join(ref).join(ph).reset_index()
            table.insert(0, "variant", name)
            table.insert(1, "steps", steps)
            table["train_s"], table["sample_s"], table["realism_s"] = t_train, t_sample, t_realism
            rows = [r[~((r["variant"] == name) & (r["steps"] == steps))] for r in rows] + [table]
            show = ["class", "realism_gap_features", "realism_gap_raw", *keep, "fd_phi", "prdc_coverage"]
            print(f"\n## {name}, {steps} steps: {VARIANTS[name]} (train {t_train:.0f} s, sample {t_sample:.0f} s)\n")
            print(table[show].to_markdown(index=False, floatfmt=".3f"), flush=True)
            write_csv(pd.concat(rows), csv, float_format="%.6g")


if __name__ == "__main__":
    main()

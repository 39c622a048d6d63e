"""Guidance study: how the guidance scale gamma and the sampler (DDPM vs DDIM) place drafts against the regions.

On a finished run (the generator, phi, MDN, pairs, split files and thresholds of results/{ds}/), for every
(dataset, sampler, gamma): K drafts per class with the run's sampler settings except `sampler` and
`guidance_scale` (`sample_drafts`), scored under the run's phi and MDN (`score_drafts`), and the metrics.csv
rows of every alpha (`metrics_base`, `metrics_alpha`; phi's classifier on the drafts, TRTS, on both datasets,
TSTR on series only, no FID), plus the MMD^2 between the accepted drafts and the real test points inside the region. The same
library functions as the pipeline's rules; only the sampler settings differ.

    .venv/bin/python benchmarks/guidance_study.py run --work /tmp/gs --jobs 2
    .venv/bin/python benchmarks/guidance_study.py table /tmp/gs      # or a CSV of the rows

The rows of the docs' run are in docs/guidance_study.csv.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from dualspace.io import write_csv
from _grid import ROOT, parse_args, read_rows, run_grid



def run_one(ds: str, sampler: str, gamma: float, work: str, results: str, config: dict, K: int, threads: int,
            device: str) -> str:
    """Drafts, scores and metrics rows of one (dataset, sampler, gamma); returns the rows' CSV path."""
    import torch

    from dualspace.artifacts import DraftScores, Pairs, PairScores
    from dualspace.conformal import ThresholdTable, accept
    from dualspace.data import REGISTRY
    from dualspace.distances import mmd2_unbiased
    from dualspace.stages.metrics import metrics_alpha, metrics_base, tstr_alpha
    from dualspace.stages.regions import sample_drafts, score_drafts

    torch.set_num_threads(threads)
    d = Path(work) / ds / f"{sampler}_g{gamma}"
    out = d / "rows.csv"
    if out.exists():
        return str(out)
    d.mkdir(parents=True, exist_ok=True)
    r, t0 = Path(results) / ds, time.time()
    settings = {**config[ds]["sampler"]["diffusion"], "sampler": sampler, "guidance_scale": gamma}
    sample_drafts(r / "generator/model.pt", d / "samples.h5", K, settings, config["seed"], ds, device=device)
    t_sample = time.time() - t0
    score_drafts(d / "samples.h5", r / "generator/model.pt", r / "phi/phi.pt", r / "mdn/model.pt", d / "scores.h5", ds,
                 device=device)
    common = dict(test_pairs_h5=r / "pairs/test.h5", scores_h5=d / "scores.h5",
                  calib_scores_h5=r / "conformal/scores_calib.h5")
    mode, seed = config["conformal"]["mode"], config["seed"]
    metrics_base(ds, samples_h5=d / "samples.h5", mdn_pt=r / "mdn/model.pt", out_json=d / "base.json",
                 out_volumes_h5=d / "volume_draws.h5", mode=mode, seed=seed, phi_pt=r / "phi/phi.pt",
                 test_h5=r / "data/test.h5", **common)
    drafts = DraftScores.read(d / "scores.h5", dataset=ds)
    test = Pairs.read(r / "pairs/test.h5", dataset=ds)
    test_s = PairScores.read(r / "conformal/scores_test.h5", dataset=ds, split="test").score
    series = REGISTRY[ds].kind == "series"  # TSTR trains a classifier per alpha: the 1-D CNN, not the ResNet
    frames = []
    for alpha in config["alphas"]:
        tau = r / f"conformal/tau_alpha{alpha}.csv"
        metrics_alpha(ds, alpha, tau, d / "base.json", d / "volume_draws.h5", test_scores_h5=r / "conformal/scores_test.h5",
                      test_h5=r / "data/test.h5", calib_h5=r / "data/calib.h5", out_csv=d / f"alpha{alpha}.csv",
                      seed=seed, mode=mode, cluster_boot=config["metrics"]["cluster_bootstrap"], **common)
        if series:
            tstr_alpha(ds, alpha, tau, r / "phi/phi.pt", d / "samples.h5", d / "scores.h5", r / "data/test.h5",
                       d / f"tstr{alpha}.csv", seed=seed)
        df = pd.read_csv(d / f"alpha{alpha}.csv")
        if series:
            df.loc[df["class"] == "all", "tstr_acc"] = pd.read_csv(d / f"tstr{alpha}.csv")["tstr_acc"].iloc[0]
        table = ThresholdTable.from_csv(tau, alpha)
        ok, covered = accept(drafts.score, drafts.label, table), accept(test_s, test.label, table)
        df["mmd_accepted_vs_real_in_region"] = np.nan
        if ok.sum() >= 2 and covered.sum() >= 2:
            df.loc[df["class"] == "all", "mmd_accepted_vs_real_in_region"] = mmd2_unbiased(test.y[covered],
                                                                                           drafts.y[ok])
        frames.append(df)
    rows = pd.concat(frames, ignore_index=True)
    rows.insert(1, "sampler", sampler)
    rows.insert(2, "gamma", gamma)
    rows["sample_seconds"] = round(t_sample, 1)
    write_csv(rows, out, float_format="%.6g")
    print(f"{ds} {sampler} gamma {gamma}: {time.time() - t0:.0f} s", flush=True)
    return str(out)


COLUMNS = {"acceptance_gap": "gap", "region_coverage_by_drafts": "region cov.", "mmd_phi_all": "MMD all",
           "mmd_phi_accepted": "MMD acc.", "mmd_accepted_vs_real_in_region": "MMD acc. vs region",
           "fd_phi_all": "FD all", "fd_phi_accepted": "FD acc.", "trts_acc": "TRTS", "tstr_acc": "TSTR"}


def table(work: str, alphas: tuple[float, ...] = (0.5, 0.8)) -> str:
    """Markdown: the pooled rows per dataset, sampler, gamma and alpha."""
    df = read_rows(work, "*/*/rows.csv")
    df = df[(df["class"] == "all") & df["alpha"].isin(alphas)].sort_values(["dataset", "alpha", "sampler", "gamma"])
    head = ["dataset", "alpha", "sampler", "gamma", "coverage", "acceptance"] + list(COLUMNS.values())
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        vals = [r["dataset"], r["alpha"], r["sampler"], r["gamma"], f"{r['coverage']:.3f}",
                f"{r['acceptance_rate']:.3f}"] + [f"{r[c]:.4g}" for c in COLUMNS]
        lines.append("| " + " | ".join(str(v) for v in vals) + " |")
    return "\n".join(lines)


def _run_args(r) -> None:
    r.add_argument("--samplers", nargs="+", default=["ddim", "ddpm"])
    r.add_argument("--gammas", nargs="+", type=float, default=[1.0, 1.5, 2.0, 3.0])
    r.add_argument("--results", default=str(ROOT / "results"))
    r.add_argument("--K", type=int, default=None, help="drafts per class (default: the config's regions.K)")


def main() -> None:
    args = parse_args(__doc__, _run_args, threads=1, device="auto")
    if args.cmd == "table":
        print(table(args.work))
        return
    config = yaml.safe_load(open(args.config))
    K = args.K or config["regions"]["K"]
    run_grid(run_one, [(ds, s, g, args.work, args.results, config, K, args.threads, args.device)
                       for ds in args.datasets for s in args.samplers for g in args.gammas], args.jobs)
    print(table(args.work))


if __name__ == "__main__":
    main()

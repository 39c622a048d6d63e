"""The study's tables: one row per chain and generation (quality + spectrum summaries), and the detection lead of
each spectrum summary over FID; and their figures."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..io import read_h5, read_json, write_csv
from .spectrum import bootstrap_mean, first_departure

log = logging.getLogger("dualspace")

SPECTRUM = ("top", "effective_rank", "entropy", "trace")  # summaries of the eigenvalues of J^T J
QUALITY = ("fid", "class_accuracy", "precision", "recall", "density", "coverage", "region_acceptance")


@dataclass
class Chain:
    """One chain's files, generation 0 first."""

    scenario: str
    w: float
    metrics: Sequence[str]  # metrics.json per generation
    jacobians: Sequence[str]  # jacobian.h5 per generation
    samples: Sequence[str]  # samples.h5 per generation

    @property
    def name(self) -> str:
        return f"{self.scenario}/w{self.w}"


def chain_rows(chain: Chain) -> list[dict[str, Any]]:
    """Per generation: the quality metrics and, per timestep, the probe mean of each spectrum summary."""
    rows = []
    for g, (m, j) in enumerate(zip(chain.metrics, chain.jacobians)):
        metrics = read_json(m, "quality metrics")
        spec = read_h5(j)
        row = {"scenario": chain.scenario, "w": chain.w, "generation": g,
               **{k: metrics[k] for k in (*QUALITY, "fid_sd")}}
        for i, t in enumerate(spec["timesteps"]):
            row.update({f"{s}_t{int(t)}": float(np.mean(spec[s][i])) for s in SPECTRUM})
        rows.append(row)
    return rows


def detection_rows(chain: Chain, k_sigma: float, n_boot: int, seed: int) -> list[dict[str, Any]]:
    """The first generation at which each spectrum summary (per timestep) and FID leave generation 0's range
    (k_sigma bootstrap sds: over probes for the spectrum, over samples for FID), and lead = gen(FID) - gen(summary)."""
    metrics = [read_json(m, "quality metrics") for m in chain.metrics]
    fid = [m["fid"] for m in metrics]
    g_fid = first_departure(fid, fid[0], metrics[0]["fid_sd"], k_sigma)
    specs = [read_h5(j) for j in chain.jacobians]
    rows = []
    for i, t in enumerate(specs[0]["timesteps"]):
        for s in SPECTRUM:
            ref_mean, ref_sd = bootstrap_mean(specs[0][s][i], n_boot, seed)
            series = [float(np.mean(sp[s][i])) for sp in specs]
            g = first_departure(series, ref_mean, ref_sd, k_sigma)
            rows.append({"scenario": chain.scenario, "w": chain.w, "summary": s, "timestep": int(t),
                         "gen0_mean": ref_mean, "gen0_sd": ref_sd, "departs_at": g, "fid_departs_at": g_fid,
                         "lead": (g_fid - g) if g is not None and g_fid is not None else None})
    return rows


def summarise(chains: Sequence[Chain], out_csv: str | Path, out_detection: str | Path, figures: str | Path,
              k_sigma: float, n_boot: int, seed: int, dataset: str) -> None:
    """rule madness_summary: summary.csv, detection.csv and the figures of a set of chains."""
    from .loop import read_samples
    from .plots import curves_figure, samples_figure, spectra_figure

    rows = [r for c in chains for r in chain_rows(c)]
    det = [r for c in chains for r in detection_rows(c, k_sigma, n_boot, seed)]
    table = pd.DataFrame(rows)
    write_csv(table, out_csv, float_format="%.6g")
    write_csv(pd.DataFrame(det), out_detection, float_format="%.6g")
    figures = Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    curves_figure(table, figures / "curves.png", f"{dataset}: self-consuming loops")
    spectra_figure({c.name: [read_h5(j) for j in c.jacobians] for c in chains}, figures / "spectra.png",
                   f"{dataset}: eigenvalues of J^T J (denoiser Jacobian)")
    for c in chains:
        samples_figure([read_samples(p)[0] for p in c.samples], figures / f"samples_{c.scenario}_w{c.w}.png",
                       f"{dataset}, {c.scenario}, w = {c.w:g}: samples per generation")


def chains_from_lists(chains: Sequence[Sequence[Any]], generations: int, metrics: Sequence[str],
                      jacobians: Sequence[str], samples: Sequence[str]) -> list[Chain]:
    """Chains from (scenario, w) pairs and chain-major file lists of `generations` entries each."""
    G = int(generations)
    out = []
    for i, (scenario, w) in enumerate(chains):
        part = slice(i * G, (i + 1) * G)
        out.append(Chain(scenario, float(w), list(metrics[part]), list(jacobians[part]), list(samples[part])))
    return out

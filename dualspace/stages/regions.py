"""rules sample_drafts, score_drafts and select_region (workflow/rules/regions.smk).

Drafts are sampled once (generator only) and scored apart (phi + MDN): a new phi or MDN rescores the same
drafts instead of resampling them, and a region for any alpha is a filter over the scored drafts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..artifacts import DraftSamples, DraftScores, Region
from ..conformal import ThresholdTable, accept
from ..data import dataset_spec
from ..farthest_point import representatives
from ..generator import family, load_generator
from ..io import write_csv
from ..plots import representatives_figure
from ..runtime import pick_device
from ..scoring import score_outcomes

log = logging.getLogger("dualspace")


def sample_drafts(generator_pt: str | Path, out_h5: str | Path, K: int, sampler: Mapping[str, Any], seed: int,
                  dataset: str, bf16: bool = False, device: str = "auto", expect_gpu: bool = False,
                  quantize: bool = True) -> None:
    """rule sample_drafts: K drafts per class from the generator (its family's sampler options), snapped onto the
    dataset's value grid where it has one and `quantize` is on (the registry's `DatasetSpec.grid`)."""
    gen = load_generator(generator_pt, device=pick_device(device, expect_gpu), dataset=dataset)
    cfg = family(gen.family).make_sampler(sampler, f"{dataset}.sampler")
    labels = np.repeat(np.arange(gen.n_classes), K)
    x = gen.sample(labels, seed=seed, sampler=cfg, bf16=bf16)
    grid = dataset_spec(dataset).grid if quantize else None
    if grid is not None:
        x = grid.snap(x)
        log.info("drafts snapped onto the %s value grid (%d levels)", dataset, grid.max_value + 1)
    meta = gen.data_meta
    attrs = {"dataset": dataset, "K": K, "seed": seed, "family": gen.family, "sampler": cfg.to_dict(),
             "generator": str(generator_pt), "n_classes": gen.n_classes, "class_names": list(meta["class_names"]),
             "kind": meta["kind"], "grid_levels": 0 if grid is None else grid.max_value + 1}
    if "channel_names" in meta:
        attrs["channel_names"] = list(meta["channel_names"])
    DraftSamples(x, labels, attrs).write(out_h5)
    log.info("%d drafts (%d per class) from the %s generator", len(x), K, gen.family)


def score_drafts(samples_h5: str | Path, generator_pt: str | Path, phi_pt: str | Path, mdn_pt: str | Path,
                 out_h5: str | Path, dataset: str, device: str = "auto", expect_gpu: bool = False) -> None:
    """rule score_drafts: phi features, PCA coordinates and scores s = -log p(y | g(c)) of every draft."""
    drafts = DraftSamples.read(samples_h5, dataset=dataset)
    n_classes = int(drafts.attrs["n_classes"])
    feats, y, s, e = score_outcomes(drafts.x, drafts.label, n_classes, generator_pt, phi_pt, mdn_pt, dataset,
                                    pick_device(device, expect_gpu))
    DraftScores(feats, y, s, drafts.label, e,
                {"dataset": dataset, "n_classes": n_classes, "samples": str(samples_h5), "phi": str(phi_pt),
                 "mdn": str(mdn_pt)}).write(out_h5)
    log.info("%d drafts scored, score range [%.2f, %.2f]", len(s), s.min(), s.max())


def select_region(samples_h5: str | Path, scores_h5: str | Path, tau_csv: str | Path, alpha: float, m: int,
                  out_h5: str | Path, out_csv: str | Path, out_png: str | Path, dataset: str | None = None) -> None:
    """rule select_region: accepted drafts (s <= tau_c), acceptance per class, m representatives per class."""
    drafts = DraftSamples.read(samples_h5, dataset=dataset)
    scored = DraftScores.read(scores_h5, dataset=dataset, samples=drafts)
    table = ThresholdTable.from_csv(tau_csv, alpha)
    n_classes, K = int(drafts.attrs["n_classes"]), int(drafts.attrs["K"])
    m_used = min(m, K)
    if m_used < m:
        log.warning("regions.m = %d exceeds the %d drafts per class (regions.K): at most %d representatives per "
                    "class", m, K, m_used)
    ok = accept(scored.score, scored.label, table)
    reps = representatives(scored.phi, scored.score, scored.label, ok, m_used, n_classes)
    rep_idx = np.concatenate([reps[c] for c in range(n_classes)]).astype(np.int64)
    ds = drafts.attrs["dataset"]
    Region(np.flatnonzero(ok).astype(np.int64), rep_idx,
           {"alpha": alpha, "dataset": ds, "n_classes": n_classes, "m_requested": m, "m_used": m_used,
            "samples": str(samples_h5), "scores": str(scores_h5), "tau": str(tau_csv)}).write(out_h5, drafts, scored)
    label = scored.label
    rows = [{"class": c, "n_drafts": int((label == c).sum()), "n_accepted": int((ok & (label == c)).sum()),
             "acceptance_rate": float(ok[label == c].mean()) if (label == c).any() else float("nan"),
             "n_representatives": len(reps[c])} for c in range(n_classes)]
    write_csv(pd.DataFrame(rows), out_csv)
    representatives_figure(drafts.x, reps, list(drafts.attrs["class_names"]),
                           f"{ds}: representatives, alpha = {alpha}", out_png, drafts.attrs.get("channel_names"))

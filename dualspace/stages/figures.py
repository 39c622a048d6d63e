"""rule figures (workflow/rules/figures.smk): every figure of one dataset from files that already exist
(seconds, no model runs). The representatives figure is drawn once, by select_region, for every alpha."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from .. import plots
from ..artifacts import DraftScores, Pairs
from ..conformal import ThresholdTable, accept


def make_figures(metrics_csv: str | Path, scores_h5: str | Path, test_pairs_h5: str | Path, tau_csv: str | Path,
                 alpha: float, outputs: Mapping[str, str | Path], dataset: str | None = None) -> None:
    """rule figures: calibration curve, per-class coverage, acceptance, distances, projection."""
    df = pd.read_csv(metrics_csv, dtype={"class": str})
    plots.calibration_curve(df, outputs["calibration"])
    plots.class_coverage(df, outputs["class_coverage"])
    plots.acceptance_rate(df, outputs["acceptance"])
    plots.distances(df, outputs["distances"])
    drafts = DraftScores.read(scores_h5, dataset=dataset)
    test = Pairs.read(test_pairs_h5, dataset=dataset)
    ok = accept(drafts.score, drafts.label, ThresholdTable.from_csv(tau_csv, alpha))
    plots.projection(drafts.y, ok, test.y, alpha, str(df["dataset"].iloc[0]), outputs["projection"])

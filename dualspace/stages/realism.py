"""rule realism (workflow/rules/realism.smk): the realism table and figure of a dataset's drafts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..artifacts import ArtifactError, DraftSamples
from ..data import read_split
from ..io import write_csv
from ..realism import RealismConfig, realism_frame

log = logging.getLogger("dualspace")


def draft_realism(samples_h5: str | Path, test_h5: str | Path, train_h5: str | Path, settings: Mapping[str, Any],
                  seed: int, out_csv: str | Path, out_png: str | Path, threads: int = 1,
                  dataset: str | None = None) -> pd.DataFrame:
    """rule realism: C2ST of all drafts against the real test split beside the floor (real train vs real test),
    per classifier, pooled and per class (`dualspace.realism.realism_table`); the table and its figure."""
    from ..plots import realism_figure

    cfg = RealismConfig.from_dict(settings)
    test, attrs = read_split(test_h5, dataset=dataset, split="test")
    train, _ = read_split(train_h5, dataset=dataset, split="train")
    drafts = DraftSamples.read(samples_h5, dataset=dataset)
    if tuple(drafts.x.shape[1:]) != tuple(test.x.shape[1:]):
        raise ArtifactError(f"draft samples {samples_h5} have shape {drafts.x.shape[1:]}, the test split {test_h5} "
                            f"{test.x.shape[1:]}: rebuild the drafts (`snakemake {samples_h5}`)")
    df = realism_frame(drafts.x, drafts.label, test.x, test.label, train.x, train.label, attrs["kind"],
                       list(drafts.attrs["class_names"]), seed, cfg, threads, dataset=drafts.attrs["dataset"],
                       family=drafts.attrs["family"])
    write_csv(df, out_csv, float_format="%.6g")
    realism_figure(df, f"{drafts.attrs['dataset']} ({drafts.attrs['family']}): can a classifier tell drafts from "
                       "real test data?", out_png)
    return df

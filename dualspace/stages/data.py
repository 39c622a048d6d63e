"""rule prepare_data (workflow/rules/data.smk)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from ..data import prepare

log = logging.getLogger("dualspace")


def prepare_data(dataset: str, seed: int, options: Mapping[str, Any], outputs: Mapping[str, str | Path]) -> None:
    """rule prepare_data: the train / calib / test split files of one dataset."""
    ds = prepare(dataset, seed=seed, options=options, outputs=outputs)
    for split, s in ds.splits.items():
        log.info("%s/%s: x %s, %d examples%s", ds.name, split, s.x.shape, len(s.label),
                 f", extras {sorted(s.extras)}" if s.extras else "")

"""The `abr_simulated` dataset: simulated click ABRs in the dataset contract (three exchangeable splits of
independent draws, z-scored with train statistics, static parameters and true peaks as extras)."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

import numpy as np

from .simulate import HEARING_CLASSES, SimulatorConfig, simulate

if TYPE_CHECKING:
    from ..data.base import Dataset

CHANNELS = ["abr_uv"]
# dualspace.data's registry imports this module, so dualspace.data.* is imported only inside the loader.
SIZE = {"type": "integer", "minimum": 1}  # = dualspace.data.base.SIZE
_RANGE = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
_NONNEG = {"type": "number", "minimum": 0}
ABR_SIMULATED_OPTIONS: dict[str, Any] = {
    "n_train": SIZE, "n_calib": SIZE, "n_test": SIZE,
    "intensity_db_nhl": _RANGE, "rate_per_s": _RANGE, "age_years": _RANGE, "noise_uv": _RANGE,
    "p_male": {"type": "number", "minimum": 0, "maximum": 1},
    "threshold_max_db_hl": {"type": "number", "exclusiveMinimum": 70, "exclusiveMaximum": 100},
    "conductive_fraction": {"type": "number", "minimum": 0, "maximum": 1},
    "latency_sd_ms": _NONNEG, "amplitude_cv": _NONNEG,
}
assert set(ABR_SIMULATED_OPTIONS) - {"n_train", "n_calib", "n_test"} == {f.name for f in fields(SimulatorConfig)}


def load_abr_simulated(seed: int, n_train: int = 3000, n_calib: int = 1000, n_test: int = 1000,
                       **simulator: Any) -> Dataset:
    """One `simulate` draw of n_train + n_calib + n_test recordings, split at random (so calib and test are
    exchangeable): x (N,1,200) z-scored with train stats, label = hearing class, extras static (N,6) raw units,
    peaks (N,6) (0 for an absent wave: split files hold finite values only) and peak_present (N,3) bool."""
    from ..data.base import Dataset, Split, channel_stats, random_partition, zscore

    cfg = SimulatorConfig.from_dict(simulator)
    sim = simulate(n_train + n_calib + n_test, seed, cfg)
    parts = random_partition(len(sim["label"]), [n_train, n_calib], np.random.default_rng([seed, 1]))
    x = sim["signal"][:, None, :]  # (N,1,200) uV
    mean, std = channel_stats(x[parts[0]])
    present = np.isfinite(sim["peaks"][:, :3])  # (N,3) waves I, III, V
    peaks = np.nan_to_num(sim["peaks"], nan=0.0)
    splits = {name: Split(zscore(x[i], mean, std), sim["label"][i],
                          extras={"static": sim["static"][i], "peaks": peaks[i], "peak_present": present[i]})
              for name, i in zip(("train", "calib", "test"), parts)}
    return Dataset(
        name="abr_simulated",
        kind="series",
        n_classes=len(HEARING_CLASSES),
        class_names=list(HEARING_CLASSES),
        splits=splits,
        normalization={"type": "zscore", "mean": mean, "std": std, "channels": CHANNELS,
                       "note": "z-scored with the train split's mean/std of the signal in uV; extras stay raw"},
        provenance={"seed": seed, "simulator": cfg.to_dict(), "simulated": True},
        channel_names=CHANNELS,
    )

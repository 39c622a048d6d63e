"""The trajectory study: human mouse paths from `cursory`, geometry (dx, dy) apart from timing (a lognormal
duration and a Dirichlet profile), joined by one assembly helper."""

from .data import (COND_COLUMNS, DISPLACEMENT_SCALE_PX, GeometryStats, LoadReport, Record, Steps, choose_T,
                   cursory_path, geometry_stats, load_records, normalise_geometry, octant, split_indices, to_steps)
from .facts import timing_facts
from .timing import (TimingConfig, TimingModel, compose_spatiotemporal_sequence, dirichlet_nll, fit_timing,
                     lognormal_nll, mean_profile, sample_dirichlet, timing_targets)

__all__ = ["COND_COLUMNS", "DISPLACEMENT_SCALE_PX", "GeometryStats", "LoadReport", "Record", "Steps",
           "TimingConfig", "TimingModel", "choose_T", "compose_spatiotemporal_sequence", "cursory_path",
           "dirichlet_nll", "fit_timing", "geometry_stats", "load_records", "lognormal_nll", "mean_profile",
           "normalise_geometry", "octant", "sample_dirichlet", "split_indices", "timing_facts", "timing_targets",
           "to_steps"]

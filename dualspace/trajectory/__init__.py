"""The trajectory study: human mouse paths from `cursory`, geometry (dx, dy) apart from timing (a lognormal
duration and a Dirichlet profile), joined by one assembly helper."""

from .data import (COND_COLUMNS, DISPLACEMENT_SCALE_PX, GeometryStats, LoadReport, Record, Steps, choose_T,
                   cursory_path, geometry_stats, load_records, normalise_geometry, octant, split_indices, to_steps)
from .baselines import ConstantTiming, MomentMatchedTiming, TimingCache, timing_cache
from .facts import timing_facts
from .geometry import (LengthModel, PathDiffusion, PathDiffusionConfig, PathDiffusionSettings, load_path_model,
                       train_path_diffusion)
from .timing import (TimingConfig, TimingModel, compose_spatiotemporal_sequence, dirichlet_nll, fit_timing,
                     lognormal_nll, mean_profile, path_summary, pause_classes, sample_dirichlet, step_features,
                     timing_targets)

__all__ = ["ConstantTiming", "LengthModel", "MomentMatchedTiming", "PathDiffusion", "PathDiffusionConfig",
           "PathDiffusionSettings", "TimingCache", "load_path_model", "path_summary", "pause_classes", "step_features",
           "timing_cache", "train_path_diffusion", "COND_COLUMNS", "DISPLACEMENT_SCALE_PX", "GeometryStats", "LoadReport", "Record", "Steps",
           "TimingConfig", "TimingModel", "choose_T", "compose_spatiotemporal_sequence", "cursory_path",
           "dirichlet_nll", "fit_timing", "geometry_stats", "load_records", "lognormal_nll", "mean_profile",
           "normalise_geometry", "octant", "sample_dirichlet", "split_indices", "timing_facts", "timing_targets",
           "to_steps"]

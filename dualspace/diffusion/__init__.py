"""Conditional diffusion: cosine schedule, eps-prediction training, EMA, CFG, DDPM and DDIM samplers."""

from ..runtime import pick_device
from .model import DiffusionConfig, DiffusionGenerator
from .samplers import SamplerConfig, ddim_sample, ddim_timesteps, ddpm_sample
from .schedule import NoiseSchedule
from .train import TrainConfig, train_diffusion

__all__ = ["DiffusionConfig", "DiffusionGenerator", "NoiseSchedule", "SamplerConfig", "TrainConfig",
           "ddim_sample", "ddim_timesteps", "ddpm_sample", "pick_device", "train_diffusion"]

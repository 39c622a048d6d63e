"""Networks: U-Net 2D/1D denoiser and the condition encoder g(c)."""

from .condition import ConditionEncoder
from .unet import UNet, UNetConfig, timestep_embedding

__all__ = ["ConditionEncoder", "UNet", "UNetConfig", "timestep_embedding"]

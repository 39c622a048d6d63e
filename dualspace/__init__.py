"""dualspace: calibrated conditional generation (diffusion drafts + conformal regions in a feature space)."""

__version__ = "0.1.0"

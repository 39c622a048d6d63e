"""Self-consuming training loops ("MADness"): generations of a diffusion model trained on its own samples."""

# rule trajectory_geometry / trajectory_joint: the (dx, dy) path diffusion, or the joint (dx, dy, dt) baseline.
import torch

from dualspace.logs import log_to
from dualspace.trajectory.stages import train_geometry

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    train_geometry(snakemake.input.train, snakemake.input.get("stats"), snakemake.output[0],
                   settings=snakemake.params.settings, seed=snakemake.params.seed,
                   length_k=snakemake.params.length_k, joint=snakemake.params.joint)

# rule trajectory_timing: one timing model (duration + profile heads) of the conditioning study.
import torch

from dualspace.logs import log_to
from dualspace.trajectory.stages import train_timing

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    train_timing(snakemake.input.train, snakemake.input.cache, snakemake.output[0],
                 settings=snakemake.params.settings, seed=snakemake.params.seed,
                 geometry_path=snakemake.input.get("geometry"))

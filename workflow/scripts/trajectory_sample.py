# rule trajectory_sample: one generated path per test condition.
import torch

from dualspace.logs import log_to
from dualspace.trajectory.stages import sample_paths

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    sample_paths(snakemake.input.model, snakemake.input.test, snakemake.output[0], sampler=snakemake.params.sampler,
                 endpoint=snakemake.params.endpoint, seed=snakemake.params.seed)

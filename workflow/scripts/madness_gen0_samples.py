# rule madness_gen0_samples: generation 0's samples at one guidance weight w.
import torch

from dualspace.logs import log_to
from dualspace.madness.stages import sample_gen0

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    sample_gen0(snakemake.input.model, snakemake.output[0], snakemake.params.loop, w=float(snakemake.wildcards.w),
                seed=snakemake.params.seed)

# rule madness_gen0: generation 0 of every chain, on real data (or the dual-space generator, reused).
import torch

from dualspace.logs import log_to
from dualspace.madness.stages import train_gen0

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    train_gen0(snakemake.input.train, snakemake.output[0], snakemake.params.loop, seed=snakemake.params.seed,
               dataset=snakemake.wildcards.ds, reuse_pt=snakemake.input.get("reuse"), device=snakemake.params.device)

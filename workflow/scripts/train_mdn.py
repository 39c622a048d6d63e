# rule train_mdn: p(y | e) on train pairs.
import torch

from dualspace.logs import log_to
from dualspace.stages.density import train_mdn

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    train_mdn(snakemake.input[0], snakemake.output[0], snakemake.params.settings, snakemake.params.seed,
              snakemake.wildcards.ds)

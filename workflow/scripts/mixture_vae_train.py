# rule mixture_vae_train: fit one mixture-of-VAEs run (variant, seed) on the train split.
import torch

from dualspace.logs import log_to
from dualspace.mixture_vae.stages import train_run

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    train_run(snakemake.input.train, snakemake.output.model, snakemake.output.history,
              settings=snakemake.params.settings, seed=snakemake.params.seed)

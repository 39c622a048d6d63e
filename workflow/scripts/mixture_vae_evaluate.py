# rule mixture_vae_evaluate: clustering accuracy, NMI, ARI, tau-classifier, dead channels and test ELBO.
import torch

from dualspace.logs import log_to
from dualspace.mixture_vae.stages import evaluate_run

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    evaluate_run(snakemake.input.model, snakemake.input.train, snakemake.input.test, snakemake.output.metrics,
                 snakemake.output.codes, settings=snakemake.params.eval, seed=snakemake.params.seed)

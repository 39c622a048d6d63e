# rule tstr_alpha: train-synthetic-test-real of one alpha (a classifier trained on the accepted drafts).
import torch

from dualspace.logs import log_to
from dualspace.stages.metrics import tstr_alpha

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    tstr_alpha(snakemake.wildcards.ds, float(snakemake.wildcards.alpha), snakemake.input.tau, snakemake.input.phi,
               snakemake.input.samples, snakemake.input.scores, snakemake.input.test, snakemake.output[0],
               seed=snakemake.params.seed)

# rule metrics: coverage, acceptance, region size and feature-space distances per (alpha, class).
import torch

from dualspace.logs import log_to
from dualspace.stages import compute_metrics

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    compute_metrics(snakemake.wildcards.ds, snakemake.params.alphas, list(snakemake.input.tau), snakemake.input.mdn,
                    snakemake.input.test_pairs, snakemake.input.drafts, snakemake.input.generator,
                    snakemake.output[0], seed=snakemake.params.seed)

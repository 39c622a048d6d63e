# rule madness_metrics: FID / PRDC / class accuracy in LeNet features, t-SNE, share inside the real-data region.
import torch

from dualspace.logs import log_to
from dualspace.madness.stages import evaluate_generation

torch.set_num_threads(snakemake.threads)
region = {k: snakemake.input[k] for k in ("generator", "phi", "mdn", "tau")}
with log_to(snakemake.log[0]):
    evaluate_generation(snakemake.input.samples, snakemake.input.test, snakemake.input.lenet, region,
                        snakemake.output.metrics, snakemake.output.tsne, snakemake.params.settings,
                        alpha=snakemake.params.settings["region_alpha"], seed=snakemake.params.seed,
                        dataset=snakemake.wildcards.ds, title=f"{snakemake.wildcards.ds} {snakemake.wildcards.mad_sample_run}")

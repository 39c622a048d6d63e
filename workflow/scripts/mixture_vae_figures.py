# rule mixture_vae_figures: the K channel plots, ownership, KL, routing and reconstruction figures of one run.
from dualspace.logs import log_to
from dualspace.mixture_vae.stages import figures

with log_to(snakemake.log[0]):
    figures(snakemake.input.model, snakemake.input.history, snakemake.input.metrics, snakemake.input.codes,
            snakemake.input.test, snakemake.output[0])

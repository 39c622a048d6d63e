# rule mixture_vae_ablation_table: every (variant, seed) run in one table, mean +- sd per variant, a figure.
from dualspace.logs import log_to
from dualspace.mixture_vae.stages import ablation_table

with log_to(snakemake.log[0]):
    ablation_table(dict(zip(snakemake.params.runs, snakemake.input.metrics)), snakemake.input.kmeans,
                   snakemake.output.csv, snakemake.output.summary, snakemake.output.figure)

# rule select_region: filter drafts by tau, pick representatives, draw them.
from dualspace.logs import log_to
from dualspace.stages.regions import select_region

with log_to(snakemake.log[0]):
    select_region(snakemake.input.samples, snakemake.input.scores, snakemake.input.tau,
                  float(snakemake.wildcards.alpha), snakemake.params.m, snakemake.output.region,
                  snakemake.output.acceptance, snakemake.output.figure, dataset=snakemake.wildcards.ds)

# rule madness_summary: summary.csv, detection.csv and figures of a set of chains.
from dualspace.logs import log_to
from dualspace.madness.summary import chains_from_lists, summarise

chains = chains_from_lists(snakemake.params.chains, snakemake.params.generations, snakemake.input.metrics,
                           snakemake.input.jacobian, snakemake.input.samples)
with log_to(snakemake.log[0]):
    summarise(chains, snakemake.output.table, snakemake.output.detection, snakemake.output.figures,
              k_sigma=snakemake.params.detection["k_sigma"], n_boot=snakemake.params.detection["bootstrap"],
              seed=snakemake.params.seed, dataset=snakemake.wildcards.ds)

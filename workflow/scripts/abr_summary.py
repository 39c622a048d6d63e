# rule abr_summary: both modes side by side (summary.csv) and the study's figures.
from dualspace.abr.stages import summarise
from dualspace.logs import log_to

with log_to(snakemake.log[0]):
    summarise(dict(zip(snakemake.params.modes, snakemake.input.metrics)),
              dict(zip(snakemake.params.modes, snakemake.input.generated)),
              dict(zip(snakemake.params.modes, snakemake.input.history)),
              dict(zip(snakemake.params.modes, snakemake.input.models)),
              snakemake.input.test, snakemake.output.table, snakemake.output.figures, seed=snakemake.params.seed)

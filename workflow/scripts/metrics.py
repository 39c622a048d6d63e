# rule metrics: results/{ds}/metrics.csv from the per-alpha files, in the config's alpha order.
from dualspace.logs import log_to
from dualspace.stages.gather import collect_metrics

with log_to(snakemake.log[0]):
    collect_metrics(list(snakemake.input), snakemake.output[0])

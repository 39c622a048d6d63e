# rule tstr: results/{ds}/tstr.csv from the per-alpha files, in the config's alpha order.
from dualspace.logs import log_to
from dualspace.stages.gather import collect_tstr

with log_to(snakemake.log[0]):
    collect_tstr(list(snakemake.input), snakemake.output[0])

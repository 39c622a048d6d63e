# rule trajectory_table: one row per evaluated model.
from dualspace.logs import log_to
from dualspace.trajectory.stages import collect

with log_to(snakemake.log[0]):
    collect(list(snakemake.input), snakemake.output[0])

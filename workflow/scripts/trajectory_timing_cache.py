# rule trajectory_timing_cache: D, w = dt / D and their moments for one split.
from dualspace.logs import log_to
from dualspace.trajectory.stages import write_timing_cache

with log_to(snakemake.log[0]):
    write_timing_cache(snakemake.input[0], snakemake.output[0])

# rule trajectory_data: validated, padded, split mouse paths + train-only geometry stats + load report.
from dualspace.logs import log_to
from dualspace.trajectory.stages import prepare_paths

d = snakemake.params.data
with log_to(snakemake.log[0]):
    prepare_paths({s: snakemake.output[s] for s in ("train", "val", "test")}, snakemake.output.stats,
                  snakemake.output.report, source=d["source"], on_bad=d["on_bad"], coverage=d["coverage"],
                  T=d["T"], T_multiple=snakemake.params.T_multiple, anchor=d["anchor"], seed=snakemake.params.seed,
                  fractions=d["fractions"])

# rule figures: calibration curve, per-class coverage, acceptance, distances, projection.
from dualspace.logs import log_to
from dualspace.stages.figures import make_figures

with log_to(snakemake.log[0]):
    make_figures(snakemake.input.metrics, snakemake.input.scores, snakemake.input.test_pairs, snakemake.input.tau,
                 float(snakemake.params.alpha), {name: snakemake.output[name] for name in snakemake.output.keys()},
                 dataset=snakemake.wildcards.ds)

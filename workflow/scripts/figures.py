# rule figures: calibration curve, per-class coverage, acceptance, distances, projection, representatives.
from dualspace.io import read_h5_attrs
from dualspace.logs import log_to
from dualspace.stages import make_figures

with log_to(snakemake.log[0]):
    make_figures(snakemake.input.metrics, snakemake.input.drafts, snakemake.input.test_pairs, snakemake.input.region,
                 snakemake.input.tau, float(snakemake.params.alpha),
                 list(read_h5_attrs(snakemake.input.data)["class_names"]),
                 {name: snakemake.output[name] for name in snakemake.output.keys()})

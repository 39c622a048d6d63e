# rule calibrate: conformal thresholds for one alpha.
from dualspace.logs import log_to
from dualspace.stages.density import calibrate

with log_to(snakemake.log[0]):
    calibrate(snakemake.input.mdn, snakemake.input.pairs, float(snakemake.wildcards.alpha), snakemake.params.mode,
              snakemake.output[0], dataset=snakemake.wildcards.ds)

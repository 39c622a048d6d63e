# rule calibrate: conformal thresholds for one alpha (from the calibration scores; no model loaded).
from dualspace.logs import log_to
from dualspace.stages.density import calibrate

with log_to(snakemake.log[0]):
    calibrate(snakemake.input.scores, float(snakemake.wildcards.alpha), snakemake.params.mode, snakemake.output[0],
              dataset=snakemake.wildcards.ds)

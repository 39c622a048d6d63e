# rule select_region: filter drafts by tau, pick representatives, draw them.
from dualspace.io import read_h5_attrs
from dualspace.logs import log_to
from dualspace.stages import select_region

with log_to(snakemake.log[0]):
    select_region(snakemake.input.drafts, snakemake.input.tau, float(snakemake.wildcards.alpha), snakemake.params.m,
                  snakemake.output.region, snakemake.output.acceptance, snakemake.output.figure,
                  class_names=list(read_h5_attrs(snakemake.input.data)["class_names"]))

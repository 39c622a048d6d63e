# rule metrics_alpha: one alpha's rows of metrics.csv: coverage and its band, acceptance, region size, distances of
# the accepted drafts, FID of the accepted drafts (images). Reads files only: no torch.
from dualspace.logs import log_to
from dualspace.stages.metrics import metrics_alpha

with log_to(snakemake.log[0]):
    metrics_alpha(snakemake.wildcards.ds, float(snakemake.wildcards.alpha), snakemake.input.tau, snakemake.input.base,
                  snakemake.input.volumes, snakemake.input.test_pairs, snakemake.input.test_scores,
                  snakemake.input.calib_scores, snakemake.input.scores, snakemake.input.test, snakemake.input.calib,
                  snakemake.output[0], seed=snakemake.params.seed, fid_h5=snakemake.input.get("fid"),
                  mode=snakemake.params.mode, cluster_boot=snakemake.params.cluster_bootstrap)

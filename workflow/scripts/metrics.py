# rule metrics: coverage, acceptance, region size, feature-space distances, FID (images) or TSTR (series).
import torch

from dualspace.logs import log_to
from dualspace.stages.metrics import compute_metrics

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    compute_metrics(snakemake.wildcards.ds, snakemake.params.alphas, list(snakemake.input.tau), snakemake.input.mdn,
                    snakemake.input.test_pairs, snakemake.input.samples, snakemake.input.scores, snakemake.output[0],
                    seed=snakemake.params.seed, fid_h5=snakemake.input.get("fid"), phi_pt=snakemake.input.get("phi"),
                    test_h5=snakemake.input.test, calib_pairs_h5=snakemake.input.calib_pairs,
                    calib_h5=snakemake.input.calib, mode=snakemake.params.mode,
                    cluster_boot=snakemake.params.cluster_bootstrap)

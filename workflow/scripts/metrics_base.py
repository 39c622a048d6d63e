# rule metrics_base: what every alpha's rows share: the alpha-independent columns of metrics.csv (all drafts; FID of
# all drafts or TRTR/TRTS) and each class's region-volume draws.
import torch

from dualspace.logs import log_to
from dualspace.stages.metrics import metrics_base

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    metrics_base(snakemake.wildcards.ds, snakemake.input.test_pairs, snakemake.input.samples, snakemake.input.scores,
                 snakemake.input.mdn, snakemake.input.calib_scores, snakemake.output.base, snakemake.output.volumes,
                 mode=snakemake.params.mode, seed=snakemake.params.seed, fid_h5=snakemake.input.get("fid"),
                 phi_pt=snakemake.input.get("phi"), test_h5=snakemake.input.test)

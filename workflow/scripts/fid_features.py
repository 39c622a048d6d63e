# rule fid_features: Inception features of real test images and a fixed draft subsample (offline weights).
import torch

from dualspace.logs import log_to
from dualspace.stages.metrics import fid_features

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    fid_features(snakemake.input.samples, snakemake.input.test, snakemake.output[0], snakemake.params.max_drafts,
                 snakemake.params.weights, snakemake.params.seed, snakemake.params.max_real,
                 dataset=snakemake.wildcards.ds)

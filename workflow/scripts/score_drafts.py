# rule score_drafts: phi features, PCA coordinates and conformal scores of the drafts.
import torch

from dualspace.logs import log_to
from dualspace.stages.regions import score_drafts

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    score_drafts(snakemake.input.samples, snakemake.input.generator, snakemake.input.phi, snakemake.input.mdn,
                 snakemake.output[0], dataset=snakemake.wildcards.ds, device=snakemake.params.device,
                 expect_gpu=snakemake.resources.get("gpu", 0) > 0)

# rule sample_drafts: K drafts per class from the generator (no scoring: see score_drafts).
import torch

from dualspace.logs import log_to
from dualspace.stages.regions import sample_drafts

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    sample_drafts(snakemake.input.generator, snakemake.output[0], K=snakemake.params.K,
                  sampler=snakemake.params.sampler, seed=snakemake.params.seed, dataset=snakemake.wildcards.ds,
                  bf16=snakemake.params.bf16, device=snakemake.params.device,
                  expect_gpu=snakemake.resources.get("gpu", 0) > 0, quantize=snakemake.params.quantize)

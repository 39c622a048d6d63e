# rule dump_pairs: (e, y, label) of one split.
import torch

from dualspace.logs import log_to
from dualspace.stages.features import dump_pairs

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    dump_pairs(snakemake.input.generator, snakemake.input.phi, snakemake.input.split, snakemake.output[0],
               dataset=snakemake.wildcards.ds, device=snakemake.params.device,
               expect_gpu=snakemake.resources.get("gpu", 0) > 0)

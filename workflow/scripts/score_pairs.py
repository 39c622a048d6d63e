# rule score_pairs: one split's scores s = -log p(y | e) under the MDN, once for every alpha.
import torch

from dualspace.logs import log_to
from dualspace.stages.density import score_pairs

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    score_pairs(snakemake.input.mdn, snakemake.input.pairs, snakemake.output[0], dataset=snakemake.wildcards.ds)

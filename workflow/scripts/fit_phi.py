# rule fit_phi: frozen feature network + PCA fit on the train split.
import torch

from dualspace.logs import log_to
from dualspace.stages.features import fit_phi

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    fit_phi(snakemake.input[0], snakemake.output[0], snakemake.params.settings, snakemake.params.seed,
            snakemake.wildcards.ds, device=snakemake.params.device, expect_gpu=snakemake.resources.get("gpu", 0) > 0)

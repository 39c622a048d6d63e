# rule madness_jacobian: eigenvalues of J^T J, J = d eps_theta(x_t, t, c) / d x_t, at fixed probes and timesteps.
import torch

from dualspace.logs import log_to
from dualspace.madness.stages import jacobian

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    jacobian(snakemake.input.model, snakemake.input.test, snakemake.output[0], snakemake.params.settings,
             seed=snakemake.params.seed, dataset=snakemake.wildcards.ds)

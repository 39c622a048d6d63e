# rule madness_generation: generation g of a chain trains on what its scenario mixes from g-1, then samples.
import torch

from dualspace.logs import log_to
from dualspace.madness.stages import run_generation

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    run_generation(snakemake.input.prev_model, snakemake.input.prev_samples, snakemake.input.train,
                   snakemake.output.model, snakemake.output.samples, snakemake.params.loop,
                   scenario=snakemake.wildcards.scenario, scenario_settings=snakemake.params.scenario,
                   g=int(snakemake.wildcards.g), seed=snakemake.params.seed, dataset=snakemake.wildcards.ds,
                   device=snakemake.params.device)

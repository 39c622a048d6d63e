# rule madness_realism: C2ST of every generation's samples against real test data beside the floor.
import torch

from dualspace.logs import log_to
from dualspace.madness.stages import realism

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    realism(snakemake.input.samples, snakemake.params.chains, snakemake.params.generations, snakemake.input.train,
            snakemake.input.test, dict(snakemake.params.settings), int(snakemake.params.seed), snakemake.output.csv,
            snakemake.output.png, dataset=snakemake.wildcards.ds, threads=snakemake.threads)

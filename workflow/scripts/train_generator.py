# rule train_generator: fit p_theta(x | g(c)) on the train split; resumes from resume.pt after a kill.
import torch

from dualspace.logs import log_to
from dualspace.stages.generator import train_generator

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    train_generator(
        snakemake.input[0],
        snakemake.output[0],
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
        dataset=snakemake.wildcards.ds,
        device=snakemake.params.device,
        expect_gpu=snakemake.resources.get("gpu", 0) > 0,
    )

# rule madness_lenet: the LeNet whose features FID, PRDC and t-SNE use, trained on the real train split.
import torch

from dualspace.logs import log_to
from dualspace.madness.stages import train_lenet

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    train_lenet(snakemake.input.train, snakemake.input.test, snakemake.output[0], snakemake.params.settings,
                seed=snakemake.params.seed, dataset=snakemake.wildcards.ds)

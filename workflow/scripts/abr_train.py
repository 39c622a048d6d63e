# rule abr_train: fit the ABR CVAE in one mode (legacy / joint) on the train split, stopping early on calib.
import torch

from dualspace.abr.stages import train_mode
from dualspace.logs import log_to

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    train_mode(snakemake.input.train, snakemake.input.val, snakemake.output.model, snakemake.output.history,
               settings=snakemake.params.settings, seed=snakemake.params.seed)

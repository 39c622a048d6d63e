# rule abr_realism: C2ST of one mode's draws against real test recordings beside the floor (dualspace.realism).
import torch

from dualspace.abr.stages import realism
from dualspace.logs import log_to

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    realism(snakemake.input.generated, snakemake.input.test, snakemake.input.train, dict(snakemake.params.settings),
            int(snakemake.params.seed), snakemake.output.csv, snakemake.output.png, threads=snakemake.threads)

# rule abr_evaluate: reconstruction, generation physiology, static marginals and C2ST of one mode on the test split.
import torch

from dualspace.abr.stages import evaluate_mode
from dualspace.logs import log_to

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    evaluate_mode(snakemake.input.model, snakemake.input.test, snakemake.output.metrics, snakemake.output.generated,
                  settings=snakemake.params.eval, seed=snakemake.params.seed)

# rule trajectory_evaluate: C2ST, NLL, Fitts fit and Wasserstein distances of one model against the test split.
import torch

from dualspace.logs import log_to
from dualspace.trajectory.stages import evaluate_model

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    evaluate_model(snakemake.wildcards.tmodel, snakemake.input.test, snakemake.input.samples, snakemake.output.csv,
                   snakemake.output.h5, stats_path=snakemake.input.get("stats"),
                   timing_path=snakemake.input.get("timing"), cache_h5=snakemake.input.get("cache"),
                   eval_assign=snakemake.params.eval_assign, seed=snakemake.params.seed,
                   folds=snakemake.params.eval["folds"], per_feature=snakemake.params.eval["per_feature"])

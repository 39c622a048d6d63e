# rule realism: C2ST of the drafts against real test data beside the floor (real train vs real test), two classifiers.
import torch

from dualspace.logs import log_to
from dualspace.stages.realism import draft_realism

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    draft_realism(snakemake.input.samples, snakemake.input.test, snakemake.input.train, dict(snakemake.params.settings),
                  int(snakemake.params.seed), snakemake.output.csv, snakemake.output.png, threads=snakemake.threads,
                  dataset=snakemake.wildcards.ds)

# rule fidelity: raw-signal diagnostics of the drafts against the real test split, per class.
from dualspace.logs import log_to
from dualspace.stages.metrics import draft_fidelity

with log_to(snakemake.log[0]):
    draft_fidelity(snakemake.input.test, snakemake.input.train, snakemake.input.samples, snakemake.input.region,
                   float(snakemake.params.alpha), dict(snakemake.params.settings), int(snakemake.params.seed),
                   snakemake.output.csv, snakemake.output.png, dataset=snakemake.wildcards.ds)

# rule prepare_data: write the train / calib / test split files of one dataset.
from dualspace.logs import log_to
from dualspace.stages.data import prepare_data

with log_to(snakemake.log[0]):
    prepare_data(snakemake.wildcards.ds, seed=snakemake.params.seed, options=snakemake.params.options,
                 outputs={split: snakemake.output[split] for split in ("train", "calib", "test")})

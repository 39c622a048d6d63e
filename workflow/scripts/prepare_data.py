# rule prepare_data: write the train / calib / test split files of one dataset.
from dualspace.data import prepare
from dualspace.logs import log_to

with log_to(snakemake.log[0]) as log:
    ds = prepare(
        snakemake.wildcards.ds,
        seed=snakemake.params.seed,
        options=snakemake.params.options,
        outputs={split: snakemake.output[split] for split in ("train", "calib", "test")},
    )
    for split, s in ds.splits.items():
        log.info("%s/%s: x %s, %d examples", ds.name, split, s.x.shape, len(s.label))

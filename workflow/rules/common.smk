# Names shared by every rule file.

DATASETS = ["digits", "hapt", "cifar10", "har", "mnist"]
SPLITS = ["train", "calib", "test"]
ENV = "../../environment.yml"


wildcard_constraints:
    ds="|".join(DATASETS),
    split="|".join(SPLITS),
    alpha=r"0\.[0-9]+",

import dualspace

VERSION = dualspace.__version__
FIGURE_ALPHA = config["figures"]["alpha"]


def compute(ds):
    """Threads, memory, GPUs and device of a dataset's heavy rules (config `<ds>.compute`)."""
    return {"threads": 2, "mem_mb": 4000, "gpu": 0, "device": "auto", **config[ds].get("compute", {})}


# Each SLURM job runs a job-step snakemake process (~0.5 GB) beside the script: memory requests carry it.
JOBSTEP_MB = 512


def job_mb(script_mb):
    """Memory to request: what the script needs plus the job-step process."""
    return int(script_mb) + JOBSTEP_MB


IMAGE_DATASETS = ["digits", "cifar10", "mnist"]


def metrics_extra_inputs(wc):
    """FID features for images; phi and the real test split (TSTR) for series."""
    if wc.ds in IMAGE_DATASETS:
        return {"fid": f"results/{wc.ds}/fid/features.h5"}
    return {"phi": f"results/{wc.ds}/phi/phi.pt", "test": f"results/{wc.ds}/data/test.h5"}

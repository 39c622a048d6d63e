# Names shared by every rule file. The datasets come from the registry (dualspace.data.REGISTRY), the alpha
# wildcard from the same pattern the config check applies to `alphas`.

from dualspace.config import ALPHA_PATTERN, canonical
from dualspace.data import DATASETS, REGISTRY, SPLITS
from dualspace.generator import DEFAULT_FAMILY

ENV = "../../environment.yml"


wildcard_constraints:
    ds="|".join(DATASETS),
    split="|".join(SPLITS),
    alpha=ALPHA_PATTERN,

import dualspace

VERSION = dualspace.__version__
FIGURE_ALPHA = config["figures"]["alpha"]


def section(ds):
    """Config section of a dataset, canonical (keys sorted) so that reordering keys reruns nothing."""
    if ds not in config:
        raise WorkflowError(f"no config section '{ds}': add one (see config/config.yaml) to build results/{ds}/")
    return canonical(config[ds])


def generator_settings(ds):
    """The chosen family's `<ds>.generator.<family>` section, with `family` (what train_generator gets)."""
    g = section(ds)["generator"]
    name = g.get("family", DEFAULT_FAMILY)
    return {"family": name, **g[name]}


def sampler_settings(ds):
    """`<ds>.sampler.<family>` of the chosen family."""
    return section(ds)["sampler"][generator_settings(ds)["family"]]


def compute(ds):
    """Threads, memory, GPUs and device of a dataset's heavy rules (config `<ds>.compute`)."""
    return {"threads": 2, "mem_mb": 4000, "gpu": 0, "device": "auto", **section(ds).get("compute", {})}


# Each SLURM job runs a job-step snakemake process (~0.5 GB) beside the script: memory requests carry it.
JOBSTEP_MB = 512


def job_mb(script_mb):
    """Memory to request: what the script needs plus the job-step process."""
    return int(script_mb) + JOBSTEP_MB


def fid_inputs(wc):
    """FID features for images (fid_accepted); nothing for series."""
    return {"fid": f"results/{wc.ds}/fid/features.h5"} if REGISTRY[wc.ds].kind == "image" else {}


def metrics_extra_inputs(wc):
    """FID features for images; phi (TRTR / TRTS) for series."""
    return fid_inputs(wc) or {"phi": f"results/{wc.ds}/phi/phi.pt"}


def tstr_targets(datasets):
    """results/{ds}/tstr.csv of the series datasets (TSTR trains a classifier on raw series drafts)."""
    return [f"results/{ds}/tstr.csv" for ds in datasets if REGISTRY[ds].kind == "series"]

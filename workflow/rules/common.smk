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
    """Threads, memory and GPUs a dataset's heavy rules ask for (config `<ds>.compute`)."""
    return {"threads": 2, "mem_mb": 4000, "gpu": 0, **config[ds].get("compute", {})}

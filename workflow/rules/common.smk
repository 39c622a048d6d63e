# Names shared by every rule file.

DATASETS = ["digits", "hapt", "cifar10", "har", "mnist"]
SPLITS = ["train", "calib", "test"]
ENV = "../../environment.yml"


wildcard_constraints:
    ds="|".join(DATASETS),
    split="|".join(SPLITS),

# dualspace workflow. `rule all` is the embedded default (config key `datasets`: digits + hapt).
# See README.md for the two commands and docs/ for the DAG.

import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from dualspace.config import config_problems_memo
from dualspace.studies import STUDIES as STUDY_REGISTRY

min_version("9.0")


configfile: "config/config.yaml"


# Stop before any job runs, with one line per bad key (a config that passed with this code is not checked again).
# The schema checked is workflow/schemas/config.schema.yaml with the registries filled in (each study's section
# from its package, the generator families, the datasets): dualspace.config.full_schema.
_problems = config_problems_memo(config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml"),
                                 os.path.join(workflow.basedir, ".snakemake", "dualspace"))
if _problems:
    raise WorkflowError("invalid configuration:\n  " + "\n  ".join(_problems))


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/generator.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/density.smk"
include: "workflow/rules/regions.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/realism.smk"

# Studies (dualspace.studies; docs/<study>.md) run when the config has their section; each has its own target.
STUDIES = [name for name in STUDY_REGISTRY if name in config]
for _study in STUDIES:

    include: f"workflow/rules/{_study}.smk"


rule all:
    input:
        expand("results/{ds}/data/{split}.h5", ds=config["datasets"], split=SPLITS),
        expand("results/{ds}/generator/model.pt", ds=config["datasets"]),
        expand("results/{ds}/pairs/{split}.h5", ds=config["datasets"], split=SPLITS),
        expand("results/{ds}/conformal/tau_alpha{alpha}.csv", ds=config["datasets"], alpha=config["alphas"]),
        expand("results/{ds}/regions/alpha{alpha}/region.h5", ds=config["datasets"], alpha=config["alphas"]),
        expand("results/{ds}/metrics.csv", ds=config["datasets"]),
        tstr_targets(config["datasets"]),
        expand("results/{ds}/figures/{name}.png", ds=config["datasets"], name=FIGURES),
        expand("results/{ds}/fidelity.csv", ds=config["datasets"]),
        expand("results/{ds}/realism.csv", ds=config["datasets"]),
        [getattr(rules, name).input for name in STUDIES],
    default_target: True

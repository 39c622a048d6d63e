# Snakemake helpers of the abr study (workflow/rules/abr.smk includes this file): its config section,
# file layout and input functions.

from dualspace.abr.study import MODES as ABR_MODES, mode_settings as abr_mode_settings

ABR = "results/abr"


def abr():
    """The `abr` config section, canonical (keys sorted)."""
    return canonical(config["abr"])


def abr_settings(mode):
    """model / loss / train of one mode: the shared sections with `model.joint_generation` set by the mode."""
    return abr_mode_settings(abr(), mode)


def abr_modes():
    return abr()["modes"]


def abr_split(split):
    return f"results/{abr()['dataset']}/data/{split}.h5"

# Snakemake helpers of the trajectory study (workflow/rules/trajectory.smk includes this file): its config section,
# file layout and input functions.

from dualspace.trajectory.study import BASELINES

TRAJ = "results/trajectory"
TRAJ_SPLITS = ["train", "val", "test"]


def traj():
    """The `trajectory` config section, canonical (keys sorted)."""
    return canonical(config["trajectory"])


def traj_threads():
    """Threads of the torch rules (`trajectory.compute.threads`): bytes of a result depend on it."""
    return traj()["compute"]["threads"]


def traj_variants():
    return sorted(traj()["timing"]["variants"])


def traj_timing_settings(variant):
    """A variant's settings over the shared timing.train section."""
    t = traj()["timing"]
    if variant not in t["variants"]:
        raise WorkflowError(f"trajectory.timing: no variant '{variant}' (variants: {sorted(t['variants'])})")
    return canonical({**t["train"], **t["variants"][variant]})


def traj_levels():
    return 2 ** (len(traj()["geometry"]["model"]["channel_mults"]) - 1)


def traj_timing_inputs(wc):
    """The train split and its timing cache; the geometry model too when the variant shares its embedding."""
    inputs = {"train": f"{TRAJ}/data/train.h5", "cache": f"{TRAJ}/timing/cache_train.h5"}
    if traj_timing_settings(wc.tvariant).get("conditioning") == "shared_embedding":
        inputs["geometry"] = f"{TRAJ}/geometry/model.pt"
    return inputs


def traj_eval_inputs(wc):
    """Test split and generated paths; the timing model, the train timing cache (baselines) or the joint model."""
    inputs = {"test": f"{TRAJ}/data/test.h5"}
    if wc.tmodel == "joint":
        return {**inputs, "samples": f"{TRAJ}/joint/samples.h5", "timing": f"{TRAJ}/joint/model.pt"}
    inputs.update(samples=f"{TRAJ}/geometry/samples.h5", stats=f"{TRAJ}/data/geometry_stats.json")
    if not traj()["timing"]["eval_assign"]:  # the geometry-only ablation: no timing model is trained
        return inputs
    inputs["cache"] = f"{TRAJ}/timing/cache_train.h5"
    if wc.tmodel not in ("constant", "moment"):
        inputs["timing"] = f"{TRAJ}/timing/{wc.tmodel}/model.pt"
    return inputs


def traj_table_models(wc):
    default = traj()["timing"]["default"]
    return [default] + ([] if wc.ttable == "metrics" else [m for m in TRAJ_MODELS if m != default])


TRAJ_MODELS = traj_variants() + list(BASELINES)  # every timing model the study can evaluate

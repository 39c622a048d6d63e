# Snakemake helpers of the mixture_vae study (workflow/rules/mixture_vae.smk includes this file): its config section,
# file layout and input functions.

from dualspace.mixture_vae.study import run_settings as mixture_vae_run_settings

# A run is `{variant}` (trained with the config seed) or `{variant}/seed{s}` (the ablation's other seeds).
MVAE = "results/mixture_vae"
MVAE_RUN = r"[A-Za-z0-9_]+(/seed[0-9]+)?"


def mvae():
    """The `mixture_vae` config section, canonical (keys sorted)."""
    return canonical(config["mixture_vae"])


def mvae_variant(run):
    return run.split("/")[0]


def mvae_seed(run):
    """`{variant}/seed{s}` -> s; a bare variant trains with the config seed."""
    parts = run.split("/")
    return int(parts[1].removeprefix("seed")) if len(parts) > 1 else config["seed"]


def mvae_settings(ds, run):
    """model / loss / train of a run: the shared sections, then `datasets.<ds>`, then `variants.<variant>`."""
    if mvae_variant(run) not in mvae()["variants"]:
        raise WorkflowError(f"mixture_vae.variants: no variant '{mvae_variant(run)}' (variants: {sorted(mvae()['variants'])})")
    return mixture_vae_run_settings(mvae(), ds, mvae_variant(run))


def mvae_ablation_runs(ds):
    """Every (variant, seed) of `mixture_vae.ablation.<ds>`, as run names; the config seed's run is the bare one."""
    a = mvae()["ablation"].get(ds)
    if a is None:
        raise WorkflowError(f"mixture_vae.ablation: no entry for dataset '{ds}' (entries: {sorted(mvae()['ablation'])})")
    return [v if s == config["seed"] else os.path.join(v, f"seed{s}") for v in a["variants"] for s in a["seeds"]]


def mvae_threads():
    return mvae()["compute"]["threads"]


def mvae_default_outputs(ds, variant):
    """Metrics and figures of one run with the config seed, and the k-means baseline of the same dataset."""
    return [f"{MVAE}/{ds}/{variant}/{name}" for name in ("metrics.json", "figures")] + [f"{MVAE}/{ds}/kmeans.json"]

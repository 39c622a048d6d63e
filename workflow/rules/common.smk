# Names shared by every rule file. The datasets come from the registry (dualspace.data.REGISTRY), the alpha
# wildcard from the same pattern the config check applies to `alphas`.

from dualspace.config import ALPHA_PATTERN, abr_mode_settings, canonical, mixture_vae_run_settings
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


# The trajectory study (workflow/rules/trajectory.smk): its config section and input functions.
TRAJ = "results/trajectory"


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


# The mixture-of-VAEs study (workflow/rules/mixture_vae.smk): its config section and input functions.
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


# The ABR study (workflow/rules/abr.smk): its config section.
ABR = "results/abr"
ABR_MODES = ["legacy", "joint"]  # what `abr.modes` may list


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


# The self-consuming loops study (workflow/rules/madness.smk): its config section and file layout.
# A chain is (scenario, w); generation 0 is shared by every chain (its samples by every chain with that w).
MAD = "results/madness"
MAD_SCENARIOS = ["full_synthetic", "fresh", "augmented"]
MAD_RUN = r"gen0|(" + "|".join(MAD_SCENARIOS) + r")/w[0-9]+\.[0-9]+/gen[1-9][0-9]*"  # a generation's model dir
MAD_SAMPLE_RUN = r"gen0/w[0-9]+\.[0-9]+|(" + "|".join(MAD_SCENARIOS) + r")/w[0-9]+\.[0-9]+/gen[1-9][0-9]*"


def mad():
    """The `madness` config section, canonical (keys sorted)."""
    return canonical(config["madness"])


def mad_loop():
    """What every generation's stage reads: the generator, generation_train, sampler, n_samples, gen0_real."""
    m = mad()
    return {k: m[k] for k in ("gen0_real", "generation_train", "generator", "n_samples", "sampler")}


def mad_reuses_generator(ds):
    """Generation 0 is the dual-space generator when it would be trained the same way: all train examples and
    the same diffusion settings as `<ds>.generator.diffusion`."""
    g = section(ds)["generator"]
    return (mad()["gen0_real"] is None and g.get("family", DEFAULT_FAMILY) == "diffusion"
            and g.get("diffusion") == mad()["generator"])


def mad_gen0_inputs(wc):
    out = {"train": f"results/{wc.ds}/data/train.h5"}
    if mad_reuses_generator(wc.ds):
        out["reuse"] = f"results/{wc.ds}/generator/model.pt"
    return out


def mad_chains(kind):
    """(scenario, w) of the chains of `madness.scenarios` (kind 'default') or `madness.guidance` (kind 'guidance')."""
    m = mad()
    if kind == "default":
        return [(s, float(v["w"])) for s, v in m["scenarios"].items()]
    return [(s, float(w)) for s in m["guidance"]["scenarios"] for w in m["guidance"]["w"]]


def mad_model(ds, scenario, w, g):
    return f"{MAD}/{ds}/gen0/model.pt" if int(g) == 0 else f"{MAD}/{ds}/{scenario}/w{w}/gen{g}/model.pt"


def mad_samples(ds, scenario, w, g):
    return f"{MAD}/{ds}/gen0/w{w}/samples.h5" if int(g) == 0 else f"{MAD}/{ds}/{scenario}/w{w}/gen{g}/samples.h5"


def mad_generation_inputs(wc):
    """Generation g reads generation g-1's model and samples, and the real train split."""
    g = int(wc.g) - 1
    return {"prev_model": mad_model(wc.ds, wc.scenario, wc.w, g), "prev_samples": mad_samples(wc.ds, wc.scenario, wc.w, g),
            "train": f"results/{wc.ds}/data/train.h5"}


def mad_scenario(scenario, w):
    """`madness.scenarios.<scenario>` with its w replaced by the chain's."""
    s = mad()["scenarios"].get(scenario)
    if s is None:
        raise WorkflowError(f"madness.scenarios: no scenario '{scenario}' (scenarios: {sorted(mad()['scenarios'])})")
    return canonical({**s, "w": float(w)})


def mad_chain_files(ds, chains, name):
    """One list per file kind, chain-major, generations 0 .. G-1."""
    G = mad()["generations"]
    if name == "jacobian.h5":
        return [mad_model(ds, s, w, g).replace("model.pt", name) for s, w in chains for g in range(G)]
    return [mad_samples(ds, s, w, g).replace("samples.h5", name) for s, w in chains for g in range(G)]


def mad_summary_inputs(ds, kind):
    """metrics.json, jacobian.h5 and samples.h5 of every generation of the chains of `kind`."""
    chains = mad_chains(kind)
    return {name: mad_chain_files(ds, chains, f"{name}.{ext}")
            for name, ext in (("metrics", "json"), ("jacobian", "h5"), ("samples", "h5"))}


def mad_region(ds):
    """The dual-space run whose real-data region judges the samples: generator (e = g(c)), phi, MDN, tau."""
    alpha = mad()["metrics"]["region_alpha"]
    return {"generator": f"results/{ds}/generator/model.pt", "phi": f"results/{ds}/phi/phi.pt",
            "mdn": f"results/{ds}/mdn/model.pt", "tau": f"results/{ds}/conformal/tau_alpha{alpha}.csv"}


def mad_threads():
    return mad()["compute"]["threads"]

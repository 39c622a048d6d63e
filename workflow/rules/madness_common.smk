# Snakemake helpers of the madness study (workflow/rules/madness.smk includes this file): its config section,
# file layout and input functions.

from dualspace.madness.study import SCENARIOS as MAD_SCENARIOS

# A chain is (scenario, w); generation 0 is shared by every chain (its samples by every chain with that w).
MAD = "results/madness"
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

# The self-consuming loops study (docs/madness.md): a diffusion model retrained on its own samples, generation
# after generation, in three scenarios (full_synthetic, fresh, augmented); per generation FID / PRDC in LeNet
# features, t-SNE, the share of samples inside the real-data region of the dual-space run, and the spectrum of the
# denoiser's Jacobian as an early detector. A chain is (scenario, w): results/madness/{ds}/{scenario}/w{w}/gen{g}/.
# Generation 0 (results/madness/{ds}/gen0/) is shared; raising `madness.generations` extends the chains without
# retraining existing generations.
# `snakemake --cores 2 madness` (in `make run`): the chains of `madness.scenarios`.
# `snakemake --cores 2 madness_guidance`: one chain per w of `madness.guidance` (does stronger guidance speed up
# collapse?).

from dualspace.madness.study import SCENARIOS as MAD_SCENARIOS

# Its config section and file layout.
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


wildcard_constraints:
    scenario="|".join(MAD_SCENARIOS),
    w=r"[0-9]+\.[0-9]+",
    g=r"[1-9][0-9]*",
    mad_run=MAD_RUN,
    mad_sample_run=MAD_SAMPLE_RUN,


rule madness_lenet:
    input:
        train="results/{ds}/data/train.h5",
        test="results/{ds}/data/test.h5",
    output:
        f"{MAD}/{{ds}}/lenet.pt",
    params:
        settings=lambda wc: mad()["lenet"],
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/logs/lenet.log",
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(2000),
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/madness_lenet.py"


rule madness_gen0:
    input:
        unpack(mad_gen0_inputs),
    output:
        f"{MAD}/{{ds}}/gen0/model.pt",
    params:
        loop=lambda wc: mad_loop(),
        seed=config["seed"],
        device=lambda wc: mad()["compute"]["device"],
    log:
        f"{MAD}/{{ds}}/gen0/logs/train.log",
    benchmark:
        f"{MAD}/{{ds}}/gen0/benchmarks/train.tsv"
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(3000),
        runtime=120,
    conda:
        ENV
    script:
        "../scripts/madness_gen0.py"


rule madness_gen0_samples:
    input:
        model=f"{MAD}/{{ds}}/gen0/model.pt",
    output:
        f"{MAD}/{{ds}}/gen0/w{{w}}/samples.h5",
    params:
        loop=lambda wc: mad_loop(),
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/gen0/w{{w}}/logs/samples.log",
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(3000),
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/madness_gen0_samples.py"


rule madness_generation:
    input:
        unpack(mad_generation_inputs),
    output:
        model=f"{MAD}/{{ds}}/{{scenario}}/w{{w}}/gen{{g}}/model.pt",
        samples=f"{MAD}/{{ds}}/{{scenario}}/w{{w}}/gen{{g}}/samples.h5",
    params:
        loop=lambda wc: mad_loop(),
        scenario=lambda wc: mad_scenario(wc.scenario, wc.w),
        seed=config["seed"],
        device=lambda wc: mad()["compute"]["device"],
    log:
        f"{MAD}/{{ds}}/{{scenario}}/w{{w}}/gen{{g}}/logs/generation.log",
    benchmark:
        f"{MAD}/{{ds}}/{{scenario}}/w{{w}}/gen{{g}}/benchmarks/generation.tsv"
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(3000),
        runtime=120,
    conda:
        ENV
    script:
        "../scripts/madness_generation.py"


rule madness_metrics:
    input:
        unpack(lambda wc: mad_region(wc.ds)),
        samples=f"{MAD}/{{ds}}/{{mad_sample_run}}/samples.h5",
        test="results/{ds}/data/test.h5",
        lenet=f"{MAD}/{{ds}}/lenet.pt",
    output:
        metrics=f"{MAD}/{{ds}}/{{mad_sample_run}}/metrics.json",
        tsne=f"{MAD}/{{ds}}/{{mad_sample_run}}/tsne.png",
    params:
        settings=lambda wc: mad()["metrics"],
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/{{mad_sample_run}}/logs/metrics.log",
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(2000),
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/madness_metrics.py"


rule madness_jacobian:
    input:
        model=f"{MAD}/{{ds}}/{{mad_run}}/model.pt",
        test="results/{ds}/data/test.h5",
    output:
        f"{MAD}/{{ds}}/{{mad_run}}/jacobian.h5",
    params:
        settings=lambda wc: mad()["jacobian"],
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/{{mad_run}}/logs/jacobian.log",
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(3000),
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/madness_jacobian.py"


rule madness_summary:
    input:
        unpack(lambda wc: mad_summary_inputs(wc.ds, "default")),
    output:
        table=f"{MAD}/{{ds}}/summary.csv",
        detection=f"{MAD}/{{ds}}/detection.csv",
        figures=directory(f"{MAD}/{{ds}}/figures"),
    params:
        chains=lambda wc: mad_chains("default"),
        generations=lambda wc: mad()["generations"],
        detection=lambda wc: mad()["detection"],
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/logs/summary.log",
    threads: 1
    resources:
        mem_mb=job_mb(2000),
        runtime=20,
    conda:
        ENV
    script:
        "../scripts/madness_summary.py"


use rule madness_summary as madness_guidance_summary with:
    input:
        unpack(lambda wc: mad_summary_inputs(wc.ds, "guidance")),
    output:
        table=f"{MAD}/{{ds}}/guidance/summary.csv",
        detection=f"{MAD}/{{ds}}/guidance/detection.csv",
        figures=directory(f"{MAD}/{{ds}}/guidance/figures"),
    params:
        chains=lambda wc: mad_chains("guidance"),
        generations=lambda wc: mad()["generations"],
        detection=lambda wc: mad()["detection"],
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/guidance/logs/summary.log",


rule madness:
    input:
        f"{MAD}/{mad()['dataset']}/summary.csv",


rule madness_guidance:
    input:
        f"{MAD}/{mad()['dataset']}/guidance/summary.csv",

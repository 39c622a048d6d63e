# The mixture-of-VAEs study (docs/mixture_vae.md): K 2-D latent channels, Gumbel routing, channel plots.
# It reads the shared split files results/{ds}/data/{train,test}.h5 (rule prepare_data).
# `snakemake --cores 2 mixture_vae`: the default dataset and variant (part of `rule all` / `make run`).
# `snakemake --cores 2 mixture_vae_ablation`: every variant x seed of `mixture_vae.ablation.digits`.
# `snakemake --cores 2 mixture_vae_mnist`: the same on MNIST (needs mnist.data.root).

from dualspace.mixture_vae.study import run_settings as mixture_vae_run_settings

# Its config section and input functions.
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


wildcard_constraints:
    mrun=MVAE_RUN,


rule mixture_vae_train:
    input:
        train="results/{ds}/data/train.h5",
    output:
        model=f"{MVAE}/{{ds}}/{{mrun}}/model.pt",
        history=f"{MVAE}/{{ds}}/{{mrun}}/history.json",
    params:
        settings=lambda wc: mvae_settings(wc.ds, wc.mrun),
        seed=lambda wc: mvae_seed(wc.mrun),
    log:
        f"{MVAE}/{{ds}}/{{mrun}}/logs/train.log",
    benchmark:
        f"{MVAE}/{{ds}}/{{mrun}}/benchmarks/train.tsv"
    threads: lambda wc: mvae_threads()
    resources:
        mem_mb=job_mb(3000),
        runtime=120,
    conda:
        ENV
    script:
        "../scripts/mixture_vae_train.py"


rule mixture_vae_evaluate:
    input:
        model=f"{MVAE}/{{ds}}/{{mrun}}/model.pt",
        train="results/{ds}/data/train.h5",
        test="results/{ds}/data/test.h5",
    output:
        metrics=f"{MVAE}/{{ds}}/{{mrun}}/metrics.json",
        codes=f"{MVAE}/{{ds}}/{{mrun}}/test_codes.h5",
    params:
        eval=lambda wc: mvae()["eval"],
        seed=lambda wc: mvae_seed(wc.mrun),
    log:
        f"{MVAE}/{{ds}}/{{mrun}}/logs/evaluate.log",
    threads: lambda wc: mvae_threads()
    resources:
        mem_mb=job_mb(3000),
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/mixture_vae_evaluate.py"


rule mixture_vae_figures:
    input:
        model=f"{MVAE}/{{ds}}/{{mrun}}/model.pt",
        history=f"{MVAE}/{{ds}}/{{mrun}}/history.json",
        metrics=f"{MVAE}/{{ds}}/{{mrun}}/metrics.json",
        codes=f"{MVAE}/{{ds}}/{{mrun}}/test_codes.h5",
        test="results/{ds}/data/test.h5",
    output:
        directory(f"{MVAE}/{{ds}}/{{mrun}}/figures"),
    log:
        f"{MVAE}/{{ds}}/{{mrun}}/logs/figures.log",
    threads: 1
    resources:
        mem_mb=job_mb(2000),
        runtime=20,
    conda:
        ENV
    script:
        "../scripts/mixture_vae_figures.py"


rule mixture_vae_kmeans:
    input:
        train="results/{ds}/data/train.h5",
        test="results/{ds}/data/test.h5",
    output:
        f"{MVAE}/{{ds}}/kmeans.json",
    params:
        K=lambda wc: mvae_settings(wc.ds, mvae()["default"]["variant"])["model"]["K"],
        seed=config["seed"],
    log:
        f"{MVAE}/{{ds}}/logs/kmeans.log",
    threads: lambda wc: mvae_threads()
    resources:
        mem_mb=job_mb(3000),
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/mixture_vae_kmeans.py"


rule mixture_vae_ablation_table:
    input:
        metrics=lambda wc: expand(f"{MVAE}/{{ds}}/{{run}}/metrics.json", ds=wc.ds, run=mvae_ablation_runs(wc.ds)),
        kmeans=f"{MVAE}/{{ds}}/kmeans.json",
    output:
        csv=f"{MVAE}/{{ds}}/ablation.csv",
        summary=f"{MVAE}/{{ds}}/ablation_summary.csv",
        figure=report(f"{MVAE}/{{ds}}/ablation.png", category="mixture_vae"),
    params:
        runs=lambda wc: mvae_ablation_runs(wc.ds),
    log:
        f"{MVAE}/{{ds}}/logs/ablation_table.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/mixture_vae_ablation.py"


rule mixture_vae:
    input:
        mvae_default_outputs(mvae()["default"]["dataset"], mvae()["default"]["variant"]),


rule mixture_vae_ablation:
    input:
        f"{MVAE}/digits/ablation.csv",


rule mixture_vae_mnist:
    input:
        f"{MVAE}/mnist/ablation.csv",
        mvae_default_outputs("mnist", mvae()["default"]["variant"]),

# The mixture-of-VAEs study (docs/mixture_vae.md): K 2-D latent channels, Gumbel routing, channel plots.
# It reads the shared split files results/{ds}/data/{train,test}.h5 (rule prepare_data).
# `snakemake --cores 2 mixture_vae`: the default dataset and variant (part of `rule all` / `make run`).
# `snakemake --cores 2 mixture_vae_ablation`: every variant x seed of `mixture_vae.ablation.digits`.
# `snakemake --cores 2 mixture_vae_mnist`: the same on MNIST (needs mnist.data.root).


include: "mixture_vae_common.smk"


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

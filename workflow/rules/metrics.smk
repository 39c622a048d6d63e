# What a researcher reads after a run: results/{ds}/metrics.csv, gathered from one file per alpha (+ FID features
# for image datasets).

rule fid_features:
    input:
        samples="results/{ds}/drafts/samples.h5",
        test="results/{ds}/data/test.h5",
    output:
        "results/{ds}/fid/features.h5",
    params:
        max_drafts=config["metrics"]["fid_max_drafts"],
        max_real=config["metrics"]["fid_max_real"],
        weights=config["metrics"]["fid_weights"],
        seed=config["seed"],
    log:
        "results/{ds}/logs/fid_features.log",
    benchmark:
        "results/{ds}/benchmarks/fid_features.tsv"
    threads: lambda wc: compute(wc.ds)["threads"]
    resources:
        mem_mb=lambda wc: job_mb(compute(wc.ds)["mem_mb"]),
        runtime=30,
        gpu=lambda wc: compute(wc.ds)["gpu"],
    conda:
        ENV
    script:
        "../scripts/fid_features.py"


rule metrics_base:
    input:
        unpack(metrics_extra_inputs),
        test_pairs="results/{ds}/pairs/test.h5",
        test="results/{ds}/data/test.h5",
        samples="results/{ds}/drafts/samples.h5",
        scores="results/{ds}/drafts/scores.h5",
    output:
        "results/{ds}/metrics/base.json",
    log:
        "results/{ds}/logs/metrics_base.log",
    benchmark:
        "results/{ds}/benchmarks/metrics_base.tsv"
    threads: lambda wc: compute(wc.ds)["threads"]
    resources:
        mem_mb=job_mb(3000),
        runtime=15,
    conda:
        ENV
    script:
        "../scripts/metrics_base.py"


# One alpha's rows: adding or changing an alpha recomputes that alpha only (the alpha-independent columns
# come from metrics_base).
rule metrics_alpha:
    input:
        unpack(metrics_extra_inputs),
        tau="results/{ds}/conformal/tau_alpha{alpha}.csv",
        base="results/{ds}/metrics/base.json",
        mdn="results/{ds}/mdn/model.pt",
        test_pairs="results/{ds}/pairs/test.h5",
        calib_pairs="results/{ds}/pairs/calib.h5",
        test="results/{ds}/data/test.h5",
        calib="results/{ds}/data/calib.h5",
        samples="results/{ds}/drafts/samples.h5",
        scores="results/{ds}/drafts/scores.h5",
    output:
        "results/{ds}/metrics/alpha{alpha}.csv",
    params:
        seed=config["seed"],
        mode=config["conformal"]["mode"],
        cluster_bootstrap=config["metrics"]["cluster_bootstrap"],
    log:
        "results/{ds}/logs/metrics_alpha{alpha}.log",
    benchmark:
        "results/{ds}/benchmarks/metrics_alpha{alpha}.tsv"
    threads: 1  # small numpy work and one small classifier (TSTR): the alphas and datasets run side by side
    resources:
        mem_mb=job_mb(3000),
        runtime=15,
    conda:
        ENV
    script:
        "../scripts/metrics_alpha.py"


rule metrics:
    input:
        expand("results/{{ds}}/metrics/alpha{alpha}.csv", alpha=config["alphas"]),
    output:
        "results/{ds}/metrics.csv",
    log:
        "results/{ds}/logs/metrics.log",
    threads: 1
    resources:
        mem_mb=job_mb(500),
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/metrics.py"


rule fidelity:
    input:
        test="results/{ds}/data/test.h5",
        train="results/{ds}/data/train.h5",
        samples="results/{ds}/drafts/samples.h5",
        region=f"results/{{ds}}/regions/alpha{FIGURE_ALPHA}/region.h5",
    output:
        csv="results/{ds}/fidelity.csv",
        png=report(
            "results/{ds}/figures/fidelity.png",
            caption="../report/fidelity.rst",
            category="{ds}",
            labels={"dataset": "{ds}", "figure": "fidelity"},
        ),
    params:
        alpha=FIGURE_ALPHA,
        seed=config["seed"],
        settings=canonical(config["fidelity"]),
    log:
        "results/{ds}/logs/fidelity.log",
    benchmark:
        "results/{ds}/benchmarks/fidelity.tsv"
    threads: 1
    resources:
        mem_mb=job_mb(2000),
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/fidelity.py"

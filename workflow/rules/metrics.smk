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
        mdn="results/{ds}/mdn/model.pt",
        calib_scores="results/{ds}/conformal/scores_calib.h5",
    output:
        base="results/{ds}/metrics/base.json",
        volumes="results/{ds}/metrics/volume_draws.h5",
    params:
        seed=config["seed"],
        mode=config["conformal"]["mode"],
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


# One alpha's rows: adding or changing an alpha recomputes that alpha only, from files made once per dataset
# (metrics_base, score_pairs): no model is loaded, no torch imported.
rule metrics_alpha:
    input:
        unpack(fid_inputs),
        tau="results/{ds}/conformal/tau_alpha{alpha}.csv",
        base="results/{ds}/metrics/base.json",
        volumes="results/{ds}/metrics/volume_draws.h5",
        test_pairs="results/{ds}/pairs/test.h5",
        test_scores="results/{ds}/conformal/scores_test.h5",
        calib_scores="results/{ds}/conformal/scores_calib.h5",
        test="results/{ds}/data/test.h5",
        calib="results/{ds}/data/calib.h5",
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
    threads: 1  # small numpy work: the alphas and datasets run side by side
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


# Train-synthetic-test-real per alpha (series): it trains a classifier, so it is its own job and table, and an
# alpha edit's metrics.csv and figures do not wait for it.
rule tstr_alpha:
    input:
        tau="results/{ds}/conformal/tau_alpha{alpha}.csv",
        phi="results/{ds}/phi/phi.pt",
        samples="results/{ds}/drafts/samples.h5",
        scores="results/{ds}/drafts/scores.h5",
        test="results/{ds}/data/test.h5",
    output:
        "results/{ds}/tstr/alpha{alpha}.csv",
    params:
        seed=config["seed"],
    log:
        "results/{ds}/logs/tstr_alpha{alpha}.log",
    benchmark:
        "results/{ds}/benchmarks/tstr_alpha{alpha}.tsv"
    threads: 1
    resources:
        mem_mb=job_mb(2000),
        runtime=15,
    conda:
        ENV
    script:
        "../scripts/tstr_alpha.py"


rule tstr:
    input:
        expand("results/{{ds}}/tstr/alpha{alpha}.csv", alpha=config["alphas"]),
    output:
        "results/{ds}/tstr.csv",
    log:
        "results/{ds}/logs/tstr.log",
    threads: 1
    resources:
        mem_mb=job_mb(500),
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/tstr.py"


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

# K drafts per class, sampled and scored once; a region for any alpha is a filter over them.


rule sample_drafts:
    input:
        generator="results/{ds}/generator/model.pt",
        phi="results/{ds}/phi/phi.pt",
        mdn="results/{ds}/mdn/model.pt",
    output:
        "results/{ds}/drafts/drafts.h5",
    params:
        device=lambda wc: compute(wc.ds)["device"],
        seed=config["seed"],
        K=config["regions"]["K"],
        sampler=lambda wc: config[wc.ds]["sampler"],
        bf16=lambda wc: config[wc.ds]["generator"]["train"].get("bf16", False),
    log:
        "results/{ds}/logs/sample_drafts.log",
    benchmark:
        "results/{ds}/benchmarks/sample_drafts.tsv"
    threads: lambda wc: compute(wc.ds)["threads"]
    resources:
        mem_mb=lambda wc: job_mb(compute(wc.ds)["mem_mb"]),
        runtime=lambda wc: 60 if compute(wc.ds)["gpu"] == 0 else 240,
        gpu=lambda wc: compute(wc.ds)["gpu"],
    conda:
        ENV
    script:
        "../scripts/sample_drafts.py"


rule select_region:
    input:
        drafts="results/{ds}/drafts/drafts.h5",
        tau="results/{ds}/conformal/tau_alpha{alpha}.csv",
        data="results/{ds}/data/train.h5",
    output:
        region="results/{ds}/regions/alpha{alpha}/region.h5",
        acceptance="results/{ds}/regions/alpha{alpha}/acceptance.csv",
        figure="results/{ds}/regions/alpha{alpha}/representatives.png",
    params:
        m=config["regions"]["m"],
    log:
        "results/{ds}/logs/select_region_alpha{alpha}.log",
    threads: 1
    resources:
        mem_mb=job_mb(2000),
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/select_region.py"

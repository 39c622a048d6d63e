# K drafts per class, sampled once (generator only) and scored apart (phi + MDN): a new phi or MDN rescores,
# it does not resample. A region for any alpha is a filter over the scored drafts.


rule sample_drafts:
    input:
        generator="results/{ds}/generator/model.pt",
    output:
        "results/{ds}/drafts/samples.h5",
    params:
        device=lambda wc: compute(wc.ds)["device"],
        seed=config["seed"],
        K=config["regions"]["K"],
        sampler=lambda wc: sampler_settings(wc.ds),
        bf16=lambda wc: generator_settings(wc.ds).get("train", {}).get("bf16", False),
        quantize=lambda wc: section(wc.ds)["sampler"].get("quantize", True),
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


rule score_drafts:
    input:
        samples="results/{ds}/drafts/samples.h5",
        generator="results/{ds}/generator/model.pt",
        phi="results/{ds}/phi/phi.pt",
        mdn="results/{ds}/mdn/model.pt",
    output:
        "results/{ds}/drafts/scores.h5",
    params:
        device=lambda wc: compute(wc.ds)["device"],
    log:
        "results/{ds}/logs/score_drafts.log",
    benchmark:
        "results/{ds}/benchmarks/score_drafts.tsv"
    threads: lambda wc: compute(wc.ds)["threads"]
    resources:
        mem_mb=lambda wc: job_mb(compute(wc.ds)["mem_mb"]),
        runtime=30,
        gpu=lambda wc: compute(wc.ds)["gpu"],
    conda:
        ENV
    script:
        "../scripts/score_drafts.py"


rule select_region:
    input:
        samples="results/{ds}/drafts/samples.h5",
        scores="results/{ds}/drafts/scores.h5",
        tau="results/{ds}/conformal/tau_alpha{alpha}.csv",
    output:
        region="results/{ds}/regions/alpha{alpha}/region.h5",
        acceptance="results/{ds}/regions/alpha{alpha}/acceptance.csv",
        figure=report(
            "results/{ds}/regions/alpha{alpha}/representatives.png",
            caption="../report/representatives.rst",
            category="{ds}",
            labels={"dataset": "{ds}", "figure": "representatives, alpha {alpha}"},
        ),
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

# phi + PCA (train only), then (e, y, label) pair dumps for every split.


rule fit_phi:
    input:
        "results/{ds}/data/train.h5",
    output:
        "results/{ds}/phi/phi.pt",
    params:
        device=lambda wc: compute(wc.ds)["device"],
        seed=config["seed"],
        settings=lambda wc: section(wc.ds)["phi"],
        version=VERSION,
    log:
        "results/{ds}/logs/fit_phi.log",
    benchmark:
        "results/{ds}/benchmarks/fit_phi.tsv"
    threads: lambda wc: compute(wc.ds)["threads"]
    resources:
        mem_mb=lambda wc: job_mb(compute(wc.ds)["mem_mb"]),
        runtime=lambda wc: 30 if compute(wc.ds)["gpu"] == 0 else 120,
        gpu=lambda wc: compute(wc.ds)["gpu"],
    conda:
        ENV
    script:
        "../scripts/fit_phi.py"


rule dump_pairs:
    input:
        generator="results/{ds}/generator/model.pt",
        phi="results/{ds}/phi/phi.pt",
        split="results/{ds}/data/{split}.h5",
    output:
        "results/{ds}/pairs/{split}.h5",
    params:
        device=lambda wc: compute(wc.ds)["device"],
    log:
        "results/{ds}/logs/dump_pairs_{split}.log",
    threads: lambda wc: compute(wc.ds)["threads"]
    resources:
        mem_mb=lambda wc: job_mb(compute(wc.ds)["mem_mb"]),
        runtime=30,
        gpu=lambda wc: compute(wc.ds)["gpu"],
    conda:
        ENV
    script:
        "../scripts/dump_pairs.py"

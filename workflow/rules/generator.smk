# results/{ds}/data/train.h5 -> results/{ds}/generator/model.pt, by the family `<ds>.generator.family` picks
# (diffusion: EMA weights, config, g(c); class_gaussian: the baseline every learned family must beat).


rule train_generator:
    input:
        "results/{ds}/data/train.h5",
    output:
        "results/{ds}/generator/model.pt",
    params:
        device=lambda wc: compute(wc.ds)["device"],
        seed=config["seed"],
        settings=lambda wc: generator_settings(wc.ds),
        version=VERSION,
    log:
        "results/{ds}/logs/train_generator.log",
    benchmark:
        "results/{ds}/benchmarks/train_generator.tsv"
    threads: lambda wc: compute(wc.ds)["threads"]
    resources:
        mem_mb=lambda wc: job_mb(compute(wc.ds)["mem_mb"]),
        runtime=lambda wc: 60 if compute(wc.ds)["gpu"] == 0 else 24 * 60,
        gpu=lambda wc: compute(wc.ds)["gpu"],
    conda:
        ENV
    script:
        "../scripts/train_generator.py"

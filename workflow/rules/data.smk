# Raw data -> results/{ds}/data/{train,calib,test}.h5 (x, label, normalization + provenance attributes).


rule prepare_data:
    output:
        train="results/{ds}/data/train.h5",
        calib="results/{ds}/data/calib.h5",
        test="results/{ds}/data/test.h5",
    params:
        seed=config["seed"],
        options=lambda wc: section(wc.ds)["data"],
    log:
        "results/{ds}/logs/prepare_data.log",
    benchmark:
        "results/{ds}/benchmarks/prepare_data.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc: job_mb(REGISTRY[wc.ds].prepare_mb),
        runtime=20,
    conda:
        ENV
    script:
        "../scripts/prepare_data.py"

# MDN p(y | e) on train pairs; per-class conformal thresholds on calib pairs, one file per alpha.


rule train_mdn:
    input:
        "results/{ds}/pairs/train.h5",
    output:
        "results/{ds}/mdn/model.pt",
    params:
        seed=config["seed"],
        settings=lambda wc: section(wc.ds)["mdn"],
        version=VERSION,
    log:
        "results/{ds}/logs/train_mdn.log",
    benchmark:
        "results/{ds}/benchmarks/train_mdn.tsv"
    threads: lambda wc: compute(wc.ds)["threads"]
    resources:
        mem_mb=lambda wc: job_mb(compute(wc.ds)["mem_mb"]),
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/train_mdn.py"


# Scores of calib and test pairs, once: every alpha's thresholds and metrics read them without loading the MDN.
rule score_pairs:
    input:
        mdn="results/{ds}/mdn/model.pt",
        pairs="results/{ds}/pairs/{split}.h5",
    output:
        "results/{ds}/conformal/scores_{split}.h5",
    log:
        "results/{ds}/logs/score_pairs_{split}.log",
    threads: 1
    resources:
        mem_mb=job_mb(1000),
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/score_pairs.py"


rule calibrate:
    input:
        scores="results/{ds}/conformal/scores_calib.h5",
    output:
        "results/{ds}/conformal/tau_alpha{alpha}.csv",
    params:
        mode=config["conformal"]["mode"],
    log:
        "results/{ds}/logs/calibrate_alpha{alpha}.log",
    threads: 1
    resources:
        mem_mb=job_mb(1000),
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/calibrate.py"

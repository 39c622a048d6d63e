# What a researcher reads after a run: results/{ds}/metrics.csv.


rule metrics:
    input:
        tau=expand("results/{{ds}}/conformal/tau_alpha{alpha}.csv", alpha=config["alphas"]),
        mdn="results/{ds}/mdn/model.pt",
        test_pairs="results/{ds}/pairs/test.h5",
        drafts="results/{ds}/drafts/drafts.h5",
        generator="results/{ds}/generator/model.pt",
    output:
        "results/{ds}/metrics.csv",
    params:
        alphas=config["alphas"],
        seed=config["seed"],
    log:
        "results/{ds}/logs/metrics.log",
    benchmark:
        "results/{ds}/benchmarks/metrics.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    conda:
        ENV
    script:
        "../scripts/metrics.py"

# Realism (docs/realism.md): can a classifier tell the drafts from real test data, next to the same classifier on
# real train vs real test (the floor)? results/{ds}/realism.csv and its figure, for whatever family made the drafts.

rule realism:
    input:
        samples="results/{ds}/drafts/samples.h5",
        test="results/{ds}/data/test.h5",
        train="results/{ds}/data/train.h5",
    output:
        csv="results/{ds}/realism.csv",
        png=report(
            "results/{ds}/figures/realism.png",
            caption="../report/realism.rst",
            category="{ds}",
            labels={"dataset": "{ds}", "figure": "realism"},
        ),
    params:
        settings=canonical(config["realism"]),
        seed=config["seed"],
    log:
        "results/{ds}/logs/realism.log",
    benchmark:
        "results/{ds}/benchmarks/realism.tsv"
    threads: lambda wc: compute(wc.ds)["threads"]
    resources:
        mem_mb=job_mb(2000),
        runtime=20,
    conda:
        ENV
    script:
        "../scripts/realism.py"

# Figures from metrics.csv, drafts and one region: regenerated in seconds when an alpha changes.

FIGURES = ["calibration", "class_coverage", "acceptance", "distances", "projection", "representatives"]


rule figures:
    input:
        metrics="results/{ds}/metrics.csv",
        drafts="results/{ds}/drafts/drafts.h5",
        test_pairs="results/{ds}/pairs/test.h5",
        region=f"results/{{ds}}/regions/alpha{FIGURE_ALPHA}/region.h5",
        tau=f"results/{{ds}}/conformal/tau_alpha{FIGURE_ALPHA}.csv",
        data="results/{ds}/data/train.h5",
    output:
        **{
            name: report(
                f"results/{{ds}}/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="{ds}",
                labels={"dataset": "{ds}", "figure": name},
            )
            for name in FIGURES
        },
    params:
        alpha=FIGURE_ALPHA,
    log:
        "results/{ds}/logs/figures.log",
    threads: 1
    resources:
        mem_mb=job_mb(2000),
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/figures.py"

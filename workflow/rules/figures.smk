# Figures from metrics.csv and the scored drafts: regenerated in seconds when an alpha changes. (The
# representatives figure of every alpha is drawn by select_region, beside its region.)

FIGURES = ["calibration", "class_coverage", "acceptance", "distances", "projection"]


rule figures:
    input:
        metrics="results/{ds}/metrics.csv",
        scores="results/{ds}/drafts/scores.h5",
        test_pairs="results/{ds}/pairs/test.h5",
        tau=f"results/{{ds}}/conformal/tau_alpha{FIGURE_ALPHA}.csv",
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

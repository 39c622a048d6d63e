# The ABR study (docs/abr.md): one CVAE class over (signal, static parameters, peaks) in two modes, legacy
# (signal given static) and joint (signal + static + peaks from the latent alone), on the simulator
# `abr_simulated` (results/abr_simulated/data/, rule prepare_data: train trains, calib stops early, test evaluates).
# `snakemake --cores 2 abr` (in `make run`): both modes, summary.csv and figures.
# `snakemake --cores 2 abr_dualspace`: the dual-space pipeline on abr_simulated with the CVAE generator family.
# `snakemake --cores 2 abr_epl --config abr='{epl_root: DIR}'`: peaks tracked across the EPL level sweeps in DIR.


include: "abr_common.smk"


wildcard_constraints:
    abr_mode="|".join(ABR_MODES),


rule abr_train:
    input:
        train=lambda wc: abr_split("train"),
        val=lambda wc: abr_split("calib"),
    output:
        model=f"{ABR}/{{abr_mode}}/model.pt",
        history=f"{ABR}/{{abr_mode}}/history.json",
    params:
        settings=lambda wc: abr_settings(wc.abr_mode),
        seed=config["seed"],
    log:
        f"{ABR}/{{abr_mode}}/logs/train.log",
    benchmark:
        f"{ABR}/{{abr_mode}}/benchmarks/train.tsv"
    threads: lambda wc: abr()["compute"]["threads"]
    resources:
        mem_mb=job_mb(2000),
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/abr_train.py"


rule abr_evaluate:
    input:
        model=f"{ABR}/{{abr_mode}}/model.pt",
        test=lambda wc: abr_split("test"),
    output:
        metrics=f"{ABR}/{{abr_mode}}/evaluation.json",
        generated=f"{ABR}/{{abr_mode}}/generated.h5",
    params:
        eval=lambda wc: abr()["eval"],
        seed=config["seed"],
    log:
        f"{ABR}/{{abr_mode}}/logs/evaluate.log",
    benchmark:
        f"{ABR}/{{abr_mode}}/benchmarks/evaluate.tsv"
    threads: lambda wc: abr()["compute"]["threads"]
    resources:
        mem_mb=job_mb(2000),
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/abr_evaluate.py"


rule abr_realism:
    input:
        generated=f"{ABR}/{{abr_mode}}/generated.h5",
        test=lambda wc: abr_split("test"),
        train=lambda wc: abr_split("train"),
    output:
        csv=f"{ABR}/{{abr_mode}}/realism.csv",
        png=f"{ABR}/{{abr_mode}}/realism.png",
    params:
        settings=canonical(config["realism"]),
        seed=config["seed"],
    log:
        f"{ABR}/{{abr_mode}}/logs/realism.log",
    threads: lambda wc: abr()["compute"]["threads"]
    resources:
        mem_mb=job_mb(2000),
        runtime=20,
    conda:
        ENV
    script:
        "../scripts/abr_realism.py"


rule abr_summary:
    input:
        metrics=expand(f"{ABR}/{{abr_mode}}/evaluation.json", abr_mode=abr_modes()),
        generated=expand(f"{ABR}/{{abr_mode}}/generated.h5", abr_mode=abr_modes()),
        history=expand(f"{ABR}/{{abr_mode}}/history.json", abr_mode=abr_modes()),
        models=expand(f"{ABR}/{{abr_mode}}/model.pt", abr_mode=abr_modes()),
        test=lambda wc: abr_split("test"),
    output:
        table=f"{ABR}/summary.csv",
        figures=directory(f"{ABR}/figures"),
    params:
        modes=abr_modes(),
        seed=config["seed"],
    log:
        f"{ABR}/logs/summary.log",
    threads: 1
    resources:
        mem_mb=job_mb(2000),
        runtime=20,
    conda:
        ENV
    script:
        "../scripts/abr_summary.py"


rule abr_epl_sweeps:
    output:
        table=f"{ABR}/epl/tracks.csv",
        figures=directory(f"{ABR}/epl/figures"),
    params:
        root=lambda wc: abr()["epl_root"],
        picker=lambda wc: abr()["epl_picker"],
    log:
        f"{ABR}/epl/logs/tracks.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/abr_epl.py"


rule abr:
    input:
        expand(f"{ABR}/{{abr_mode}}/realism.csv", abr_mode=abr_modes()),
        f"{ABR}/summary.csv",


rule abr_dualspace:
    input:
        expand("results/{ds}/metrics.csv", ds=[abr()["dataset"]]),
        expand("results/{ds}/fidelity.csv", ds=[abr()["dataset"]]),
        expand("results/{ds}/figures/{name}.png", ds=[abr()["dataset"]], name=FIGURES),


rule abr_epl:
    input:
        f"{ABR}/epl/tracks.csv",

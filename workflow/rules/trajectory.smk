# The trajectory study (docs/trajectory.md): human mouse paths -> (dx, dy) diffusion + timing heads -> metrics.
# `snakemake --cores 2 trajectory`: the default configuration (part of `rule all` / `make run`).
# `snakemake --cores 2 trajectory_study`: every timing variant of the conditioning study and the three baselines.


include: "trajectory_common.smk"


wildcard_constraints:
    tsplit="|".join(TRAJ_SPLITS),
    tvariant="|".join(traj_variants()),
    tmodel="|".join(TRAJ_MODELS),
    ttable="metrics|study",


rule trajectory_data:
    output:
        **{s: f"{TRAJ}/data/{s}.h5" for s in TRAJ_SPLITS},
        stats=f"{TRAJ}/data/geometry_stats.json",
        report=f"{TRAJ}/data/load_report.json",
    params:
        data=lambda wc: traj()["data"],
        T_multiple=lambda wc: traj_levels(),
        seed=config["seed"],
    log:
        f"{TRAJ}/logs/trajectory_data.log",
    threads: 1
    resources:
        mem_mb=job_mb(2000),
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/trajectory_data.py"


rule trajectory_timing_cache:
    input:
        f"{TRAJ}/data/{{tsplit}}.h5",
    output:
        f"{TRAJ}/timing/cache_{{tsplit}}.h5",
    log:
        f"{TRAJ}/logs/trajectory_timing_cache_{{tsplit}}.log",
    threads: 1
    resources:
        mem_mb=job_mb(1000),
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/trajectory_timing_cache.py"


rule trajectory_geometry:
    input:
        train=f"{TRAJ}/data/train.h5",
        stats=f"{TRAJ}/data/geometry_stats.json",
    output:
        f"{TRAJ}/geometry/model.pt",
    params:
        settings=lambda wc: {k: traj()["geometry"][k] for k in ("model", "train")},
        length_k=lambda wc: traj()["geometry"]["length_k"],
        seed=config["seed"],
        joint=False,
    log:
        f"{TRAJ}/logs/trajectory_geometry.log",
    benchmark:
        f"{TRAJ}/benchmarks/trajectory_geometry.tsv"
    threads: lambda wc: traj_threads()
    resources:
        mem_mb=job_mb(2000),
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/trajectory_geometry.py"


use rule trajectory_geometry as trajectory_joint with:
    input:
        train=f"{TRAJ}/data/train.h5",
    output:
        f"{TRAJ}/joint/model.pt",
    params:
        settings=lambda wc: {k: traj()["geometry"][k] for k in ("model", "train")},
        length_k=lambda wc: traj()["geometry"]["length_k"],
        seed=config["seed"],
        joint=True,
    log:
        f"{TRAJ}/logs/trajectory_joint.log",
    benchmark:
        f"{TRAJ}/benchmarks/trajectory_joint.tsv"


rule trajectory_sample:
    input:
        model=f"{TRAJ}/{{gen}}/model.pt",
        test=f"{TRAJ}/data/test.h5",
    output:
        f"{TRAJ}/{{gen}}/samples.h5",
    wildcard_constraints:
        gen="geometry|joint",
    params:
        sampler=lambda wc: traj()["sampler"],
        endpoint=lambda wc: traj()["geometry"]["endpoint"],
        seed=config["seed"],
    log:
        f"{TRAJ}/logs/trajectory_sample_{{gen}}.log",
    benchmark:
        f"{TRAJ}/benchmarks/trajectory_sample_{{gen}}.tsv"
    threads: lambda wc: traj_threads()
    resources:
        mem_mb=job_mb(2000),
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/trajectory_sample.py"


rule trajectory_timing:
    input:
        unpack(traj_timing_inputs),
    output:
        f"{TRAJ}/timing/{{tvariant}}/model.pt",
    params:
        settings=lambda wc: traj_timing_settings(wc.tvariant),
        seed=config["seed"],
    log:
        f"{TRAJ}/logs/trajectory_timing_{{tvariant}}.log",
    benchmark:
        f"{TRAJ}/benchmarks/trajectory_timing_{{tvariant}}.tsv"
    threads: lambda wc: traj_threads()
    resources:
        mem_mb=job_mb(2000),
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/trajectory_timing.py"


rule trajectory_evaluate:
    input:
        unpack(traj_eval_inputs),
    output:
        csv=f"{TRAJ}/eval/{{tmodel}}.csv",
        h5=f"{TRAJ}/eval/{{tmodel}}.h5",
    params:
        eval_assign=lambda wc: traj()["timing"]["eval_assign"],
        eval=lambda wc: traj()["eval"],
        seed=config["seed"],
    log:
        f"{TRAJ}/logs/trajectory_evaluate_{{tmodel}}.log",
    benchmark:
        f"{TRAJ}/benchmarks/trajectory_evaluate_{{tmodel}}.tsv"
    threads: lambda wc: traj_threads()
    resources:
        mem_mb=job_mb(2000),
        runtime=20,
    conda:
        ENV
    script:
        "../scripts/trajectory_evaluate.py"


rule trajectory_table:
    input:
        lambda wc: expand(f"{TRAJ}/eval/{{m}}.csv", m=traj_table_models(wc)),
    output:
        f"{TRAJ}/{{ttable}}.csv",
    log:
        f"{TRAJ}/logs/trajectory_table_{{ttable}}.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/trajectory_table.py"


TRAJ_FIGURES = ["real_paths", "paths", "histograms", "duration_distance"]


rule trajectory_figures:
    input:
        test=f"{TRAJ}/data/test.h5",
        evals=lambda wc: expand(f"{TRAJ}/eval/{{m}}.h5", m=traj_table_models(wc)),
    output:
        **{name: report(f"{TRAJ}/figures/{{ttable}}/{name}.png", category="trajectory") for name in TRAJ_FIGURES},
    params:
        models=traj_table_models,
    log:
        f"{TRAJ}/logs/trajectory_figures_{{ttable}}.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/trajectory_figures.py"


rule trajectory:
    input:
        f"{TRAJ}/metrics.csv",
        expand(f"{TRAJ}/timing/cache_{{s}}.h5", s=TRAJ_SPLITS),
        expand(f"{TRAJ}/figures/metrics/{{name}}.png", name=TRAJ_FIGURES),


rule trajectory_study:
    input:
        f"{TRAJ}/study.csv",
        expand(f"{TRAJ}/figures/study/{{name}}.png", name=TRAJ_FIGURES),

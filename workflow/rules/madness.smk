# The self-consuming loops study (docs/madness.md): a diffusion model retrained on its own samples, generation
# after generation, in three scenarios (full_synthetic, fresh, augmented); per generation FID / PRDC in LeNet
# features, t-SNE, the share of samples inside the real-data region of the dual-space run, and the spectrum of the
# denoiser's Jacobian as an early detector. A chain is (scenario, w): results/madness/{ds}/{scenario}/w{w}/gen{g}/.
# Generation 0 (results/madness/{ds}/gen0/) is shared; raising `madness.generations` extends the chains without
# retraining existing generations.
# `snakemake --cores 2 madness` (in `make run`): the chains of `madness.scenarios`.
# `snakemake --cores 2 madness_guidance`: one chain per w of `madness.guidance` (does stronger guidance speed up
# collapse?).


include: "madness_common.smk"


wildcard_constraints:
    scenario="|".join(MAD_SCENARIOS),
    w=r"[0-9]+\.[0-9]+",
    g=r"[1-9][0-9]*",
    mad_run=MAD_RUN,
    mad_sample_run=MAD_SAMPLE_RUN,


rule madness_lenet:
    input:
        train="results/{ds}/data/train.h5",
        test="results/{ds}/data/test.h5",
    output:
        f"{MAD}/{{ds}}/lenet.pt",
    params:
        settings=lambda wc: mad()["lenet"],
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/logs/lenet.log",
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(2000),
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/madness_lenet.py"


rule madness_gen0:
    input:
        unpack(mad_gen0_inputs),
    output:
        f"{MAD}/{{ds}}/gen0/model.pt",
    params:
        loop=lambda wc: mad_loop(),
        seed=config["seed"],
        device=lambda wc: mad()["compute"]["device"],
    log:
        f"{MAD}/{{ds}}/gen0/logs/train.log",
    benchmark:
        f"{MAD}/{{ds}}/gen0/benchmarks/train.tsv"
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(3000),
        runtime=120,
    conda:
        ENV
    script:
        "../scripts/madness_gen0.py"


rule madness_gen0_samples:
    input:
        model=f"{MAD}/{{ds}}/gen0/model.pt",
    output:
        f"{MAD}/{{ds}}/gen0/w{{w}}/samples.h5",
    params:
        loop=lambda wc: mad_loop(),
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/gen0/w{{w}}/logs/samples.log",
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(3000),
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/madness_gen0_samples.py"


rule madness_generation:
    input:
        unpack(mad_generation_inputs),
    output:
        model=f"{MAD}/{{ds}}/{{scenario}}/w{{w}}/gen{{g}}/model.pt",
        samples=f"{MAD}/{{ds}}/{{scenario}}/w{{w}}/gen{{g}}/samples.h5",
    params:
        loop=lambda wc: mad_loop(),
        scenario=lambda wc: mad_scenario(wc.scenario, wc.w),
        seed=config["seed"],
        device=lambda wc: mad()["compute"]["device"],
    log:
        f"{MAD}/{{ds}}/{{scenario}}/w{{w}}/gen{{g}}/logs/generation.log",
    benchmark:
        f"{MAD}/{{ds}}/{{scenario}}/w{{w}}/gen{{g}}/benchmarks/generation.tsv"
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(3000),
        runtime=120,
    conda:
        ENV
    script:
        "../scripts/madness_generation.py"


rule madness_metrics:
    input:
        unpack(lambda wc: mad_region(wc.ds)),
        samples=f"{MAD}/{{ds}}/{{mad_sample_run}}/samples.h5",
        test="results/{ds}/data/test.h5",
        lenet=f"{MAD}/{{ds}}/lenet.pt",
    output:
        metrics=f"{MAD}/{{ds}}/{{mad_sample_run}}/metrics.json",
        tsne=f"{MAD}/{{ds}}/{{mad_sample_run}}/tsne.png",
    params:
        settings=lambda wc: mad()["metrics"],
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/{{mad_sample_run}}/logs/metrics.log",
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(2000),
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/madness_metrics.py"


rule madness_jacobian:
    input:
        model=f"{MAD}/{{ds}}/{{mad_run}}/model.pt",
        test="results/{ds}/data/test.h5",
    output:
        f"{MAD}/{{ds}}/{{mad_run}}/jacobian.h5",
    params:
        settings=lambda wc: mad()["jacobian"],
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/{{mad_run}}/logs/jacobian.log",
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(3000),
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/madness_jacobian.py"


rule madness_summary:
    input:
        unpack(lambda wc: mad_summary_inputs(wc.ds, "default")),
    output:
        table=f"{MAD}/{{ds}}/summary.csv",
        detection=f"{MAD}/{{ds}}/detection.csv",
        figures=directory(f"{MAD}/{{ds}}/figures"),
    params:
        chains=lambda wc: mad_chains("default"),
        generations=lambda wc: mad()["generations"],
        detection=lambda wc: mad()["detection"],
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/logs/summary.log",
    threads: 1
    resources:
        mem_mb=job_mb(2000),
        runtime=20,
    conda:
        ENV
    script:
        "../scripts/madness_summary.py"


use rule madness_summary as madness_guidance_summary with:
    input:
        unpack(lambda wc: mad_summary_inputs(wc.ds, "guidance")),
    output:
        table=f"{MAD}/{{ds}}/guidance/summary.csv",
        detection=f"{MAD}/{{ds}}/guidance/detection.csv",
        figures=directory(f"{MAD}/{{ds}}/guidance/figures"),
    params:
        chains=lambda wc: mad_chains("guidance"),
        generations=lambda wc: mad()["generations"],
        detection=lambda wc: mad()["detection"],
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/guidance/logs/summary.log",


rule madness_realism:
    input:
        samples=lambda wc: mad_chain_files(wc.ds, mad_chains("default"), "samples.h5"),
        train="results/{ds}/data/train.h5",
        test="results/{ds}/data/test.h5",
    output:
        csv=f"{MAD}/{{ds}}/realism.csv",
        png=f"{MAD}/{{ds}}/realism.png",
    params:
        chains=lambda wc: mad_chains("default"),
        generations=lambda wc: mad()["generations"],
        settings=canonical(config["realism"]),
        seed=config["seed"],
    log:
        f"{MAD}/{{ds}}/logs/realism.log",
    threads: lambda wc: mad_threads()
    resources:
        mem_mb=job_mb(2000),
        runtime=20,
    conda:
        ENV
    script:
        "../scripts/madness_realism.py"


rule madness:
    input:
        f"{MAD}/{mad()['dataset']}/summary.csv",
        f"{MAD}/{mad()['dataset']}/realism.csv",


rule madness_guidance:
    input:
        f"{MAD}/{mad()['dataset']}/guidance/summary.csv",

"""The Snakemake spine: default DAG, lint, config rejections, and a real prepare_data run."""

from __future__ import annotations

import re

import h5py
import pytest
import yaml

from conftest import ROOT, job_counts, snakemake


def test_default_target_dry_run(workdir):
    proc = snakemake("-n", cwd=workdir, check=True)
    out = proc.stdout + proc.stderr
    jobs = job_counts(out)
    # digits and hapt, and abr_simulated whose splits the abr study reads (no generator: not in `datasets`)
    assert jobs["prepare_data"] == 3 and jobs["train_generator"] == 2 and jobs["all"] == 1
    assert jobs["abr_train"] == 2 and "results/abr_simulated/generator/model.pt" not in out
    for ds in ("digits", "hapt"):
        assert f"results/{ds}/data/train.h5" in out and f"results/{ds}/generator/model.pt" in out


def test_full_scale_dag_resolves_under_the_slurm_profile(workdir):
    """`snakemake -n --profile workflow/profiles/slurm results/cifar10/metrics.csv` (and har): the whole DAG,
    with the GPU request, the threads and the job-step memory that the slurm profile turns into sbatch flags."""
    proc = snakemake("results/cifar10/metrics.csv", "results/har/metrics.csv", "-n", "--profile",
                     "workflow/profiles/slurm", cwd=workdir, check=True)
    out = proc.stdout + proc.stderr
    jobs = job_counts(out)
    assert jobs == {"prepare_data": 2, "fit_phi": 2, "train_generator": 2, "dump_pairs": 6, "train_mdn": 2,
                    "score_pairs": 4, "calibrate": 8, "sample_drafts": 2, "score_drafts": 2, "fid_features": 1, "metrics_base": 2,
                    "metrics_alpha": 8, "metrics": 2, "total": 43}, jobs
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    train = re.search(r"^rule train_generator:.*?wildcards: ds=cifar10.*?resources: ([^\n]+)", out, re.S | re.M)
    resources = dict(kv.split("=", 1) for kv in train.group(1).split(", "))
    assert resources["gpu"] == str(config["cifar10"]["compute"]["gpu"]) == "1"
    assert int(resources["mem_mb"]) == config["cifar10"]["compute"]["mem_mb"] + 512  # + the job-step process
    profile = yaml.safe_load((workdir / "workflow/profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm" and "cpus_per_task" not in profile.get("default-resources", {})
    # config/full-scale.yaml: rule all over both full-scale datasets, figures and regions included
    proc = snakemake("-n", "--profile", "workflow/profiles/slurm", "--configfile", "config/full-scale.yaml",
                     cwd=workdir, check=True)
    jobs = job_counts(proc.stdout)
    # cifar10 and har; and mnist's generator, phi and MDN, whose real-data region judges the self-consuming loops
    assert jobs["train_generator"] == 3 and jobs["figures"] == 2 and jobs["select_region"] == 8, jobs
    assert jobs["madness_generation"] == 3 * 19 and "results/madness/mnist/summary.csv" in proc.stdout
    assert "results/cifar10/figures/calibration.png" in proc.stdout and "results/digits" not in proc.stdout


def test_lint_is_clean():
    proc = snakemake("--lint", cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr


def _with(config: dict, dotted: str, value):
    node = config
    *path, last = dotted.split(".")
    for key in path:
        node = node[key]
    node[last] = value
    return config


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("alphas", [0.5, 1.5], r"alphas\[1\]: 1\.5 is greater than or equal to the maximum of 1"),
        ("alphas", [0.0, 0.9], r"alphas\[0\]: 0\.0 is less than or equal to the minimum of 0"),
        ("datasets", ["digits", "imagenet"], r"datasets\[1\]: 'imagenet' is not one of"),
        ("cifar10.data.n_calib", -5, r"cifar10\.data\.n_calib: -5 is less than the minimum"),
        ("regions.K", 0, r"regions\.K: 0 is less than the minimum of 1"),
        ("hapt.data.overlap", 1.0, r"hapt\.data\.overlap"),
        ("digits.data.calib_fraction", 0.9, r"digits\.data\.calib_fraction \+ digits\.data\.test_fraction"),
        ("hapt.data.windwo", 64, r"hapt\.data: Additional properties are not allowed \('windwo'"),
    ],
)
def test_bad_config_stops_before_any_job(workdir, key, value, expected):
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    (workdir / "bad.yaml").write_text(yaml.safe_dump(_with(config, key, value)))
    proc = snakemake("--cores", "1", "--configfile", "bad.yaml", cwd=workdir)
    assert proc.returncode != 0
    assert re.search(expected, proc.stdout + proc.stderr), proc.stdout + proc.stderr
    assert not (workdir / "results").exists()


def test_prepare_data_rule_runs(workdir):
    snakemake("results/digits/data/calib.h5", "--cores", "1", cwd=workdir, check=True)
    with h5py.File(workdir / "results/digits/data/calib.h5") as f:
        assert f["x"].shape[1:] == (1, 8, 8) and f.attrs["split"] == "calib"
    assert (workdir / "results/digits/logs/prepare_data.log").read_text().count("examples") == 3
    # nothing left to do on a second call
    proc = snakemake("results/digits/data/calib.h5", "-n", cwd=workdir, check=True)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_missing_raw_data_fails_the_job_with_the_path(workdir):
    proc = snakemake("results/har/data/train.h5", "--cores", "1", cwd=workdir)
    assert proc.returncode != 0
    log = (workdir / "results/har/logs/prepare_data.log").read_text()
    assert "UCI HAR Dataset" in log and "har.data.root" in log
    assert not (workdir / "results/har/data").exists() or not any((workdir / "results/har/data").iterdir())


def tiny_config(workdir, **overrides):
    """Write tiny.yaml: the default config with generators shrunk to seconds of CPU time."""
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    for ds in ("digits", "hapt"):
        gen = config[ds]["generator"]["diffusion"]
        gen["net"].update(base_channels=8, channel_mults=[1, 2], blocks_per_level=1)
        gen["train"].update(steps=6, batch_size=16, checkpoint_every=3)
        config[ds]["compute"]["threads"] = 1
    for key, value in overrides.items():
        _with(config, key, value)
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    return "tiny.yaml"


def test_train_generator_rule(workdir):
    cfg = tiny_config(workdir)
    snakemake("results/hapt/generator/model.pt", "--cores", "2", "--configfile", cfg, cwd=workdir, check=True)
    from dualspace.generator import load_generator

    gen = load_generator(workdir / "results/hapt/generator/model.pt", dataset="hapt", shape=(9, 128), n_classes=6)
    assert gen.embed([0, 5]).shape == (2, 64)
    log = (workdir / "results/hapt/logs/train_generator.log").read_text()
    assert "step 6 loss" in log and "train generator" in log  # log file with the progress bar
    assert not (workdir / "results/hapt/generator/resume.pt").exists()


def test_killed_train_generator_resumes(workdir):
    # SIGKILL snakemake and its job once the first resume checkpoint exists; the rerun continues from it
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    cfg = tiny_config(workdir, **{"digits.generator.diffusion.train.steps": 600,
                                   "digits.generator.diffusion.train.checkpoint_every": 20})
    exe = Path(sys.executable).with_name("snakemake")
    target = "results/digits/generator/model.pt"
    resume = workdir / "results/digits/generator/resume.pt"
    proc = subprocess.Popen([str(exe), target, "--cores", "1", "--configfile", cfg], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while not resume.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the hardest interruption: no cleanup at all
    proc.wait()
    assert resume.exists() and not (workdir / target).exists()

    snakemake("--unlock", "--configfile", cfg, cwd=workdir, check=True)  # a SIGKILL leaves Snakemake's lock
    snakemake(target, "--cores", "1", "--configfile", cfg, "--rerun-incomplete", cwd=workdir, check=True)
    log = (workdir / "results/digits/logs/train_generator.log").read_text()
    step = int(re.search(r"resuming from \S+ at step (\d+)", log).group(1))
    assert step >= 20 and step % 20 == 0
    assert "step 600 loss" in log and not resume.exists()


def _default_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def test_a_config_needs_only_the_sections_it_uses():
    from dualspace.config import config_problems

    config = _default_config()
    for ds in ("hapt", "cifar10", "har", "mnist"):
        del config[ds]
    config["datasets"] = ["digits"]
    assert config_problems(config, SCHEMA) == []
    del config["digits"]
    assert config_problems(config, SCHEMA) == [  # the self-consuming loops study reads digits too
        "config key datasets lists 'digits' but there is no 'digits' section",
        "config key madness.dataset: 'digits' has no config section; its split files and dual-space run (the "
        "real-data region) come from there"]


def test_dataset_sections_are_checked_against_the_registry():
    from dualspace.config import config_problems

    config = _default_config()
    config["imagenet"] = config["digits"]
    config["digits"] = {**config["digits"], "data": {"calib_fraction": 0.2, "n_calib": 5}}
    problems = config_problems(config, SCHEMA)
    assert any(p.startswith("config key imagenet: not a setting, a study or a dataset of the registry") for p in problems)
    assert any(re.match(r"config key digits\.data: Additional properties are not allowed \('n_calib'", p)
               for p in problems), problems


def test_generator_family_switch_and_its_schema():
    from dualspace.config import config_problems

    config = _default_config()
    config["digits"]["generator"]["family"] = "class_gaussian"
    assert config_problems(config, SCHEMA) == []
    config["digits"]["generator"]["class_gaussian"]["steps"] = 10  # a diffusion-only key in the wrong family
    assert config_problems(config, SCHEMA) == [
        "config key digits.generator.class_gaussian: Additional properties are not allowed ('steps' was unexpected)"]
    del config["digits"]["generator"]["class_gaussian"]
    assert any("digits.generator: 'class_gaussian' is a required property" in p
               for p in config_problems(config, SCHEMA))
    config = _default_config()  # no `family`: the default (diffusion), and only its sections are needed
    del config["digits"]["generator"]["family"]
    for section in ("generator", "sampler"):
        config["digits"][section] = {"diffusion": config["digits"][section]["diffusion"]}
    assert config_problems(config, SCHEMA) == []
    del config["digits"]["sampler"]["diffusion"]
    assert any("digits.sampler: 'diffusion' is a required property" in p for p in config_problems(config, SCHEMA))
    config = _default_config()
    config["digits"]["generator"]["family"] = "gan"
    assert any("digits.generator.family: 'gan' is not one of ['diffusion', 'class_gaussian', 'mixture_vae', 'cvae']" in p
               for p in config_problems(config, SCHEMA))


def test_stages_and_the_registry_do_not_load_the_diffusion_family():
    """Calibration, regions, metrics and figures never need the diffusion code (it loads only for a diffusion
    checkpoint)."""
    import subprocess
    import sys

    code = ("import sys, dualspace.config, dualspace.generator\n"
            "import dualspace.stages.data, dualspace.stages.features, dualspace.stages.density\n"
            "import dualspace.stages.regions, dualspace.stages.metrics, dualspace.stages.figures\n"
            "import dualspace.stages.generator\n"
            "print(sorted(m for m in sys.modules if m.startswith('dualspace.diffusion')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


@pytest.mark.parametrize("same", [True, False])
def test_madness_generation0_reuses_the_dual_space_generator_when_trained_the_same_way(workdir, same):
    """madness.generator equal to digits.generator.diffusion with every train example: generation 0 is a copy of
    results/digits/generator/model.pt (its job reads that file); one setting apart, it trains its own."""
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    m = config["madness"]
    m["generator"] = dict(config["digits"]["generator"]["diffusion"])
    if not same:
        m["generator"]["schedule"] = "linear"
    m["gen0_real"] = None
    m["scenarios"].pop("fresh")  # no real pool left for it
    (workdir / "reuse.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake("results/madness/digits/gen0/model.pt", "-n", "--configfile", "reuse.yaml", cwd=workdir,
                     check=True)
    job = re.search(r"^rule madness_gen0:\n(.*?)\n\n", proc.stdout, re.S | re.M).group(1)
    assert ("results/digits/generator/model.pt" in job) == same, job


def test_the_memoised_config_check_finds_what_the_full_check_finds(tmp_path):
    from dualspace.config import config_problems, config_problems_memo

    good = _default_config()
    assert config_problems_memo(good, SCHEMA, tmp_path) == [] == config_problems(good, SCHEMA)
    marks = set(tmp_path.iterdir())
    assert len(marks) == 1 and config_problems_memo(good, SCHEMA, tmp_path) == []  # the pass is reused
    bad = _default_config()  # a problem only the settings dataclasses see (not the schema)
    bad["mixture_vae"]["default"]["variant"] = "no_such_variant"
    expected = config_problems(bad, SCHEMA)
    assert expected and config_problems_memo(bad, SCHEMA, tmp_path) == expected
    assert config_problems_memo(bad, SCHEMA, tmp_path) == expected and set(tmp_path.iterdir()) == marks
    schema = tmp_path / "schema.yaml"  # another schema file: checked again, its own mark
    schema.write_text(SCHEMA.read_text() + "\n# edited\n")
    assert config_problems_memo(good, schema, tmp_path) == [] and len(set(tmp_path.iterdir()) - marks) == 2


def test_the_config_check_runs_where_its_memo_cannot_be_written(tmp_path):
    from dualspace.config import config_problems_memo

    blocker = tmp_path / "memo"
    blocker.write_text("a file where the memo folder would go")
    bad = _default_config()
    bad["alphas"] = [0.5, 1.5]
    assert config_problems_memo(_default_config(), SCHEMA, blocker) == []
    assert any(p.startswith("config key alphas[1]") for p in config_problems_memo(bad, SCHEMA, blocker))

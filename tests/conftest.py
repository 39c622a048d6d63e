"""Shared fixtures: repository paths and a runner for the Snakemake CLI of the project's venv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def snakemake(*args: str, cwd: Path = ROOT, check: bool = False, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess:
    """Run the venv's snakemake with `args` in `cwd` (extra environment `env`); returns the completed process."""
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


WORKFLOW_FILES = ("Snakefile", "workflow", "config", "environment.yml")


def copy_workflow(dst: Path) -> Path:
    """A copy of the workflow (Snakefile, workflow/, config/, environment.yml) in `dst`, so runs never touch results/."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = ROOT / name
        shutil.copytree(src, dst / name) if src.is_dir() else shutil.copy(src, dst / name)
    return dst


def job_counts(text: str) -> dict[str, int]:
    """Jobs per rule (and `total`) from the job-stats table Snakemake prints for a run or a dry run."""
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", text, flags=re.M)}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the workflow in a temp dir (see `copy_workflow`)."""
    return copy_workflow(tmp_path)


ALPHAS = [0.5, 0.8, 0.9, 0.95]


def tiny(config: dict) -> dict:
    """The default config shrunk to seconds per stage: digits through the diffusion family, hapt through the
    class_gaussian baseline (so both families run every stage), the trajectory study's default variant, the
    mixture-of-VAEs study's default run, both modes of the ABR study and three generations of every
    self-consuming chain."""
    config["alphas"] = ALPHAS
    config["regions"].update(K=16, m=4)
    config["metrics"].update(fid_max_drafts=12, fid_max_real=12)
    config["realism"].update(folds=2, min_rows=4, cnn_epochs=1, cnn_max_steps=2, cnn_width=4)
    for ds in ("digits", "hapt"):
        c = config[ds]
        c["generator"]["diffusion"]["net"].update(base_channels=8, channel_mults=[1, 2], blocks_per_level=1)
        c["generator"]["diffusion"]["train"].update(steps=10, batch_size=16, checkpoint_every=5)
        c["sampler"]["diffusion"].update(steps=5)
        c["phi"].update(epochs=1)
        c["mdn"].update(max_epochs=30, patience=5)
        c["compute"]["threads"] = 1
    config["hapt"]["generator"].update(family="class_gaussian")
    config["hapt"]["generator"]["class_gaussian"].update(rank=4)
    t = config["trajectory"]
    t["geometry"]["model"].update(base_channels=8, attention_heads=0, diffusion_steps=20)
    t["geometry"]["train"].update(steps=10, batch_size=16)
    t["sampler"].update(steps=4)
    t["timing"]["train"].update(steps=10, hidden=8, step_hidden=8)
    t["compute"]["threads"] = 1
    t["eval"]["per_feature"] = False
    m = config["mixture_vae"]
    m["model"].update(K=4, trunk=[8, 16], hidden=32, embed_dim=8)
    m["train"].update(epochs=2, anneal_epochs=1, film_warmup_epochs=0, start_channels=None)
    m["datasets"]["digits"] = {}
    m["eval"]["max_plot"] = 100
    m["compute"]["threads"] = 1
    config["abr_simulated"]["data"].update(n_train=200, n_calib=100, n_test=100)
    a = config["abr"]
    a["model"].update(latent_dim=4, conv_channels=[4], encoder_hidden=[16], hidden=[16])
    a["train"].update(epochs=2, batch_size=32)
    a["eval"].update(n_generate=60, max_latent_draws=500, c2st_folds=2)
    a["compute"]["threads"] = 1
    g = config["madness"]  # 3 generations: generation 2 of fresh must take real examples neither 0 nor 1 saw
    g.update(generations=3, n_samples=40, gen0_real=1000)
    g["generator"]["net"].update(base_channels=8, cond_dim=8)
    g["generator"]["train"].update(steps=10, batch_size=16)
    g["generation_train"].update(epochs=1)
    g["sampler"].update(steps=4)
    g["scenarios"]["fresh"].update(n_synthetic=20, n_real=30)
    g["lenet"].update(epochs=1)
    g["metrics"].update(fid_bootstrap=10, tsne_points=30)
    g["jacobian"].update(probes=4, timesteps=[10, 150])
    g["detection"].update(bootstrap=50)
    return config


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A complete tiny run of `rule all` in a temp copy of the workflow (tests must not change its files)."""
    wd = copy_workflow(tmp_path_factory.mktemp("pipeline"))
    config = tiny(yaml.safe_load((wd / "config" / "config.yaml").read_text()))
    (wd / "tiny.yaml").write_text(yaml.safe_dump(config))
    snakemake("--cores", "2", "--configfile", "tiny.yaml", cwd=wd, check=True)
    return wd

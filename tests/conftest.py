"""Shared fixtures: repository paths and a runner for the Snakemake CLI of the project's venv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def snakemake(*args: str, cwd: Path = ROOT, check: bool = False) -> subprocess.CompletedProcess:
    """Run the venv's snakemake with `args` in `cwd`; returns the completed process (text output)."""
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
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

"""Shared fixtures: repository paths and a runner for the Snakemake CLI of the project's venv."""

from __future__ import annotations

import os
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


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the workflow (Snakefile, workflow/, config/, environment.yml) in a temp dir, so runs never touch results/."""
    for name in ("Snakefile", "workflow", "config", "environment.yml"):
        src = ROOT / name
        dst = tmp_path / name
        if src.is_dir():
            import shutil

            shutil.copytree(src, dst)
        else:
            dst.write_bytes(src.read_bytes())
    return tmp_path

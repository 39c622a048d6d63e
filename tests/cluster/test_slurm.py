"""The tiny DAG on a real SLURM cluster through workflow/profiles/slurm (run by `make test-cluster`).

tests/cluster/slurm-cluster.sh starts munged, slurmctld and slurmd for one node on this machine and
runs these tests with SLURM_CONF set; without such a cluster they are skipped. Checked: every output
of `rule all` exists, every job went through the scheduler (its SLURM log and its record in the job
completion file), the outputs equal a local run's with the same seed byte for byte (tau tables first),
and a failing rule fails the run without leaving its output.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import copy_workflow, snakemake, tiny

JOBCOMP = os.environ.get("DUALSPACE_SLURM_JOBCOMP")
pytestmark = pytest.mark.skipif(not (JOBCOMP and os.environ.get("SLURM_CONF")),
                                reason="needs the single-node cluster of `make test-cluster`")

# The tiny DAG of tests/test_pipeline.py for digits (both datasets take ~4.5 minutes here; the cluster
# path is the same for either) at two alphas: the whole test stays inside its 5-minute budget.
DATASETS = ["digits"]
ALPHAS = [0.5, 0.9]
# an accounting-less test cluster: status from squeue (MinJobAge=600 there), no account to guess
CLUSTER_ARGS = ["--profile", "workflow/profiles/slurm", "--slurm-status-command", "squeue", "--slurm-no-account",
                "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs", "--jobs", "4"]


def _workdir(path: Path) -> Path:
    copy_workflow(path)
    config = tiny(yaml.safe_load((path / "config" / "config.yaml").read_text()))
    config["datasets"], config["alphas"] = DATASETS, ALPHAS
    (path / "tiny.yaml").write_text(yaml.safe_dump(config))
    return path


def _digests(results: Path) -> dict[str, str]:
    """sha256 of every result file but logs and timings (which name hosts, PIDs and seconds)."""
    return {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(results.rglob("*")) if p.is_file() and not {"logs", "benchmarks"} & set(p.parts)}


def _jobcomp() -> dict[str, str]:
    """job id -> final state, from the cluster's job completion file."""
    text = Path(JOBCOMP).read_text() if Path(JOBCOMP).exists() else ""
    return dict(re.findall(r"JobId=(\d+) .*?JobState=(\S+)", text))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny DAG through SLURM and, at the same time, locally (the SLURM run mostly waits on the
    scheduler's status checks, so the local reference run costs little extra wall time)."""
    base = tmp_path_factory.mktemp("cluster")
    slurm, local = _workdir(base / "slurm"), _workdir(base / "local")
    t0 = time.time()
    exe = Path(sys.executable).with_name("snakemake")
    log = base / "local.log"
    with open(log, "w") as out:  # a file, not a pipe: nobody reads it until the SLURM run is over
        reference = subprocess.Popen([str(exe), "--cores", "1", "--configfile", "tiny.yaml"], cwd=local,
                                     stdout=out, stderr=subprocess.STDOUT)
        proc = snakemake(*CLUSTER_ARGS, "--configfile", "tiny.yaml", cwd=slurm)
        reference.wait()
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    assert reference.returncode == 0, log.read_text()[-5000:]
    print(f"\ntiny DAG through SLURM and locally, side by side: {time.time() - t0:.0f} s")
    return slurm, local, proc


def test_every_output_of_rule_all(runs):
    slurm, _, _ = runs
    proc = snakemake("-n", "--configfile", "tiny.yaml", cwd=slurm)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    for ds in DATASETS:
        r = slurm / "results" / ds
        for f in ("metrics.csv", "drafts/scores.h5", "mdn/model.pt", "figures/calibration.png",
                  "regions/alpha0.9/region.h5", "conformal/tau_alpha0.5.csv"):
            assert (r / f).stat().st_size > 0, f


def test_jobs_went_through_the_scheduler(runs):
    slurm, _, proc = runs
    n_jobs = int(re.findall(r"(\d+) of \1 steps \(100%\) done", proc.stdout + proc.stderr)[-1])
    logs = sorted((slurm / ".snakemake" / "slurm_logs").rglob("*.log"))
    job_ids = {p.stem for p in logs}
    assert len(job_ids) == n_jobs - 1  # every job but the local `all`
    rules = {p.relative_to(slurm / ".snakemake" / "slurm_logs").parts[0] for p in logs}
    assert {"rule_train_generator", "rule_fit_phi", "rule_train_mdn", "rule_calibrate", "rule_metrics"} <= rules
    states = _jobcomp()
    assert all(states.get(j) == "COMPLETED" for j in job_ids), {j: states.get(j) for j in job_ids}


def test_outputs_equal_a_local_run(runs):
    slurm, local, _ = runs
    for ds in DATASETS:
        for alpha in ALPHAS:
            tau = f"results/{ds}/conformal/tau_alpha{alpha}.csv"
            assert (slurm / tau).read_bytes() == (local / tau).read_bytes(), tau
    a, b = _digests(slurm / "results"), _digests(local / "results")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_failing_rule_fails_the_run(runs):
    """A calibration score file that is not HDF5: calibrate fails inside its SLURM job, the run exits non-zero,
    the tau table is not left behind, and the job is recorded as FAILED by the scheduler."""
    slurm, _, _ = runs
    scores = slurm / "results/digits/conformal/scores_calib.h5"  # calibrate's input
    stat = scores.stat()
    scores.write_bytes(b"not an HDF5 file")
    os.utime(scores, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: only the missing output reruns
    tau = slurm / "results/digits/conformal/tau_alpha0.9.csv"
    tau.unlink()
    before = set(_jobcomp())
    proc = snakemake("results/digits/conformal/tau_alpha0.9.csv", *CLUSTER_ARGS, "--configfile", "tiny.yaml",
                     cwd=slurm)
    assert proc.returncode != 0
    assert not tau.exists()
    new = {j: s for j, s in _jobcomp().items() if j not in before}
    assert list(new.values()) == ["FAILED"], new
    assert "scores_calib.h5" in proc.stdout + proc.stderr

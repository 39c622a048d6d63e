"""Every file is checked where it is read, and the right file is blamed: after a good tiny run, damage one
file at a time (in a copy) and check that the stage reading it refuses it with a message naming it."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from conftest import copy_workflow, job_counts, snakemake


def _copy(tiny_run: Path, tmp_path: Path, *names: str) -> dict[str, Path]:
    """Copies of result files of the tiny run (relative to results/), so the shared run stays intact."""
    out = {}
    for name in names:
        dst = tmp_path / "results" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_run / "results" / name, dst)
        out[name] = dst
    return out


def _rewrite(path: Path, **arrays: np.ndarray) -> None:
    """Replace datasets of an HDF5 file in place, keeping its attributes (a hand edit)."""
    with h5py.File(path, "a") as f:
        for name, value in arrays.items():
            del f[name]
            f[name] = value


def _read(path: Path, name: str) -> np.ndarray:
    with h5py.File(path) as f:
        return f[name][()]


def test_train_split_of_the_wrong_shape_is_named_before_any_training(tiny_run, tmp_path):
    from dualspace.data import SplitFileError
    from dualspace.stages.features import fit_phi
    from dualspace.stages.generator import train_generator

    f = _copy(tiny_run, tmp_path, "digits/data/train.h5")["digits/data/train.h5"]
    x = _read(f, "x")
    _rewrite(f, x=x.reshape(len(x), 1, 4, 16))  # same values, another shape than the attributes say
    config = yaml.safe_load((tiny_run / "tiny.yaml").read_text())["digits"]
    settings = {"family": "diffusion", **config["generator"]["diffusion"]}
    with pytest.raises(SplitFileError, match=rf"{f}: x has shape \(\d+, 1, 4, 16\), but the file was written with"):
        train_generator(f, tmp_path / "model.pt", settings, 0, "digits")
    with pytest.raises(SplitFileError, match=str(f)):
        fit_phi(f, tmp_path / "phi.pt", config["phi"], 0, "digits")
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "phi.pt").exists()


def test_nan_in_a_split_is_named_before_it_reaches_a_model(tiny_run, tmp_path):
    from dualspace.data import SplitFileError
    from dualspace.stages.features import dump_pairs, fit_phi

    files = _copy(tiny_run, tmp_path, "digits/data/train.h5", "digits/data/calib.h5")
    for f in files.values():
        x = _read(f, "x")
        x[3, 0, 2, 2] = np.nan
        _rewrite(f, x=x)
    with pytest.raises(SplitFileError, match=r"train\.h5: x holds NaN or inf in 1 example\(s\) \(first at index 3\)"):
        fit_phi(files["digits/data/train.h5"], tmp_path / "phi.pt", {"epochs": 1}, 0, "digits")
    r = tiny_run / "results/digits"
    with pytest.raises(SplitFileError, match=r"calib\.h5: x holds NaN"):
        dump_pairs(r / "generator/model.pt", r / "phi/phi.pt", files["digits/data/calib.h5"], tmp_path / "p.h5",
                   "digits")
    assert not (tmp_path / "p.h5").exists()


def test_calib_split_of_the_wrong_shape_blames_the_split_not_the_generator(tiny_run, tmp_path):
    from dualspace.data import SplitFileError
    from dualspace.stages.features import dump_pairs

    f = _copy(tiny_run, tmp_path, "digits/data/calib.h5")["digits/data/calib.h5"]
    x = _read(f, "x")
    _rewrite(f, x=np.concatenate([x, x], axis=3))  # (N, 1, 8, 16)
    r = tiny_run / "results/digits"
    with pytest.raises(SplitFileError, match=r"calib\.h5: x has shape .*rule prepare_data rebuilds it"):
        dump_pairs(r / "generator/model.pt", r / "phi/phi.pt", f, tmp_path / "p.h5", "digits")


def test_label_out_of_range_names_the_file_and_the_label(tiny_run, tmp_path):
    from dualspace.data import SplitFileError, read_split

    f = _copy(tiny_run, tmp_path, "digits/data/test.h5")["digits/data/test.h5"]
    label = _read(f, "label")
    label[7] = 12
    _rewrite(f, label=label)
    with pytest.raises(SplitFileError, match=rf"{f}: label 12 at index 7 lies outside \[0, 10\)"):
        read_split(f)
    label[7] = (label[7 - 1] + 1) % 10  # in range, but the class counts no longer match the attributes
    _rewrite(f, label=label)
    with pytest.raises(SplitFileError, match="class counts differ"):
        read_split(f)


def test_split_extras_round_trip_and_are_checked(tmp_path):
    from dualspace.data import Dataset, Split, SplitFileError, read_split, write_split

    rng = np.random.default_rng(0)
    splits = {s: Split(rng.normal(size=(5, 2, 7)).astype(np.float32), np.arange(5) % 2,
                       extras={"dt": rng.uniform(size=(5, 7)).astype(np.float32),
                               "static": rng.normal(size=(5, 6)).astype(np.float64)})
              for s in ("train", "calib", "test")}
    ds = Dataset("toy", "series", 2, ["a", "b"], splits, {}, channel_names=["u", "v"])
    write_split(tmp_path / "train.h5", ds, "train")
    split, attrs = read_split(tmp_path / "train.h5", dataset="toy", split="train")
    for name in ("dt", "static"):
        np.testing.assert_array_equal(split.extras[name], splits["train"].extras[name])
        assert split.extras[name].dtype == splits["train"].extras[name].dtype
    assert attrs["channel_names"] == ["u", "v"]
    with pytest.raises(SplitFileError, match="holds dataset 'toy', but 'digits' is expected"):
        read_split(tmp_path / "train.h5", dataset="digits")
    _rewrite(tmp_path / "train.h5", dt=np.zeros((5, 6), np.float32))
    with pytest.raises(SplitFileError, match=r"extra 'dt' has shape \(5, 6\) float32, but was written as \(5, 7\)"):
        read_split(tmp_path / "train.h5")
    with pytest.raises(ValueError, match="extra 'dt' has 4 rows for 5 examples"):
        Split(np.zeros((5, 1), np.float32), np.zeros(5, np.int64), extras={"dt": np.zeros((4, 1))})


def test_a_checkpoint_of_another_dataset_is_the_file_blamed(tiny_run, tmp_path):
    from dualspace.io import CheckpointError
    from dualspace.artifacts import ArtifactError
    from dualspace.stages.density import calibrate, score_pairs
    from dualspace.stages.features import dump_pairs

    d, h = tiny_run / "results/digits", tiny_run / "results/hapt"
    with pytest.raises(CheckpointError, match=rf"phi checkpoint {h}/phi/phi\.pt was trained for dataset='hapt', "
                                              r"but 'digits' is expected"):
        dump_pairs(d / "generator/model.pt", h / "phi/phi.pt", d / "data/calib.h5", tmp_path / "p.h5", "digits")
    with pytest.raises(CheckpointError, match=rf"generator checkpoint {h}/generator/model\.pt was trained for "
                                              r"dataset='hapt'"):
        dump_pairs(h / "generator/model.pt", d / "phi/phi.pt", d / "data/calib.h5", tmp_path / "p.h5", "digits")
    with pytest.raises(CheckpointError, match=rf"MDN checkpoint {h}/mdn/model\.pt was trained for dataset='hapt'"):
        score_pairs(h / "mdn/model.pt", d / "pairs/calib.h5", tmp_path / "s.h5", dataset="digits")
    with pytest.raises(ArtifactError, match=rf"pair scores {h}/conformal/scores_calib\.h5: it belongs to dataset "
                                            r"'hapt', but 'digits' is expected"):
        calibrate(h / "conformal/scores_calib.h5", 0.9, "class", tmp_path / "tau.csv", dataset="digits")
    with pytest.raises(ArtifactError, match=rf"pair scores {d}/conformal/scores_test\.h5 score the 'test' split, "
                                            r"but 'calib' is expected"):
        calibrate(d / "conformal/scores_test.h5", 0.9, "class", tmp_path / "tau.csv", dataset="digits")
    assert not any((tmp_path / f).exists() for f in ("p.h5", "s.h5", "tau.csv"))


@pytest.mark.parametrize("name", ["generator/model.pt", "phi/phi.pt", "mdn/model.pt"])
def test_a_damaged_checkpoint_is_named_and_never_loaded_with_pickle(tmp_path, name):
    from dualspace.density import load_mdn
    from dualspace.features import Phi
    from dualspace.generator import load_generator
    from dualspace.io import CheckpointError

    path = tmp_path / name
    path.parent.mkdir(parents=True)
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    load = {"generator/model.pt": load_generator, "phi/phi.pt": Phi.load, "mdn/model.pt": load_mdn}[name]
    with pytest.raises(CheckpointError) as err:
        load(path)
    msg = str(err.value)
    assert str(path) in msg and "damaged" in msg and f"snakemake {path}" in msg
    assert "weights_only" not in msg  # torch's hint to load the file with pickle is never passed on


def test_a_damaged_resume_checkpoint_is_reported_and_training_starts_fresh(tmp_path, caplog):
    from dualspace.diffusion import DiffusionConfig, TrainConfig, train_diffusion
    from dualspace.nn import UNetConfig

    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (32, 1, 8, 8)).astype(np.float32), np.arange(32) % 2
    out = tmp_path / "model.pt"
    (tmp_path / "resume.pt").write_bytes(b"PK\x03\x04 not a zip archive")
    cfg = DiffusionConfig(net=UNetConfig(base_channels=8, channel_mults=[1], blocks_per_level=1, attention_heads=0))
    with caplog.at_level(logging.WARNING, logger="dualspace"):
        train_diffusion(x, y, 2, cfg, TrainConfig(steps=3, batch_size=8, checkpoint_every=2), out)
    assert out.exists() and not (tmp_path / "resume.pt").exists()
    assert "resume checkpoint" in caplog.text and "resume.pt is damaged" in caplog.text
    assert "training from step 0" in caplog.text


def test_more_representatives_than_drafts_are_capped_with_a_warning(tiny_run, tmp_path, caplog):
    from dualspace.artifacts import Region
    from dualspace.stages.regions import select_region

    r = tiny_run / "results/digits"
    with caplog.at_level(logging.WARNING, logger="dualspace"):
        select_region(r / "drafts/samples.h5", r / "drafts/scores.h5", r / "conformal/tau_alpha0.9.csv", 0.9, 50,
                      tmp_path / "region.h5", tmp_path / "acc.csv", tmp_path / "reps.png", dataset="digits")
    assert "regions.m = 50 exceeds the 16 drafts per class" in caplog.text
    region = Region.read(tmp_path / "region.h5", dataset="digits")
    assert region.attrs["m_requested"] == 50 and region.attrs["m_used"] == 16


def test_damaged_tau_and_draft_files_are_named(tiny_run, tmp_path):
    from dualspace.artifacts import ArtifactError, DraftScores
    from dualspace.conformal import ThresholdTable

    files = _copy(tiny_run, tmp_path, "digits/conformal/tau_alpha0.9.csv", "digits/drafts/scores.h5")
    tau = files["digits/conformal/tau_alpha0.9.csv"]
    with pytest.raises(ValueError, match=rf"{tau} was not calibrated for alpha = 0.5"):
        ThresholdTable.from_csv(tau, 0.5)
    tau.write_text("class,tau\n0,1.0\n")
    with pytest.raises(ValueError, match=rf"threshold table {tau} has columns \['class', 'tau'\]"):
        ThresholdTable.from_csv(tau, 0.9)
    scores = files["digits/drafts/scores.h5"]
    s = _read(scores, "score")
    s[0] = np.nan
    _rewrite(scores, score=s)
    with pytest.raises(ArtifactError, match=rf"draft scores {scores}: 'score' holds NaN"):
        DraftScores.read(scores)


def test_tiny_alphas_match_the_alpha_wildcard(workdir):
    """alphas: [0.00001] prints as 1e-05; the wildcard pattern and the config check are one definition."""
    import re

    from dualspace.config import ALPHA_PATTERN

    for alpha in (1e-05, 2.5e-07, 0.5, 0.95, 0.123456789, 0.0001):
        assert re.fullmatch(ALPHA_PATTERN, str(alpha)), alpha
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    config["alphas"] = [0.00001, 0.9]
    (workdir / "a.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake("-n", "--configfile", "a.yaml", cwd=workdir, check=True)
    assert "results/digits/conformal/tau_alpha1e-05.csv" in proc.stdout


def test_an_edited_split_reruns_its_consumers_and_is_then_refused(tiny_run, tmp_path):
    """A calib.h5 truncated by hand after a good run: Snakemake sees the newer file and reruns dump_pairs for a
    downstream target, and dump_pairs names the file (its rows disagree with its attributes). If the edit kept
    the old mtime, Snakemake cannot see it (it compares mtimes): the reader still refuses the file."""
    wd = copy_workflow(tmp_path / "wd")
    shutil.copy(tiny_run / "tiny.yaml", wd)
    shutil.copytree(tiny_run / "results" / "digits", wd / "results" / "digits", copy_function=shutil.copy2)
    target = "results/digits/conformal/tau_alpha0.9.csv"
    assert "Nothing to be done" in snakemake(target, "-n", "--configfile", "tiny.yaml", cwd=wd, check=True).stdout
    calib = wd / "results/digits/data/calib.h5"
    _rewrite(calib, x=_read(calib, "x")[:50], label=_read(calib, "label")[:50])
    jobs = job_counts(snakemake(target, "-n", "--configfile", "tiny.yaml", cwd=wd, check=True).stdout)
    assert jobs.get("dump_pairs") == 1 and jobs.get("calibrate") == 1, jobs
    proc = snakemake(target, "--cores", "1", "--configfile", "tiny.yaml", cwd=wd)
    assert proc.returncode != 0
    log = (wd / "results/digits/logs/dump_pairs_calib.log").read_text()
    assert f"split file {Path('results/digits/data/calib.h5')}: x has shape (50, 1, 8, 8)" in log
    assert "rule prepare_data rebuilds it" in log
    assert not (wd / "results/digits/pairs/calib.h5").exists()
    os.utime(calib, (0, 0))  # the same edit with an old mtime: invisible to the DAG, refused where read
    from dualspace.data import SplitFileError, read_split

    with pytest.raises(SplitFileError, match="calib.h5"):
        read_split(calib)

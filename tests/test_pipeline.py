"""The whole embedded DAG at tiny sizes (digits through the diffusion family, hapt through class_gaussian):
coverage on the real test split, rerun scope of config changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ALPHAS, ROOT, job_counts, snakemake, tiny

@pytest.mark.parametrize("ds", ["digits", "hapt"])
def test_test_split_coverage_in_band(tiny_run, ds):
    """Test-split coverage lies in [alpha, alpha + 1/(n_c + 1)] up to 3 sigma of noise.

    Conformal coverage holds whatever the model quality, so a tiny model must meet it too. For a
    random calib/test split the coverage depends on ranks only, so sigma is the binomial noise of the
    test draw plus the Beta spread of the calibration draw. With ~40 (alpha, class) cells per dataset
    about 0.1 cell is expected beyond 3 sigma by chance; we allow one, and none beyond 4.5 sigma.
    The pooled coverage of each alpha must be inside its band up to 3 sigma.
    """
    from dualspace.conformal import ThresholdTable
    from dualspace.stages.density import pair_nll

    s, label, _ = pair_nll(tiny_run / f"results/{ds}/mdn/model.pt", tiny_run / f"results/{ds}/pairs/test.h5")
    beyond_3 = []
    for alpha in ALPHAS:
        csv = tiny_run / f"results/{ds}/conformal/tau_alpha{alpha}.csv"
        df = pd.read_csv(csv)
        assert list(df.columns) == ["class", "n_calib", "k", "tau", "coverage_lower", "coverage_upper"]
        table = ThresholdTable.from_csv(csv, alpha)
        covered = s <= table.tau_for(label)
        for c, n_cal, hi in zip(df["class"], df["n_calib"], df["coverage_upper"]):
            cov = covered[label == c].mean()
            sigma = np.sqrt(alpha * (1 - alpha) * (1 / (label == c).sum() + 1 / (n_cal + 2)))
            z = max(alpha - cov, cov - hi, 0.0) / sigma
            assert z <= 4.5, (ds, alpha, c, cov, sigma)
            if z > 3:
                beyond_3.append((alpha, c, round(cov, 3), round(z, 2)))
        n_test, n_cal = len(label), int(df["n_calib"].sum())
        sigma = np.sqrt(alpha * (1 - alpha) * (1 / n_test + 1 / (n_cal + 2)))
        pooled_hi = float(np.average(df["coverage_upper"], weights=np.bincount(label, minlength=len(df))))
        assert alpha - 3 * sigma <= covered.mean() <= pooled_hi + 3 * sigma, (ds, alpha, covered.mean(), sigma)
    assert len(beyond_3) <= 1, beyond_3


def test_outputs_of_every_stage(tiny_run):
    from dualspace.io import read_h5

    # e = g(c): the diffusion family's learned 64-d embedding (digits), class_gaussian's one-hot (hapt)
    for ds, n_classes, y_dim, e_dim in (("digits", 10, 64, 64), ("hapt", 6, 32, 6)):
        r = tiny_run / "results" / ds
        drafts = {**read_h5(r / "drafts/samples.h5"), **read_h5(r / "drafts/scores.h5")}
        assert len(drafts["x"]) == 16 * n_classes and drafts["y"].shape[1] == y_dim
        assert np.isfinite(drafts["score"]).all()
        pairs = read_h5(r / "pairs/train.h5")
        assert pairs["e"].shape[1] == e_dim and pairs["y"].shape[1] == y_dim
        prev = None
        for alpha in ALPHAS:
            region = read_h5(r / f"regions/alpha{alpha}/region.h5")
            acc = pd.read_csv(r / f"regions/alpha{alpha}/acceptance.csv")
            tau = pd.read_csv(r / f"conformal/tau_alpha{alpha}.csv")["tau"].to_numpy()
            assert (region["score"] <= tau[region["label"]]).all()
            assert acc["n_accepted"].sum() == len(region["x"])
            assert (acc["n_representatives"] == np.minimum(acc["n_accepted"], 4)).all()
            assert (r / f"regions/alpha{alpha}/representatives.png").stat().st_size > 1000
            # larger alpha, larger region
            if prev is not None:
                assert set(prev) <= set(region["accepted_index"].tolist())
            prev = region["accepted_index"].tolist()


def test_metrics_table(tiny_run):
    for ds, n_classes in (("digits", 10), ("hapt", 6)):
        df = pd.read_csv(tiny_run / f"results/{ds}/metrics.csv")
        assert len(df) == len(ALPHAS) * (n_classes + 1)
        for col in ("dataset", "alpha", "class", "n_calib", "n_test", "tau", "coverage", "coverage_lower",
                    "coverage_upper", "in_band", "band_sigma", "band_sigma_kind", "band_z", "acceptance_rate",
                    "acceptance_gap", "region_coverage_by_drafts", "n_accepted", "logdet_cov", "log_volume",
                    "log_volume_se", "mmd_phi_all", "mmd_phi_accepted", "fd_phi_all", "fd_phi_accepted", "prdc_precision",
                    "prdc_recall", "prdc_density", "prdc_coverage"):
            assert col in df.columns, col
        # metrics.csv is the per-alpha files, in the config's alpha order
        parts = pd.concat([pd.read_csv(tiny_run / f"results/{ds}/metrics/alpha{a}.csv") for a in ALPHAS],
                          ignore_index=True)
        pd.testing.assert_frame_equal(df, parts, check_dtype=False)
        # hapt's windows belong to subjects: its band counts subjects, digits' is binomial
        assert set(df["band_sigma_kind"]) == {"cluster" if ds == "hapt" else "binomial"}
        assert np.allclose(df["acceptance_gap"], df["acceptance_rate"] - df["coverage"], atol=2e-6, equal_nan=True)
        pooled = df[df["class"] == "all"].set_index("alpha")
        assert pooled["in_band"].all()
        if ds == "digits":  # FID on the pooled rows, with the offline extractor named
            assert (pooled["fid_all"] > 0).all() and pooled["fid_extractor"].str.contains("sha256 checked").all()
            assert (pooled["fid_n_drafts"] <= 12).all()
        else:  # train-synthetic-test-real and its references, as accuracies
            for col in ("trtr_acc", "trts_acc"):
                assert pooled[col].between(0, 1).all(), col
            # tstr (its own table, per alpha) is left empty (NaN) where fewer than 10 drafts were accepted
            tstr = pd.read_csv(tiny_run / f"results/{ds}/tstr.csv").set_index("alpha")
            assert list(tstr.index) == ALPHAS and (tstr["n_accepted"] == pooled["n_accepted"]).all()
            ok = tstr["n_accepted"] >= 10
            assert tstr.loc[ok, "tstr_acc"].between(0, 1).all() and tstr.loc[~ok, "tstr_acc"].isna().all()
        # the coverage column agrees with the tau files and the region sizes with the acceptance files
        for alpha in ALPHAS:
            acc = pd.read_csv(tiny_run / f"results/{ds}/regions/alpha{alpha}/acceptance.csv")
            assert pooled.loc[alpha, "n_accepted"] == acc["n_accepted"].sum()
        assert (np.diff(pooled["log_volume"].to_numpy()) >= -1e-9).all()  # regions grow with alpha


def test_every_figure_is_rendered(tiny_run):
    from PIL import Image

    for ds in ("digits", "hapt"):
        for name in ("calibration", "class_coverage", "acceptance", "distances", "projection", "fidelity", "realism",
                     "../regions/alpha0.9/representatives"):
            path = tiny_run / f"results/{ds}/figures/{name}.png"
            with Image.open(path) as img:
                assert img.format == "PNG" and img.size[0] > 200 and img.size[1] > 150
                # not a blank canvas: more than a handful of distinct colours
                assert len(img.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 20, path


def test_image_drafts_lie_on_the_data_value_grid(tiny_run):
    """digits drafts take only values its real splits hold (17 grey levels); hapt's continuous drafts are left
    as sampled."""
    from dualspace.artifacts import DraftSamples
    from dualspace.data import read_split

    drafts = DraftSamples.read(tiny_run / "results/digits/drafts/samples.h5")
    real = np.unique(read_split(tiny_run / "results/digits/data/train.h5")[0].x)
    assert len(real) == 17 and np.isin(drafts.x, real).all() and drafts.attrs["grid_levels"] == 17
    assert len(np.unique(drafts.x)) > 2  # not collapsed onto the ends
    hapt = DraftSamples.read(tiny_run / "results/hapt/drafts/samples.h5")
    assert hapt.attrs["grid_levels"] == 0 and len(np.unique(hapt.x)) > 1000


def test_realism_table_rows(tiny_run):
    """results/{ds}/realism.csv: per classifier, every class with 10 rows on each side (K = 16 drafts) and the
    pooled row, the C2ST and the floor with their intervals, and the gap between them."""
    from dualspace.realism import COLUMNS

    for ds, family, n_classes in (("digits", "diffusion", 10), ("hapt", "class_gaussian", 6)):
        df = pd.read_csv(tiny_run / f"results/{ds}/realism.csv", dtype={"class": str})
        assert list(df.columns) == ["dataset", "family", *COLUMNS] and set(df["family"]) == {family}
        assert list(dict.fromkeys(df["classifier"])) == ["features", "raw"]
        for _, d in df.groupby("classifier"):
            assert list(d["class"])[-1] == "all" and len(d) <= n_classes + 1
            per_class = d[d["class"] != "all"]
            assert (per_class["n_fake"] == per_class["n_real"]).all() and (per_class["n_fake"] <= 16).all()
            assert d[d["class"] == "all"]["n_fake"].item() == per_class["n_fake"].sum()
        assert ((df["c2st_low"] <= df["c2st"]) & (df["c2st"] <= df["c2st_high"])).all()
        assert ((df["floor_low"] <= df["floor"]) & (df["floor"] <= df["floor_high"])).all()
        assert np.allclose(df["realism_gap"], df["c2st"] - df["floor"], atol=1e-5)


def test_studies_report_the_realism_columns(tiny_run):
    """The ABR study (per mode) and the self-consuming loops (per chain and generation) write the realism
    columns of the datasets' table for what they generate."""
    from dualspace.realism import COLUMNS

    for mode in ("legacy", "joint"):
        df = pd.read_csv(tiny_run / f"results/abr/{mode}/realism.csv", dtype={"class": str})
        assert list(df.columns) == ["study", "mode", *COLUMNS] and set(df["mode"]) == {mode}
        assert (df[df["class"] == "all"]["n_fake"] > 0).all()
        assert (tiny_run / f"results/abr/{mode}/realism.png").is_file()
    df = pd.read_csv(tiny_run / "results/madness/digits/realism.csv", dtype={"class": str})
    assert list(df.columns) == ["scenario", "w", "generation", *COLUMNS]
    pooled = df[(df["class"] == "all") & (df["classifier"] == "features")]
    assert len(pooled) == 3 * 3 and sorted(set(pooled["generation"])) == [0, 1, 2]  # 3 chains x 3 generations
    assert pooled["floor"].nunique() == 1  # the floor is real vs real: the same for every generation
    assert (tiny_run / "results/madness/digits/realism.png").is_file()


def test_fidelity_table_rows(tiny_run):
    """results/{ds}/fidelity.csv: per class and pooled, real half vs real half, real train and all drafts against
    the real test split, and the drafts the alpha-0.9 region accepts wherever it accepts at least 4 of a class
    (the tiny generators' drafts are often all rejected)."""
    for ds, n_classes in (("digits", 10), ("hapt", 6)):
        df = pd.read_csv(tiny_run / f"results/{ds}/fidelity.csv", dtype={"class": str})
        assert {"real_half", "train", "drafts"} <= set(df["compared"]) <= {"real_half", "train", "drafts", "accepted"}
        drafts = df[df["compared"] == "drafts"]
        assert len(drafts) == n_classes + 1 and (drafts[drafts["class"] != "all"]["n_other"] == 16).all()
        acc = pd.read_csv(tiny_run / f"results/{ds}/regions/alpha0.9/acceptance.csv")
        names = [str(c) for c in df[df["compared"] == "train"]["class"] if c != "all"]
        accepted = df[df["compared"] == "accepted"].set_index("class")["n_other"]
        for c, n in zip(names, acc["n_accepted"]):
            assert accepted.get(c, 0) == (n if n >= 4 else 0), (ds, c)
        total = int(acc["n_accepted"].sum())
        assert accepted.get("all", 0) == (total if total >= 4 else 0)
        assert ("edge_ratio" in df.columns) == (ds == "hapt")


def test_report_embeds_the_figures(tiny_run):
    snakemake("--report", "report.html", "--configfile", "tiny.yaml", cwd=tiny_run, check=True)
    html = (tiny_run / "report.html").read_text(errors="replace")
    assert "calibration.png" in html and "Calibration curve" in html and "representatives.png" in html


def test_changing_alphas_reruns_only_calibration_and_regions(tiny_run):
    config = yaml.safe_load((tiny_run / "tiny.yaml").read_text())
    config["alphas"] = [0.5, 0.7, 0.9]
    (tiny_run / "alphas.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake("-n", "--configfile", "alphas.yaml", cwd=tiny_run, check=True)
    jobs = job_counts(proc.stdout)
    assert set(jobs) == {"calibrate", "select_region", "metrics_alpha", "metrics", "figures", "tstr_alpha", "tstr",
                         "all", "total"}, jobs
    # alpha 0.7 for both datasets (TSTR: hapt only); the metrics of alphas 0.5 and 0.9, the alpha-free columns,
    # the scores and the volume draws are kept
    assert jobs["calibrate"] == 2 and jobs["select_region"] == 2 and jobs["metrics_alpha"] == 2
    assert jobs["tstr_alpha"] == 1 and jobs["tstr"] == 1


def _dry_run_jobs(tiny_run, name: str, edit) -> dict[str, int]:
    """Jobs (per rule) that `snakemake -n` schedules after `edit(config)` on a finished tiny run."""
    config = yaml.safe_load((tiny_run / "tiny.yaml").read_text())
    edit(config)
    (tiny_run / f"{name}.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake("-n", "--configfile", f"{name}.yaml", cwd=tiny_run, check=True)
    return {rule: n for rule, n in job_counts(proc.stdout).items() if rule != "total"}


# every digits stage downstream of the MDN (4 alphas): what an MDN change must rerun, and nothing more; the
# self-consuming loops judge every generation's samples (7 sample sets in the tiny run) by the digits region
AFTER_MDN = {"train_mdn": 1, "score_pairs": 2, "calibrate": 4, "score_drafts": 1, "select_region": 4, "metrics_base": 1,
             "metrics_alpha": 4, "metrics": 1, "figures": 1,
             "fidelity": 1, "madness_metrics": 7, "madness_summary": 1, "all": 1}


def test_changing_a_generator_setting_reruns_the_generator_and_its_descendants_only(tiny_run):
    """One generator setting of one dataset: its generator, the pairs (e = g(c)) and everything after them;
    not the data, not phi, not the other dataset."""
    jobs = _dry_run_jobs(tiny_run, "generator", lambda c: c["digits"]["generator"]["diffusion"]["train"].update(lr=0.002))
    assert jobs == {"train_generator": 1, "dump_pairs": 3, "sample_drafts": 1, "fid_features": 1, "realism": 1,
                    **AFTER_MDN}, jobs


def test_changing_an_mdn_setting_reruns_the_mdn_and_its_descendants_only(tiny_run):
    jobs = _dry_run_jobs(tiny_run, "mdn", lambda c: c["digits"]["mdn"].update(n_components=3))
    assert jobs == AFTER_MDN, jobs


def test_changing_phi_rescores_the_drafts_without_resampling_them(tiny_run):
    """phi feeds the pairs and the draft scores, not the drafts themselves: sample_drafts (and the FID features
    of the drafts) must not rerun, score_drafts must."""
    jobs = _dry_run_jobs(tiny_run, "phi", lambda c: c["digits"]["phi"].update(lr=0.003))
    assert jobs == {"fit_phi": 1, "dump_pairs": 3, **AFTER_MDN}, jobs


def test_scripts_read_settings_only_through_params():
    """Snakemake reruns a stage when its params, code or inputs change; a script reading snakemake.config
    would depend on settings no rerun trigger sees."""
    offenders = [p.name for p in (ROOT / "workflow" / "scripts").glob("*.py") if "snakemake.config" in p.read_text()]
    assert offenders == []


def test_marginal_conformal_mode_end_to_end(tiny_run, tmp_path):
    """conformal.mode: marginal through calibrate, select_region and metrics: one threshold for all classes,
    the k-th smallest of all calibration scores (computed here with a sort), applied to every class."""
    import math
    import shutil
    from fractions import Fraction

    from conftest import copy_workflow
    from dualspace.stages.density import pair_nll

    wd = copy_workflow(tmp_path / "wd")
    config = yaml.safe_load((tiny_run / "tiny.yaml").read_text())
    config.update(datasets=["digits"], conformal={"mode": "marginal"})
    (wd / "marginal.yaml").write_text(yaml.safe_dump(config))
    src = tiny_run / "results/digits"
    for sub in ("data", "generator", "phi", "pairs", "mdn", "drafts", "fid"):  # upstream of calibration only
        shutil.copytree(src / sub, wd / "results/digits" / sub, copy_function=shutil.copy2)
    snakemake("results/digits/metrics.csv", "results/digits/regions/alpha0.8/region.h5", "--cores", "1",
              "--configfile", "marginal.yaml", cwd=wd, check=True)
    r = wd / "results/digits"
    cal, _, _ = pair_nll(r / "mdn/model.pt", r / "pairs/calib.h5")
    test, test_label, _ = pair_nll(r / "mdn/model.pt", r / "pairs/test.h5")
    metrics = pd.read_csv(r / "metrics.csv", dtype={"class": str})
    for alpha in ALPHAS:
        tau = pd.read_csv(r / f"conformal/tau_alpha{alpha}.csv")
        k = math.ceil((len(cal) + 1) * Fraction(str(alpha)))
        assert tau[["class", "n_calib", "k"]].values.tolist() == [[-1, len(cal), k]]
        assert tau["tau"].iloc[0] == pytest.approx(np.sort(cal)[k - 1], rel=1e-9)
        row = metrics[(metrics["alpha"] == alpha) & (metrics["class"] == "all")].iloc[0]
        assert row["coverage"] == pytest.approx(np.mean(test <= np.sort(cal)[k - 1]))
        assert row["in_band"]
    acc = pd.read_csv(r / "regions/alpha0.8/acceptance.csv")
    from dualspace.io import read_h5

    scores = read_h5(r / "drafts/scores.h5", ["score", "label"])
    tau = pd.read_csv(r / "conformal/tau_alpha0.8.csv")["tau"].iloc[0]
    expect = [int(((scores["label"] == c) & (scores["score"] <= tau)).sum()) for c in range(10)]
    assert acc["n_accepted"].tolist() == expect


def test_trajectory_outputs(tiny_run):
    r = tiny_run / "results" / "trajectory"
    df = pd.read_csv(r / "metrics.csv")
    assert list(df["model"]) == ["shared_embedding"] and int(df["n_test"][0]) > 100
    for c in ("c2st_geometry", "c2st_timing", "c2st_timing_real_geometry"):
        assert df[f"{c}_low"][0] <= df[c][0] <= df[f"{c}_high"][0] and 0 <= df[c][0] <= 1
    assert np.isfinite(df["duration_nll"][0]) and np.isfinite(df["fitts_slope"][0])
    for split in ("train", "val", "test"):
        assert (r / f"timing/cache_{split}.h5").stat().st_size > 0
    for name in ("real_paths", "paths", "histograms", "duration_distance"):
        assert (r / f"figures/metrics/{name}.png").stat().st_size > 5000, name


def test_trajectory_without_timing_has_no_dt_metrics(tiny_run, tmp_path):
    """timing.eval_assign = false: the dt-aware columns are absent (not zero), the geometry C2ST remains."""
    from dualspace.trajectory.stages import evaluate_model

    r = tiny_run / "results" / "trajectory"
    evaluate_model("shared_embedding", r / "data/test.h5", r / "geometry/samples.h5", tmp_path / "m.csv",
                   tmp_path / "m.h5", stats_path=r / "data/geometry_stats.json", timing_path=None, cache_h5=None,
                   eval_assign=False, seed=0, folds=5)
    df = pd.read_csv(tmp_path / "m.csv")
    assert "c2st_geometry" in df and not [c for c in df if "timing" in c or "duration" in c or "dt_" in c], list(df)
    assert sorted(tmp_path.iterdir()) == [tmp_path / "m.csv", tmp_path / "m.h5"]


def test_changing_a_timing_setting_reruns_timing_and_evaluation_only(tiny_run):
    jobs = _dry_run_jobs(tiny_run, "timing", lambda c: c["trajectory"]["timing"]["train"].update(lr_duration=0.002))
    assert jobs == {"trajectory_timing": 1, "trajectory_evaluate": 1, "trajectory_table": 1,
                    "trajectory_figures": 1, "all": 1}, jobs


def test_mixture_vae_outputs(tiny_run):
    """The study's default run: metrics within their ranges and consistent with the test codes, every figure."""
    import json

    from dualspace.io import read_h5
    from dualspace.mixture_vae.evaluate import hungarian_accuracy

    r = tiny_run / "results" / "mixture_vae" / "digits"
    m = json.loads((r / "cin/metrics.json").read_text())
    codes = read_h5(r / "cin/test_codes.h5")
    K = m["K"]
    assert codes["q"].shape == (m["n_test"], K) and np.allclose(codes["q"].sum(1), 1, atol=1e-5)
    # the metric is the Hungarian accuracy of argmax q on the test labels, recomputed here from the codes
    assert m["accuracy"] == pytest.approx(hungarian_accuracy(codes["q"].argmax(1), codes["label"], K, 10)[0])
    assert 0 <= m["tau_accuracy"] <= 1 and -1 <= m["ari"] <= 1 and np.isfinite(m["test_elbo"])
    assert len(m["channel_of_label"]) == 10 and 0 <= min(m["channel_of_label"]) <= max(m["channel_of_label"]) < K
    history = json.loads((r / "cin/history.json").read_text())
    assert len(history) == 2 and len(history[0]["kl_per_channel"]) == K
    names = {p.name for p in (r / "cin/figures").iterdir() if not p.name.startswith(".")}  # not Snakemake's marker
    expect = {"channel_latents_grid", "latent_by_component", "channel_ownership", "component_kl", "routing_hardness",
              "recon_selected", "reconstruction_by_component", "decoded_grids", "training_curves"}
    expect |= {f"channel_{k:02d}" for k in range(K)} | {f"decoded_grid_{k:02d}" for k in range(K)}
    assert names == {f"{n}.png" for n in expect}, names ^ {f"{n}.png" for n in expect}
    assert 0 <= json.loads((r / "kmeans.json").read_text())["accuracy"] <= 1


def test_changing_a_mixture_vae_variant_reruns_that_variant_only(tiny_run):
    """A setting of another variant changes nothing built; one of the default variant reruns its run only."""
    jobs = _dry_run_jobs(tiny_run, "mvae_other", lambda c: c["mixture_vae"]["variants"]["film"].update(
        {"train": {"lr": 0.01}}))
    assert jobs == {}, jobs
    jobs = _dry_run_jobs(tiny_run, "mvae_cin", lambda c: c["mixture_vae"]["variants"]["cin"].update(
        {"train": {"lr": 0.01}}))
    assert jobs == {"mixture_vae_train": 1, "mixture_vae_evaluate": 1, "mixture_vae_figures": 1, "all": 1}, jobs


def test_abr_outputs(tiny_run):
    """Both modes: a checkpoint that reloads in its mode, a history of the configured epochs, an evaluation whose
    physiology numbers lie in their ranges, a summary with one column per mode, every figure."""
    import json

    from dualspace.abr.model import load_cvae
    from dualspace.abr.stages import SUMMARY_KEYS

    r = tiny_run / "results" / "abr"
    for mode in ("legacy", "joint"):
        assert load_cvae(r / mode / "model.pt").cfg.mode == mode
        history = json.loads((r / mode / "history.json").read_text())
        assert [h["epoch"] for h in history] == [0, 1] and all(0 <= h["active_units"] <= 4 for h in history)
        m = json.loads((r / mode / "evaluation.json").read_text())
        assert m["mode"] == mode and m["n_test"] == 100
        assert 0 <= m["gen_wave_below_threshold"] <= 1 and 0 <= m["c2st"] <= 1
    assert "static_corr_max_abs_diff" in json.loads((r / "joint/evaluation.json").read_text())
    assert "static_corr_max_abs_diff" not in json.loads((r / "legacy/evaluation.json").read_text())
    table = pd.read_csv(r / "summary.csv", index_col="metric")
    assert list(table.columns) == ["legacy", "joint"] and list(table.index) == SUMMARY_KEYS
    names = {p.name for p in (r / "figures").iterdir() if not p.name.startswith(".")}
    assert names == {"waveforms.png", "latency_intensity.png", "static_pairs.png", "training.png"}


def test_changing_one_abr_mode_reruns_that_mode_only(tiny_run):
    jobs = _dry_run_jobs(tiny_run, "abr_joint", lambda c: c["abr"]["mode_overrides"]["joint"]["loss"].update(
        max_beta=0.2))
    assert jobs == {"abr_train": 1, "abr_evaluate": 1, "abr_realism": 1, "abr_summary": 1, "all": 1}, jobs


def test_madness_outputs(tiny_run):
    """Every generation's files; generation g's checkpoint names the data it trained on, and that data is what the
    scenario says: full_synthetic = g-1's samples only (their hash recomputed here from samples.h5), fresh = real
    examples no earlier generation saw; the summary has a row per chain and generation, detection a row per
    spectrum summary and timestep."""
    import hashlib
    import json

    import h5py
    import torch

    r = tiny_run / "results" / "madness" / "digits"
    config = tiny(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))["madness"]
    G, n = config["generations"], config["n_samples"]
    assert (r / "lenet.pt").is_file() and (r / "gen0/model.pt").is_file() and (r / "gen0/jacobian.h5").is_file()

    def sha(path):
        with h5py.File(path) as f:
            return hashlib.sha256(np.ascontiguousarray(f["x"][()]).tobytes()
                                  + np.ascontiguousarray(f["label"][()]).tobytes()).hexdigest()

    gen0 = torch.load(r / "gen0/model.pt", weights_only=True)["provenance"]
    assert gen0["generation"] == 0 and len(gen0["real_index"]) == config["gen0_real"]
    seen = set(gen0["real_index"].tolist())
    for scenario in ("full_synthetic", "fresh", "augmented"):
        for g in range(G):
            d = r / "gen0/w1.0" if g == 0 else r / f"{scenario}/w1.0/gen{g}"
            for name in ("samples.h5", "metrics.json", "tsne.png") + (("model.pt", "jacobian.h5") if g else ()):
                assert (d / name).is_file(), d / name
            with h5py.File(d / "samples.h5") as f:
                assert f["x"].shape == (n, 1, 8, 8)
            m = json.loads((d / "metrics.json").read_text())
            assert m["fid"] >= 0 and 0 <= m["recall"] <= 1 and 0 <= m["region_acceptance"] <= 1
            if g == 0:
                continue
            prov = torch.load(d / "model.pt", weights_only=True)["provenance"]
            parent = r / "gen0/w1.0/samples.h5" if g == 1 else r / f"{scenario}/w1.0/gen{g - 1}/samples.h5"
            assert prov["generation"] == g and prov["scenario"] == scenario
            assert prov["parent_samples_sha256"] == sha(parent)
            if scenario == "full_synthetic":
                assert len(prov["real_index"]) == 0 and prov["data_sha256"] == sha(parent)
            if scenario == "fresh":
                new = set(prov["real_index"].tolist())
                assert len(new) == config["scenarios"]["fresh"]["n_real"] and not new & seen
                seen |= new
    table = pd.read_csv(r / "summary.csv")
    assert len(table) == 3 * G and set(table["generation"]) == set(range(G))
    detection = pd.read_csv(r / "detection.csv")
    assert len(detection) == 3 * 4 * len(config["jacobian"]["timesteps"])
    names = {p.name for p in (r / "figures").iterdir()}
    assert {"curves.png", "spectra.png", "samples_fresh_w1.0.png"} <= names


def test_raising_generations_extends_the_chains_without_retraining(tiny_run):
    jobs = _dry_run_jobs(tiny_run, "madness_G", lambda c: c["madness"].update(generations=4))
    # one new generation per chain: train + sample, metrics, Jacobian; then the summary
    assert jobs == {"madness_generation": 3, "madness_metrics": 3, "madness_jacobian": 3, "madness_summary": 1,
                    "madness_realism": 1, "all": 1}, jobs




def test_the_same_settings_in_reversed_key_order_rerun_nothing(tiny_run):
    """Snakemake compares params by repr: every dict param is canonical (keys sorted), so config/config.yaml and the
    run's overlay rewritten with every mapping's keys in reverse order (as another YAML tool might write them)
    schedule no job. (Rewriting the overlay alone could not fail: a --configfile merges into config.yaml's order.)"""

    def reverse(node):
        if isinstance(node, dict):
            return {k: reverse(node[k]) for k in reversed(list(node))}
        return [reverse(v) for v in node] if isinstance(node, list) else node

    base = tiny_run / "config" / "config.yaml"
    original = base.read_text()
    try:
        config = yaml.safe_load(original)
        text = yaml.safe_dump(reverse(config), sort_keys=False)
        assert text != yaml.safe_dump(config, sort_keys=False)  # the order really differs
        base.write_text(text)
        tiny_config = yaml.safe_load((tiny_run / "tiny.yaml").read_text())
        (tiny_run / "reversed.yaml").write_text(yaml.safe_dump(reverse(tiny_config), sort_keys=False))
        proc = snakemake("-n", "--configfile", "reversed.yaml", cwd=tiny_run, check=True)
    finally:
        base.write_text(original)
    jobs = {rule: n for rule, n in job_counts(proc.stdout).items() if rule != "total"}
    assert jobs == {}, proc.stdout[-3000:]

"""The ABR study's stages, one function per rule: train one mode, evaluate it on the test split, summarise the modes
(table and figures), track waves across EPL level sweeps."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from ..data import read_split
from ..data.abr_simulated import FS_HZ, HEARING_CLASSES, STATIC_NAMES, hearing_class
from ..io import read_h5, read_h5_attrs, read_json, write_csv, write_h5, write_json
from ..realism import RealismConfig, realism_frame
from . import evaluate as ev
from . import plots
from .epl import read_epl
from .family import CVAESettings
from .model import load_cvae, save_cvae
from .peaks import peak_to_peak, track_wave
from .study import MODES
from .train import reconstruct, train_cvae

log = logging.getLogger("dualspace.abr")


def study_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """A split file of abr_simulated as the CVAE sees it: signal (N, 200) in uV (the split's z-scoring undone),
    static (N, 6), peaks (N, 6) with NaN where a wave is absent, label (N,)."""
    split, attrs = read_split(path)
    if "static" not in split.extras or "peaks" not in split.extras:
        raise ValueError(f"{path}: no 'static' / 'peaks' extras; the abr study needs a dataset that has them "
                         "(abr.dataset: abr_simulated)")
    mean, std = float(np.ravel(attrs["norm_mean"])[0]), float(np.ravel(attrs["norm_std"])[0])
    peaks = split.extras["peaks"].astype(np.float32).copy()
    present = split.extras["peak_present"].astype(bool)  # (N, 3) waves I, III, V
    peaks[np.concatenate([~present, ~present], axis=1)] = np.nan
    return {"signal": (split.x[:, 0, :] * std + mean).astype(np.float32), "static": split.extras["static"],
            "peaks": peaks, "label": split.label}


def train_mode(train_h5: str | Path, val_h5: str | Path, model_out: str | Path, history_out: str | Path,
               settings: Mapping[str, Any], seed: int) -> None:
    """Fit the CVAE of one mode (settings: model / loss / train) on the train split, early stopping on `val_h5`."""
    cfg = CVAESettings.from_dict(settings)
    torch.manual_seed(seed)
    train, val = study_arrays(train_h5), study_arrays(val_h5)
    keys = ("signal", "static", "peaks")
    model, history = train_cvae({k: train[k] for k in keys}, {k: val[k] for k in keys}, cfg.model, cfg.loss,
                                cfg.train, seed)
    log.info("%s mode: %d parameters, best val loss %.4f after %d epochs", cfg.model.mode,
             sum(p.numel() for p in model.parameters()), min(h["val_loss"] for h in history), len(history))
    save_cvae(model, model_out, settings=dict(settings), seed=seed)
    log.info("seconds per epoch: %s", [round(row["seconds"], 2) for row in history])
    # seconds stay in the log: the history is a result, byte-identical between runs with the same seed
    write_json([{k: v for k, v in row.items() if k != "seconds"} for row in history], history_out)


def _generate(model, test: dict[str, np.ndarray], n: int, seed: int) -> dict[str, np.ndarray]:
    """n drafts: joint mode draws (signal, static, peaks) from z; legacy mode draws one signal per test static
    vector (resampled with replacement to n rows, seeded)."""
    gen = torch.Generator().manual_seed(seed)
    if model.cfg.joint_generation:
        return model.sample(n, generator=gen)
    rows = np.random.default_rng(seed).choice(len(test["static"]), n, replace=True)
    return model.sample(static=test["static"][rows], generator=gen)


def _joint_conditional(model, lo: float, hi: float, n: int, budget: int, seed: int) -> tuple[dict[str, np.ndarray], dict]:
    """Conditional generation from the joint model by rejection in latent space: z ~ N(0, I) is kept when its
    decoded intensity lies in [lo, hi]; stops at n kept or `budget` draws. Returns the kept drafts and the rate."""
    gen = torch.Generator().manual_seed(seed)
    kept: list[dict[str, np.ndarray]] = []
    drawn = n_kept = 0
    while n_kept < n and drawn < budget:
        block = min(4096, budget - drawn)
        s = model.sample(block, generator=gen)
        ok = (s["static"][:, ev.INTENSITY] >= lo) & (s["static"][:, ev.INTENSITY] <= hi)
        kept.append({k: v[ok] for k, v in s.items()})
        drawn, n_kept = drawn + block, n_kept + int(ok.sum())
    out = {k: np.concatenate([b[k] for b in kept])[:n] for k in kept[0]}
    return out, {"conditional_acceptance_rate": n_kept / drawn, "conditional_draws": drawn,
                 "conditional_kept": len(out["signal"])}


def evaluate_mode(model_path: str | Path, test_h5: str | Path, metrics_out: str | Path, generated_out: str | Path,
                  settings: Mapping[str, Any], seed: int) -> None:
    """Reconstruction, picker validation, generation physiology (and the real test split's floor), static marginals
    (joint), C2ST, and conditional generation at an intensity range (joint by rejection in latent space, legacy at
    the test split's static vectors in the range; `same_conditions` compares the two at equal vectors); the
    metrics as JSON, the drafts as HDF5 for the figures."""
    model = load_cvae(model_path)
    test = study_arrays(test_h5)
    n = int(settings["n_generate"])
    lo, hi = settings["intensity_range"]
    out: dict[str, Any] = {"mode": model.cfg.mode, "n_test": len(test["signal"]), "seed": seed,
                           "parameters": sum(p.numel() for p in model.parameters())}
    rec = reconstruct(model, test["signal"], test["static"])
    out.update(ev.reconstruction(test["signal"], test["static"], test["peaks"], rec, model.cfg.categorical))
    out.update(ev.picker_validation(test["signal"], test["static"], test["peaks"], FS_HZ))
    out.update({f"real_{k}": v for k, v in ev.physiology(test["signal"], test["static"], FS_HZ).items()})
    drafts = _generate(model, test, n, seed)
    out.update({f"gen_{k}": v for k, v in ev.physiology(drafts["signal"], drafts["static"], FS_HZ).items()})
    if model.cfg.joint_generation:
        out.update(ev.static_marginals(test["static"], drafts["static"]))
    out.update(ev.c2st_signal_static(test["signal"], test["static"], drafts["signal"], drafts["static"], seed,
                                     int(settings["c2st_folds"])))
    # conditional generation at intensity in [lo, hi]: joint by rejection; legacy at the test split's vectors in the
    # range (summary.csv also compares the two at the joint draws' vectors: same_conditions)
    if model.cfg.joint_generation:
        cond, rate = _joint_conditional(model, lo, hi, n, int(settings["max_latent_draws"]), seed + 1)
        out.update(rate)
    else:
        in_range = (test["static"][:, ev.INTENSITY] >= lo) & (test["static"][:, ev.INTENSITY] <= hi)
        cond = {"signal": np.zeros((0, model.cfg.signal_len), np.float32),
                "static": np.zeros((0, model.cfg.static_dim), np.float32)}
        if in_range.any():
            cond = model.sample(static=test["static"][in_range], generator=torch.Generator().manual_seed(seed + 1))
    if len(cond["signal"]):
        out.update({f"cond_{k}": v for k, v in ev.physiology(cond["signal"], cond["static"], FS_HZ).items()})
    write_json({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()},
               metrics_out)
    write_h5(generated_out, {"signal": drafts["signal"], "static": drafts["static"],
                             "peaks_picked": ev.pick_peaks(drafts["signal"], fs_hz=FS_HZ,
                                                           noise_uv=drafts["static"][:, ev.NOISE]),
                             "cond_signal": cond["signal"], "cond_static": cond["static"]},
             {"mode": model.cfg.mode, "static_names": STATIC_NAMES})
    log.info("%s: %s", model.cfg.mode, json.dumps({k: out[k] for k in out if k.startswith("gen_li") or
                                                    k.startswith("gen_ipl") or k == "c2st"}))


# summary.csv: the rows a reader compares across modes, in this order (every other metric stays in evaluation.json)
SUMMARY_KEYS = [
    "parameters", "recon_signal_mse", "recon_signal_corr", "recon_peak_latency_mae_I", "recon_peak_latency_mae_III",
    "recon_peak_latency_mae_V", "picker_latency_mae_V", "real_li_slope_picked", "real_li_slope_rule",
    "real_li_slope_rel_error", "gen_li_slope_picked", "gen_li_slope_rule", "gen_li_slope_rel_error",
    "real_ipl_I_V_error", "gen_ipl_I_V_picked", "gen_ipl_I_V_rule", "gen_ipl_I_V_error", "real_wave_below_threshold",
    "gen_wave_below_threshold", "gen_wave_v_found_above", "static_corr_max_abs_diff", "c2st", "c2st_low", "c2st_high",
    "conditional_acceptance_rate", "cond_latency_V_mean", "cond_li_slope_rel_error", "cond_ipl_I_V_error",
    "same_cond_latency_V_mean", "same_cond_latency_mae_V", "same_cond_li_slope_rel_error", "same_cond_wave_v_found_above",
    "same_cond_wave_below_threshold",
]


def same_conditions(models: Mapping[str, str | Path], generated: Mapping[str, str | Path], seed: int
                    ) -> dict[str, dict[str, float]]:
    """Conditional generation compared at the same conditions: the joint model's drafts kept by rejection at the
    intensity range, and the legacy model's drafts at exactly those static vectors (`same_cond_*` per mode).
    Empty unless both modes ran."""
    if not set(MODES) <= set(models):
        return {}
    cond = read_h5(generated["joint"], ["cond_signal", "cond_static"])
    if not len(cond["cond_static"]):
        return {}
    legacy = load_cvae(models["legacy"]).sample(static=cond["cond_static"],
                                                generator=torch.Generator().manual_seed(seed + 2))
    out = {}
    for mode, signal in (("joint", cond["cond_signal"]), ("legacy", legacy["signal"])):
        out[mode] = {f"same_cond_{k}": v for k, v in ev.physiology(signal, cond["cond_static"], FS_HZ).items()}
    return out


def summarise(metrics: Mapping[str, str | Path], generated: Mapping[str, str | Path],
              history: Mapping[str, str | Path], models: Mapping[str, str | Path], test_h5: str | Path,
              table_out: str | Path, figures_dir: str | Path, seed: int) -> None:
    """summary.csv (one column per mode, the rows of SUMMARY_KEYS, `same_cond_*` from `same_conditions`) and the
    study's figures."""
    evals = {m: read_json(p, "metrics") for m, p in metrics.items()}
    for mode, row in same_conditions(models, generated, seed).items():
        evals[mode].update(row)
    table = pd.DataFrame({m: [e.get(k) for k in SUMMARY_KEYS] for m, e in evals.items()}, index=SUMMARY_KEYS)
    table.index.name = "metric"
    write_csv(table, table_out, float_format="%.6g", index=True)
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    test = study_arrays(test_h5)
    drafts = {m: read_h5(p) for m, p in generated.items()}
    hist = {m: read_json(p, "training history", list) for m, p in history.items()}
    plots.waveforms(test, drafts, figures / "waveforms.png")
    plots.latency_intensity(test, drafts, figures / "latency_intensity.png")
    if "joint" in drafts:
        plots.static_pairs(test["static"], drafts["joint"]["static"], figures / "static_pairs.png")
    plots.training_curves(hist, figures / "training.png")


def epl_tracks(root: str | Path | None, table_out: str | Path, figures_dir: str | Path,
               picker: Mapping[str, Any]) -> None:
    """Every EPL level-sweep file under `root`: one wave tracked from the top level down (latency, amplitude per
    level) and the peak-to-peak amplitude in the window, as a table and a figure per file."""
    if not root:
        raise ValueError("config key abr.epl_root is null: point it at a folder of EPL 'LEVEL SWEEP' files, e.g. "
                         "`snakemake --cores 1 abr_epl --config abr='{epl_root: ../shared/data/ABR-EPL}'` (the "
                         "config merges the override into the abr section)")
    files = sorted(p for p in Path(root).iterdir() if p.is_file() and p.name != "LICENSE" and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"abr.epl_root {root}: no files")
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in files:
        sweep = read_epl(path)
        fs = 1e6 / sweep.sample_period_us
        lat, amp = track_wave(sweep.signals, sweep.levels, fs, tuple(picker["window_ms"]), picker["max_step_ms"])
        p2p = peak_to_peak(sweep.signals, fs, tuple(picker["p2p_window_ms"]))
        for level, la, am, pp in zip(sweep.levels, lat, amp, p2p):
            rows.append({"file": path.name, "level_db": float(level), "latency_ms": la, "amplitude": am,
                         "peak_to_peak": pp})
        plots.epl_sweep(sweep, lat, fs, figures / f"{path.name}.png")
    write_csv(pd.DataFrame(rows), table_out, float_format="%.6g")


def realism(generated_h5: str | Path, test_h5: str | Path, train_h5: str | Path, settings: Mapping[str, Any],
            seed: int, out_csv: str | Path, out_png: str | Path, threads: int = 1) -> pd.DataFrame:
    """rule abr_realism: the realism measure (`dualspace.realism`, config `realism`) of one mode's draws in uV
    against the real test split, beside the floor (real train vs real test); a draw's class is the hearing class
    of its threshold (legacy: the test vector it was drawn at; joint: its own drawn threshold)."""
    from ..plots import realism_figure

    gen, mode = read_h5(generated_h5, ["signal", "static"]), read_h5_attrs(generated_h5)["mode"]
    test, train = study_arrays(test_h5), study_arrays(train_h5)
    df = realism_frame(gen["signal"][:, None], hearing_class(gen["static"][:, ev.THRESHOLD]), test["signal"][:, None],
                       test["label"], train["signal"][:, None], train["label"], "series", HEARING_CLASSES, seed,
                       RealismConfig.from_dict(settings), threads, study="abr", mode=mode)
    write_csv(df, out_csv, float_format="%.6g")
    realism_figure(df, f"abr ({mode} mode): can a classifier tell the study's draws from real test recordings?",
                   out_png)
    return df


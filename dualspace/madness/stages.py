"""One function per rule of workflow/rules/madness.smk (the self-consuming loops study, docs/madness.md)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..conformal import ThresholdTable, accept
from ..data import read_split, split_meta
from ..io import write_csv, write_h5, write_json
from ..realism import RealismConfig, realism_frame
from ..scoring import score_outcomes
from . import lenet as lenet_lib
from .loop import (GenerationData, LoopConfig, ScenarioConfig, digest, gen0_real_index, generation_data,
                   load_generation, read_samples, sample_generation, save_with_provenance, train_generation)
from .quality import quality_from_outputs, tsne_figure
from .spectrum import denoiser_spectrum

log = logging.getLogger("dualspace")


def sample_seed(seed: int, g: int) -> int:
    """Sampling seed of generation g (every chain and w share generation 0's noise)."""
    return seed * 1000 + g


def train_lenet(train_h5: str | Path, test_h5: str | Path, out_pt: str | Path, settings: Mapping[str, Any],
                seed: int, dataset: str) -> None:
    """rule madness_lenet: the feature network of FID (LeNet), trained once on the real train split."""
    train, attrs = read_split(train_h5, dataset=dataset, split="train")
    test, _ = read_split(test_h5, dataset=dataset, split="test")
    cfg = lenet_lib.LeNetConfig(in_channels=train.x.shape[1], image_size=train.x.shape[-1],
                                n_classes=int(attrs["n_classes"]), seed=seed, **dict(settings))
    model = lenet_lib.train_lenet(train.x, train.label, cfg)
    acc = float((lenet_lib.predict(model, test.x) == test.label).mean())
    log.info("LeNet test accuracy %.4f on %d real test images", acc, len(test.label))
    lenet_lib.save_lenet(model, cfg, out_pt, test_accuracy=acc)


def train_gen0(train_h5: str | Path, out_pt: str | Path, settings: Mapping[str, Any], seed: int, dataset: str,
               reuse_pt: str | Path | None = None, device: str = "auto") -> None:
    """rule madness_gen0: generation 0 on `gen0_real` real train examples, or the dual-space generator copied
    when the settings and data are the same (`reuse_pt`)."""
    cfg = LoopConfig.from_dict(settings)
    split, attrs = read_split(train_h5, dataset=dataset, split="train")
    real = gen0_real_index(len(split.label), cfg.gen0_real, seed)
    data = GenerationData(split.x[real], split.label[real], np.zeros(0, np.int64), real.astype(np.int64))
    prov = data.provenance(0, "real", 0.0, None)
    if reuse_pt is not None:
        log.info("generation 0 = the dual-space generator %s (same settings, all %d train examples)", reuse_pt,
                 len(real))
        save_with_provenance(reuse_pt, out_pt, {**prov, "reused": str(reuse_pt)})
        return
    train_generation(data, cfg, out_pt, int(attrs["n_classes"]), split_meta(attrs), seed, None, prov, device)


def sample_gen0(model_pt: str | Path, out_h5: str | Path, settings: Mapping[str, Any], w: float, seed: int) -> None:
    """rule madness_gen0_samples: generation 0's samples at guidance weight w (shared by every chain with that w)."""
    cfg = LoopConfig.from_dict(settings)
    model, _ = load_generation(model_pt)
    sample_generation(model, cfg.n_samples, cfg.sampler_for(w), sample_seed(seed, 0), out_h5,
                      {"generation": 0, "w": float(w), "model": str(model_pt)})


def run_generation(prev_model: str | Path, prev_samples: str | Path, train_h5: str | Path, out_model: str | Path,
                   out_samples: str | Path, settings: Mapping[str, Any], scenario: str,
                   scenario_settings: Mapping[str, Any], g: int, seed: int, dataset: str,
                   device: str = "auto") -> None:
    """rule madness_generation: generation g >= 1 of a chain: its data, its model, then its samples."""
    cfg = LoopConfig.from_dict(settings)
    sc = ScenarioConfig.from_dict(scenario, scenario_settings)
    split, attrs = read_split(train_h5, dataset=dataset, split="train")
    samples, _ = read_samples(prev_samples)
    data = generation_data(sc, g, samples, split.x, split.label, cfg.gen0_real, seed)  # errors before any write
    prov = {**data.provenance(g, sc.name, sc.w, str(prev_samples)), "parent_model": str(prev_model),
            "parent_samples_sha256": digest(samples["x"], samples["label"])}
    init = None
    if cfg.generation_train.warm_start:
        parent, _ = load_generation(prev_model)
        init = parent.state_dict()
    model = train_generation(data, cfg, out_model, int(attrs["n_classes"]), split_meta(attrs), seed + g, init, prov,
                             device)
    sample_generation(model.cpu().eval(), cfg.n_samples, cfg.sampler_for(sc.w), sample_seed(seed, g), out_samples,
                      {"generation": g, "scenario": sc.name, "w": float(sc.w), "model": str(out_model)})


def evaluate_generation(samples_h5: str | Path, test_h5: str | Path, lenet_pt: str | Path,
                        region: Mapping[str, str], out_json: str | Path, out_png: str | Path,
                        settings: Mapping[str, Any], alpha: float, seed: int, dataset: str, title: str) -> None:
    """rule madness_metrics: FID (LeNet), class accuracy, PRDC, t-SNE and the share of samples inside the
    real-data region of the dual-space run (phi, MDN and tau at `alpha`) against the real test split."""
    samples, attrs = read_samples(samples_h5)
    test, test_attrs = read_split(test_h5, dataset=dataset, split="test")
    model, extra = lenet_lib.load_lenet(lenet_pt)
    real_f, real_logits = lenet_lib.forward(model, test.x)  # features once: for the metrics and the t-SNE
    fake_f, fake_logits = lenet_lib.forward(model, samples["x"])
    q = quality_from_outputs(real_f, real_logits, test.label, fake_f, fake_logits, samples["label"],
                             k=settings["prdc_k"], n_boot=settings["fid_bootstrap"], seed=seed)
    n_classes = int(test_attrs["n_classes"])
    _, _, s, _ = score_outcomes(samples["x"], samples["label"], n_classes, region["generator"], region["phi"],
                                region["mdn"], dataset)
    inside = accept(s, samples["label"], ThresholdTable.from_csv(region["tau"], alpha))
    out = {**q, "region_acceptance": float(inside.mean()), "region_alpha": alpha,
           "lenet_test_accuracy": float(extra["test_accuracy"]), "generation": int(attrs["generation"]),
           "w": float(attrs["w"])}
    tsne_figure(real_f, fake_f, out_png, title, max_points=settings["tsne_points"], seed=seed)
    write_json(out, out_json)
    log.info("%s: FID %.3f, recall %.3f, region acceptance %.3f", title, q["fid"], q["recall"], out["region_acceptance"])


def jacobian(model_pt: str | Path, test_h5: str | Path, out_h5: str | Path, settings: Mapping[str, Any], seed: int,
             dataset: str) -> None:
    """rule madness_jacobian: the spectrum of d eps_theta(x_t, t, c) / d x_t at fixed probes and timesteps."""
    test, _ = read_split(test_h5, dataset=dataset, split="test")
    model, _ = load_generation(model_pt)
    n = min(int(settings["probes"]), len(test.label))
    idx = np.sort(np.random.default_rng([seed, 0x7AC]).permutation(len(test.label))[:n])
    T = model.schedule.T
    bad = [t for t in settings["timesteps"] if not 0 <= t < T]
    if bad:
        raise ValueError(f"madness.jacobian.timesteps: {bad} outside [0, {T}) of the model's T = {T}")
    out = denoiser_spectrum(model, torch.as_tensor(test.x[idx]), torch.as_tensor(test.label[idx]),
                            list(settings["timesteps"]), seed, method=settings["method"], k=settings["k"])
    arrays = {"probe_index": idx.astype(np.int64), "timesteps": np.asarray(settings["timesteps"], np.int64)}
    arrays.update({k: np.asarray(v) for k, v in out.items()})
    write_h5(out_h5, arrays, {"model": str(model_pt), "method": settings["method"], "seed": seed})


def realism(samples: Sequence[str | Path], chains: Sequence[Sequence[Any]], generations: int, train_h5: str | Path,
            test_h5: str | Path, settings: Mapping[str, Any], seed: int, out_csv: str | Path, out_png: str | Path,
            dataset: str, threads: int = 1) -> pd.DataFrame:
    """rule madness_realism: the realism measure (`dualspace.realism`, config `realism`) of every generation's
    samples against the real test split, beside the floor (real train vs real test), one block of rows per
    (scenario, w, generation); `samples` chain-major, `generations` per chain. A file shared by chains (generation
    0) is measured once."""
    from .plots import realism_figure

    train, attrs = read_split(train_h5, dataset=dataset, split="train")
    test, _ = read_split(test_h5, dataset=dataset, split="test")
    cfg, G = RealismConfig.from_dict(settings), int(generations)
    measured: dict[str, pd.DataFrame] = {}
    frames = []
    for i, (scenario, w) in enumerate(chains):
        for g in range(G):
            path = str(samples[i * G + g])
            if path not in measured:
                s, _ = read_samples(path)
                measured[path] = realism_frame(s["x"], s["label"], test.x, test.label, train.x, train.label,
                                               attrs["kind"], list(attrs["class_names"]), seed, cfg, threads)
            frame = measured[path].copy()
            for k, (key, value) in enumerate((("scenario", scenario), ("w", float(w)), ("generation", g))):
                frame.insert(k, key, value)
            frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    write_csv(df, out_csv, float_format="%.6g")
    realism_figure(df, out_png, f"{dataset}: can a classifier tell each generation's samples from real test data?")
    return df


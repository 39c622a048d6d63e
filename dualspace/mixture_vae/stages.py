"""The mixture-of-VAEs study's stages, one function per rule of workflow/rules/mixture_vae.smk.

Files under results/mixture_vae/{ds}/ (the images come from the shared split files results/{ds}/data/):
  {run}/model.pt        a trained run ({variant} with the config seed, or {variant}/seed{s})
  {run}/history.json    one row per epoch: loss terms, tau, KL and usage per channel, dead channels, collapse signs
  {run}/metrics.json    test clustering accuracy (Hungarian), NMI, ARI, tau-classifier accuracy, dead channels, ELBO
  {run}/test_codes.h5   q(c|x), latent means / log-variances of the test split (what the figures draw)
  {run}/figures/        the K channel plots and the diagnostics
  kmeans.json           k-means on raw pixels: the clustering baseline of the same split
  ablation.csv, ablation_summary.csv, ablation.png   every (variant, seed) run, mean +- sd per variant
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from ..data import read_split
from ..io import load_checkpoint, read_h5, read_h5_attrs, read_json, save_torch, write_csv, write_h5, write_json
from . import evaluate as ev
from . import plots
from .family import MixtureVAESettings, responsibilities
from .losses import elbo, kl_normal_std
from .model import MixtureVAE
from .train import train_mixture_vae

log = logging.getLogger("dualspace")
METRICS = ("accuracy", "nmi", "ari", "tau_accuracy", "n_dead", "n_used", "test_elbo", "resp_entropy")


def _images(path: str | Path, split: str):
    s, attrs = read_split(path, split=split)
    if s.x.ndim != 4:
        raise ValueError(f"split file {path}: the mixture-of-VAEs study needs images (N, C, H, W), this dataset "
                         f"({attrs['dataset']}, kind {attrs['kind']}) has x {s.x.shape}; pick an image dataset in "
                         "config key mixture_vae.default.dataset / mixture_vae.ablation")
    return s, attrs


def load_run(path: str | Path) -> tuple[MixtureVAE, dict[str, Any]]:
    """A study model and its checkpoint dict (weights_only)."""
    ckpt = load_checkpoint(path, "mixture_vae model")
    if not isinstance(ckpt, dict) or ckpt.get("family") != "mixture_vae":
        raise ValueError(f"{path} is not a mixture_vae checkpoint; delete it and rerun `snakemake {path}`")
    return MixtureVAE.from_checkpoint(ckpt), ckpt


def train_run(train_h5: str | Path, model_out: str | Path, history_out: str | Path, *,
              settings: Mapping[str, Any], seed: int) -> None:
    """rule mixture_vae_train: fit one run on the train split's images (labels unused) and log every epoch."""
    cfg = MixtureVAESettings.from_dict(settings)
    split, attrs = _images(train_h5, "train")
    log.info("training a mixture of VAEs on %s train %s, seed %d: %s", attrs["dataset"], split.x.shape, seed,
             cfg.to_dict())

    def log_epoch(row: dict[str, Any]) -> None:
        log.info("epoch %d: tau %.3f loss %.2f recon %.2f kl_z %.2f resp_entropy %.3f dead %d unlocked %d "
                 "norm %s (%.2f s)", row["epoch"], row["tau"], row["loss"], row["recon"], row["kl_z"],
                 row["resp_entropy"], row["n_dead"], row["n_unlocked"], row["norm_enabled"], row["seconds"])

    t0 = time.perf_counter()
    model, history = train_mixture_vae(split.x, cfg.model, cfg.loss, cfg.train, seed, log_epoch=log_epoch)
    log.info("trained in %.1f s", time.perf_counter() - t0)
    meta = {"dataset": attrs["dataset"], "class_names": list(attrs["class_names"]), "shape": list(split.x.shape[1:])}
    save_torch(model.checkpoint(settings=cfg.to_dict(), seed=seed, data=meta), model_out)
    # seconds stay in the log: the history is a result, byte-identical between runs with the same seed
    write_json([{k: v for k, v in row.items() if k != "seconds"} for row in history], history_out)


def evaluate_run(model_path: str | Path, train_h5: str | Path, test_h5: str | Path, metrics_out: str | Path,
                 codes_out: str | Path, *, settings: Mapping[str, Any], seed: int) -> None:
    """rule mixture_vae_evaluate: on the test split, channel = argmax q(c|x) scored by Hungarian accuracy, NMI
    and ARI; the tau-classifier from `settings["labelled"]` labelled train examples; dead channels; test ELBO."""
    model, ckpt = load_run(model_path)
    train, _ = _images(train_h5, "train")
    test, attrs = _images(test_h5, "test")
    K, n_classes = model.cfg.K, int(attrs["n_classes"])
    codes_tr = responsibilities(model, train.x)
    codes = responsibilities(model, test.x)
    channel = codes["q"].argmax(1)
    scores = ev.clustering_scores(channel, test.label, K, n_classes)
    _, matching = ev.hungarian_accuracy(channel, test.label, K, n_classes)

    labelled = ev.labelled_subset(train.label, settings["labelled"], seed)
    tau = ev.fit_tau(codes_tr["q"][labelled], train.label[labelled], n_classes)
    tau_acc = float((ev.predict_tau(codes["q"], tau) == test.label).mean())

    kl = kl_normal_std(torch.as_tensor(codes["mu"]), torch.as_tensor(codes["logvar"])).numpy()  # (N, K)
    kl_per_channel = (codes["q"] * kl).sum(0) / np.maximum(codes["q"].sum(0), 1e-12)  # q-weighted, nats
    dead_threshold = ckpt["settings"]["train"]["dead_threshold"]
    dead = ev.dead_channels(codes["q"], kl_per_channel, usage_threshold=dead_threshold)
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(test.x)
    test_elbo = float(np.mean(np.concatenate([elbo(model, x[i:i + 1024], generator=gen).numpy()
                                              for i in range(0, len(x), 1024)])))
    metrics = {
        "dataset": attrs["dataset"], "seed": int(ckpt["seed"]), "K": K, "D": model.cfg.D,
        "conditioning": model.cfg.conditioning, "cin_stable": model.cfg.cin_stable,
        "regulariser": ckpt["settings"]["loss"]["regulariser"], "n_test": int(len(test.label)),
        **{k: float(v) if k != "n_used" else int(v) for k, v in scores.items()},
        "tau_accuracy": tau_acc, "labelled": int(len(labelled)),
        "n_dead": int(dead.sum()), "dead_channels": np.flatnonzero(dead).tolist(),
        "kl_per_channel": kl_per_channel.tolist(), "usage": codes["q"].mean(0).tolist(),
        "resp_entropy": ev.responsibility_entropy(codes["q"]), "mean_max_q": float(codes["q"].max(1).mean()),
        "test_elbo": test_elbo, "test_elbo_per_pixel": test_elbo / float(np.prod(test.x.shape[1:])),
        "channel_of_label": ev.channel_to_label(codes_tr["q"], train.label, K, n_classes).tolist(),
        "test_matching": {str(k): int(v) for k, v in matching.items()},
    }
    log.info("test: accuracy %.3f, NMI %.3f, ARI %.3f, tau-classifier %.3f (%d labels), %d dead channel(s), "
             "ELBO %.1f nats", metrics["accuracy"], metrics["nmi"], metrics["ari"], tau_acc, len(labelled),
             metrics["n_dead"], test_elbo)
    write_h5(codes_out, {**codes, "label": test.label, "channel": channel},
             {"dataset": attrs["dataset"], "class_names": list(attrs["class_names"])})
    write_json(metrics, metrics_out)


def figures(model_path: str | Path, history_path: str | Path, metrics_path: str | Path, codes_h5: str | Path,
            test_h5: str | Path, out_dir: str | Path, n_recon: int = 8, max_plot: int = 5000) -> None:
    """rule mixture_vae_figures: every figure of one run into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, _ = load_run(model_path)
    history = read_json(history_path, "training history", list)
    metrics = read_json(metrics_path, "metrics")
    codes = read_h5(codes_h5)
    class_names = read_h5_attrs(codes_h5)["class_names"]
    test, _ = _images(test_h5, "test")
    K, D = model.cfg.K, model.cfg.D
    q, mu, label, channel = codes["q"], codes["mu"], codes["label"], codes["channel"]
    keep = np.random.default_rng(0).permutation(len(q))[:max_plot]
    mu_sel = mu[np.arange(len(q)), channel]  # (N, D) the selected channel's latent mean
    mapping = {int(k): int(v) for k, v in metrics["test_matching"].items()}

    plots.channel_latents_grid(mu_sel[keep], channel[keep], label[keep], K, out / "channel_latents_grid.png",
                               class_names=class_names, mapping=mapping)
    for k in range(K):
        plots.channel_plot(k, mu_sel[keep], channel[keep], label[keep], K, out, class_names=class_names,
                           mapping=mapping)
    plots.latent_by_component(mu[keep], q[keep], out / "latent_by_component.png")
    plots.channel_ownership(ev.channel_label_table(channel, label, K, len(class_names)), out / "channel_ownership.png",
                            class_names=class_names)
    plots.component_kl(history, out / "component_kl.png")
    plots.routing_hardness(q, out / "routing_hardness.png")
    plots.training_curves(history, out / "training_curves.png")

    def decode(z: np.ndarray, k: int) -> np.ndarray:
        with torch.no_grad():
            zt = torch.as_tensor(z, dtype=torch.float32)
            return model.decode(zt, torch.full((len(z),), k, dtype=torch.long))["mean"].clamp(-1, 1).numpy()

    for k in range(K):
        plots.decoded_grid(decode, k, D, out / f"decoded_grid_{k:02d}.png")
    plots.decoded_grids_overview(decode, K, out / "decoded_grids.png", D=D, mapping=mapping, class_names=class_names)

    idx = np.random.default_rng(1).permutation(len(q))[:n_recon]
    x, q_r, mu_r = test.x[idx], q[idx], mu[idx]
    recon_all = np.stack([decode(mu_r[:, k], k) for k in range(K)], 1)  # (M, K, C, H, W) at each channel's mean
    recon_sel = recon_all[np.arange(len(idx)), q_r.argmax(1)]
    recon_weighted = (q_r[:, :, None, None, None] * recon_all).sum(1)
    plots.recon_selected(x, recon_sel, recon_weighted, out / "recon_selected.png")
    plots.reconstruction_by_component(x, recon_all, q_r, out / "reconstruction_by_component.png")
    log.info("figures of %s written to %s", model_path, out)


def kmeans_run(train_h5: str | Path, test_h5: str | Path, out: str | Path, *, K: int, seed: int) -> None:
    """rule mixture_vae_kmeans: k-means (K clusters, 10 restarts) on the train split's raw pixels, scored on test."""
    train, _ = _images(train_h5, "train")
    test, attrs = _images(test_h5, "test")
    t0 = time.perf_counter()
    scores = ev.kmeans_baseline(train.x, test.x, test.label, K, int(attrs["n_classes"]), seed)
    scores = {k: float(v) if k != "n_used" else int(v) for k, v in scores.items()}
    log.info("k-means on raw pixels (K=%d): %s in %.1f s", K, scores, time.perf_counter() - t0)
    write_json({"dataset": attrs["dataset"], "K": K, "seed": seed, **scores}, out)


def ablation_table(metrics_by_run: Mapping[str, str | Path], kmeans_path: str | Path, csv_out: str | Path,
                   summary_out: str | Path, figure_out: str | Path) -> None:
    """rule mixture_vae_ablation_table: one row per (variant, seed); mean +- sd per variant; accuracy figure."""
    rows = []
    for run, path in metrics_by_run.items():
        m = read_json(path, "metrics")
        rows.append({"variant": run.split("/")[0], "seed": m["seed"], **{k: m[k] for k in METRICS}})
    df = pd.DataFrame(rows)
    kmeans = read_json(kmeans_path, "k-means baseline")
    summary = []
    for variant, g in df.groupby("variant", sort=False):
        s = ev.summarise_seeds(g.to_dict("records"), list(METRICS))
        summary.append({"variant": variant, **s, "seeds_with_dead_channels": int((g["n_dead"] > 0).sum())})
    summary = pd.DataFrame(summary)
    summary["kmeans_accuracy"] = kmeans["accuracy"]
    write_csv(df, csv_out, float_format="%.4f")
    write_csv(summary, summary_out, float_format="%.4f")
    plots.ablation(df, kmeans["accuracy"], figure_out)
    log.info("ablation:\n%s", summary.to_string())

"""The mixture-of-VAEs study's settings, config checks and stages, and the `mixture_vae` generator family."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from conftest import ROOT
from dualspace.config import canonical, config_problems, deep_merge
from dualspace.mixture_vae.study import run_settings as mixture_vae_run_settings
from dualspace.data import Dataset, Split
from dualspace.data.files import write_split

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
TINY = {"model": {"K": 3, "trunk": [8, 16], "hidden": 32, "embed_dim": 8},
        "train": {"epochs": 30, "batch_size": 16, "anneal_epochs": 15}}


def _config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def simulated_prototypes(n_per: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Simulated 8x8 images: three fixed prototypes (a bar, a column, a square) plus noise, labels 0..2."""
    protos = -np.ones((3, 8, 8), np.float32)
    protos[0, 3:5, :] = 1
    protos[1, :, 3:5] = 1
    protos[2, 1:7, 1:7] = 1
    protos[2, 2:6, 2:6] = -1
    rng = np.random.default_rng(seed)
    label = np.repeat(np.arange(3), n_per)
    x = np.clip(protos[label] + 0.15 * rng.standard_normal((len(label), 8, 8)), -1, 1).astype(np.float32)
    return x[:, None], label


def test_run_settings_layer_dataset_then_variant():
    m = {"model": {"K": 10, "D": 2}, "loss": {"beta": 1.0}, "train": {"epochs": 30, "lr": 0.001},
         "datasets": {"mnist": {"train": {"epochs": 10}}},
         "variants": {"film": {"model": {"conditioning": "film"}, "train": {"epochs": 5}}, "cin": {}}}
    assert mixture_vae_run_settings(m, "mnist", "cin") == {
        "loss": {"beta": 1.0}, "model": {"D": 2, "K": 10}, "train": {"epochs": 10, "lr": 0.001}}
    assert mixture_vae_run_settings(m, "mnist", "film")["train"] == {"epochs": 5, "lr": 0.001}
    assert mixture_vae_run_settings(m, "digits", "film")["model"] == {"D": 2, "K": 10, "conditioning": "film"}
    # reordered keys give the same params (Snakemake compares them by repr)
    reordered = {k: m[k] for k in reversed(list(m))}
    assert repr(mixture_vae_run_settings(reordered, "mnist", "film")) == repr(mixture_vae_run_settings(m, "mnist", "film"))
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}, "d": 4}) == {"a": {"b": 1, "c": 3}, "d": 4}


def test_default_config_is_clean():
    assert config_problems(_config(), SCHEMA) == []


@pytest.mark.parametrize("edit, expected", [
    (lambda m: m["model"].update(K=0), "config key mixture_vae: mixture_vae.model.K must be an integer >= 1"),
    (lambda m: m["variants"]["film"]["model"].update(D=0), "mixture_vae.model.D must be an integer >= 1, got 0 (runs digits/film;"),
    (lambda m: m["variants"]["film"]["model"].update(conditioning="adain"), "conditioning"),
    (lambda m: m["train"].update(epoks=3), "epoks"),
    (lambda m: m["ablation"]["digits"]["variants"].append("vq"),
     "mixture_vae.ablation.digits.variants[9]: 'vq' is not one of the variants"),
    (lambda m: m["default"].update(variant="vq"), "mixture_vae.default.variant: 'vq' is not one of the variants"),
])
def test_bad_study_settings_name_their_key(edit, expected):
    config = _config()
    edit(config["mixture_vae"])
    problems = config_problems(config, SCHEMA)
    assert any(expected in p for p in problems), problems


def test_bad_family_settings_name_their_key():
    config = _config()
    config["digits"]["generator"].update(family="mixture_vae", mixture_vae={"model": {"K": 0}})
    config["digits"]["sampler"]["mixture_vae"] = {"temperature": 1.0}
    problems = config_problems(config, SCHEMA)
    assert any(p.startswith("config key digits.generator.mixture_vae:") and "K must be an integer >= 1" in p
               for p in problems), problems
    config["digits"]["generator"]["mixture_vae"] = {"model": {}}
    assert config_problems(config, SCHEMA) == []
    del config["digits"]["sampler"]["mixture_vae"]
    assert any("'mixture_vae' is a required property" in p for p in config_problems(config, SCHEMA))


def test_family_trains_a_conditional_generator_the_stages_can_load(tmp_path):
    """Through the registry: train on simulated prototypes, load with load_generator (weights_only); the channel of
    each class is the best one-to-one matching (brute force here) and a draft of class c is that channel's decoder.

    (On these 3 prototypes the 2-D z alone can tell them apart, so the decoder need not use the channel: what the
    drafts look like is judged on digits, docs/mixture_vae.md, not here.)"""
    import itertools

    import torch

    from dualspace.generator import family, load_generator
    from dualspace.mixture_vae.family import responsibilities

    x, label = simulated_prototypes()
    fam = family("mixture_vae")
    cfg = fam.make_config(TINY, "sim.generator")
    meta = {"dataset": "sim", "kind": "image", "class_names": ["bar", "column", "square"]}
    fam.train(Split(x, label), cfg, tmp_path / "model.pt", n_classes=3, meta=meta, seed=0)
    gen = load_generator(tmp_path / "model.pt", dataset="sim", kind="image", shape=[1, 8, 8], n_classes=3)
    assert gen.n_classes == 3 and gen.cond_dim == 8
    channel = responsibilities(gen.model, x)["q"].argmax(1)
    best = max(itertools.permutations(range(3)), key=lambda p: sum((channel[label == c] == p[c]).sum() for c in range(3)))
    np.testing.assert_array_equal(gen.channel_of_label, best)
    labels = np.repeat(np.arange(3), 20)
    drafts = gen.sample(labels, seed=1, sampler=fam.make_sampler({"temperature": 1.0}, "sim.sampler"))
    assert drafts.shape == (60, 1, 8, 8) and drafts.min() >= -1 and drafts.max() <= 1
    np.testing.assert_array_equal(drafts, gen.sample(labels, seed=1))  # seeded
    assert not np.array_equal(drafts, gen.sample(labels, seed=2))
    at_zero = gen.sample(labels, seed=1, sampler=fam.make_sampler({"temperature": 0.0}, "sim.sampler"))
    with torch.no_grad():
        for c in range(3):  # temperature 0: z = 0 in the matched channel
            direct = gen.model.decode(torch.zeros(1, 2), torch.tensor([best[c]]))["mean"].clamp(-1, 1).numpy()
            np.testing.assert_allclose(at_zero[labels == c], np.repeat(direct, 20, 0), atol=1e-6)
    e = gen.embed(labels)
    np.testing.assert_array_equal(e, gen.model.embed.detach().numpy()[np.asarray(best)[labels]])
    with pytest.raises(ValueError, match=r"out of range"):
        gen.embed(np.array([3]))


def test_a_study_checkpoint_is_not_a_generator(tmp_path):
    from dualspace.io import save_torch
    from dualspace.mixture_vae.family import MixtureVAEGenerator
    from dualspace.mixture_vae.model import MixtureVAE, MixtureVAEConfig

    save_torch(MixtureVAE(MixtureVAEConfig(K=2, trunk=[8], hidden=8, embed_dim=4), (1, 8, 8)).checkpoint(),
               tmp_path / "m.pt")
    import torch

    with pytest.raises(ValueError, match="not a generator"):
        MixtureVAEGenerator.from_checkpoint(torch.load(tmp_path / "m.pt", weights_only=True))


def _write_sim_splits(tmp_path, kind="image"):
    x, label = simulated_prototypes(n_per=40)
    if kind == "series":
        x = x[:, 0]  # (N, 8, 8) read as 8 channels x 8 steps
    idx = np.random.default_rng(0).permutation(len(label))
    tr, te = idx[:80], idx[80:]
    ds = Dataset(name="sim", kind=kind, n_classes=3, class_names=["bar", "column", "square"],
                 splits={"train": Split(x[tr], label[tr]), "test": Split(x[te], label[te])},
                 normalization={}, provenance={"source": "simulated prototypes"})
    for s in ("train", "test"):
        write_split(tmp_path / f"{s}.h5", ds, s)
    return label[te]


def test_stages_end_to_end_on_simulated_prototypes(tmp_path):
    """train -> evaluate -> figures -> k-means -> ablation table on simulated data with known clusters."""
    from dualspace.mixture_vae import stages

    _write_sim_splits(tmp_path)
    settings = canonical(TINY)
    runs = {}
    for seed in (0, 1):
        d = tmp_path / f"seed{seed}"
        stages.train_run(tmp_path / "train.h5", d / "model.pt", d / "history.json", settings=settings, seed=seed)
        stages.evaluate_run(d / "model.pt", tmp_path / "train.h5", tmp_path / "test.h5", d / "metrics.json",
                            d / "codes.h5", settings={"labelled": 9, "max_plot": 100}, seed=seed)
        runs[f"cin/seed{seed}"] = d / "metrics.json"
    m = json.loads((tmp_path / "seed0/metrics.json").read_text())
    assert m["accuracy"] >= 0.9 and m["tau_accuracy"] >= 0.9 and m["labelled"] == 9, m
    assert sorted(m["channel_of_label"]) == [0, 1, 2]  # three clusters, three channels, one each
    stages.figures(tmp_path / "seed0/model.pt", tmp_path / "seed0/history.json", tmp_path / "seed0/metrics.json",
                   tmp_path / "seed0/codes.h5", tmp_path / "test.h5", tmp_path / "figs")
    assert (tmp_path / "figs/channel_latents_grid.png").stat().st_size > 5000
    stages.kmeans_run(tmp_path / "train.h5", tmp_path / "test.h5", tmp_path / "kmeans.json", K=3, seed=0)
    stages.ablation_table(runs, tmp_path / "kmeans.json", tmp_path / "a.csv", tmp_path / "s.csv", tmp_path / "a.png")
    import pandas as pd

    summary = pd.read_csv(tmp_path / "s.csv")
    accs = [json.loads(p.read_text())["accuracy"] for p in runs.values()]
    assert summary["accuracy_mean"][0] == pytest.approx(np.mean(accs), abs=1e-4)
    assert summary["accuracy_sd"][0] == pytest.approx(np.std(accs, ddof=1), abs=1e-4)


def test_a_series_split_is_refused_with_its_path(tmp_path):
    from dualspace.mixture_vae import stages

    _write_sim_splits(tmp_path, kind="series")
    with pytest.raises(ValueError, match=r"train\.h5: the mixture-of-VAEs study needs images"):
        stages.train_run(tmp_path / "train.h5", tmp_path / "m.pt", tmp_path / "h.json", settings=TINY, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.h5", "train.h5"]

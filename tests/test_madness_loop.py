"""The self-consuming loop's data, settings and warm start, against hand-built expectations."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT
from dualspace.config import config_problems
from dualspace.madness.loop import (GenerationData, LoopConfig, ScenarioConfig, fresh_real_index, gen0_real_index,
                                    generation_data, load_generation, train_generation)

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
N_TRAIN = 200


@pytest.fixture
def real():
    rng = np.random.default_rng(0)
    return rng.normal(size=(N_TRAIN, 1, 4, 4)).astype(np.float32), rng.integers(0, 3, N_TRAIN).astype(np.int64)


@pytest.fixture
def samples():
    rng = np.random.default_rng(1)
    return {"x": rng.normal(size=(30, 1, 4, 4)).astype(np.float32), "label": np.arange(30) % 3}


def _rows(x: np.ndarray, pool: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in x} & {r.tobytes() for r in pool}


def test_full_synthetic_trains_on_the_parent_samples_only(real, samples):
    d = generation_data(ScenarioConfig("full_synthetic"), 1, samples, *real, gen0_real=100, seed=0)
    assert np.array_equal(d.x, samples["x"]) and np.array_equal(d.label, samples["label"])
    assert len(d.real_index) == 0 and not _rows(d.x, real[0])


def test_augmented_is_the_whole_real_split_plus_the_samples(real, samples):
    d = generation_data(ScenarioConfig("augmented"), 2, samples, *real, gen0_real=100, seed=0)
    assert len(d.label) == N_TRAIN + 30
    assert {r.tobytes() for r in d.x} == {r.tobytes() for r in real[0]} | {r.tobytes() for r in samples["x"]}


def test_fresh_never_reuses_a_real_example(real, samples):
    sc = ScenarioConfig("fresh", n_synthetic=10, n_real=25)
    seen = {int(i) for i in gen0_real_index(N_TRAIN, 100, seed=3)}
    assert len(seen) == 100
    for g in (1, 2, 3, 4):
        d = generation_data(sc, g, samples, *real, gen0_real=100, seed=3)
        assert len(d.real_index) == 25 and len(d.synthetic_index) == 10 and len(d.label) == 35
        new = {int(i) for i in d.real_index}
        assert not new & seen, f"generation {g} reuses real examples {sorted(new & seen)}"
        seen |= new
        # the rows really are those real examples and those samples
        assert np.array_equal(d.x[10:], real[0][d.real_index]) and np.array_equal(d.x[:10], samples["x"][d.synthetic_index])
    assert len(seen) == N_TRAIN  # 100 + 4 x 25: the pool is used up exactly
    with pytest.raises(ValueError, match=r"madness\.scenarios\.fresh\.n_real: generation 5 needs real train examples "
                                         r"200\.\.224 .* has 200"):
        fresh_real_index(N_TRAIN, 100, 25, 5, seed=3)


def test_gen0_takes_all_when_gen0_real_is_null():
    assert np.array_equal(gen0_real_index(50, None, seed=0), np.arange(50))
    with pytest.raises(ValueError, match=r"fresh\.n_real: generation 1 .* generation 0 takes 50"):
        fresh_real_index(50, None, 1, 1, seed=0)
    with pytest.raises(ValueError, match=r"madness\.gen0_real = 60 exceeds the 50"):
        gen0_real_index(50, 60, seed=0)


@pytest.mark.parametrize("name, d, match", [
    ("fresh", {"w": 1.0}, r"madness\.scenarios\.fresh\.n_real must be an integer >= 1"),
    ("full_synthetic", {"w": 1.0, "n_real": 5}, r"madness\.scenarios\.full_synthetic: n_real / n_synthetic apply"),
    ("bogus", {"w": 1.0}, r"madness\.scenarios\.bogus: unknown scenario 'bogus'"),
    ("augmented", {"w": -1}, r"madness\.scenarios\.augmented\.w must be a number >= 0"),
    ("augmented", {"w": 1, "wieght": 2}, r"madness\.scenarios\.augmented: unknown keys \['wieght'\]"),
])
def test_scenario_errors_name_the_key(name, d, match):
    with pytest.raises(ValueError, match=match):
        ScenarioConfig.from_dict(name, d)


def test_guidance_weight_is_gamma_minus_one():
    cfg = LoopConfig.from_dict({"sampler": {"sampler": "ddim", "steps": 5}})
    assert cfg.sampler_for(0.25).guidance_scale == 1.25 and cfg.sampler_for(2.0).guidance_scale == 3.0
    with pytest.raises(ValueError, match=r"madness\.sampler\.guidance_scale: set by each scenario's w"):
        LoopConfig.from_dict({"sampler": {"guidance_scale": 2.0}})


def _config() -> dict:
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.update(generations=0), r"madness\.generations: 0 is less than the minimum of 1"),
    (lambda m: m["scenarios"].update(sideways={"w": 1.0}), r"madness\.scenarios: Additional properties .*'sideways'"),
    (lambda m: m["guidance"].update(scenarios=["fresh", "augmented"]) or m["scenarios"].pop("augmented"),
     r"madness\.guidance\.scenarios\[1\]: 'augmented' is not one of madness\.scenarios"),
    (lambda m: m["jacobian"].update(timesteps=[10, 250]), r"madness\.jacobian\.timesteps: \[250\] not below"),
    (lambda m: m["metrics"].update(region_alpha=0.85), r"madness\.metrics\.region_alpha: 0\.85 is not one of alphas"),
    (lambda m: m["scenarios"]["fresh"].pop("n_real"), r"madness\.scenarios\.fresh\.n_real must be an integer"),
    (lambda m: m.update(dataset="hapt"), r"madness\.dataset: 'hapt' is not an image dataset"),
    (lambda m: m["generation_train"].update(epochs=0), r"madness\.generation_train\.epochs"),
    (lambda m: m["guidance"].update(w=[0.5, 1e-05]), r"madness\.guidance\.w\[1\]: 1e-05 does not print as a plain"),
    (lambda m: m["scenarios"]["fresh"].update(n_synthetic=10_000), r"fresh\.n_synthetic: 10000 exceeds the 500"),
])
def test_config_problems_name_the_key(edit, match):
    config = _config()
    edit(config["madness"])
    problems = "\n".join(config_problems(config, SCHEMA))
    assert any(__import__("re").search(match, line) for line in problems.splitlines()), problems


def test_default_config_has_no_madness_problem():
    assert config_problems(_config(), SCHEMA) == []


def _tiny_loop() -> LoopConfig:
    m = copy.deepcopy(_config()["madness"])
    m["generator"]["net"].update(base_channels=8, cond_dim=8)
    m["generator"]["train"].update(steps=3, batch_size=8)
    m["generation_train"].update(epochs=1, lr=1e-12)
    return LoopConfig.from_dict({k: m[k] for k in ("generator", "generation_train", "sampler", "n_samples",
                                                   "gen0_real")})


def test_warm_start_begins_from_the_parent_and_records_provenance(tmp_path, real):
    """With a vanishing learning rate a warm-started generation keeps its parent's weights (a scratch run, the
    seeded init, does not), and the checkpoint's provenance loads with weights_only and names its data."""
    cfg = _tiny_loop()
    x, y = real[0][:16], real[1][:16]
    data = GenerationData(x, y, np.zeros(0, np.int64), np.arange(16))
    meta = {"dataset": "toy", "class_names": ["a", "b", "c"], "kind": "image"}
    parent = train_generation(data, cfg, tmp_path / "g0.pt", 3, meta, seed=0, init_state=None,
                              provenance=data.provenance(0, "real", 0.0, None))
    child_data = GenerationData(x[::-1].copy(), y[::-1].copy(), np.arange(16), np.zeros(0, np.int64))
    prov = child_data.provenance(1, "full_synthetic", 1.0, "parent.h5")
    train_generation(child_data, cfg, tmp_path / "g1.pt", 3, meta, seed=1, init_state=parent.state_dict(),
                     provenance=prov)
    child, got = load_generation(tmp_path / "g1.pt")
    for (name, a), b in zip(parent.state_dict().items(), child.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    scratch = train_generation(child_data, cfg, tmp_path / "s.pt", 3, meta, seed=1, init_state=None, provenance=prov)
    assert any(not torch.allclose(a, b) for a, b in zip(parent.state_dict().values(), scratch.state_dict().values()))
    raw = torch.load(tmp_path / "g1.pt", weights_only=True)
    assert raw["provenance"]["scenario"] == "full_synthetic" and raw["train"]["steps"] == 2  # ceil(1 x 16 / 8)
    want = hashlib.sha256(np.ascontiguousarray(x[::-1]).tobytes() + np.ascontiguousarray(y[::-1]).tobytes())
    assert got["data_sha256"] == want.hexdigest()
    assert got["real_index"].numel() == 0 and torch.equal(got["synthetic_index"], torch.arange(16))
    assert not Path(tmp_path / "resume.pt").exists()


def test_fresh_beyond_the_real_pool_fails_naming_the_key_and_writes_nothing(tmp_path):
    """The rule's library call on real digits: generation 1 of `fresh` asks for more real examples than the pool
    holds; the error names madness.scenarios.fresh.n_real and neither output file appears."""
    from dualspace.data import load_dataset, write_split
    from dualspace.madness.loop import sample_generation
    from dualspace.madness.stages import run_generation

    ds = load_dataset("digits", seed=0)
    write_split(tmp_path / "train.h5", ds, "train")
    n_train = len(ds.splits["train"].label)
    m = copy.deepcopy(_config()["madness"])
    m["generator"]["net"].update(base_channels=8, cond_dim=8)
    m["generator"]["train"].update(steps=2, batch_size=8)
    m["sampler"].update(steps=2)
    m.update(n_samples=20, gen0_real=n_train - 10)
    loop = {k: m[k] for k in ("generator", "generation_train", "sampler", "n_samples", "gen0_real")}
    cfg = LoopConfig.from_dict(loop)
    x, y = ds.splits["train"].x[:16], ds.splits["train"].label[:16]
    meta = {"dataset": "digits", "class_names": ds.class_names, "kind": "image"}
    data = GenerationData(x, y, np.zeros(0, np.int64), np.arange(16))
    model = train_generation(data, cfg, tmp_path / "g0.pt", 10, meta, seed=0, init_state=None,
                             provenance=data.provenance(0, "real", 0.0, None))
    sample_generation(model, 20, cfg.sampler_for(1.0), 0, tmp_path / "s0.h5", {})
    out = tmp_path / "gen1"
    with pytest.raises(ValueError, match=r"madness\.scenarios\.fresh\.n_real: generation 1 needs real train examples"):
        run_generation(tmp_path / "g0.pt", tmp_path / "s0.h5", tmp_path / "train.h5", out / "model.pt",
                       out / "samples.h5", loop, "fresh", {"w": 1.0, "n_real": 11, "n_synthetic": 5}, g=1, seed=0,
                       dataset="digits")
    assert not out.exists() or not any(out.iterdir())
    # with the pool large enough the same call runs and writes both files
    run_generation(tmp_path / "g0.pt", tmp_path / "s0.h5", tmp_path / "train.h5", out / "model.pt", out / "samples.h5",
                   loop, "fresh", {"w": 1.0, "n_real": 10, "n_synthetic": 5}, g=1, seed=0, dataset="digits")
    assert (out / "model.pt").is_file() and (out / "samples.h5").is_file()

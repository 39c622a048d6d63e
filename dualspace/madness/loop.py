"""One generation of a self-consuming loop: its training data (by scenario), its model (warm start or from
scratch), its samples, and the provenance that says where every training example came from.

Scenarios (Alemohammad et al., ICLR 2024, "Self-Consuming Generative Models Go MAD", sec. 3):

- `full_synthetic`: generation g trains on generation g-1's samples only;
- `fresh`: n_synthetic samples of g-1 plus n_real real train examples no earlier generation saw;
- `augmented`: the whole real train split plus generation g-1's samples.

Generation 0 trains on real data: `gen0_real` examples of a seeded permutation of the train split (all when
null); the rest of that permutation is the pool `fresh` draws from, n_real per generation, in order.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from ..diffusion.family import DiffusionSettings
from ..diffusion.model import DiffusionGenerator
from ..diffusion.samplers import SamplerConfig
from ..diffusion.train import train_diffusion
from ..io import load_checkpoint, read_h5, read_h5_attrs, save_torch, write_h5
from ..settings import ConfigBase, is_int
from .study import SCENARIOS

log = logging.getLogger("dualspace.madness")

@dataclass
class ScenarioConfig:
    """One chain's recipe (`madness.scenarios.<name>`): guidance weight and, for `fresh`, the data mix."""

    name: str
    w: float = 1.0  # guidance weight of the reference: eps = (1 + w) eps_c - w eps_u, i.e. our gamma = 1 + w
    n_synthetic: int | None = None  # fresh: samples of g-1 kept per generation (null = all of them)
    n_real: int | None = None  # fresh: new real train examples per generation

    def __post_init__(self):
        key = f"madness.scenarios.{self.name}"
        if self.name not in SCENARIOS:
            raise ValueError(f"{key}: unknown scenario '{self.name}'; known: {list(SCENARIOS)}")
        if isinstance(self.w, bool) or not isinstance(self.w, (int, float)) or self.w < 0:
            raise ValueError(f"{key}.w must be a number >= 0 (the guidance weight), got {self.w!r}")
        if self.name == "fresh":
            if not is_int(self.n_real) or self.n_real < 1:
                raise ValueError(f"{key}.n_real must be an integer >= 1 (new real examples per generation), "
                                 f"got {self.n_real!r}")
            if self.n_synthetic is not None and (not is_int(self.n_synthetic) or self.n_synthetic < 0):
                raise ValueError(f"{key}.n_synthetic must be an integer >= 0 or null, got {self.n_synthetic!r}")
        elif self.n_real is not None or self.n_synthetic is not None:
            raise ValueError(f"{key}: n_real / n_synthetic apply to the fresh scenario only; remove them")

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> "ScenarioConfig":
        known = ["w", "n_synthetic", "n_real"]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"madness.scenarios.{name}: unknown keys {unknown}; known keys: {known}")
        return cls(name, **d)


@dataclass
class GenerationTrain(ConfigBase):
    """How generations >= 1 train (`madness.generation_train`): warm start from g-1 for `epochs` passes over
    their data (the reference: one), or from scratch with generation 0's `train` settings."""

    SECTION: ClassVar[str] = "madness.generation_train"
    warm_start: bool = True
    epochs: float = 1.0  # passes over the generation's training data (warm start only)
    lr: float = 5e-4  # warm start: peak learning rate
    warmup: int = 0  # warm start: learning-rate warm-up steps
    ema_decay: float = 0.9  # warm start: EMA decay (few steps per generation: a long EMA would not move)

    def __post_init__(self):
        self.require(isinstance(self.warm_start, bool), "warm_start", "must be true or false")
        self.require(self.epochs > 0, "epochs", "must be > 0")
        self.require(self.lr > 0, "lr", "must be > 0")
        self.require(is_int(self.warmup) and self.warmup >= 0, "warmup", "must be an integer >= 0")
        self.require(0 <= self.ema_decay < 1, "ema_decay", "must lie in [0, 1)")


@dataclass
class LoopConfig:
    """Everything one chain's generations need, built from the `madness` config section."""

    generator: DiffusionSettings = field(default_factory=DiffusionSettings)  # generation 0 (and scratch runs)
    generation_train: GenerationTrain = field(default_factory=GenerationTrain)
    sampler: dict[str, Any] = field(default_factory=dict)  # SamplerConfig without guidance_scale (set by w)
    n_samples: int = 500  # class-balanced samples per generation
    gen0_real: int | None = None  # real train examples of generation 0 (null = all)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LoopConfig":
        d = dict(d)
        sampler = dict(d.get("sampler", {}))
        if "guidance_scale" in sampler:
            raise ValueError("madness.sampler.guidance_scale: set by each scenario's w (gamma = 1 + w); remove it")
        SamplerConfig(**sampler)  # checks the keys and values
        n, n0 = d.get("n_samples", 500), d.get("gen0_real")
        if not is_int(n) or n < 1:
            raise ValueError(f"madness.n_samples must be an integer >= 1, got {n!r}")
        if n0 is not None and (not is_int(n0) or n0 < 1):
            raise ValueError(f"madness.gen0_real must be an integer >= 1 or null (all), got {n0!r}")
        try:
            generator = DiffusionSettings.from_dict(d.get("generator", {}))
        except TypeError as e:
            raise ValueError(f"madness.generator: {e}") from None
        return cls(generator, GenerationTrain.from_dict(dict(d.get("generation_train", {}))), sampler, n, n0)

    def sampler_for(self, w: float) -> SamplerConfig:
        """The sampler at the reference's guidance weight w (our gamma = 1 + w)."""
        return SamplerConfig(**self.sampler, guidance_scale=1.0 + float(w))


def pool_order(n_train: int, seed: int) -> np.ndarray:
    """The seeded order in which the real train examples are used: generation 0's first, then `fresh`'s."""
    return np.random.default_rng([seed, 0x3AD]).permutation(n_train)


def gen0_real_index(n_train: int, gen0_real: int | None, seed: int) -> np.ndarray:
    """Train-split indices generation 0 trains on (sorted)."""
    n0 = n_train if gen0_real is None else gen0_real
    if n0 > n_train:
        raise ValueError(f"madness.gen0_real = {n0} exceeds the {n_train} examples of the real train split")
    return np.sort(pool_order(n_train, seed)[:n0])


def fresh_real_index(n_train: int, gen0_real: int | None, n_real: int, g: int, seed: int) -> np.ndarray:
    """Train-split indices of the real examples `fresh` adds at generation g >= 1: the next n_real of the pool."""
    n0 = n_train if gen0_real is None else gen0_real
    lo, hi = n0 + (g - 1) * n_real, n0 + g * n_real
    if hi > n_train:
        raise ValueError(f"madness.scenarios.fresh.n_real: generation {g} needs real train examples {lo}..{hi - 1} "
                         f"of the pool, but the real train split has {n_train} and generation 0 takes "
                         f"{n0} (madness.gen0_real); lower n_real, madness.generations or madness.gen0_real")
    return np.sort(pool_order(n_train, seed)[lo:hi])


def digest(*arrays: np.ndarray) -> str:
    """sha256 of arrays' bytes (what a generation trained on, checkable from the files it came from)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@dataclass
class GenerationData:
    """A generation's training set and where each example came from."""

    x: np.ndarray  # (N, *shape)
    label: np.ndarray  # (N,)
    synthetic_index: np.ndarray  # rows of the parent's samples.h5 used
    real_index: np.ndarray  # rows of the real train split used

    def provenance(self, generation: int, scenario: str, w: float, parent_samples: str | None) -> dict[str, Any]:
        """What the checkpoint records: tensors and plain types only (loads with weights_only=True)."""
        return {"generation": generation, "scenario": scenario, "w": float(w), "parent_samples": parent_samples,
                "synthetic_index": torch.as_tensor(self.synthetic_index, dtype=torch.long),
                "real_index": torch.as_tensor(self.real_index, dtype=torch.long),
                "data_sha256": digest(self.x, self.label)}


def generation_data(scenario: ScenarioConfig, g: int, samples: Mapping[str, np.ndarray], real_x: np.ndarray,
                    real_label: np.ndarray, gen0_real: int | None, seed: int) -> GenerationData:
    """Training set of generation g >= 1 of `scenario` from g-1's samples and the real train split."""
    n_s = len(samples["label"])
    none = np.zeros(0, np.int64)
    if scenario.name == "full_synthetic":
        syn, real = np.arange(n_s), none
    elif scenario.name == "augmented":
        syn, real = np.arange(n_s), np.arange(len(real_label))
    else:  # fresh
        real = fresh_real_index(len(real_label), gen0_real, scenario.n_real, g, seed)
        k = n_s if scenario.n_synthetic is None else scenario.n_synthetic
        if k > n_s:
            raise ValueError(f"madness.scenarios.fresh.n_synthetic = {k} exceeds the {n_s} samples per generation "
                             "(madness.n_samples)")
        syn = np.sort(np.random.default_rng([seed, g, 0x5F]).permutation(n_s)[:k])
    x = np.concatenate([samples["x"][syn], real_x[real]]).astype(np.float32)
    label = np.concatenate([samples["label"][syn], real_label[real]]).astype(np.int64)
    return GenerationData(x, label, syn.astype(np.int64), real.astype(np.int64))


def train_generation(data: GenerationData, cfg: LoopConfig, out_path: str | Path, n_classes: int,
                     meta: Mapping[str, Any], seed: int, init_state: Mapping[str, torch.Tensor] | None,
                     provenance: Mapping[str, Any], device: str = "auto") -> DiffusionGenerator:
    """Fit one generation's DDPM on `data`: warm-started from `init_state` for `epochs` passes (the reference
    setup), or from scratch with generation 0's settings when `init_state` is None."""
    model = replace(cfg.generator.model, net=replace(cfg.generator.model.net, in_channels=data.x.shape[1],
                                                     dims=data.x.ndim - 2))
    opt = replace(cfg.generator.train, seed=seed, device=device)
    if init_state is not None:
        gt = cfg.generation_train
        steps = max(1, math.ceil(gt.epochs * len(data.label) / opt.batch_size))
        opt = replace(opt, steps=steps, lr=gt.lr, warmup=gt.warmup, ema_decay=gt.ema_decay,
                      checkpoint_every=steps + 1)
    log.info("training on %d examples (%d synthetic, %d real), %d steps, %s", len(data.label),
             len(data.synthetic_index), len(data.real_index), opt.steps,
             "warm start" if init_state is not None else "from scratch")
    return train_diffusion(data.x, data.label, n_classes, model, opt, out_path, data_meta=dict(meta),
                           init_state=init_state, extra={"provenance": dict(provenance)})


def balanced_labels(n: int, n_classes: int) -> np.ndarray:
    """n labels cycling through the classes (class sizes differ by at most one)."""
    return (np.arange(n) % n_classes).astype(np.int64)


def sample_generation(model: DiffusionGenerator, n: int, sampler: SamplerConfig, seed: int,
                      out_h5: str | Path, attrs: Mapping[str, Any]) -> None:
    """n class-balanced samples of `model` -> samples.h5 (x, label): the next generation's synthetic data."""
    labels = balanced_labels(n, model.n_classes)
    x = model.sample(labels, seed=seed, sampler=sampler)
    write_h5(out_h5, {"x": x.astype(np.float32), "label": labels},
             {**attrs, "sampler": sampler.to_dict(), "n": n, "seed": seed})


def read_samples(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A generation's samples (x, label) and their attributes."""
    return read_h5(path, ["x", "label"]), read_h5_attrs(path)


def load_generation(path: str | Path, device: str = "cpu") -> tuple[DiffusionGenerator, dict[str, Any]]:
    """A generation's model and the checkpoint's provenance record ({} for one without)."""
    ckpt = load_checkpoint(path, "madness generation")
    model = DiffusionGenerator.from_checkpoint(ckpt).to(device)
    return model, dict(ckpt.get("provenance", {}))


def save_with_provenance(src: str | Path, out_path: str | Path, provenance: Mapping[str, Any]) -> None:
    """Copy a generator checkpoint (the dual-space run's, reused as generation 0) with a provenance record."""
    ckpt = load_checkpoint(src, "generator checkpoint")
    save_torch({**ckpt, "provenance": dict(provenance)}, out_path)


"""Generator families: the interface the region stages see, the registry of families, and loading a
trained generator from its checkpoint.

A generator is anything with `n_classes`, `cond_dim`, `embed(labels) -> e` and
`sample(labels, seed, sampler=...) -> x`; pair dumps, drafts, regions and metrics use nothing else.
A family is one record (`GeneratorFamily`): its config dataclass, its sampler dataclass, `train`, and
`from_checkpoint`. `<ds>.generator.family` picks one. Families are imported by name only when used,
so nothing here (or in the stages) imports `diffusion` unless a diffusion generator is trained or loaded.
Adding a family = a module with a `GENERATOR_FAMILY` record + one line in `CORE_FAMILIES` (or in the `families` of
the study that adds it, dualspace.studies) + its schema as `$defs` `<name>_generator` and `<name>_sampler` in
workflow/schemas/config.schema.yaml (or the study's schema).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import numpy as np

from .io import check_trained_for, load_checkpoint
from .settings import build_config
from .studies import studies


@runtime_checkable
class ConditionalGenerator(Protocol):
    """x ~ p(x | e), e = g(c)."""

    n_classes: int
    cond_dim: int
    data_meta: dict  # what it was trained on: dataset, kind, shape, class_names[, channel_names]

    def embed(self, labels: np.ndarray) -> np.ndarray:
        """(N,) int labels -> (N, cond_dim) condition embeddings e = g(c)."""

    def sample(self, labels: np.ndarray, seed: int, **options: Any) -> np.ndarray:
        """One draft per label: (N,) -> (N, *shape) in data space."""


@dataclass(frozen=True)
class GeneratorFamily:
    """One family of conditional generators, as the stages see it."""

    name: str
    config: type  # dataclass of `<ds>.generator` (without `family`); built by `config.from_dict` if it has one
    sampler: type  # dataclass of `<ds>.sampler`
    # train(split, config, out_path, *, n_classes, meta, seed, device, expect_gpu): fit on the train split and
    # write the checkpoint (a dict loadable with weights_only=True, holding "family" and "data" = meta) atomically
    train: Callable[..., None]
    from_checkpoint: Callable[[dict[str, Any]], ConditionalGenerator]

    def make_config(self, settings: Mapping[str, Any] | None, section: str) -> Any:
        """The family's config from a config section (without `family`), unknown keys named by section."""
        return build_config(self.config, settings, section)

    def make_sampler(self, settings: Mapping[str, Any] | None, section: str) -> Any:
        return build_config(self.sampler, settings, section)


@dataclass
class TemperatureSampler:
    """Sampler options of the families whose drafts scale a Gaussian spread by a temperature (class_gaussian,
    mixture_vae, cvae): config section `<ds>.sampler.<family>`; plain types only."""

    temperature: float = 1.0  # scales the spread (1 = the fitted model / the prior)
    batch_size: int = 4096  # drafts generated per block

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"sampler.temperature must be >= 0, got {self.temperature}")
        if self.batch_size < 1:
            raise ValueError(f"sampler.batch_size must be >= 1, got {self.batch_size}")

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "batch_size": self.batch_size}


# family name -> module holding its GENERATOR_FAMILY record (imported on first use); studies add their own
CORE_FAMILIES: dict[str, str] = {
    "diffusion": "dualspace.diffusion.family",
    "class_gaussian": "dualspace.class_gaussian",
}
DEFAULT_FAMILY = "diffusion"


@functools.cache
def families() -> dict[str, str]:
    """Every generator family: the core ones, then those of the registered studies (`Study.families`)."""
    out = dict(CORE_FAMILIES)
    for s in studies():
        clash = set(out) & set(s.families)
        if clash:
            raise ValueError(f"study '{s.name}' adds generator families {sorted(clash)} that already exist")
        out.update(s.families)
    return out


def check_labels(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(N,) integer labels in [0, n_classes), as int64; anything else is a ValueError."""
    labels = np.asarray(labels)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)][0]
        raise ValueError(f"label {bad} is out of range: labels must lie in [0, {n_classes})")
    return labels


def family(name: str) -> GeneratorFamily:
    """The record of family `name`; an unknown name fails with the known ones listed."""
    if name not in families():
        raise KeyError(f"unknown generator family '{name}'; known: {sorted(families())}")
    return importlib.import_module(families()[name]).GENERATOR_FAMILY


def load_generator(path: str | Path, device: Any = "cpu", **expect: Any) -> ConditionalGenerator:
    """Load a generator checkpoint (weights_only) and check it against `expect` (dataset, kind, shape,
    n_classes): a damaged file or one trained for something else is named, with the command that rebuilds it."""
    ckpt = load_checkpoint(path, "generator checkpoint")
    name = ckpt.get("family") if isinstance(ckpt, dict) else None
    if name not in families():
        raise ValueError(f"{path}: not a dualspace generator checkpoint (family {name!r}; known {sorted(families())}); "
                         f"delete it and rerun `snakemake {path}`")
    data = ckpt.get("data", {})
    found = {"dataset": data.get("dataset"), "kind": data.get("kind"), "shape": list(data.get("shape", [])),
             "n_classes": ckpt.get("n_classes")}
    check_trained_for(path, "generator checkpoint", found, expect)
    model = family(name).from_checkpoint(ckpt)
    model.family = name  # which family's sampler options apply
    return model.to(device) if hasattr(model, "to") and device is not None else model

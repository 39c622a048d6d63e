"""The diffusion family's record for the generator registry (`dualspace.generator.CORE_FAMILIES`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..data import Split
from ..generator import GeneratorFamily
from .model import DiffusionConfig, DiffusionGenerator
from .samplers import SamplerConfig
from .train import TrainConfig, train_diffusion


@dataclass
class DiffusionSettings:
    """Config section `<ds>.generator` of the diffusion family: the model and, under `train`, its optimisation."""

    model: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiffusionSettings":
        d = dict(d)
        train = d.pop("train", {})
        return cls(DiffusionConfig.from_dict(d), train if isinstance(train, TrainConfig) else TrainConfig(**train))

    def to_dict(self) -> dict[str, Any]:
        return {**self.model.to_dict(), "train": asdict(self.train)}


def train(split: Split, cfg: DiffusionSettings, out_path: str | Path, *, n_classes: int, meta: dict[str, Any],
          seed: int, device: str = "auto", expect_gpu: bool = False) -> None:
    """Fit the conditional DDPM on the train split; resumable from resume.pt beside `out_path`."""
    model = replace(cfg.model, net=replace(cfg.model.net, in_channels=split.x.shape[1], dims=split.x.ndim - 2))
    opt = replace(cfg.train, seed=seed, device=device, expect_gpu=expect_gpu)
    train_diffusion(split.x, split.label, n_classes, model, opt, out_path, data_meta=meta)


GENERATOR_FAMILY = GeneratorFamily(name="diffusion", config=DiffusionSettings, sampler=SamplerConfig, train=train,
                                   from_checkpoint=DiffusionGenerator.from_checkpoint)

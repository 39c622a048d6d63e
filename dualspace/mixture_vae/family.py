"""A trained mixture of VAEs as a conditional generator (`<ds>.generator.family: mixture_vae`), and the settings
dataclass both the study and the family read.

The model is trained without labels. Its channels become classes through the channel -> label matching of
`evaluate.channel_to_label` on the train split (Hungarian on argmax q(c|x), the tau co-occurrence where a label
is left unmatched): a draft of class c is channel k(c)'s decoder applied to z ~ N(0, t^2 I), and
e = g(c) = E[k(c)], the learned channel embedding the decoder is conditioned on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import Split
from ..generator import GeneratorFamily, TemperatureSampler, check_labels
from ..io import save_torch
from ..nn.inference import batched
from ..settings import SectionedSettings
from .evaluate import channel_to_label
from .losses import LossConfig
from .model import MixtureVAE, MixtureVAEConfig
from .train import MixtureTrainConfig, train_mixture_vae

log = logging.getLogger("dualspace.mixture_vae")


@dataclass
class MixtureVAESettings(SectionedSettings):
    """`model`, `loss` and `train` of one mixture-of-VAEs run (a study variant or `<ds>.generator.mixture_vae`)."""

    SECTIONS: ClassVar[dict[str, type]] = {"model": MixtureVAEConfig, "loss": LossConfig,
                                           "train": MixtureTrainConfig}  # their errors name mixture_vae.<section>.<key>
    DEFAULT_SECTION: ClassVar[str] = "mixture_vae"

    model: MixtureVAEConfig = field(default_factory=MixtureVAEConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: MixtureTrainConfig = field(default_factory=MixtureTrainConfig)


class MixtureVAESampler(TemperatureSampler):
    """How drafts are drawn (`<ds>.sampler.mixture_vae`): z ~ N(0, temperature^2 I) in the class's channel."""


def responsibilities(model: MixtureVAE, x: np.ndarray, batch_size: int = 1024) -> dict[str, np.ndarray]:
    """q(c|x) (N, K) over the unlocked channels, latent means and log-variances (N, K, D), in eval mode."""
    def encode(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, mu, logvar = model.encode(xb)
        return torch.softmax(logits.masked_fill(~model.unlocked, -torch.inf), -1), mu, logvar

    model.eval()
    return dict(zip(("q", "mu", "logvar"), batched(encode, x, batch_size, dtype=torch.float32)))


class MixtureVAEGenerator:
    """x ~ p(x | z, k(c)), z ~ N(0, t^2 I): class c drawn from the channel matched to it; e = g(c) = E[k(c)]."""

    def __init__(self, model: MixtureVAE, channel_of_label: np.ndarray, data_meta: dict[str, Any]):
        self.model = model.eval()
        self.channel_of_label = np.asarray(channel_of_label, np.int64)  # (n_classes,)
        self.n_classes = len(self.channel_of_label)
        self.cond_dim = model.cfg.embed_dim
        self.data_meta = dict(data_meta)

    def check_labels(self, labels: np.ndarray) -> np.ndarray:
        return check_labels(labels, self.n_classes)

    def embed(self, labels: np.ndarray) -> np.ndarray:
        """e = g(c): the matched channel's learned embedding, (N,) -> (N, embed_dim) float32."""
        channels = self.channel_of_label[self.check_labels(labels)]
        return self.model.embed.detach().cpu().numpy()[channels].astype(np.float32)

    @torch.no_grad()
    def sample(self, labels: np.ndarray, seed: int, sampler: MixtureVAESampler | None = None, progress: bool = True,
               **_ignored: Any) -> np.ndarray:
        """One draft per label (N,) -> (N, C, H, W) in [-1, 1]: the decoded mean at z ~ N(0, t^2 I)."""
        sampler = sampler or MixtureVAESampler()
        channels = torch.as_tensor(self.channel_of_label[self.check_labels(labels)])
        gen = torch.Generator().manual_seed(int(seed))
        device = self.model.embed.device
        out = []
        blocks = range(0, len(channels), sampler.batch_size)
        for start in tqdm(blocks, desc="sample mixture_vae", disable=not progress or len(blocks) < 2):
            ch = channels[start:start + sampler.batch_size]
            z = sampler.temperature * torch.randn(len(ch), self.model.cfg.D, generator=gen)
            out.append(self.model.decode(z.to(device), ch.to(device))["mean"].clamp(-1, 1).cpu().numpy())
        shape = tuple(self.model.in_shape)
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, *shape), np.float32)

    def to(self, device: Any) -> "MixtureVAEGenerator":
        self.model.to(device)
        return self

    def checkpoint(self) -> dict[str, Any]:
        return self.model.checkpoint(n_classes=self.n_classes, data=self.data_meta,
                                     channel_of_label=self.channel_of_label.tolist())

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> "MixtureVAEGenerator":
        if "channel_of_label" not in ckpt:
            raise ValueError("mixture_vae checkpoint without a channel -> label matching: it is a study model "
                             "(results/mixture_vae/...), not a generator; train one with `<ds>.generator.family: "
                             "mixture_vae`")
        return cls(MixtureVAE.from_checkpoint(ckpt), np.asarray(ckpt["channel_of_label"]), ckpt["data"])


def train(split: Split, cfg: MixtureVAESettings, out_path: str | Path, *, n_classes: int, meta: dict[str, Any],
          seed: int, device: str = "auto", expect_gpu: bool = False) -> None:
    """The family's `train`: fit on the train split's images without labels, then match channels to labels on the
    same split; checkpoint to out_path (CPU training: the model is small)."""
    if split.x.ndim != 4:
        raise ValueError(f"the mixture_vae family generates images (N, C, H, W); this dataset's x is {split.x.shape}")
    model, _ = train_mixture_vae(split.x, cfg.model, cfg.loss, cfg.train, seed)
    mapping = channel_to_label(responsibilities(model, split.x)["q"], split.label, cfg.model.K, n_classes)
    log.info("channel of each label: %s", mapping.tolist())
    save_torch(MixtureVAEGenerator(model, mapping, {**meta, "shape": list(split.x.shape[1:])}).checkpoint(), out_path)


GENERATOR_FAMILY = GeneratorFamily(name="mixture_vae", config=MixtureVAESettings, sampler=MixtureVAESampler,
                                   train=train, from_checkpoint=MixtureVAEGenerator.from_checkpoint)

"""A conditional VAE (Sohn et al. 2015) for auditory brainstem responses, in two modes.

legacy: q(z | x, c) and p(x, peaks | z, c): the decoder is conditioned on the static parameters c (stimulus
        intensity, rate, age, sex, threshold, noise), as the original ABR CVAE; drafts need a c per row.
joint:  q(z | x, c) and p(x, c, peaks | z): the decoder sees z alone and generates the pair, so sample(n) draws
        statics too (continuous columns Gaussian in standardised units, categorical ones Bernoulli logits).

The same class is the class-conditional generator of the dual-space pipeline: static = a one-hot class vector
(static_dim = n_classes, categorical = [], legacy mode, no peak head). Scaling statistics live in buffers, so a
checkpoint carries them; every loss works in standardised units and `sample` returns physical ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..io import CheckpointError, load_checkpoint, save_torch
from ..nn.random import draw
from ..settings import ConfigBase, is_int

FAMILY = "abr_cvae"
FORMAT_VERSION = 1
RESERVED = ("family", "format_version", "config", "mode", "state_dict")


@dataclass
class CVAEConfig(ConfigBase):
    """Architecture of the ABR CVAE (what a checkpoint must match to be reloaded). The defaults are a small model
    (~0.18M parameters, seconds an epoch on a CPU); FULL_SCALE below is the ~4.7M-parameter setting."""

    SECTION: ClassVar[str] = "abr.model"

    signal_len: int = 200  # samples per waveform L
    static_dim: int = 6  # static columns S (ABR: intensity, rate, age, sex, threshold, noise; or a one-hot class)
    latent_dim: int = 64  # Z
    conv_channels: list[int] = field(default_factory=lambda: [8, 16])  # conv1d widths of the signal encoder
    kernel_size: int = 7  # of every conv1d (odd; stride 2, so the length halves per layer)
    encoder_hidden: list[int] = field(default_factory=lambda: [128])  # MLP on [conv features, static] -> (mu, logvar)
    hidden: list[int] = field(default_factory=lambda: [128, 128])  # decoder MLP shared by the heads
    peak_head: bool = False  # decode the peaks (latencies, amplitudes of waves I, III, V) too
    peak_dim: int = 6  # width of the peak head
    joint_generation: bool = False  # False: legacy, decoder input [z, static]; True: decoder input z, static head
    categorical: list[int] = field(default_factory=lambda: [3])  # static columns with a Bernoulli likelihood (0/1)

    def __post_init__(self):
        self.conv_channels, self.encoder_hidden = list(self.conv_channels), list(self.encoder_hidden)
        self.hidden, self.categorical = list(self.hidden), list(self.categorical)
        widths = lambda ws: all(is_int(w) and w >= 1 for w in ws)  # noqa: E731
        for key in ("signal_len", "static_dim", "latent_dim", "peak_dim"):
            self.require(is_int(getattr(self, key)) and getattr(self, key) >= 1, key, "must be an integer >= 1")
        self.require(widths(self.conv_channels), "conv_channels", "must be a list of positive integer widths")
        self.require(is_int(self.kernel_size) and self.kernel_size >= 1 and self.kernel_size % 2 == 1, "kernel_size",
                     "must be an odd integer >= 1")
        self.require(self.signal_len >= 2 ** len(self.conv_channels), "conv_channels",
                     f"halves the signal once per layer: at most log2(signal_len = {self.signal_len}) layers")
        self.require(widths(self.encoder_hidden), "encoder_hidden", "must be a list of positive integer widths")
        self.require(len(self.hidden) >= 1 and widths(self.hidden), "hidden",
                     "must be a non-empty list of positive integer widths")
        self.require(isinstance(self.peak_head, bool), "peak_head", "must be true or false")
        self.require(isinstance(self.joint_generation, bool), "joint_generation", "must be true or false")
        self.require(all(is_int(c) and 0 <= c < self.static_dim for c in self.categorical)
                     and len(set(self.categorical)) == len(self.categorical), "categorical",
                     f"must list distinct static column indices in [0, static_dim = {self.static_dim})")

    @property
    def mode(self) -> str:
        return "joint" if self.joint_generation else "legacy"


# The full-scale widths (with the other defaults): 4,722,452 parameters in joint mode with the peak head, 4,713,224
# in legacy mode without it; 200 -> 100 -> 50 -> 25 samples through the convs, 3,200 features into the encoder MLP.
FULL_SCALE = dict(conv_channels=[32, 64, 128], encoder_hidden=[1024, 512], hidden=[512, 1024])


def mlp(widths: list[int]) -> nn.Sequential:
    """Linear + SiLU between consecutive widths (the last layer activated too: heads follow)."""
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.SiLU()]
    return nn.Sequential(*layers)


def as_tensor(a: Any, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a, dtype=torch.float32,
                           device=device)


def nan_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column mean and std (ddof 0) over the finite entries of (N, C); 0 and 1 where a column has no spread."""
    ok = torch.isfinite(x)
    n = ok.sum(0)
    mean = torch.where(ok, x, 0.0).sum(0) / n.clamp_min(1)
    var = torch.where(ok, (x - mean).square(), 0.0).sum(0) / n.clamp_min(1)
    std = var.sqrt()
    return torch.where(n > 0, mean, 0.0), torch.where((n > 0) & (std > 1e-8), std, 1.0)


class CVAE(nn.Module):
    """Encoder q(z | signal, static) -> (mu, logvar); decoder -> signal, static (joint), peaks (optional)."""

    def __init__(self, cfg: CVAEConfig):
        super().__init__()
        self.cfg = cfg
        L, S, Z = cfg.signal_len, cfg.static_dim, cfg.latent_dim
        convs, c, n = [], 1, L
        for w in cfg.conv_channels:
            convs += [nn.Conv1d(c, w, cfg.kernel_size, stride=2, padding=cfg.kernel_size // 2), nn.SiLU()]
            c, n = w, (n - 1) // 2 + 1  # length after a stride-2 conv with 'same' padding
        self.conv = nn.Sequential(*convs, nn.Flatten())
        n_conv = c * n
        self.enc = mlp([n_conv + S, *cfg.encoder_hidden])
        self.enc_out = nn.Linear(cfg.encoder_hidden[-1] if cfg.encoder_hidden else n_conv + S, 2 * Z)

        self.dec = mlp([Z + (0 if cfg.joint_generation else S), *cfg.hidden])
        self.signal_head = nn.Linear(cfg.hidden[-1], L)
        # heads exist only when used, so a legacy checkpoint (no heads) loads into this class as it is
        if cfg.joint_generation:
            self.static_head = nn.Linear(cfg.hidden[-1], S)  # standardised values; logits at categorical columns
        if cfg.peak_head:
            self.peak_head = nn.Linear(cfg.hidden[-1], cfg.peak_dim)
            self.register_buffer("peak_mean", torch.zeros(cfg.peak_dim))
            self.register_buffer("peak_std", torch.ones(cfg.peak_dim))
        self.register_buffer("signal_scale", torch.ones(()))
        self.register_buffer("static_mean", torch.zeros(S))
        self.register_buffer("static_std", torch.ones(S))
        is_cat = torch.zeros(S, dtype=torch.bool)
        is_cat[cfg.categorical] = True
        self.register_buffer("is_categorical", is_cat, persistent=False)  # derived from the config

    @property
    def device(self) -> torch.device:
        return self.static_mean.device

    # -- scaling -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def fit_scaling(self, signal: Any, static: Any, peaks: Any = None) -> None:
        """Scaling from the TRAIN arrays: one std for the signal (all samples pooled), NaN-aware per-column mean/std
        of the static columns (categorical ones left as they are: mean 0, std 1) and of the peaks (if the head
        exists). A column without spread gets std 1."""
        signal, static = self.check_inputs(signal, static)
        self.signal_scale.copy_(nan_stats(signal.reshape(-1, 1))[1][0])
        mean, std = nan_stats(static)
        self.static_mean.copy_(torch.where(self.is_categorical, 0.0, mean))
        self.static_std.copy_(torch.where(self.is_categorical, 1.0, std))
        if self.cfg.peak_head:
            if peaks is None:
                raise ValueError("abr.model.peak_head is true: fit_scaling needs the train peaks (N, peak_dim)")
            mean, std = nan_stats(self.check_width(as_tensor(peaks, self.device), self.cfg.peak_dim, "peak_dim",
                                                   "peaks"))
            self.peak_mean.copy_(mean)
            self.peak_std.copy_(std)

    def standardise(self, signal: Any, static: Any, peaks: Any = None) -> dict[str, torch.Tensor | None]:
        """Physical -> standardised targets of the losses (NaN kept: it marks a missing value)."""
        signal, static = self.check_inputs(signal, static)
        out = {"signal": signal / self.signal_scale, "static": (static - self.static_mean) / self.static_std,
               "peaks": None}
        if self.cfg.peak_head and peaks is not None:
            peaks = self.check_width(as_tensor(peaks, self.device), self.cfg.peak_dim, "peak_dim", "peaks")
            out["peaks"] = (peaks - self.peak_mean) / self.peak_std
        return out

    def static_inputs(self, static: torch.Tensor) -> torch.Tensor:
        """Physical static (B, S) -> network input: standardised, a missing value (NaN) replaced by the train mean
        (0) in continuous columns and by 0.5 in categorical ones."""
        x = (static - self.static_mean) / self.static_std
        return torch.where(torch.isfinite(x), x, torch.where(self.is_categorical, 0.5, 0.0))

    # -- checks ------------------------------------------------------------------------------------------------
    def check_width(self, x: torch.Tensor, width: int, key: str, what: str) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"{what} must have shape (N, {width}) (abr.model.{key} = {width}), got "
                             f"{tuple(x.shape)}")
        return x

    def check_inputs(self, signal: Any, static: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Tensors on the model's device; a wrong width or a NaN in the signal is a ValueError saying which."""
        signal = self.check_width(as_tensor(signal, self.device), self.cfg.signal_len, "signal_len", "signal")
        static = self.check_width(as_tensor(static, self.device), self.cfg.static_dim, "static_dim", "static")
        if len(signal) != len(static):
            raise ValueError(f"signal has {len(signal)} rows but static has {len(static)}")
        bad = (~torch.isfinite(signal)).any(1)
        if bad.any():
            rows = torch.nonzero(bad).flatten()[:10].tolist()
            raise ValueError(f"signal has NaN or inf in {int(bad.sum())} rows (first: {rows}); drop or repair those "
                             "recordings (only static and peaks may be missing)")
        return signal, static

    # -- networks ----------------------------------------------------------------------------------------------
    def encode(self, signal: Any, static: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Physical signal (B, L), static (B, S) -> mu, logvar (B, Z) of q(z | signal, static)."""
        signal, static = self.check_inputs(signal, static)
        h = self.conv((signal / self.signal_scale)[:, None, :])  # (B, C * L'), or (B, L) without conv layers
        mu, logvar = self.enc_out(self.enc(torch.cat([h, self.static_inputs(static)], -1))).chunk(2, -1)
        return mu, logvar

    def heads(self, h: torch.Tensor) -> dict[str, torch.Tensor | None]:
        return {"signal": self.signal_head(h),
                "static": self.static_head(h) if self.cfg.joint_generation else None,
                "peaks": self.peak_head(h) if self.cfg.peak_head else None}

    def forward_legacy(self, z: torch.Tensor, static: Any) -> dict[str, torch.Tensor | None]:
        """Legacy decoder: input [z, static_std] -> standardised signal (B, L), peaks (B, P) or None; static None."""
        if self.cfg.joint_generation:
            raise ValueError("forward_legacy needs a legacy model (abr.model.joint_generation = false); a joint "
                             "model decodes z alone: use decode(z)")
        static = self.check_width(as_tensor(static, self.device), self.cfg.static_dim, "static_dim", "static")
        return self.heads(self.dec(torch.cat([z, self.static_inputs(static)], -1)))

    def decode(self, z: torch.Tensor, static: Any = None) -> dict[str, torch.Tensor | None]:
        """z (B, Z) -> standardised signal, static head (joint: standardised values / logits; legacy: None), peaks.
        Legacy mode conditions on the physical `static` (B, S); joint mode takes none."""
        if not self.cfg.joint_generation:
            if static is None:
                raise ValueError("legacy mode (abr.model.joint_generation = false) decodes conditioned on static: "
                                 f"pass static with shape (N, {self.cfg.static_dim})")
            return self.forward_legacy(z, static)
        if static is not None:
            raise ValueError("joint mode (abr.model.joint_generation = true) decodes z alone and generates static; "
                             "do not pass static")
        return self.heads(self.dec(z))

    def forward(self, signal: Any, static: Any, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Encode, draw z = mu + sigma eps (reparameterised), decode: mu, logvar, z (B, Z); signal (B, L);
        static (B, S) or None (legacy); peaks (B, P) or None (no head). Outputs in standardised units."""
        mu, logvar = self.encode(signal, static)
        z = mu + torch.exp(0.5 * logvar) * draw(torch.randn, tuple(mu.shape), generator, mu.device)
        dec = self.decode(z, None if self.cfg.joint_generation else static)
        return {"mu": mu, "logvar": logvar, "z": z, **dec}

    # -- generation --------------------------------------------------------------------------------------------
    def to_physical(self, dec: dict[str, torch.Tensor | None], generator: torch.Generator | None = None,
                    sample_categorical: bool = True) -> dict[str, torch.Tensor]:
        """Decoder output -> physical units: signal * scale, peaks and continuous statics de-standardised;
        categorical statics drawn from Bernoulli(sigmoid(logit)) (or, sample_categorical False, the probability)."""
        out = {"signal": dec["signal"] * self.signal_scale}
        if dec["static"] is not None:
            p = torch.sigmoid(dec["static"])
            if sample_categorical:
                p = (draw(torch.rand, tuple(p.shape), generator, p.device) < p).float()
            out["static"] = torch.where(self.is_categorical, p, dec["static"] * self.static_std + self.static_mean)
        if dec["peaks"] is not None:
            out["peaks"] = dec["peaks"] * self.peak_std + self.peak_mean
        return out

    @torch.no_grad()
    def sample(self, n: int | None = None, static: Any = None,
               generator: torch.Generator | None = None) -> dict[str, np.ndarray]:
        """Drafts in physical units: signal (B, L), static (B, S), peaks (B, P) when the head exists.

        joint: sample(n) draws z ~ N(0, I) and decodes signal, static and peaks. legacy: sample(static=arr) draws
        one z per static row and decodes conditioned on it (static is returned as given; n None or len(static))."""
        if self.cfg.joint_generation:
            if static is not None:
                raise ValueError("joint mode (abr.model.joint_generation = true) generates static itself: call "
                                 "sample(n) without static")
            if not is_int(n) or n < 1:
                raise ValueError(f"joint mode: sample(n) needs a number of drafts n >= 1, got {n!r}")
            z = draw(torch.randn, (n, self.cfg.latent_dim), generator, self.device)
            out = self.to_physical(self.decode(z), generator)
        else:
            if static is None:
                raise ValueError("legacy mode (abr.model.joint_generation = false) draws one signal per static row: "
                                 f"call sample(static=array of shape (N, {self.cfg.static_dim}))")
            static = self.check_width(as_tensor(static, self.device), self.cfg.static_dim, "static_dim", "static")
            if n is not None and n != len(static):
                raise ValueError(f"legacy mode: n = {n} but static has {len(static)} rows; leave n out")
            z = draw(torch.randn, (len(static), self.cfg.latent_dim), generator, self.device)
            out = {**self.to_physical(self.decode(z, static)), "static": static}
        return {k: v.cpu().numpy() for k, v in out.items()}

    # -- checkpoints -------------------------------------------------------------------------------------------
    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """Everything needed to rebuild this model (config, mode, weights and scaling buffers) plus `extra`;
        plain types and tensors only, so it loads with torch.load(weights_only=True)."""
        clash = sorted(set(extra) & set(RESERVED))
        if clash:
            raise ValueError(f"checkpoint extras {clash} would overwrite the reserved keys {list(RESERVED)}")
        return {"family": FAMILY, "format_version": FORMAT_VERSION, "config": self.cfg.to_dict(),
                "mode": self.cfg.mode, "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
                **extra}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> "CVAE":
        """Rebuild a model from `checkpoint()`'s dict (also a legacy one: no mode, config keys added since missing).

        Unknown config keys, a mode that disagrees with the config, missing or unexpected weights, and weights of
        another shape are CheckpointErrors (ValueError) that name them."""
        if ckpt.get("family") != FAMILY:
            raise CheckpointError(f"checkpoint of family {ckpt.get('family')!r}, not {FAMILY!r}: load it with that "
                                  "family's model class")
        if ckpt.get("format_version", 0) > FORMAT_VERSION:
            raise CheckpointError(f"checkpoint format_version {ckpt['format_version']} is newer than this code's "
                                  f"{FORMAT_VERSION}; update dualspace")
        try:
            cfg = CVAEConfig.from_dict(dict(ckpt["config"]))
        except ValueError as e:
            raise CheckpointError(f"checkpoint config: {e}") from None
        if ckpt.get("mode", cfg.mode) != cfg.mode:
            raise CheckpointError(f"checkpoint mode {ckpt['mode']!r} disagrees with its config "
                                  f"(abr.model.joint_generation = {cfg.joint_generation})")
        model = cls(cfg)
        state, own = ckpt["state_dict"], model.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise CheckpointError(f"checkpoint weights do not fit abr.model config {cfg.to_dict()}: missing "
                                  f"{missing}, unexpected {unexpected}")
        wrong = [f"{k}: {tuple(state[k].shape)} in the file, {tuple(v.shape)} expected" for k, v in own.items()
                 if tuple(state[k].shape) != tuple(v.shape)]
        if wrong:
            raise CheckpointError(f"checkpoint weights of the wrong shape for its config: {'; '.join(wrong)}")
        model.load_state_dict(state)
        return model.eval()


def save_cvae(model: CVAE, path: str | Path, **extra: Any) -> None:
    """model.checkpoint(**extra) written atomically (dualspace.io.save_torch)."""
    save_torch(model.checkpoint(**extra), path)


def load_cvae(path: str | Path) -> CVAE:
    """A CVAE from a file written by save_cvae (torch.load with weights_only=True), on the CPU, in eval mode."""
    return CVAE.from_checkpoint(load_checkpoint(path, "ABR CVAE checkpoint"))

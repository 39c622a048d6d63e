"""The conditional diffusion generator p_theta(x | e), e = g(c): denoiser + condition encoder + schedule."""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .. import __version__
from ..nn import ConditionEncoder, UNet, UNetConfig
from .samplers import SAMPLERS, SamplerConfig
from .schedule import NoiseSchedule

FAMILY = "diffusion"
FORMAT_VERSION = 1


@dataclass
class DiffusionConfig:
    """Model hyper-parameters (what a checkpoint must match to be reloaded)."""

    net: UNetConfig = field(default_factory=UNetConfig)
    T: int = 200  # diffusion steps
    schedule: str = "cosine"  # beta schedule: "cosine" (Nichol & Dhariwal 2021) or "linear"
    clip_x0: float | None = 1.0  # range of x0 predictions at sampling (1.0 for [-1,1] images, None for z-scored series)
    prediction: str = "eps"  # network target: "eps" (Ho et al. 2020) or "v" (Salimans & Ho 2022), see `eps`
    normalize: str = "none"  # "class": diffuse each class standardised by its own per-channel train mean/std
    schedule_shift: float = 1.0  # log SNR(t) + 2 log(shift) (NoiseSchedule.shifted); < 1: more noise at every t
    slow_apart: int = 0  # series: the k slowest DCT components of each window (k = 1: its mean) drawn from a
    # per-class Gaussian fitted on train; the diffusion models the rest (slow components are decided in its first steps)
    fast_apart: int = 0  # series: the k fastest DCT components drawn independently per class, channel and component
    # from Gaussians fitted on train (coloured sensor noise, which a few deterministic steps draw too smooth)
    fast_scale: bool = False  # fast_apart: each window's fast-band RMS per channel drawn first (log-normal, per-class
    # full covariance), its components then as fast_apart does in units of that RMS: still and fidgety windows
    rest_scale: bool = False  # series: the diffusion models each window's part (`rest`) at unit RMS per channel; a
    # draft's RMS is drawn from a per-class log-normal (full covariance) fitted on train, as fast_scale does

    def __post_init__(self):
        if self.slow_apart < 0 or self.fast_apart < 0:
            raise ValueError(f"slow_apart and fast_apart must be >= 0, got {self.slow_apart}, {self.fast_apart}")
        if self.fast_scale and not self.fast_apart:
            raise ValueError("fast_scale scales the fast band drawn apart: set fast_apart > 0")
        if self.schedule_shift <= 0:
            raise ValueError(f"schedule_shift must be > 0, got {self.schedule_shift}")
        if self.prediction not in ("eps", "v"):
            raise ValueError(f"prediction must be 'eps' or 'v', got '{self.prediction}'")
        if self.normalize not in ("none", "class"):
            raise ValueError(f"normalize must be 'none' or 'class', got '{self.normalize}'")
        if self.normalize == "class" and self.clip_x0 is not None:
            raise ValueError("normalize 'class' diffuses in per-class standardised units, where clip_x0 (a range in "
                             "data units) means nothing: set clip_x0: null")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiffusionConfig":
        d = dict(d)
        net = d.pop("net", {})
        return cls(net=net if isinstance(net, UNetConfig) else UNetConfig(**net), **d)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["net"] = self.net.to_dict()
        return d


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on the given device (fast with AMX on CPUs and on GPUs), or nothing."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def dct_basis(T: int, index: Sequence[int], dtype=torch.float32) -> torch.Tensor:
    """(T, len(index)) columns of the orthonormal DCT-II basis of a length-T window: component 0 is the constant
    1/sqrt(T) (the mean), component n the cosine of n half-periods, sqrt(2/T) cos(pi (t + 1/2) n / T)."""
    t = torch.arange(T, dtype=torch.float64)[:, None] + 0.5
    n = torch.as_tensor(list(index), dtype=torch.float64)[None, :]
    basis = torch.cos(torch.pi * t * n / T) * math.sqrt(2.0 / T)
    basis[:, n[0] == 0] = 1.0 / math.sqrt(T)
    return basis.to(dtype)


def band_split(x: torch.Tensor, index: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, T) -> the DCT coefficients at `index` (B, C, len(index)) and the rest x - B B^T x (B, C, T)."""
    basis = dct_basis(x.shape[-1], index, x.dtype).to(x.device)
    coef = x @ basis
    return coef, x - coef @ basis.T


def _rms(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (B, C) root mean square over positions (floored at 1e-12)."""
    return x.pow(2).mean(-1).sqrt().clamp_min(1e-12)


def _gaussian(rows: np.ndarray, ridge: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, d) rows -> their mean (d,) and the Cholesky factor (d, d) of their covariance plus ridge x the mean
    variance on the diagonal (a draw is mean + L z)."""
    cov = np.atleast_2d(np.cov(rows, rowvar=False))
    cov += ridge * max(float(np.trace(cov)) / len(cov), 1e-12) * np.eye(len(cov))
    return torch.as_tensor(rows.mean(0)), torch.as_tensor(np.linalg.cholesky(cov))


def _draw(mu: torch.Tensor, chol: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One draw per row of N(mu, L L^T): (B, d) means and (B, d, d) factors -> (B, d) float64; z from `gen` (CPU)."""
    z = torch.randn((*mu.shape, 1), generator=gen, dtype=torch.float64)
    return mu.double() + (chol.double() @ z.to(mu.device))[..., 0]


def slow_split(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, T) -> the k slowest DCT coefficients (B, C, k) and the rest."""
    return band_split(x, range(k))


class DiffusionGenerator(nn.Module):
    """eps-prediction DDPM with a learned condition embedding and classifier-free guidance."""

    def __init__(self, cfg: DiffusionConfig, n_classes: int, data_meta: dict[str, Any] | None = None,
                 channels_last: bool = True):
        super().__init__()
        self.cfg = cfg
        self.n_classes = n_classes
        self.cond_dim = cfg.net.cond_dim
        self.data_meta = dict(data_meta or {})  # dataset name, shape, class names
        self.net = UNet(cfg.net, channels_last)
        self.cond = ConditionEncoder(n_classes, cfg.net.cond_dim)
        self.schedule = NoiseSchedule.named(cfg.schedule, cfg.T, cfg.schedule_shift)
        n_ch = cfg.net.in_channels
        if cfg.normalize == "class":
            # per class and channel: x_model = (x - mean) / std; set from the train split by `fit_class_scale`
            self.register_buffer("class_mean", torch.zeros(n_classes, n_ch))
            self.register_buffer("class_std", torch.ones(n_classes, n_ch))
        if (cfg.slow_apart or cfg.fast_apart) and cfg.net.dims != 1:
            raise ValueError(f"slow_apart / fast_apart ({cfg.slow_apart}, {cfg.fast_apart}) are for series "
                             "(net.dims 1), not images")
        if cfg.rest_scale:  # per class: log RMS of a window's diffused part per channel ~ N(mu_c, L_c L_c^T)
            if cfg.net.dims != 1:
                raise ValueError("rest_scale is for series (net.dims 1), not images")
            self.register_buffer("rest_log_mu", torch.zeros(n_classes, n_ch))
            self.register_buffer("rest_log_chol", torch.eye(n_ch).repeat(n_classes, 1, 1))
        if cfg.fast_apart:
            # per class, channel and fast component: coefficient ~ N(mu, sd^2); set by `fit_fast_components`
            self.register_buffer("fast_mu", torch.zeros(n_classes, n_ch, cfg.fast_apart))
            self.register_buffer("fast_sd", torch.ones(n_classes, n_ch, cfg.fast_apart))
            if cfg.fast_scale:  # per class: log RMS of a window's fast band per channel ~ N(mu_c, L_c L_c^T)
                self.register_buffer("fast_log_mu", torch.zeros(n_classes, n_ch))
                self.register_buffer("fast_log_chol", torch.eye(n_ch).repeat(n_classes, 1, 1))
        if cfg.slow_apart:
            # per class: slow coefficients (C * k, flattened) ~ N(mu_c, L_c L_c^T) in the diffusion's units; set by
            # `fit_slow_components`
            d = n_ch * cfg.slow_apart
            self.register_buffer("slow_mu", torch.zeros(n_classes, d))
            self.register_buffer("slow_chol", torch.eye(d).repeat(n_classes, 1, 1))

    # -- the generator interface the region stages see -------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data_meta["shape"])

    def onehot(self, labels: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N,) int labels -> (N, n_classes) one-hot float on the model's device."""
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=self.device)
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise ValueError(f"labels must lie in [0, {self.n_classes})")
        return F.one_hot(labels, self.n_classes).float()

    @torch.no_grad()
    def embed(self, labels: np.ndarray) -> np.ndarray:
        """e = g(c) for integer labels (N,) -> (N, d_c) float32."""
        return self.cond(self.onehot(labels)).float().cpu().numpy()

    @torch.no_grad()
    def sample(self, labels: np.ndarray, seed: int, sampler: SamplerConfig | None = None,
               bf16: bool = False, progress: bool = True) -> np.ndarray:
        """Draw one x per entry of `labels` (N,) -> (N, *shape) float32 in data space."""
        sampler = sampler or SamplerConfig()
        labels = np.asarray(labels)
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        out = []
        batches = range(0, len(labels), sampler.batch_size)
        for start in tqdm(batches, desc=f"sample {sampler.sampler}", disable=not progress or len(batches) < 2):
            lab = labels[start:start + sampler.batch_size]
            x_T = torch.randn((len(lab), *self.shape), generator=gen).to(self.device)
            noise_gen = torch.Generator(device=self.device).manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
            e = self.cond(self.onehot(lab))
            eps_fn = lambda x, t: self.guided_eps(x, t, e, sampler.guidance_scale, bf16)  # noqa: E731
            x = SAMPLERS[sampler.sampler](eps_fn, self.schedule, x_T, sampler, self.cfg.clip_x0, noise_gen,
                                          progress=progress).float()
            lab_t = torch.as_tensor(lab, dtype=torch.long, device=self.device)
            x = self.rest(x)  # the diffusion's part, plus the components drawn apart for the draft's class
            T = x.shape[-1]
            if self.cfg.rest_scale:  # at the RMS drawn for the window
                log_rms = _draw(self.rest_log_mu[lab_t], self.rest_log_chol[lab_t], gen)
                x = x / _rms(x)[..., None] * log_rms.exp().float()[..., None]
            if self.cfg.slow_apart:
                k = self.cfg.slow_apart
                coef = _draw(self.slow_mu[lab_t], self.slow_chol[lab_t], gen)
                x = x + coef.float().view(len(lab), -1, k) @ dct_basis(T, range(k)).to(x.device).T
            if self.cfg.fast_apart:
                k = self.cfg.fast_apart
                z = torch.randn(self.fast_sd[lab_t].shape, generator=gen, dtype=torch.float64).to(self.device)
                coef = self.fast_mu[lab_t].double() + self.fast_sd[lab_t].double() * z
                if self.cfg.fast_scale:  # in units of the window's own fast-band RMS, drawn per window
                    coef = coef * _draw(self.fast_log_mu[lab_t], self.fast_log_chol[lab_t], gen).exp()[..., None]
                x = x + coef.float() @ dct_basis(T, range(T - k, T)).to(x.device).T
            x = self.to_data(x, lab_t)
            out.append(x.cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, *self.shape), np.float32)

    # -- class-wise standardisation (cfg.normalize == "class") ------------------------------------------
    def fit_class_scale(self, x: np.ndarray, labels: np.ndarray, floor: float = 1e-3) -> None:
        """Per class and channel, the mean and std of the train split over examples and positions. A std is
        floored at `floor` times that channel's std over all classes (a class constant in one channel). With
        slow_apart the std is that of the windows without their slow components: the diffusion then sees what it
        models at unit scale, however much the windows' levels differ (static postures)."""
        x = np.asarray(x, np.float64)
        axes = (0, *range(2, x.ndim))
        overall = x.std(axis=axes)
        spread = self.rest(torch.as_tensor(x)).numpy()
        mean = np.zeros((self.n_classes, x.shape[1]))
        std = np.ones((self.n_classes, x.shape[1]))
        for c in range(self.n_classes):
            xc = x[labels == c]
            if len(xc) == 0:
                raise ValueError(f"class {c} has no training examples; class-wise normalisation needs each class")
            mean[c], std[c] = xc.mean(axis=axes), np.maximum(spread[labels == c].std(axis=axes), floor * overall)
        self.class_mean.copy_(torch.as_tensor(mean))
        self.class_std.copy_(torch.as_tensor(std))

    def rest(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) without the DCT components drawn apart (`slow_apart` slowest, `fast_apart` fastest): what the
        diffusion models. The identity when nothing is drawn apart."""
        T = x.shape[-1] if x.dim() == 3 else 0
        index = [*range(self.cfg.slow_apart), *range(T - self.cfg.fast_apart, T)] if T else []
        return band_split(x, index)[1] if index else x

    def _model_units(self, x: np.ndarray, labels: np.ndarray) -> torch.Tensor:
        """Train windows in the units the diffusion runs in (after the class standardisation), float64."""
        labels = torch.as_tensor(labels, dtype=torch.long)
        return self.to_model(torch.as_tensor(np.asarray(x, np.float32)), labels).double()

    def _per_class(self, rows: np.ndarray, labels: np.ndarray, option: str):
        """(c, rows of class c) for every class; a class with fewer than 2 rows is an error naming `option`."""
        for c in range(self.n_classes):
            rc = rows[labels == c]
            if len(rc) < 2:
                raise ValueError(f"class {c} has {len(rc)} training windows; {option} needs >= 2 per class")
            yield c, rc

    def fit_rest_scale(self, x: np.ndarray, labels: np.ndarray) -> None:
        """Per class, the mean and covariance (`_gaussian`) of the train windows' log RMS per channel of their
        diffused part (`rest`, in the units the diffusion runs in)."""
        log_rms = np.log(_rms(self.rest(self._model_units(x, labels))).numpy())  # (N, C)
        for c, lc in self._per_class(log_rms, labels, "rest_scale"):
            self.rest_log_mu[c], self.rest_log_chol[c] = _gaussian(lc)

    def fit_fast_components(self, x: np.ndarray, labels: np.ndarray) -> None:
        """Per class, channel and fast component, the mean and std of the train windows' coefficients (in the
        units the diffusion runs in); with fast_scale, in units of each window's fast-band RMS, whose log gets a
        per-class Gaussian (`_gaussian`)."""
        z = self._model_units(x, labels)
        T, k = z.shape[-1], self.cfg.fast_apart
        coef = band_split(z, range(T - k, T))[0].numpy()  # (N, C, k)
        if self.cfg.fast_scale:  # each window's coefficients in units of its own fast-band RMS (per channel)
            rms = np.sqrt((coef ** 2).mean(-1)) + 1e-12  # (N, C)
            coef = coef / rms[..., None]
            for c, lc in self._per_class(np.log(rms), labels, "fast_scale"):
                self.fast_log_mu[c], self.fast_log_chol[c] = _gaussian(lc)
        for c, cc in self._per_class(coef, labels, "fast_apart"):
            self.fast_mu[c] = torch.as_tensor(cc.mean(0))
            self.fast_sd[c] = torch.as_tensor(cc.std(0, ddof=1))

    def fit_slow_components(self, x: np.ndarray, labels: np.ndarray) -> None:
        """Per class, the mean and covariance (`_gaussian`) of the train windows' slow coefficients (`slow_split`,
        flattened channel-major), in the units the diffusion runs in (after the class standardisation)."""
        coef = slow_split(self._model_units(x, labels), self.cfg.slow_apart)[0].flatten(1).numpy()  # (N, C * k)
        for c, cc in self._per_class(coef, labels, "slow_apart"):
            self.slow_mu[c], self.slow_chol[c] = _gaussian(cc)

    def _class_affine(self, labels: torch.Tensor, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (len(labels), -1, *([1] * (ndim - 2)))
        return self.class_mean[labels].view(shape), self.class_std[labels].view(shape)

    def to_model(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Data space -> the space the diffusion runs in (the identity unless normalize == 'class')."""
        if self.cfg.normalize == "none":
            return x
        mean, std = self._class_affine(labels, x.dim())
        return (x - mean) / std

    def to_data(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Inverse of `to_model`."""
        if self.cfg.normalize == "none":
            return x
        mean, std = self._class_affine(labels, x.dim())
        return x * std + mean

    # -- diffusion ----------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.cond.null.device

    def eps(self, x: torch.Tensor, t: torch.Tensor, e: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        """eps_theta(x_t, t, e) in float32.

        With prediction="v" the network predicts v = sqrt(ab) eps - sqrt(1 - ab) x0 and
        eps = sqrt(1 - ab) x_t + sqrt(ab) v. That keeps the x0 estimate bounded at the last steps of
        the cosine schedule (alpha_bar_{T-1} ~ 6e-8 at T = 200), where an eps network's small errors
        are multiplied by 1/sqrt(alpha_bar): unbounded data (z-scored series) cannot be rescued by
        clipping there (docs/benchmarks.md).
        """
        with autocast(x.device, bf16):
            out = self.net(x, t, e).float()
        if self.cfg.prediction == "eps":
            return out
        ab = self.schedule.at(self.schedule.alpha_bar, t, x.dim())
        return (1 - ab).sqrt() * x + ab.sqrt() * out

    def guided_eps(self, x: torch.Tensor, t: torch.Tensor, e: torch.Tensor, gamma: float,
                   bf16: bool = False) -> torch.Tensor:
        """eps_u + gamma (eps_c - eps_u); gamma = 1 is conditional, 0 unconditional; one batched forward."""
        if gamma == 1.0:
            return self.eps(x, t, e, bf16)
        if gamma == 0.0:
            return self.eps(x, t, self.cond.null_like(e), bf16)
        eps_c, eps_u = self.eps(torch.cat([x, x]), torch.cat([t, t]), torch.cat([e, self.cond.null_like(e)]),
                                bf16).chunk(2)
        return eps_u + gamma * (eps_c - eps_u)

    def loss(self, x0: torch.Tensor, onehot: torch.Tensor, p_drop: float, generator: torch.Generator,
             bf16: bool = False) -> torch.Tensor:
        """Simple loss (Ho et al. eq. 14): E ||eps - eps_theta(x_t, t, e)||^2 (or the same on v), e dropped to
        the null embedding with probability p_drop. With normalize = 'class', x0 is first standardised by its
        class's train statistics, so every class diffuses at unit scale."""
        x0 = self.to_model(x0, onehot.argmax(dim=1))
        x0 = self.rest(x0)
        if self.cfg.rest_scale:
            x0 = x0 / _rms(x0)[..., None]
        t, noise, drop = self.schedule.training_draws(x0, p_drop, generator)
        e = self.cond(onehot)
        e = torch.where(drop[:, None], self.cond.null_like(e), e)
        x_t = self.schedule.q_sample(x0, t, noise)
        with autocast(x0.device, bf16):
            pred = self.net(x_t, t, e).float()
        return F.mse_loss(pred, self.schedule.target(x0, t, noise, self.cfg.prediction))

    # -- checkpoints --------------------------------------------------------------------------------
    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """Everything needed to rebuild this generator; loads with torch.load(weights_only=True)."""
        return {"family": FAMILY, "format_version": FORMAT_VERSION, "dualspace_version": __version__,
                "config": self.cfg.to_dict(), "n_classes": self.n_classes, "data": self.data_meta,
                "state": {k: v.detach().cpu() for k, v in self.state_dict().items()}, **extra}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> "DiffusionGenerator":
        model = cls(DiffusionConfig.from_dict(ckpt["config"]), ckpt["n_classes"], ckpt["data"])
        model.load_state_dict(ckpt["state"])
        return model.eval()

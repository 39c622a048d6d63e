"""Training loop for the diffusion generator: AdamW, EMA, grad clipping, atomic checkpoints, resume."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import one_hot
from ..io import CheckpointError, load_checkpoint, save_torch
from .ema import EMA
from ..runtime import pick_device
from .model import DiffusionConfig, DiffusionGenerator

log = logging.getLogger("dualspace.diffusion")


@dataclass
class TrainConfig:
    """Optimisation settings; every one of them is part of the resume fingerprint but `checkpoint_every`/`device`."""

    steps: int = 3000  # optimizer steps
    batch_size: int = 256
    lr: float = 1e-3  # AdamW peak learning rate
    weight_decay: float = 0.0
    warmup: int = 100  # linear learning-rate warm-up steps
    ema_decay: float = 0.999
    grad_clip: float = 1.0  # max global grad norm
    p_drop: float = 0.1  # probability of replacing e by the null embedding (CFG training)
    checkpoint_every: int = 500  # steps between resume checkpoints
    bf16: bool = False  # bf16 autocast (AMX CPUs, GPUs)
    channels_last: bool = True  # NHWC weights/activations (2x faster convs on CPUs, standard with AMP on GPUs)
    device: str = "auto"  # "auto" = cuda when present, else cpu (the workflow sets it from <ds>.compute.device)
    expect_gpu: bool = False  # warn when the device resolves to the CPU (the job asked for a GPU)
    seed: int = 0


def _fingerprint(cfg: DiffusionConfig, train: TrainConfig, x: np.ndarray, labels: np.ndarray) -> str:
    """What a resume checkpoint must match: model + optimisation settings and the training data."""
    t = {k: v for k, v in asdict(train).items() if k not in ("checkpoint_every", "device", "expect_gpu")}
    h = hashlib.sha256(json.dumps([cfg.to_dict(), t], sort_keys=True).encode())
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()


def _state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names and values (what a warm start began from)."""
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _save(obj: dict[str, Any], path: Path) -> None:
    save_torch(obj, path)


def _read_resume(path: Path) -> dict[str, Any] | None:
    """The resume state at `path`, or None when there is none; a damaged one is reported, removed, and
    training starts fresh (it is only a cache of progress: the run it came from is not affected)."""
    if not path.exists():
        return None
    try:
        state = load_checkpoint(path, "resume checkpoint")
        if not isinstance(state, dict):
            raise CheckpointError(f"resume checkpoint {path} holds a {type(state).__name__}, not a training state")
    except CheckpointError as e:
        log.warning("%s -- removing it and training from step 0", e)
        path.unlink(missing_ok=True)
        return None
    return state


def optimizer_step(model: torch.nn.Module, loss: torch.Tensor, opt: torch.optim.Optimizer,
                   sched: torch.optim.lr_scheduler.LRScheduler, ema: EMA, grad_clip: float) -> None:
    """One update: backward, clip the global grad norm, step the optimizer and the lr schedule, update the EMA."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    sched.step()
    ema.update(model)


def train_diffusion(
    x: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    cfg: DiffusionConfig,
    train: TrainConfig,
    out_path: str | Path,
    data_meta: dict[str, Any] | None = None,
    resume_path: str | Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
    init_state: Mapping[str, torch.Tensor] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> DiffusionGenerator:
    """Train p_theta(x | g(c)) on (x, labels); write the EMA generator to `out_path`.

    Every `checkpoint_every` steps the full state (weights, EMA, optimizer, RNG) goes atomically to
    `resume_path` (default: resume.pt beside `out_path`); a later call with the same settings and data
    continues from there, and reaches the same weights as an uninterrupted run. `init_state` (a state dict of
    the same architecture) warm-starts the weights and the EMA; `extra` goes into the checkpoint (provenance).
    """
    out_path = Path(out_path)
    resume_path = Path(resume_path) if resume_path else out_path.with_name("resume.pt")
    device = pick_device(train.device, train.expect_gpu)
    if device.type == "cpu" and train.steps * train.batch_size > 5e6:
        log.warning("training %d steps x %d on the CPU: expect this to be slow", train.steps, train.batch_size)
    meta = {**(data_meta or {}), "shape": list(x.shape[1:])}
    fingerprint = _fingerprint(cfg, train, x, labels)
    if init_state is not None:  # a warm start is a different run from the same data: it resumes only itself
        fingerprint = hashlib.sha256((fingerprint + _state_digest(init_state)).encode()).hexdigest()

    torch.manual_seed(train.seed)  # weight init
    model = DiffusionGenerator(cfg, n_classes, meta, channels_last=train.channels_last)
    if cfg.normalize == "class":
        model.fit_class_scale(x, labels)
    if cfg.slow_apart:
        model.fit_slow_components(x, labels)
    if cfg.fast_apart:
        model.fit_fast_components(x, labels)
    if cfg.rest_scale:
        model.fit_rest_scale(x, labels)
    if init_state is not None:
        model.load_state_dict(init_state)
    model = model.to(device)
    ema = EMA(model, train.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, train.warmup)))
    gen = torch.Generator().manual_seed(train.seed)
    losses: list[float] = []
    step = 0

    state = _read_resume(resume_path)
    if state is not None:
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            ema.model.load_state_dict(state["ema"])
            ema.updates = state["ema_updates"]
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            gen.set_state(state["rng"])
            losses, step = list(state["losses"]), int(state["step"])
            log.info("resuming from %s at step %d", resume_path, step)
        else:
            log.warning("ignoring %s: written for other settings or data; starting over", resume_path)

    # The whole split lives on the device (CIFAR-10: 0.6 GB): a batch is one gather, with no host work
    # and no DataLoader workers to feed.
    x_all = torch.as_tensor(x, dtype=torch.float32).to(device)
    e_all = torch.as_tensor(one_hot(labels, n_classes)).to(device)
    model.train()
    bar = tqdm(total=train.steps, initial=step, desc="train generator", mininterval=2.0)
    while step < train.steps:
        idx = torch.randint(0, len(x_all), (train.batch_size,), generator=gen)
        idx = idx.to(device)
        x0, onehot = x_all[idx], e_all[idx]
        loss = model.loss(x0, onehot, train.p_drop, gen, train.bf16)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite training loss {value} at step {step + 1}; lower the learning "
                                     "rate (generator.train.lr) or check the input data for NaN/inf")
        optimizer_step(model, loss, opt, sched, ema, train.grad_clip)
        step += 1
        losses.append(value)
        bar.update(1)
        if step % 50 == 0 or step == train.steps:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
            log.info("step %d loss %.5f", step, np.mean(losses[-50:]))
        if step % train.checkpoint_every == 0 and step < train.steps:
            _save({"fingerprint": fingerprint, "step": step, "model": model.state_dict(), "ema": ema.model.state_dict(),
                   "ema_updates": ema.updates, "opt": opt.state_dict(), "sched": sched.state_dict(),
                   "rng": gen.get_state(), "losses": torch.tensor(losses)}, resume_path)
        if on_step is not None:
            on_step(step, value)
    bar.close()

    final = ema.model.eval()
    _save(final.checkpoint(train={**asdict(train), "final_step": step}, losses=torch.tensor(losses), **(extra or {})),
          out_path)
    resume_path.unlink(missing_ok=True)
    return final

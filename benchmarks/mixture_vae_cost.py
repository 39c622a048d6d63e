"""Cost of one mixture-of-VAEs training epoch, measured: seconds per optimiser step at the default model on
8x8 (digits) and 28x28 (MNIST) inputs, times steps per epoch, beside this machine's fp32 GEMM rate.

    .venv/bin/python benchmarks/mixture_vae_cost.py [--threads 2] [--steps 20]

The inputs are random images of the right shape (simulated: the cost does not depend on the pixels).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from gpu_hours import matmul_flops_per_s  # benchmarks/ (the script's folder) is on sys.path

from dualspace.mixture_vae.losses import LogitMoG, LossConfig, mixture_vae_loss
from dualspace.mixture_vae.model import MixtureVAE, MixtureVAEConfig


def seconds_per_step(shape: tuple[int, int, int], batch: int, steps: int) -> float:
    """Wall seconds of one forward + backward + AdamW step of the default model (median of `steps`)."""
    cfg, loss_cfg = MixtureVAEConfig(), LossConfig()
    torch.manual_seed(0)
    model, mog = MixtureVAE(cfg, shape), LogitMoG(cfg.K, loss_cfg.logit_mog_radius, loss_cfg.logit_mog_scale)
    opt = torch.optim.AdamW([*model.parameters(), *mog.parameters()], lr=1e-3)
    x = torch.rand(batch, *shape) * 2 - 1
    times = []
    for _ in range(steps + 2):
        t0 = time.perf_counter()
        out = model(x, tau=1.0)
        loss, _ = mixture_vae_loss(out, x, loss_cfg, model.log_pi(), logit_mog=mog)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return sorted(times[2:])[len(times[2:]) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"fp32 GEMM: {matmul_flops_per_s() / 1e9:.0f} GFLOP/s on {args.threads} thread(s)")
    # (dataset, image shape, train images, batch size and epochs of config/config.yaml)
    for name, shape, n, batch, epochs in (("digits", (1, 8, 8), 1078, 32, 40), ("mnist", (1, 28, 28), 55000, 128, 10)):
        s = seconds_per_step(shape, batch, args.steps)
        steps = math.ceil(n / batch)
        print(f"{name}: {s * 1000:.1f} ms/step (batch {batch}) x {steps} steps = {s * steps:.1f} s/epoch; "
              f"{epochs} epochs = {s * steps * epochs / 60:.1f} min per seed")


if __name__ == "__main__":
    main()

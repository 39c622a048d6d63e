"""Sampling throughput (drafts/s) of dualspace's U-Net + DDPM/DDIM, fp32 vs bf16, beside diffusers.

For each shape it times guided denoising steps (classifier-free guidance doubles the batch) of the
real samplers, reports drafts/s for DDPM (T = 200) and DDIM (S = 50), the achieved GFLOP/s of the
network (FLOPs counted by torch.utils.flop_counter) against the machine's fp32 matmul GFLOP/s
measured in the same run, and, for images, a diffusers UNet2DModel + DDPMScheduler of similar
width on the same batch. diffusers is a dev-only extra: `.venv/bin/pip install diffusers`.

    .venv/bin/python benchmarks/sampler_throughput.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dualspace.diffusion import DiffusionConfig, DiffusionGenerator, SamplerConfig, ddim_sample, ddpm_sample
from dualspace.nn import UNetConfig

CASES = [  # name, net config, example shape, batch
    ("8x8 (digits)", UNetConfig(dims=2, in_channels=1, base_channels=32, channel_mults=(1, 2)), (1, 8, 8), 256),
    ("32x32 (cifar-like)", UNetConfig(dims=2, in_channels=3, base_channels=32, channel_mults=(1, 2, 2)), (3, 32, 32), 64),
    ("(9,128) (hapt)", UNetConfig(dims=1, in_channels=9, base_channels=32, channel_mults=(1, 2, 2), blocks_per_level=1),
     (9, 128), 256),
]


def matmul_gflops(dtype=torch.float32, n=2048, reps=10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def timed(fn, reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def ours(cfg: UNetConfig, shape, batch: int, bf16: bool, steps: int, reps: int):
    """Seconds per guided denoising step for our DDPM and DDIM loops, and FLOPs per step."""
    model = DiffusionGenerator(DiffusionConfig(net=cfg, T=steps), 10, {"shape": list(shape)}).eval()
    e = model.cond(model.onehot(np.arange(batch) % 10))
    eps_fn = lambda x, t: model.guided_eps(x, t, e, 2.0, bf16)  # noqa: E731
    x_T = torch.randn(batch, *shape)
    with torch.no_grad():
        with FlopCounterMode(display=False) as fc:
            eps_fn(x_T, torch.zeros(batch, dtype=torch.long))
        t_ddpm = timed(lambda: ddpm_sample(eps_fn, model.schedule, x_T, SamplerConfig(), 1.0, progress=False), reps)
        t_ddim = timed(lambda: ddim_sample(eps_fn, model.schedule, x_T, SamplerConfig(sampler="ddim", steps=steps),
                                           1.0, progress=False), reps)
    return t_ddpm / steps, t_ddim / steps, fc.get_total_flops()


def diffusers_step(shape, batch: int, width: int, levels: int, steps: int, reps: int) -> float | None:
    """Seconds per guided step of a diffusers UNet2DModel + DDPMScheduler loop of similar width."""
    try:
        from diffusers import DDPMScheduler, UNet2DModel
    except ImportError:
        return None
    c, h, w = shape
    widths = tuple(width * m for m in ([1, 2, 2][:levels]))
    net = UNet2DModel(sample_size=h, in_channels=c, out_channels=c, block_out_channels=widths, layers_per_block=2,
                      down_block_types=("DownBlock2D",) * (levels - 1) + ("AttnDownBlock2D",),
                      up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (levels - 1),
                      num_class_embeds=11, norm_num_groups=8).eval()
    sched = DDPMScheduler(num_train_timesteps=steps, beta_schedule="squaredcos_cap_v2", clip_sample=True)
    labels = torch.cat([torch.arange(batch) % 10, torch.full((batch,), 10)])  # cond + null class

    def run():
        x = torch.randn(batch, *shape)
        sched.set_timesteps(steps)
        for t in sched.timesteps:
            out = net(torch.cat([x, x]), t, class_labels=labels).sample
            eps_c, eps_u = out.chunk(2)
            x = sched.step(eps_u + 2.0 * (eps_c - eps_u), t, x).prev_sample
        return x

    with torch.no_grad():
        return timed(run, reps) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10, help="denoising steps timed per run (per-step cost is scaled)")
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    peak32, peak16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(f"threads={args.threads}  matmul GFLOP/s: fp32 {peak32:.0f}, bf16 {peak16:.0f}\n")
    print("| shape | batch | precision | DDPM-200 drafts/s | DDIM-50 drafts/s | net GFLOP/s | % of fp32 matmul "
          "| diffusers DDPM-200 drafts/s | ours / diffusers |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, cfg, shape, batch in CASES:
        t_diff = diffusers_step(shape, batch, cfg.base_channels, len(cfg.channel_mults), args.steps, args.reps) \
            if cfg.dims == 2 else None
        for bf16 in (False, True):
            t_ddpm, t_ddim, flops = ours(cfg, shape, batch, bf16, args.steps, args.reps)
            gflops = flops / t_ddpm / 1e9
            diff = f"{batch / (200 * t_diff):.1f}" if t_diff else "-"
            ratio = f"{t_diff / t_ddpm:.2f}x" if t_diff and not bf16 else "-"
            print(f"| {name} | {batch} | {'bf16' if bf16 else 'fp32'} | {batch / (200 * t_ddpm):.1f} | "
                  f"{batch / (50 * t_ddim):.1f} | {gflops:.0f} | {100 * gflops / peak32:.0f}% | "
                  f"{diff if not bf16 else '-'} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()

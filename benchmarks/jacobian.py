"""Wall time of the denoiser's input Jacobian J = d eps_theta / d x_t: torch.func (jacrev, vmapped over probes)
against the reference loop (one autograd.grad per output dimension), beside the machine's fp32 matmul GFLOP/s.

Three denoisers: the madness study's default (`madness.generator`), the dual-space digits default of
config/config.yaml (both 1x8x8, D = 64) and an MNIST-sized one (1x28x28,
D = 784, base_channels 16). The loop is timed on `--loop-probes` probes and scaled to all of them. The
zero-initialised layers are drawn at random so that J is not 0; the timings do not depend on the values.

    .venv/bin/python benchmarks/jacobian.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dualspace.diffusion import DiffusionConfig, DiffusionGenerator
from dualspace.madness.spectrum import denoiser_fn, jacobians, jacobians_loop, noised_probes
from dualspace.nn import UNetConfig
from sampler_throughput import matmul_gflops  # benchmarks/ is on sys.path when this file runs as a script

CASES = [  # name, net config, example shape, probes
    ("madness default 1x8x8 (D = 64)", UNetConfig(base_channels=16, channel_mults=(1, 2), blocks_per_level=1,
                                                  attention_heads=0, cond_dim=32), (1, 8, 8), 16),
    ("digits 1x8x8 (D = 64)", UNetConfig(base_channels=32, channel_mults=(1, 2), blocks_per_level=2,
                                         attention_heads=4, cond_dim=64), (1, 8, 8), 16),
    ("mnist 1x28x28 (D = 784)", UNetConfig(base_channels=16, channel_mults=(1, 2), blocks_per_level=2,
                                           attention_heads=4, cond_dim=64), (1, 28, 28), 2),
]


def random_model(cfg: UNetConfig, shape: tuple[int, ...]) -> DiffusionGenerator:
    """A generator with its zero-initialised layers drawn at random (so J != 0), in eval mode."""
    torch.manual_seed(0)
    model = DiffusionGenerator(DiffusionConfig(net=cfg, T=200), 10, {"shape": list(shape)})
    with torch.no_grad():
        for p in model.parameters():
            if (p == 0).all():
                p.normal_(0, 0.05)
    return model.eval()


def run_case(cfg: UNetConfig, shape: tuple[int, ...], probes: int, loop_probes: int,
             chunk_size: int | None) -> tuple[float, float, float]:
    """Seconds for `jacobians` on all probes, seconds for the loop scaled to all probes, and max |J - J_loop|."""
    model = random_model(cfg, shape)
    x0 = np.random.default_rng(0).uniform(-1, 1, (probes, *shape))
    x_t, t, e = noised_probes(model, x0, np.arange(probes) % 10, [100], seed=0)
    f, args = denoiser_fn(model), (x_t[0], t[0], e[0])
    jacobians(f, *(a[:1] for a in args), chunk_size=chunk_size)  # warm-up: first calls build oneDNN kernels
    x_1 = args[0][0].clone().requires_grad_(True)
    torch.autograd.grad(f(x_1, args[1][0], args[2][0]).sum(), x_1)  # the loop's warm-up (batch-1 backward)
    t0 = time.perf_counter()
    J = jacobians(f, *args, chunk_size=chunk_size)  # (P, D, D)
    t_func = time.perf_counter() - t0
    n = min(loop_probes, probes)
    t0 = time.perf_counter()
    J_loop = jacobians_loop(f, *(a[:n] for a in args))
    t_loop = (time.perf_counter() - t0) * probes / n
    return t_func, t_loop, float((J[:n] - J_loop).abs().max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--loop-probes", type=int, default=1, help="probes the loop is timed on (scaled to all)")
    ap.add_argument("--chunk-size", type=int, default=None, help="rows of J per batched backward (None: all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads}  fp32 matmul 2048x2048: {matmul_gflops(torch.float32):.0f} GFLOP/s  "
          f"chunk_size={args.chunk_size}\n")
    print("| denoiser | probes | jacrev + vmap s | loop s (scaled from probes timed) | loop / jacrev | max abs diff |")
    print("|---|---|---|---|---|---|")
    for name, cfg, shape, probes in CASES:
        t_func, t_loop, diff = run_case(cfg, shape, probes, args.loop_probes, args.chunk_size)
        print(f"| {name} | {probes} | {t_func:.2f} | {t_loop:.2f} ({min(args.loop_probes, probes)}) | "
              f"{t_loop / t_func:.1f}x | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()

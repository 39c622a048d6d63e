"""GPU-hour estimate per stage of the full-scale configs (cifar10, har), from FLOP counts and CPU timings.

For each network of a full-scale config (the U-Net of `<ds>.generator`, phi's network, InceptionV3 for
FID) it counts FLOPs with torch.utils.flop_counter (forward, and forward + backward for training),
multiplies them by the work each stage does under config/config.yaml + config/full-scale.yaml
(steps x batch, epochs x split, K drafts x DDIM steps x 2 for guidance, ...), times a few real steps
of the same networks on this CPU, and reports:

- CPU hours: stage FLOPs / the throughput measured here (what a run without a GPU would take);
- GPU hours: stage FLOPs / (u x bf16 dense peak) for an A100 (312 TFLOP/s) and an H100 SXM (989 TFLOP/s),
  for a model FLOP utilisation u between 30% (optimistic) and 10% (pessimistic). Small convolutional
  U-Nets are held back by GroupNorm, SiLU and attention, which move memory rather than multiply; no GPU
  was measured here, so this range is an assumption and the GPU hours are ESTIMATES, not measurements.
  The CPU efficiency column (fraction of fp32 matmul throughput each network reaches here) shows how far
  each network is from matmul-bound on the CPU.

    .venv/bin/python benchmarks/gpu_hours.py --threads 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from snakemake.utils import update_config
from torch.utils.flop_counter import FlopCounterMode

from dualspace.diffusion import DiffusionConfig, DiffusionGenerator
from dualspace.features import PhiConfig, build_net

ROOT = Path(__file__).resolve().parents[1]
GPUS = {"A100": 312e12, "H100": 989e12}  # bf16 dense tensor-core peak, FLOP/s
MFU = (0.30, 0.10)  # assumed model FLOP utilisation on a GPU: optimistic, pessimistic
# split sizes of the official data with the configs' calib carving
SIZES = {"cifar10": {"train": 45_000, "calib": 5_000, "test": 10_000, "shape": (3, 32, 32), "classes": 10,
                     "kind": "image"},
         "har": {"train": 7_352, "calib": 1_473, "test": 1_474, "shape": (9, 128), "classes": 6, "kind": "series"}}


def matmul_flops_per_s(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def measure(fn, reps: int = 2) -> tuple[float, float]:
    """(FLOPs, seconds) of one call of fn (FLOPs counted once, seconds averaged over reps after a warm-up)."""
    with FlopCounterMode(display=False) as fc:
        fn()
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return fc.get_total_flops(), (time.perf_counter() - t0) / reps


def generator_costs(cfg: dict, size: dict, batch: int):
    g = dict(cfg["generator"]["diffusion"])
    train = g.pop("train")
    g.pop("device", None)
    dcfg = DiffusionConfig.from_dict(g)
    dcfg.net.in_channels, dcfg.net.dims = size["shape"][0], len(size["shape"]) - 1
    model = DiffusionGenerator(dcfg, size["classes"], {"shape": list(size["shape"])})
    x = torch.randn(batch, *size["shape"])
    onehot = model.onehot(np.arange(batch) % size["classes"])
    gen = torch.Generator().manual_seed(0)

    def train_step():
        model.loss(x, onehot, 0.1, gen).backward()

    e = model.cond(onehot).detach()

    @torch.no_grad()
    def guided_step():
        model.guided_eps(x, torch.zeros(batch, dtype=torch.long), e, 2.0)

    f_train, t_train = measure(train_step)
    f_sample, t_sample = measure(guided_step)
    return (f_train / batch, t_train / batch), (f_sample / batch, t_sample / batch), train


def phi_costs(cfg: dict, size: dict, batch: int):
    pcfg = PhiConfig(**cfg["phi"])
    net = build_net(size["kind"], size["shape"], size["classes"], pcfg)
    x = torch.randn(batch, *size["shape"])
    y = torch.arange(batch) % size["classes"]

    def train_step():
        torch.nn.functional.cross_entropy(net(x), y).backward()

    @torch.no_grad()
    def features():
        net.features(x)

    f_train, t_train = measure(train_step)
    f_feat, t_feat = measure(features)
    return (f_train / batch, t_train / batch), (f_feat / batch, t_feat / batch), pcfg


def inception_costs(batch: int):
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=False, init_weights=False).eval()
    x = torch.randn(batch, 3, 299, 299)
    with torch.no_grad():
        f, t = measure(lambda: net(x), reps=1)
    return f / batch, t / batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="batch timed per network on the CPU")
    ap.add_argument("--configfile", default=str(ROOT / "config" / "full-scale.yaml"),
                    help="overlay on config/config.yaml, as snakemake --configfile (default: the full-scale one)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, yaml.safe_load(Path(args.configfile).read_text()) or {})  # as --configfile merges
    peak = matmul_flops_per_s()
    K = config["regions"]["K"]
    print(f"threads={args.threads}, fp32 matmul {peak / 1e9:.0f} GFLOP/s, K={K}\n")
    print("| dataset | stage | work | TFLOP | CPU GFLOP/s here | CPU efficiency | CPU time here "
          "| A100 (estimate) | H100 (estimate) |")
    print("|---|---|---|---|---|---|---|---|---|")
    f_inc, t_inc = inception_costs(4)
    for ds in ("cifar10", "har"):
        cfg, size = config[ds], SIZES[ds]
        (ft, tt), (fs, ts), train = generator_costs(cfg, size, args.batch)
        (fpt, tpt), (fpf, tpf), pcfg = phi_costs(cfg, size, args.batch)
        n_all = size["train"] + size["calib"] + size["test"]
        n_drafts = K * size["classes"]
        S = cfg["sampler"]["diffusion"]["steps"]
        stages = [  # stage, work, total FLOPs, measured FLOP/s of its network
            ("train_generator", f"{train['steps']} steps x {train['batch_size']}",
             ft * train["steps"] * train["batch_size"], ft / tt),
            ("fit_phi", f"{pcfg.epochs} epochs x {size['train']}", fpt * pcfg.epochs * size["train"], fpt / tpt),
            ("dump_pairs", f"phi on {n_all} examples", fpf * n_all, fpf / tpf),
            ("sample_drafts", f"{n_drafts} drafts x DDIM-{S} (guided)", fs * S * n_drafts + fpf * n_drafts, fs / ts),
        ]
        if size["kind"] == "image":
            n_fid = min(config["metrics"]["fid_max_drafts"], n_drafts) + size["test"]
            stages.append(("fid_features", f"InceptionV3 on {n_fid} images", f_inc * n_fid, f_inc / t_inc))
        for stage, work, flops, rate in stages:
            gpu = {name: " to ".join(dict.fromkeys(_hours(flops / (u * p)) for u in MFU)) for name, p in GPUS.items()}
            print(f"| {ds} | {stage} | {work} | {flops / 1e12:,.1f} | {rate / 1e9:.0f} | {100 * rate / peak:.0f}% | "
                  f"{_hours(flops / rate)} | {gpu['A100']} | {gpu['H100']} |", flush=True)


def _hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else "<1 min"


if __name__ == "__main__":
    main()

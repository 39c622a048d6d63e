"""Cost of the self-consuming loops study under a config (default: config/full-scale.yaml's MNIST loop), from
FLOP counts of its U-Net and CPU timings, as benchmarks/gpu_hours.py does for the dual-space stages.

Work per stage: generation 0 trains `steps x batch`; each later generation trains `epochs x |its data|` examples
(full_synthetic and fresh: n_samples, augmented: the real train split + n_samples) and every generation draws
n_samples with DDIM-S under guidance (two network passes a step); the Jacobian is one forward and D vector-Jacobian
products (~2 forwards each) per probe and timestep. GPU hours assume a model FLOP utilisation of 10-30% of the bf16
peak (no GPU measured here): ESTIMATES.

    .venv/bin/python benchmarks/madness_cost.py --threads 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import yaml
from snakemake.utils import update_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_hours import GPUS, MFU, ROOT, _hours, generator_costs, matmul_flops_per_s  # noqa: E402

SIZES = {"mnist": {"train": 55_000, "shape": (1, 28, 28), "classes": 10},
         "digits": {"train": 1_079, "shape": (1, 8, 8), "classes": 10}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="batch timed on the CPU")
    ap.add_argument("--configfile", default=str(ROOT / "config" / "full-scale.yaml"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, yaml.safe_load(Path(args.configfile).read_text()) or {})
    m = config["madness"]
    size = SIZES[m["dataset"]]
    (ft, tt), (fs, ts), train = generator_costs({"generator": {"diffusion": m["generator"]}}, size, args.batch)
    peak = matmul_flops_per_s()
    G, n, S = m["generations"], m["n_samples"], m["sampler"]["steps"]
    epochs = m["generation_train"]["epochs"]
    D = 1
    for s in size["shape"]:
        D *= s
    P, n_t = m["jacobian"]["probes"], len(m["jacobian"]["timesteps"])
    chains = list(m["scenarios"])
    data = {"full_synthetic": n, "fresh": n, "augmented": size["train"] + n}
    stages = [("generation 0: train", f"{train['steps']} steps x {train['batch_size']}",
               ft * train["steps"] * train["batch_size"], ft / tt),
              ("generations >= 1: train", f"{len(chains)} chains x {G - 1} x {epochs} epoch(s)",
               sum(ft * epochs * data[c] * (G - 1) for c in chains), ft / tt),
              ("sampling", f"({len(chains)} x {G - 1} + 1) x {n} x DDIM-{S} (guided)",
               fs * S * n * (len(chains) * (G - 1) + 1), fs / ts),
              ("Jacobian", f"({len(chains)} x {G - 1} + 1) x {P} probes x {n_t} t x (1 + 2 x {D}) passes",
               fs / 2 * P * n_t * (1 + 2 * D) * (len(chains) * (G - 1) + 1), fs / ts)]
    print(f"threads={args.threads}, fp32 matmul {peak / 1e9:.0f} GFLOP/s, {m['dataset']}, G = {G}\n")
    print("| stage | work | TFLOP | CPU time here | A100 (estimate) | H100 (estimate) |")
    print("|---|---|---|---|---|---|")
    total = 0.0
    for stage, work, flops, rate in stages:
        total += flops
        gpu = {name: " to ".join(dict.fromkeys(_hours(flops / (u * p)) for u in MFU)) for name, p in GPUS.items()}
        print(f"| {stage} | {work} | {flops / 1e12:,.1f} | {_hours(flops / rate)} | {gpu['A100']} | {gpu['H100']} |")
    gpu = {name: " to ".join(dict.fromkeys(_hours(total / (u * p)) for u in MFU)) for name, p in GPUS.items()}
    print(f"| total | | {total / 1e12:,.1f} | | {gpu['A100']} | {gpu['H100']} |")


if __name__ == "__main__":
    main()

"""Class fidelity of generated digits: does an independent classifier recognise the requested class?

The classifier (an RBF SVM on the 64 pixels) is trained on the real digits train split only and
never sees the generator. Prints a markdown table of accuracy per sampler and guidance scale.

    .venv/bin/python benchmarks/class_fidelity.py --generator results/digits/generator/model.pt --per-class 50
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch
from sklearn.svm import SVC

from dualspace.data import load_dataset
from dualspace.diffusion import SamplerConfig
from dualspace.generator import load_generator


def _disable_eps_rederive() -> None:
    # Ablation only: clip x0 but step DDIM with the network's eps, inconsistent with the clipped x0.
    from dualspace.diffusion import samplers

    def predict_x0(schedule, x, t, eps, cfg, clip):
        ab = schedule.at(schedule.alpha_bar, t, x.dim())
        x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
        return samplers.threshold_x0(x0, cfg.thresholding, clip, cfg.dynamic_quantile), eps

    samplers._predict_x0 = predict_x0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generator", default="results/digits/generator/model.pt")
    ap.add_argument("--per-class", type=int, default=50)
    ap.add_argument("--gammas", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0])
    ap.add_argument("--samplers", nargs="+", default=["ddpm:200", "ddim:20", "ddim:50"],
                    help="name:steps[:eta[:thresholding]], e.g. ddim:50:1.0:dynamic")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-eps-rederive", action="store_true",
                    help="ablation: clip x0 but keep the network's eps (what many DDIM loops do)")
    args = ap.parse_args()
    if args.no_eps_rederive:
        _disable_eps_rederive()
    torch.set_num_threads(args.threads)

    data = load_dataset("digits", seed=0)
    clf = SVC(gamma="scale").fit(data.splits["train"].x.reshape(-1, 64), data.splits["train"].label)
    real_acc = clf.score(data.splits["test"].x.reshape(-1, 64), data.splits["test"].label)
    print(f"classifier accuracy on real test digits: {real_acc:.3f}\n")

    gen = load_generator(args.generator, dataset="digits")
    labels = np.repeat(np.arange(gen.n_classes), args.per_class)
    print("| sampler | steps | eta | thresholding | gamma | accuracy | seconds |")
    print("|---|---|---|---|---|---|---|")
    for spec, gamma in itertools.product(args.samplers, args.gammas):
        name, steps, *rest = spec.split(":")
        eta = float(rest[0]) if rest else 0.0
        thresholding = rest[1] if len(rest) > 1 else "static"
        cfg = SamplerConfig(sampler=name, steps=int(steps), eta=eta, guidance_scale=gamma,
                            thresholding=thresholding, batch_size=len(labels))
        t0 = time.perf_counter()
        x = gen.sample(labels, seed=args.seed, sampler=cfg, progress=False)
        dt = time.perf_counter() - t0
        acc = float((clf.predict(x.reshape(len(x), -1)) == labels).mean())
        shown_eta = "-" if name == "ddpm" else eta
        print(f"| {name} | {steps} | {shown_eta} | {thresholding} | {gamma} | {acc:.3f} | {dt:.0f} |", flush=True)


if __name__ == "__main__":
    main()

"""Which change fixes the drafts' boundary spikes and high-frequency noise? One candidate at a time (issue 17).

Each variant is the dataset's configured diffusion generator with a few settings changed (the padding of the
convolutions, class-wise standardisation, the prediction target) and/or another sampler (DDIM steps, DDPM).
Every variant trains with the config's steps and seed on the split files of a finished run, draws K drafts per
class, and is scored by `dualspace.fidelity` against the real test split (per class: edge / interior ratio,
log10 high-band power ratio, std ratio; the same row of real half vs real half as the neutral reference).

    .venv/bin/python benchmarks/fidelity_fix.py hapt --results results --out /tmp/fidelity_fix \\
        --variants base base_ddim100 base_ddpm replicate class class_replicate

A variant whose settings equal the config's reuses results/{ds}/generator/model.pt (the config must not have
changed since it was trained); the others are cached in --out/{ds}/models (delete a folder to retrain it). Prints one markdown table per variant and
writes every row to --out/fidelity_fix.csv.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from dualspace.artifacts import DraftSamples
from dualspace.config import deep_merge
from dualspace.data import read_split
from dualspace.fidelity import FidelityConfig, fidelity_table
from dualspace.io import write_csv
from dualspace.stages.generator import train_generator
from dualspace.stages.regions import sample_drafts

# name -> (generator overrides, sampler overrides)
GLOBAL, CLASS = {"normalize": "none"}, {"normalize": "class"}
VARIANTS = {
    "base": (GLOBAL, {}),  # the generator before issue 17: one z-scoring for all classes
    "base_ddim50": (GLOBAL, {"steps": 50}),
    "base_ddim100": (GLOBAL, {"steps": 100}),
    "base_ddpm": (GLOBAL, {"sampler": "ddpm"}),
    "base_g1": (GLOBAL, {"guidance_scale": 1.0}),
    "replicate": ({**GLOBAL, "net": {"padding": "replicate"}}, {}),
    "reflect": ({**GLOBAL, "net": {"padding": "reflect"}}, {}),
    "class": (CLASS, {}),
    "class_g1": (CLASS, {"guidance_scale": 1.0}),
    "class_replicate": ({**CLASS, "net": {"padding": "replicate"}}, {}),
    "eps": ({**GLOBAL, "prediction": "eps"}, {}),
}


def _slug(overrides: dict) -> str:
    """A folder name for a set of generator overrides, e.g. 'net-padding-replicate_normalize-class'."""
    text = json.dumps(overrides, sort_keys=True)
    for a, b in ((" ", ""), ("{", ""), ("}", ""), ('"', ""), (":", "-"), (",", "_")):
        text = text.replace(a, b)
    return text or "base"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="/tmp/fidelity_fix")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--K", type=int, default=128, help="drafts per class")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(Path(args.config).read_text())
    ds, section = args.dataset, config[args.dataset]
    gen_cfg = {"family": "diffusion", **section["generator"]["diffusion"]}
    sampler_cfg = section["sampler"]["diffusion"]
    data = Path(args.results) / ds / "data"
    test, attrs = read_split(data / "test.h5", dataset=ds, split="test")
    train, _ = read_split(data / "train.h5", dataset=ds, split="train")
    kind = "series" if test.x.ndim == 3 else "image"
    fcfg = FidelityConfig.from_dict(config["fidelity"])
    out = Path(args.out)
    rows = []
    for name in args.variants:
        gen_over, samp_over = VARIANTS[name]
        settings = deep_merge(gen_cfg, gen_over)
        folder = out / ds / name
        folder.mkdir(parents=True, exist_ok=True)
        # variants with the same generator overrides share one trained model
        model_dir = out / ds / "models" / _slug(gen_over)
        model_dir.mkdir(parents=True, exist_ok=True)
        model = model_dir / "model.pt"
        configured = Path(args.results) / ds / "generator" / "model.pt"
        if settings == gen_cfg and configured.is_file():  # the config's own generator: reuse the run's model
            model = configured
        t_train = 0.0
        if not model.is_file():
            t0 = time.perf_counter()
            train_generator(data / "train.h5", model, settings, seed=config["seed"], dataset=ds, device="cpu")
            t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        drafts_h5 = folder / "samples.h5"
        sampler = {**sampler_cfg, **samp_over}
        sample_drafts(model, drafts_h5, args.K, sampler, seed=config["seed"], dataset=ds, device="cpu")
        t_sample = time.perf_counter() - t0
        drafts = DraftSamples.read(drafts_h5, dataset=ds)
        table = pd.DataFrame(fidelity_table(test.x, test.label, {"train": (train.x, train.label),
                                                                 "drafts": (drafts.x, drafts.label)}, kind,
                                            list(attrs["class_names"]), fcfg, seed=config["seed"]))
        table.insert(0, "variant", name)
        table["train_s"], table["sample_s"] = round(t_train, 1), round(t_sample, 1)
        rows.append(table)
        cols = ["class", "compared", "edge_ratio", "psd_log10_high", "psd_log10_mid", "std_ratio", "within_std_ratio",
                "acf1_diff", "ok"]
        cols = [c for c in cols if c in table.columns]
        print(f"\n## {name}: generator {json.dumps(gen_over)}, sampler {json.dumps(samp_over)} "
              f"(train {t_train:.0f} s, sample {t_sample:.0f} s)\n")
        print(table[table["compared"] == "drafts"][cols].to_markdown(index=False, floatfmt=".3f"), flush=True)
        if name == args.variants[0]:
            print("\nreal references (half vs half, train vs test):\n")
            print(table[table["compared"].isin(["real_half", "train"])][cols].to_markdown(index=False, floatfmt=".3f"))
        write_csv(pd.concat(rows), out / "fidelity_fix.csv")


if __name__ == "__main__":
    main()

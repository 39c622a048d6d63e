"""The self-consuming loops study as a plug-in (dualspace.studies): its scenario names, config checks and config
schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from ..data import REGISTRY
from ..studies import Study

SCENARIOS = ("full_synthetic", "fresh", "augmented")  # what each generation trains on (dualspace.madness.loop)


def problems(config: Mapping[str, Any]) -> list[str]:
    """Cross-key checks of the `madness` section and its settings built by the dataclasses (a bad key or value
    names itself before any job runs)."""
    m = config.get("madness")
    if m is None:
        return []
    from .loop import LoopConfig, ScenarioConfig  # imports torch: only when there is something to check

    problems: list[str] = []
    ds = m["dataset"]
    if ds not in REGISTRY or REGISTRY[ds].kind != "image":
        problems.append(f"config key madness.dataset: '{ds}' is not an image dataset of the registry (images: "
                        f"{[n for n, s in REGISTRY.items() if s.kind == 'image']})")
    elif ds not in config:
        problems.append(f"config key madness.dataset: '{ds}' has no config section; its split files and dual-space "
                        "run (the real-data region) come from there")
    try:
        LoopConfig.from_dict({k: m[k] for k in ("generator", "generation_train", "sampler", "n_samples", "gen0_real")})
    except (TypeError, ValueError) as e:
        problems.append(f"config key {e}" if str(e).startswith("madness") else f"config key madness: {e}")
    for name, s in m["scenarios"].items():
        try:
            ScenarioConfig.from_dict(name, s)
        except ValueError as e:
            problems.append(f"config key {e}")
    ws = [(f"madness.scenarios.{name}.w", sc["w"]) for name, sc in m["scenarios"].items()]
    ws += [(f"madness.guidance.w[{i}]", w) for i, w in enumerate(m["guidance"]["w"])]
    for key, w in ws:  # a chain's folder is w{float(w)}: the rules' pattern needs a plain decimal
        if not re.fullmatch(r"[0-9]+\.[0-9]+", str(float(w))):
            problems.append(f"config key {key}: {w} does not print as a plain decimal (e.g. 0.25)")
    fresh = m["scenarios"].get("fresh", {})
    if (fresh.get("n_synthetic") or 0) > m["n_samples"]:
        problems.append(f"config key madness.scenarios.fresh.n_synthetic: {fresh['n_synthetic']} exceeds the "
                        f"{m['n_samples']} samples per generation (madness.n_samples)")
    for i, name in enumerate(m["guidance"]["scenarios"]):
        if name not in m["scenarios"]:
            problems.append(f"config key madness.guidance.scenarios[{i}]: '{name}' is not one of madness.scenarios "
                            f"{sorted(m['scenarios'])} (its settings come from there)")
    T = m["generator"].get("T", 200)
    bad = [t for t in m["jacobian"]["timesteps"] if t >= T]
    if bad:
        problems.append(f"config key madness.jacobian.timesteps: {bad} not below madness.generator.T = {T}")
    if m["metrics"]["region_alpha"] not in config["alphas"]:
        problems.append(f"config key madness.metrics.region_alpha: {m['metrics']['region_alpha']} is not one of "
                        f"alphas {config['alphas']} (the dual-space run calibrates those)")
    return problems


STUDY = Study(
    name="madness",
    schema_file=Path(__file__).with_name("config.schema.yaml"),
    problems=problems,
    enums={"/properties/scenarios/properties": SCENARIOS,
           "/properties/guidance/properties/scenarios/items/enum": SCENARIOS},
)

"""Config checks that read as one line per problem, each naming its key (used by the Snakefile), and the
few definitions the rules and the checks share (the alpha pattern, canonical params)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Mapping

import yaml
from jsonschema import Draft202012Validator

from .data import DATASETS, REGISTRY
from .fidelity import FidelityConfig

# The alpha wildcard of the rules and the form every entry of `alphas` must print as: str(float) of a value in
# (0, 1) is either 0.xxx or, below 1e-4, scientific (1e-05, 2.5e-07). One definition, so no alpha the
# config accepts can miss its file pattern.
ALPHA_PATTERN = r"0\.[0-9]+|[1-9](\.[0-9]+)?e-[0-9]+"


def canonical(value: Any) -> Any:
    """Dicts with keys sorted, recursively: Snakemake compares params by repr, so reordering config keys
    must not look like a change."""
    if isinstance(value, Mapping):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def _key(path) -> str:
    # deque(['alphas', 0]) -> "alphas[0]"
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def full_schema(schema_path: str | Path) -> dict[str, Any]:
    """The workflow schema with the registry filled in: the dataset names, and each dataset section's
    `data` checked against its loader's options."""
    schema = copy.deepcopy(yaml.safe_load(Path(schema_path).read_text()))
    schema["$defs"]["dataset_name"] = {"enum": DATASETS}
    for name, spec in REGISTRY.items():
        data = {"type": "object", "additionalProperties": False, "properties": spec.options}
        schema["properties"][name] = {"allOf": [{"$ref": "#/$defs/dataset"}, {"properties": {"data": data}}]}
    return schema


def config_problems(config: Mapping[str, Any], schema_path: str | Path) -> list[str]:
    """Every schema violation and cross-key inconsistency in `config`, as 'key: what is wrong' lines."""
    shared = set(yaml.safe_load(Path(schema_path).read_text())["properties"])
    problems = [f"config key {key}: not a setting and not a dataset of the registry (datasets: {DATASETS})"
                for key in config if key not in shared and key not in REGISTRY]
    validator = Draft202012Validator(full_schema(schema_path))
    problems += [f"config key {_key(e.absolute_path)}: {e.message}"
                 for e in sorted(validator.iter_errors({k: v for k, v in config.items() if k in shared or k in REGISTRY}),
                                 key=lambda e: list(map(str, e.absolute_path)))]
    if problems:
        return problems
    for name in REGISTRY:
        if name in config:
            problems += REGISTRY[name].check(config[name]["data"])
    for i, alpha in enumerate(config["alphas"]):
        if not re.fullmatch(ALPHA_PATTERN, str(alpha)):
            problems.append(f"config key alphas[{i}]: {alpha} does not print as a plain decimal or 1e-N number")
    if config["figures"]["alpha"] not in config["alphas"]:
        problems.append(f"config key figures.alpha: {config['figures']['alpha']} is not one of alphas "
                        f"{config['alphas']}")
    for ds in config["datasets"]:
        if ds not in config:
            problems.append(f"config key datasets lists '{ds}' but there is no '{ds}' section")
    try:
        FidelityConfig.from_dict(config["fidelity"])
    except ValueError as e:
        problems.append(f"config key {e}")
    if "trajectory" in config:
        problems += trajectory_problems(config["trajectory"])
    return problems + mixture_vae_problems(config) + abr_problems(config) + madness_problems(config)


def trajectory_problems(t: Mapping[str, Any]) -> list[str]:
    """Cross-key checks of the `trajectory` section the schema cannot express."""
    problems = []
    fractions = t["data"]["fractions"]
    if abs(sum(fractions.values()) - 1) > 1e-9:
        problems.append(f"config key trajectory.data.fractions: {dict(fractions)} must sum to 1")
    variants = t["timing"]["variants"]
    if t["timing"]["default"] not in variants:
        problems.append(f"config key trajectory.timing.default: '{t['timing']['default']}' is not one of the "
                        f"variants {sorted(variants)}")
    for name, v in variants.items():
        if name in ("constant", "moment", "joint"):
            problems.append(f"config key trajectory.timing.variants.{name}: '{name}' names a baseline; rename the "
                            "variant")
        v = {**t["timing"]["train"], **v}
        if v.get("profile") == "steps" and v.get("conditioning", "goal") == "goal":
            problems.append(f"config key trajectory.timing.variants.{name}: profile 'steps' reads the geometry; "
                            "use conditioning 'goal_geometry' or 'shared_embedding'")
        if v.get("pause_edges") and v.get("profile") != "steps":
            problems.append(f"config key trajectory.timing.variants.{name}: pause_edges need profile 'steps'")
        edges = list(v.get("pause_edges") or [])
        if edges != sorted(set(edges)):
            problems.append(f"config key trajectory.timing.variants.{name}.pause_edges: {edges} must increase")
    return problems


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over` laid on top: nested dicts merge key by key, anything else replaces."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def mixture_vae_run_settings(m: Mapping[str, Any], ds: str, variant: str) -> dict[str, Any]:
    """model / loss / train of one study run: the shared sections, then `datasets.<ds>`, then `variants.<variant>`
    (canonical, keys sorted)."""
    out = deep_merge({k: m[k] for k in ("model", "loss", "train")}, m["datasets"].get(ds, {}))
    return canonical(deep_merge(out, m["variants"][variant]))


def family_sections(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """`<ds>.generator.<name>` of every dataset section that has one, by dataset."""
    return {ds: config[ds]["generator"][name] for ds in REGISTRY if name in config.get(ds, {}).get("generator", {})}


def family_problems(sections: Mapping[str, Any], name: str, settings_class: type) -> list[str]:
    """Each `<ds>.generator.<name>` built by the family's settings class: one line per section it refuses."""
    problems = []
    for ds, settings in sections.items():
        try:
            settings_class.from_dict(settings, f"{ds}.generator.{name}")
        except (TypeError, ValueError) as e:
            problems.append(f"config key {ds}.generator.{name}: {e}")
    return problems


def config_problems_memo(config: Mapping[str, Any], schema_path: str | Path, memo_dir: str | Path) -> list[str]:
    """`config_problems`, skipped where this very config passed before with the same schema and package source.

    The settings checks build the studies' dataclasses, which imports torch: ~3 s of every snakemake start
    (dry runs and alpha edits included). A pass leaves an empty file under `memo_dir` named by the hash of
    the config (canonical JSON), the schema file and every .py file of the package; any change in one of them
    checks again. Problems are never memoised.
    """
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=repr).encode())
    h.update(Path(schema_path).read_bytes())
    package = Path(__file__).resolve().parent
    for f in sorted(package.rglob("*.py")):
        h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes())
    mark = Path(memo_dir) / f"config-passed-{h.hexdigest()[:40]}"
    if mark.exists():
        return []
    problems = config_problems(config, schema_path)
    if not problems:
        try:
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.touch()
        except OSError:  # a read-only checkout: check every time
            pass
    return problems


def mixture_vae_problems(config: Mapping[str, Any]) -> list[str]:
    """Cross-key checks of the `mixture_vae` section, and every run's settings built by the dataclasses (so a
    bad key or value names its key before any job runs); also `<ds>.generator.mixture_vae` of each dataset."""
    m = config.get("mixture_vae")
    sections = family_sections(config, "mixture_vae")
    if m is None and not sections:
        return []
    from .mixture_vae.family import MixtureVAESettings  # imports torch: only when there is something to check

    problems: list[str] = []
    runs: set[tuple[str, str]] = set()
    if m is not None:
        variants = m["variants"]
        wanted = {(m["default"]["dataset"], m["default"]["variant"], "mixture_vae.default.variant")}
        for ds, a in m["ablation"].items():
            wanted |= {(ds, v, f"mixture_vae.ablation.{ds}.variants[{i}]") for i, v in enumerate(a["variants"])}
        for ds, variant, key in sorted(wanted):
            if variant not in variants:
                problems.append(f"config key {key}: '{variant}' is not one of the variants {sorted(variants)}")
            else:  # (the dataset's own section is needed only when its split files are built)
                runs.add((ds, variant))
        failed: dict[str, list[str]] = {}  # one line per distinct error, with the runs it breaks
        for ds, variant in sorted(runs):
            try:
                MixtureVAESettings.from_dict(mixture_vae_run_settings(m, ds, variant))
            except (TypeError, ValueError) as e:
                failed.setdefault(str(e), []).append(f"{ds}/{variant}")
        problems += [f"config key mixture_vae: {msg} (runs {', '.join(where)}; a run's settings are model / loss / "
                     "train, then datasets.<ds>, then variants.<variant>)" for msg, where in failed.items()]
    return problems + family_problems(sections, "mixture_vae", MixtureVAESettings)


def abr_mode_settings(a: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """model / loss / train of one ABR study mode: the shared sections, then `mode_overrides.<mode>`, with
    `model.joint_generation` set by the mode (canonical, keys sorted)."""
    out = deep_merge({k: a[k] for k in ("model", "loss", "train")}, a["mode_overrides"].get(mode, {}))
    out["model"] = {**out["model"], "joint_generation": mode == "joint"}
    return canonical(out)


def abr_problems(config: Mapping[str, Any]) -> list[str]:
    """Cross-key checks of the `abr` section, each mode's settings built by the dataclasses, and
    `<ds>.generator.cvae` of each dataset (so a bad key names itself before any job runs)."""
    a = config.get("abr")
    sections = family_sections(config, "cvae")
    if a is None and not sections:
        return []
    from .abr.family import CVAESettings  # imports torch: only when there is something to check

    problems: list[str] = []
    if a is not None:
        lo, hi = a["eval"]["intensity_range"]
        if not lo < hi:
            problems.append(f"config key abr.eval.intensity_range: [{lo}, {hi}] must be [low, high] with low < high")
        for where, settings in [("abr.model", a["model"])] + [(f"abr.mode_overrides.{m}.model", o.get("model", {}))
                                                              for m, o in a["mode_overrides"].items()]:
            if "joint_generation" in settings:
                problems.append(f"config key {where}.joint_generation: set by the mode (abr.modes), leave it out")
        for mode in a["modes"]:
            try:
                CVAESettings.from_dict(abr_mode_settings(a, mode))
            except (TypeError, ValueError) as e:
                problems.append(f"config key abr ({mode} mode): {e}")
    return problems + family_problems(sections, "cvae", CVAESettings)


def madness_problems(config: Mapping[str, Any]) -> list[str]:
    """Cross-key checks of the `madness` section and its settings built by the dataclasses (a bad key or value
    names itself before any job runs)."""
    m = config.get("madness")
    if m is None:
        return []
    from .madness.loop import LoopConfig, ScenarioConfig  # imports torch: only when there is something to check

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

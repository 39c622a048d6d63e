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
from .generator import DEFAULT_FAMILY, families
from .realism import RealismConfig
from .studies import STUDIES, studies

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
    """The workflow schema with the registries filled in: each study's section and `$defs`
    (dualspace.studies), the generator families of a dataset section (dualspace.generator.families), the
    dataset names, and each dataset section's `data` checked against its loader's options."""
    schema = copy.deepcopy(yaml.safe_load(Path(schema_path).read_text()))
    for study in studies():
        part = copy.deepcopy(study.schema())
        clash = set(part["$defs"]) & set(schema["$defs"])
        if clash or study.name in schema["properties"]:
            raise ValueError(f"{study.schema_file}: study '{study.name}' redefines {sorted(clash) or study.name} "
                             f"of {schema_path}")
        schema["$defs"].update(part["$defs"])
        schema["properties"][study.name] = part["section"]
    names = list(families())
    dataset = schema["$defs"]["dataset"]
    dataset["properties"]["generator"]["properties"] = {
        "family": {"enum": names}, **{n: {"$ref": f"#/$defs/{n}_generator"} for n in names}}
    dataset["properties"]["sampler"]["properties"].update({n: {"$ref": f"#/$defs/{n}_sampler"} for n in names})
    dataset["allOf"] = [  # the chosen family's settings must be there (no `family`: the default family)
        {"if": {"properties": {"generator": {"properties": {"family": {"const": n}},
                                             **({} if n == DEFAULT_FAMILY else {"required": ["family"]})}}},
         "then": {"properties": {"generator": {"required": [n]}, "sampler": {"required": [n]}}}} for n in names]
    schema["$defs"]["dataset_name"] = {"enum": DATASETS}
    for name, spec in REGISTRY.items():
        data = {"type": "object", "additionalProperties": False, "properties": spec.options}
        schema["properties"][name] = {"allOf": [{"$ref": "#/$defs/dataset"}, {"properties": {"data": data}}]}
    return schema


def config_problems(config: Mapping[str, Any], schema_path: str | Path) -> list[str]:
    """Every schema violation and cross-key inconsistency in `config`, as 'key: what is wrong' lines."""
    schema = full_schema(schema_path)
    shared = set(schema["properties"])  # settings and study sections
    problems = [f"config key {key}: not a setting, a study or a dataset of the registry (studies: {list(STUDIES)}; "
                f"datasets: {DATASETS})" for key in config if key not in shared and key not in REGISTRY]
    validator = Draft202012Validator(schema)
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
    for settings_class, key in ((FidelityConfig, "fidelity"), (RealismConfig, "realism")):
        try:
            settings_class.from_dict(config[key])
        except ValueError as e:
            problems.append(f"config key {e}")
    for study in studies():
        problems += study.problems(config)
    return problems


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over` laid on top: nested dicts merge key by key, anything else replaces."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


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
    the config (canonical JSON), the schema file and every .py and .yaml file of the package (the studies'
    schemas among them); any change in one of them checks again. Problems are never memoised.
    """
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=repr).encode())
    h.update(Path(schema_path).read_bytes())
    package = Path(__file__).resolve().parent
    for f in sorted([*package.rglob("*.py"), *package.rglob("*.yaml")]):
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

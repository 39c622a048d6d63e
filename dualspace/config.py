"""Config checks that read as one line per problem, each naming its key (used by the Snakefile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml
from jsonschema import Draft202012Validator


def _key(path) -> str:
    # deque(['alphas', 0]) -> "alphas[0]"
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def config_problems(config: Mapping[str, Any], schema_path: str | Path) -> list[str]:
    """Every schema violation and cross-key inconsistency in `config`, as 'key: what is wrong' lines."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = Draft202012Validator(schema)
    problems = [f"config key {_key(e.absolute_path)}: {e.message}"
                for e in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))]
    if problems:
        return problems
    digits = config["digits"]["data"]
    if digits.get("calib_fraction", 0.2) + digits.get("test_fraction", 0.2) >= 1:
        problems.append("config keys digits.data.calib_fraction + digits.data.test_fraction must sum to < 1 "
                        "(the rest is the train split)")
    if config["figures"]["alpha"] not in config["alphas"]:
        problems.append(f"config key figures.alpha: {config['figures']['alpha']} is not one of alphas "
                        f"{config['alphas']}")
    for ds in config["datasets"]:
        if ds not in config:
            problems.append(f"config key datasets lists '{ds}' but there is no '{ds}' section")
    return problems

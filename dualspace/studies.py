"""Study registry: the sibling systems (trajectory, mixture_vae, abr, madness) as plug-ins.

A study is a package `dualspace/<name>/` whose module `study.py` holds a `STUDY` record: the schema of its config
section `<name>` (a YAML file in the package), its cross-key config checks, the generator families it adds, and
the schema enums that must equal its constants (scenario names, modes, baselines). `dualspace.config` and
`dualspace.generator` read studies through this registry only, and import a study's record by name when asked,
so no core module imports a study and a study is removed by deleting its package, its rule file(s), its config
section and its line below (README "Adding a study").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

# study name (= its config section, workflow/rules/<name>.smk and results/<name>/) -> module holding its STUDY
STUDIES: dict[str, str] = {
    "trajectory": "dualspace.trajectory.study",
    "mixture_vae": "dualspace.mixture_vae.study",
    "abr": "dualspace.abr.study",
    "madness": "dualspace.madness.study",
}


@dataclass(frozen=True)
class Study:
    """One study, as the config check and the generator registry see it."""

    name: str
    schema_file: Path  # YAML: `section` (the JSON schema of config section `<name>`) and optional `$defs`
    problems: Callable[[Mapping[str, Any]], list[str]]  # cross-key checks of the whole config: 'key: what' lines
    families: Mapping[str, str] = field(default_factory=dict)  # generator families it adds: name -> module
    # schema location (JSON pointer into `section`, or into `$defs` when it starts with /$defs) -> the constant its
    # enum (a list) or its property names (an object) must equal; tests/test_studies.py checks each
    enums: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        """{"section": ..., "$defs": {...}} read from `schema_file`."""
        return load_schema(self.schema_file)


@cache
def load_schema(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(Path(path).read_text())
    if not isinstance(doc, dict) or "section" not in doc:
        raise ValueError(f"{path}: a study schema needs a top-level `section` (the JSON schema of its config section)")
    return {"section": doc["section"], "$defs": doc.get("$defs", {})}


def study(name: str) -> Study:
    """The record of study `name`; an unknown name fails with the known ones listed."""
    if name not in STUDIES:
        raise KeyError(f"unknown study '{name}'; known: {sorted(STUDIES)}")
    return importlib.import_module(STUDIES[name]).STUDY


def studies() -> list[Study]:
    """Every registered study's record, in registry order."""
    return [study(name) for name in STUDIES]


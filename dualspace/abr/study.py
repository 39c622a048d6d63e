"""The ABR study as a plug-in (dualspace.studies): its modes, how a mode's settings are layered, its config checks
(and those of the `cvae` generator family it adds) and its config schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..config import canonical, deep_merge, family_problems, family_sections
from ..studies import Study

MODES = ("legacy", "joint")  # legacy: signal given the static parameters; joint: signal and statics from z


def mode_settings(a: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """model / loss / train of one ABR study mode: the shared sections, then `mode_overrides.<mode>`, with
    `model.joint_generation` set by the mode (canonical, keys sorted)."""
    out = deep_merge({k: a[k] for k in ("model", "loss", "train")}, a["mode_overrides"].get(mode, {}))
    out["model"] = {**out["model"], "joint_generation": mode == "joint"}
    return canonical(out)


def problems(config: Mapping[str, Any]) -> list[str]:
    """Cross-key checks of the `abr` section, each mode's settings built by the dataclasses, and
    `<ds>.generator.cvae` of each dataset (so a bad key names itself before any job runs)."""
    a = config.get("abr")
    sections = family_sections(config, "cvae")
    if a is None and not sections:
        return []
    from .family import CVAESettings  # imports torch: only when there is something to check

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
                CVAESettings.from_dict(mode_settings(a, mode))
            except (TypeError, ValueError) as e:
                problems.append(f"config key abr ({mode} mode): {e}")
    return problems + family_problems(sections, "cvae", CVAESettings)


STUDY = Study(
    name="abr",
    schema_file=Path(__file__).with_name("config.schema.yaml"),
    problems=problems,
    families={"cvae": "dualspace.abr.family"},
    enums={"/properties/modes/items/enum": MODES, "/properties/mode_overrides/properties": MODES},
)

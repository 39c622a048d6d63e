"""The trajectory study as a plug-in (dualspace.studies): its constants, config checks and config schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..studies import Study

BASELINES = ("constant", "moment", "joint")  # timing models the study always compares; no variant may take a name
CONDITIONINGS = ("goal", "goal_geometry", "shared_embedding")  # TimingConfig.conditioning
PROFILES = ("position", "steps")  # TimingConfig.profile


def problems(config: Mapping[str, Any]) -> list[str]:
    """Cross-key checks of the `trajectory` section the schema cannot express."""
    t = config.get("trajectory")
    if t is None:
        return []
    problems = []
    fractions = t["data"]["fractions"]
    if abs(sum(fractions.values()) - 1) > 1e-9:
        problems.append(f"config key trajectory.data.fractions: {dict(fractions)} must sum to 1")
    variants = t["timing"]["variants"]
    if t["timing"]["default"] not in variants:
        problems.append(f"config key trajectory.timing.default: '{t['timing']['default']}' is not one of the "
                        f"variants {sorted(variants)}")
    for name, v in variants.items():
        if name in BASELINES:
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


STUDY = Study(
    name="trajectory",
    schema_file=Path(__file__).with_name("config.schema.yaml"),
    problems=problems,
    enums={"/$defs/timing_settings/properties/conditioning/enum": CONDITIONINGS,
           "/$defs/timing_settings/properties/profile/enum": PROFILES},
)

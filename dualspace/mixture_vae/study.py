"""The mixture-of-VAEs study as a plug-in (dualspace.studies): how a run's settings are layered, its config checks
(and those of the `mixture_vae` generator family it adds) and its config schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..config import canonical, deep_merge, family_problems, family_sections
from ..studies import Study


def run_settings(m: Mapping[str, Any], ds: str, variant: str) -> dict[str, Any]:
    """model / loss / train of one study run: the shared sections, then `datasets.<ds>`, then `variants.<variant>`
    (canonical, keys sorted)."""
    out = deep_merge({k: m[k] for k in ("model", "loss", "train")}, m["datasets"].get(ds, {}))
    return canonical(deep_merge(out, m["variants"][variant]))


def problems(config: Mapping[str, Any]) -> list[str]:
    """Cross-key checks of the `mixture_vae` section, and every run's settings built by the dataclasses (so a
    bad key or value names its key before any job runs); also `<ds>.generator.mixture_vae` of each dataset."""
    m = config.get("mixture_vae")
    sections = family_sections(config, "mixture_vae")
    if m is None and not sections:
        return []
    from .family import MixtureVAESettings  # imports torch: only when there is something to check

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
                MixtureVAESettings.from_dict(run_settings(m, ds, variant))
            except (TypeError, ValueError) as e:
                failed.setdefault(str(e), []).append(f"{ds}/{variant}")
        problems += [f"config key mixture_vae: {msg} (runs {', '.join(where)}; a run's settings are model / loss / "
                     "train, then datasets.<ds>, then variants.<variant>)" for msg, where in failed.items()]
    return problems + family_problems(sections, "mixture_vae", MixtureVAESettings)


STUDY = Study(
    name="mixture_vae",
    schema_file=Path(__file__).with_name("config.schema.yaml"),
    problems=problems,
    families={"mixture_vae": "dualspace.mixture_vae.family"},
)

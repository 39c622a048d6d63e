"""Studies as plug-ins (dualspace.studies): the schema's enums are the study's constants, no core module imports a
study, studies never import the stage layer, and a study is removed by deleting its files."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, copy_workflow, job_counts, snakemake
from dualspace.studies import STUDIES, study

PACKAGE = ROOT / "dualspace"


def _pointer(doc: dict, pointer: str):
    node = doc
    for part in pointer.strip("/").split("/"):
        node = node[part]
    return node


@pytest.mark.parametrize("name", list(STUDIES))
def test_schema_enums_are_the_study_constants(name):
    s = study(name)
    assert s.name == name and s.schema_file.parent == PACKAGE / name
    schema = s.schema()
    for pointer, constant in s.enums.items():
        doc = {"$defs": schema["$defs"]} if pointer.startswith("/$defs/") else schema["section"]
        node = _pointer(doc, pointer)
        found = list(node) if isinstance(node, dict) else node  # an object's property names, or an enum's values
        assert found == list(constant), f"{s.schema_file} {pointer}: {found} != {list(constant)} ({s.name} study)"


def test_study_enums_cover_the_names_spelled_in_the_schema():
    """Every enum of a study schema that lists a study constant's names is one the STUDY record checks (so a
    second spelling of scenarios, modes or conditionings cannot hide in the schema unchecked)."""
    for name in STUDIES:
        s = study(name)
        text = s.schema_file.read_text()
        for constant in {tuple(c) for c in s.enums.values()}:
            spelled = text.count("[" + ", ".join(constant) + "]")
            checked = sum(1 for p, c in s.enums.items() if tuple(c) == constant and p.endswith("/enum"))
            assert spelled == checked, f"{s.schema_file}: {constant} spelled {spelled} times, checked {checked}"


def test_madness_scenarios_modes_and_baselines_have_one_definition():
    """The constant names appear as a list literal only in their study module (not in rules, loop or config)."""
    literals = {'"full_synthetic", "fresh", "augmented"': "madness/study.py", '"legacy", "joint"': "abr/study.py",
                '"constant", "moment", "joint"': "trajectory/study.py",
                '"goal", "goal_geometry", "shared_embedding"': "trajectory/study.py"}
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "workflow").rglob("*.smk"), ROOT / "Snakefile"]
    for literal, home in literals.items():
        where = [str(f.relative_to(ROOT)) for f in files if literal in f.read_text()]
        assert where == [f"dualspace/{home}"], (literal, where)


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path, module: str) -> set[str]:
    """Absolute names of every module `path` (module `module`) imports, at the top or inside functions, relative
    imports resolved."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return out


def _in_study(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 and rel[0] in STUDIES else None


def test_no_core_module_imports_a_study_and_no_study_imports_the_stages():
    """Nor does one study import another: removing a study must leave the rest whole."""
    studies = tuple(f"dualspace.{name}" for name in STUDIES)
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        owner = _in_study(path)
        for name in _imports(path, _module(path)):
            if (name + ".").startswith(tuple(s + "." for s in studies)) and name.split(".")[1] != owner:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
            if owner and name.startswith("dualspace.stages"):
                bad.append(f"{path.relative_to(ROOT)} (study {owner}) imports the stage layer: {name}")
    assert not bad, "\n".join(bad)


def test_core_rules_and_scripts_never_name_a_study_package():
    """Only a study's own rule file and scripts import it; the core rule files and scripts do not."""
    bad = []
    for path in [*(ROOT / "workflow/rules").glob("*.smk"), *(ROOT / "workflow/scripts").glob("*.py")]:
        owner = next((n for n in STUDIES if path.stem == n or path.stem.startswith(n + "_")), None)
        for name in STUDIES:
            if name != owner and re.search(rf"\bdualspace\.{name}\b", path.read_text()):
                bad.append(f"{path.relative_to(ROOT)} names dualspace.{name}")
    assert not bad, "\n".join(bad)


def test_the_import_graph_check_can_fail(tmp_path):
    """The resolver sees a study imported from a core module, relatively and inside a function (so the check
    above can fail)."""
    fake = tmp_path / "probe.py"
    fake.write_text("import numpy\n\ndef f():\n    from ..madness.study import SCENARIOS\n    from dualspace import abr\n"
                    "    from . import conformal\n")
    found = _imports(fake, "dualspace.stages.probe")
    assert {"dualspace.madness.study.SCENARIOS", "dualspace.abr", "dualspace.stages.conformal", "numpy"} <= found


def _rules(smk: Path) -> set[str]:
    return set(re.findall(r"^rule (\w+):", smk.read_text(), flags=re.M))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STUDIES))
def test_a_study_is_removed_by_deleting_its_files(name, tmp_path):
    """In a copy: delete the study's package, rule files, scripts, tests, config section (and its generator
    families' sections in dataset sections) and registry line. The DAG
    of `rule all` still builds (the config check passes), the other studies and the dual-space pipeline keep their
    jobs, and every remaining test module still imports."""
    wf = copy_workflow(tmp_path / "wf")
    shutil.copytree(ROOT / "tests", wf / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    py = tmp_path / "py"
    shutil.copytree(PACKAGE, py / "dualspace", ignore=shutil.ignore_patterns("__pycache__"))
    own_rules = _rules(wf / "workflow/rules" / f"{name}.smk")

    shutil.rmtree(py / "dualspace" / name)
    for f in (f"{name}.smk", f"{name}_common.smk"):
        (wf / "workflow/rules" / f).unlink()
    for f in [*(wf / "workflow/scripts").glob(f"{name}_*.py"), *(wf / "tests").glob(f"test_{name}_*.py"),
              *(wf / "tests").glob(f"test_{name}.py")]:
        f.unlink()
    config = yaml.safe_load((wf / "config/config.yaml").read_text())
    del config[name]
    for section in config.values():  # the generator families it adds leave every dataset section
        for family in study(name).families:
            if isinstance(section, dict) and "generator" in section:
                section["sampler"].pop(family, None)
                if section["generator"].pop(family, None) is not None and section["generator"].get("family") == family:
                    del section["generator"]["family"]  # back to the default family
    (wf / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    registry = py / "dualspace" / "studies.py"
    line = f'    "{name}": "dualspace.{name}.study",\n'
    assert line in registry.read_text()
    registry.write_text(registry.read_text().replace(line, ""))

    env = {"PYTHONPATH": str(py)}
    out = snakemake("-n", cwd=wf, env=env, check=True).stdout
    jobs = job_counts(out)
    assert not own_rules & set(jobs) and f"results/{name}/" not in out
    for ds in config["datasets"]:
        assert f"results/{ds}/metrics.csv" in out and f"results/{ds}/figures/" in out
    for other in STUDIES:
        if other != name:  # every other study still runs its default target
            assert _rules(ROOT / "workflow/rules" / f"{other}.smk") & set(jobs), (other, jobs)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", "tests"],
                          cwd=wf, env={**os.environ, **env}, capture_output=True, text=True)
    assert proc.returncode == 0 and " error" not in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"/{name}/" not in proc.stdout

"""README.md's layout section lists every module of the package, and only those: a module added, removed or
renamed without its README line fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout_modules(readme: str) -> dict[str, str]:
    """Module path (dualspace/...py) -> its purpose, from the tree under `dualspace/` in the layout code block.
    A folder line (`nn/`) stands for its __init__.py; two spaces of indent per level."""
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```\n", 2)[1]
    lines = block.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("dualspace/"))
    purpose_col = len(lines[top]) - len(lines[top][len("dualspace/"):].lstrip())
    out = {"dualspace/__init__.py": lines[top][purpose_col:].strip()}
    parents = ["dualspace"]
    for line in lines[top + 1:]:
        if not line.startswith(" "):
            break  # the next top-level entry (benchmarks/, ...)
        indent = len(line) - len(line.lstrip())
        assert indent < purpose_col, f"README layout: a continuation line under dualspace/: {line!r}"
        assert indent % 2 == 0 and indent // 2 <= len(parents), f"README layout: bad indent in {line!r}"
        name, _, purpose = line.strip().partition(" ")
        del parents[indent // 2:]
        path = "/".join(parents + [name.rstrip("/")])
        if name.endswith("/"):
            parents.append(name.rstrip("/"))
            path += "/__init__.py"
        out[path] = purpose.strip()
    return out


def package_modules() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "dualspace").rglob("*.py")
            if "__pycache__" not in p.parts}


def _readme_line(module: str) -> str:
    """The line to paste for a module the README misses: its name and the first line of its docstring."""
    doc = ast.get_docstring(ast.parse((ROOT / module).read_text())) or ""
    parts = module.split("/")
    name = parts[-2] + "/" if parts[-1] == "__init__.py" else parts[-1]
    indent = "  " * (len(parts) - (2 if parts[-1] == "__init__.py" else 1))
    return f"{indent}{name}".ljust(23) + doc.split("\n", 1)[0]


def test_readme_layout_lists_every_module_of_the_package():
    listed = layout_modules((ROOT / "README.md").read_text())
    actual = package_modules()
    gone, missing = sorted(set(listed) - actual), sorted(actual - set(listed))
    assert not gone and not missing, (
        f"README.md '## Layout' is out of date with dualspace/. Listed but not in the package: {gone}. "
        f"In the package but not listed: {missing}; lines for them (shorten the purpose to fit):\n"
        + "\n".join(_readme_line(m) for m in missing))
    assert all(listed.values()), f"README layout: modules without a purpose: {[m for m, p in listed.items() if not p]}"


def test_layout_parser_reads_folders_and_nesting():
    readme = ("# x\n\n## Layout\n\n```\nSnakefile              s\ndualspace/             lib\n"
              "  io.py                files\n  nn/                  networks\n    mdn.py             MDN\n"
              "  volume.py            volumes\nbenchmarks/            b\n```\n\n## Next\n")
    assert layout_modules(readme) == {"dualspace/__init__.py": "lib", "dualspace/io.py": "files",
                                      "dualspace/nn/__init__.py": "networks", "dualspace/nn/mdn.py": "MDN",
                                      "dualspace/volume.py": "volumes"}
    assert re.fullmatch(r" {4}mdn\.py {13}.*", _readme_line("dualspace/nn/mdn.py"))

"""Pages generated at every build (mkdocs-gen-files), so that they follow the code.

* ``reference/``: one page per public module of optimlab, each a ``::: module`` directive
  that mkdocstrings fills from the docstrings; ``reference/SUMMARY.md`` is its nav.
* ``tests/``: the test files the pages cite as proof, one page each, one section per test
  (anchor = the test's name), so that a link such as
  ``tests/test_conformance_keras.md#test_adam_matches_keras`` works offline and strictly.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "optimlab"


def public_modules() -> list[str]:
    """Dotted names of every module under src/optimlab whose name has no leading '_'."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(part.startswith("_") for part in parts):
            names.append(".".join(parts))
    return names


#: what users call, shown first; every other module (the rules' declarations, engines,
#: the IR, codecs, state) is listed under "Internals"
PUBLIC = ("optimlab", "optimlab.optimizer", "optimlab.optimizers", "optimlab.registry",
          "optimlab.recipes", "optimlab.schedules", "optimlab.grouping", "optimlab.clipping",
          "optimlab.porting", "optimlab.hyperparameters", "optimlab.lab")


def is_public(name: str) -> bool:
    return name == "optimlab" or any(name == p or name.startswith(p + ".")
                                     for p in PUBLIC[1:])


def write_reference() -> None:
    public, internal = [], []
    for name in public_modules():
        page = "reference/" + name.replace(".", "/") + ".md"
        (public if is_public(name) else internal).append(
            f"    * [{name}]({page.removeprefix('reference/')})")
        with mkdocs_gen_files.open(page, "w") as out:
            out.write(f"# {name}\n\n::: {name}\n")
    with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as out:
        out.write("\n".join(["* Public API", *public, "* Internals", *internal]) + "\n")


def test_sections(source: str) -> list[tuple[str, str]]:
    """(heading, code) for the file's prologue and each top-level function or class."""
    tree = ast.parse(source)
    lines = source.splitlines()
    sections, start = [], 0
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            if first > start and "\n".join(lines[start:first]).strip():
                sections.append(("", "\n".join(lines[start:first]).strip("\n")))
            sections.append((node.name, "\n".join(lines[first:node.end_lineno])))
            start = node.end_lineno
    if "\n".join(lines[start:]).strip():
        sections.append(("", "\n".join(lines[start:]).strip("\n")))
    return sections


def write_tests() -> None:
    summary = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        if path.name == "__init__.py":
            continue
        summary.append(f"* [{path.name}]({path.stem}.md)")
        parts = [f"# tests/{path.name}\n",
                 f"Run it: `.venv/bin/python -m pytest -q tests/{path.name}` "
                 "(after `scripts/test.sh` has set up `.venv`).\n"]
        for heading, code in test_sections(path.read_text(encoding="utf-8")):
            if heading:
                parts.append(f"## {heading} {{ #{heading} }}\n")
            parts.append(f"```python\n{code}\n```\n")
        with mkdocs_gen_files.open(f"tests/{path.stem}.md", "w") as out:
            out.write("\n".join(parts))
    with mkdocs_gen_files.open("tests/SUMMARY.md", "w") as out:
        out.write("\n".join(summary) + "\n")


write_reference()
write_tests()

"""The shape of the house (DESIGN.md): arrows point down only, files stay small, and the
library outside the lab needs nothing but torch and the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SOURCE / "optimlab"
MODULES = {".".join(path.relative_to(SOURCE).with_suffix("").parts).removesuffix(".__init__"):
           path for path in PACKAGE.rglob("*.py")}


def _imports(module: str, path: Path) -> set[str]:
    """Every optimlab module that ``module`` imports, at any depth of its code (function
    bodies and ``if TYPE_CHECKING`` blocks included)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            # "from optimlab import rules" imports a module; "from optimlab import SGD",
            # the package that defines the name
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                     for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in MODULES and name != module}
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _cycle() -> list[str] | None:
    """A cycle of the import graph, if there is one (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for child in sorted(GRAPH[node]):
            if state.get(child) == 1:
                return [*stack[stack.index(child):], child]
            if child not in state and (found := visit(child)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_import_cycle_in_the_library() -> None:
    assert _cycle() is None, " -> ".join(_cycle() or [])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_file_over_400_lines(module: str) -> None:
    assert len(MODULES[module].read_text().splitlines()) <= 400


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("optimlab.lab")))
def test_the_library_imports_torch_and_the_standard_library_only(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text())
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    foreign = roots - set(sys.stdlib_module_names) - {"torch", "optimlab", "__future__"}
    assert not foreign, f"{module} imports {sorted(foreign)}"

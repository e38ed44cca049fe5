"""Layers point one way: storage and data at the bottom, the loop above them, recipes above
that, the command line and the server on top. Checked on the source itself: every import
statement of every module (also those inside functions, not those for type checkers)."""

from __future__ import annotations

import ast
from pathlib import Path

import dlnd

PACKAGE = Path(dlnd.__file__).parent

# Modules each module must never import (directly), by prefix.
FORBIDDEN = {
    # the bottom: files, configuration, formatting, run folders, process groups, data
    ("dlnd.errors", "dlnd.io", "dlnd.config", "dlnd.report", "dlnd.store", "dlnd.runs",
     "dlnd.distributed", "dlnd.plots", "dlnd.data", "dlnd.text"): (
        "dlnd.loop", "dlnd.trainer", "dlnd.recipes", "dlnd.checkpoint", "dlnd.launch",
        "dlnd.cli", "dlnd.tour", "dlnd.serve", "dlnd.vision", "dlnd.basics",
    ),
    # the loop knows tasks, not recipes or what is built on it
    ("dlnd.loop", "dlnd.trainer"): (
        "dlnd.recipes", "dlnd.checkpoint", "dlnd.launch", "dlnd.cli", "dlnd.tour", "dlnd.serve",
    ),
    # the registry is data about recipes; it does not depend on how they train
    ("dlnd.recipes",): ("dlnd.loop", "dlnd.trainer", "dlnd.launch", "dlnd.cli", "dlnd.serve"),
    # recipes and running them sit below the command line and the server
    ("dlnd.launch", "dlnd.checkpoint", "dlnd.tour"): ("dlnd.cli", "dlnd.serve"),
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every dlnd module imported anywhere in ``path`` (outside ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "dlnd" or name.startswith("dlnd.")}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {imported for imported in imports_of(path) if imported in modules}
        for name, path in modules.items()
    }


def test_lower_layers_never_import_higher_ones():
    edges = graph()
    wrong = [
        f"{module} imports {imported}"
        for lows, highs in FORBIDDEN.items()
        for module, imported_set in edges.items()
        if module.startswith(lows)
        for imported in imported_set
        if imported.startswith(highs)
    ]
    assert not wrong, wrong


def test_no_import_cycles():
    edges = graph()
    edges["dlnd"] = set()  # the package's own __init__ only offers a lazy shortcut
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for imported in sorted(edges.get(module, ())):
            if imported in path:
                cycles.append(" -> ".join(path[path.index(imported) :] + [imported]))
            elif imported not in done:
                visit(imported, [*path, imported])
        done.add(module)

    done: set[str] = set()
    for module in sorted(edges):
        if module not in done:
            visit(module, [module])
    assert not cycles, sorted(set(cycles))[:10]

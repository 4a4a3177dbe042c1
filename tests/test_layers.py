"""The package's layers: imports go one way, from the top (CLI) down to the foundation.

Why: the layout is the architecture (README, Layout).  A logic package that
imports a command, or an adapter that imports logic, makes the layers a
story the code no longer tells; this test fails on the first such import,
TYPE_CHECKING and function-local imports included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "rollsafe"

#: Layer of each top-level part of the package, lowest first.  A module may import
#: its own part and any part of a lower layer; parts of one layer never import
#: each other unless listed in ALLOWED_SIDEWAYS.
LAYERS: dict[str, int] = {
    # foundation
    "errors": 0,
    "_version": 0,
    "_lazy": 0,
    "_sqltext": 0,
    "config": 1,
    "_files": 1,
    # adapters: git and the database
    "_db": 2,
    "_git": 2,
    "_gitlog": 2,
    "engines": 3,
    # logic
    "migrate": 3,
    "history": 4,
    "lint": 5,
    "table": 6,
    "pairs": 7,
    # thin commands, then the three ways in
    "commands": 8,
    "cli": 9,
    "nox_sessions": 9,
    "invoke_tasks": 10,
}

#: Same-layer imports that are part of the design.
ALLOWED_SIDEWAYS = {("_gitlog", "_git")}


def part_of(module: str) -> str | None:
    """The top-level part of ``rollsafe.<part>...``, or None for other packages."""
    names = module.split(".")
    if names[0] != "rollsafe" or len(names) < 2:
        return None
    return names[1]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every rollsafe module ``path`` imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "rollsafe":
                found.extend((node.lineno, f"rollsafe.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if part_of(name) is not None]


def modules() -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*.py") if p.name != "__init__.py" or p.parent != SOURCE)


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {p.stem if p.parent == SOURCE else p.relative_to(SOURCE).parts[0] for p in modules()}
    assert parts <= set(LAYERS), f"give these a layer in LAYERS: {sorted(parts - set(LAYERS))}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SOURCE)))
def test_imports_go_down_the_layers(path: Path) -> None:
    own = path.stem if path.parent == SOURCE else path.relative_to(SOURCE).parts[0]
    wrong = []
    for line, name in imports_of(path):
        target = part_of(name)
        assert target is not None
        if target == own or (own, target) in ALLOWED_SIDEWAYS:
            continue
        if target not in LAYERS or LAYERS[target] >= LAYERS[own]:
            wrong.append(f"line {line}: {own} (layer {LAYERS[own]}) imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_sees_a_wrong_import(tmp_path: Path) -> None:
    """The check itself can fail: an import up the layers is found, even under TYPE_CHECKING."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from rollsafe.commands.table import compute_rows\n"
        "def f() -> None:\n"
        "    from rollsafe import cli\n"
    )
    assert imports_of(bad) == [(3, "rollsafe.commands.table"), (5, "rollsafe.cli")]


#: The longest a module may grow before it should be split by cohesion (STYLE.md).
MAX_MODULE_LINES = 600


def test_no_module_outgrows_one_reading() -> None:
    """A module a reader cannot hold in mind at once hides its structure; split it by cohesion."""
    long = {
        str(path.relative_to(SOURCE)): count
        for path in SOURCE.rglob("*.py")
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules (lines): {long}"

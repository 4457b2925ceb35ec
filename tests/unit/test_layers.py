"""The layers, checked over the whole tree (every import, including those under
``TYPE_CHECKING`` and inside functions):

- ``devices`` is pure: the standard library and third-party packages only;
- ``gateway.mqtt`` is transport: nothing else of the project's;
- ``firmware_stubs`` are the independent other side of every protocol: neither ``gateway``
  nor ``devices``, so a codec bug cannot hide by being on both sides of a test;
- no import cycles between the gateway's modules (a cycle is a hidden interface: name it as
  a ``Protocol`` instead).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("gateway", "devices", "firmware_stubs", "tests", "bench", "dashboards")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every project module that ``path`` imports, as dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PROJECT}


def graph(package: str) -> dict[str, set[str]]:
    files = sorted((ROOT / package).rglob("*.py"))
    modules = {module_name(f): f for f in files}
    assert modules, package
    return {name: imports(path) for name, path in modules.items()}


ALL = {**graph("gateway"), **graph("devices"), **graph("firmware_stubs")}


def known(name: str) -> str | None:
    """The project module an imported name refers to (``a.b.Thing`` -> ``a.b``)."""
    while name and name not in ALL:
        name = name.rpartition(".")[0]
    return name or None


def edges(module: str) -> set[str]:
    """The modules ``module`` imports; its own enclosing packages aside (``from pkg import
    sub`` inside ``pkg`` loads ``pkg/__init__`` first, as any import of ``pkg.sub`` does)."""
    return {
        m
        for name in ALL[module]
        if (m := known(name)) is not None and m != module and not module.startswith(m + ".")
    }


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("devices", ("devices",)),
        ("gateway.mqtt", ("gateway.mqtt",)),
        ("firmware_stubs", ("firmware_stubs",)),
    ],
)
def test_a_layer_imports_only_what_it_may(package: str, allowed: tuple[str, ...]) -> None:
    bad = [
        f"{module} imports {name}"
        for module in ALL
        if module == package or module.startswith(package + ".")
        for name in ALL[module]
        if not any(name == a or name.startswith(a + ".") for a in allowed)
    ]
    assert bad == []


def test_no_import_cycles_in_the_gateway() -> None:
    modules = sorted(m for m in ALL if m.startswith("gateway."))
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(edges(m)):
            if not n.startswith("gateway"):
                continue
            if state.get(n) == 1:
                cycles.append([*path[path.index(n) :], n])
            elif n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in modules:
        if m not in state:
            visit(m)
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_an_import_under_type_checking(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gateway.rules import x\n"
    )
    assert imports(src) == {"gateway.rules", "gateway.rules.x"}

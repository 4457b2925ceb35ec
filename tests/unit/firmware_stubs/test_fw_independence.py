"""The stubs are the independent other side of every protocol: they import nothing from the
gateway or the device profiles, so a codec bug cannot hide by being on both sides of a test."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = ("gateway", "devices")


def test_no_imports_from_gateway_or_devices() -> None:
    root = Path(__file__).resolve().parents[3] / "firmware_stubs"
    files = sorted(root.glob("*.py"))
    assert len(files) >= 9
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"

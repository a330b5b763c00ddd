"""Services never import each other; shared never imports services (checked on the AST)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "screening", "casework")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.py") if "migrations" not in p.parts or p.name == "env.py"]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service: str) -> None:
    others = {f"services.{s}" for s in SERVICES if s != service}
    offenders = {
        f"{path.relative_to(ROOT)} → {name}"
        for path in _files(ROOT / "services" / service)
        for name in _imports(path)
        if any(name == o or name.startswith(o + ".") for o in others)
    }
    assert offenders == set()


def test_shared_imports_no_service() -> None:
    offenders = {
        f"{path.relative_to(ROOT)} → {name}"
        for path in _files(ROOT / "shared")
        for name in _imports(path)
        if name == "services" or name.startswith("services.") or name.startswith("deploy")
    }
    assert offenders == set()

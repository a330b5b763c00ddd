"""The department registry and its alert-type catalogue, loaded from versioned data."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_DATA = Path(__file__).with_name("data") / "departments.json"

FieldRule = Literal["required", "optional"]
TYPED_FIELDS = ("amount", "count", "grade")


@dataclass(frozen=True)
class AlertType:
    """One kind of alert a department may push, with the typed fields it carries."""

    code: str
    department: str
    name_zh: str
    fields: dict[str, FieldRule]
    negative_list: bool = False


@dataclass(frozen=True)
class Department:
    """A department that pushes data-comparison alerts."""

    code: str
    name_zh: str
    aliases: tuple[str, ...]
    alert_types: tuple[AlertType, ...]


@dataclass(frozen=True)
class Catalogue:
    """All departments and alert types, with lookups by code and by local alias."""

    version: str
    departments: tuple[Department, ...]

    def department(self, code_or_alias: str) -> Department | None:
        """Return a department by canonical code, Chinese name or local alias."""
        key = code_or_alias.strip()
        for dep in self.departments:
            if key == dep.code or key == dep.name_zh or key in dep.aliases:
                return dep
        return None

    def alert_type(self, code: str) -> AlertType | None:
        """Return an alert type by its code."""
        for dep in self.departments:
            for at in dep.alert_types:
                if at.code == code:
                    return at
        return None


def load_catalogue(path: Path = _DATA) -> Catalogue:
    """Parse the catalogue file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    deps = []
    for d in data["departments"]:
        types = tuple(
            AlertType(
                code=t["code"],
                department=d["code"],
                name_zh=t["name_zh"],
                fields=dict(t.get("fields", {})),
                negative_list=bool(t.get("negative_list", False)),
            )
            for t in d["alert_types"]
        )
        deps.append(Department(d["code"], d["name_zh"], tuple(d.get("aliases", ())), types))
    return Catalogue(version=str(data["version"]), departments=tuple(deps))


@functools.cache
def default_catalogue() -> Catalogue:
    """Return the packaged catalogue, parsed once."""
    return load_catalogue()

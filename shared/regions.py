"""Administrative divisions (province → village), loaded from a versioned CSV, and scope rules."""

from __future__ import annotations

import csv
import functools
import importlib.resources
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

Level = Literal["province", "city", "county", "township", "village"]
Status = Literal["official", "historical", "provisional"]

LEVELS: Final[tuple[Level, ...]] = get_args(Level)
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
_LEVEL_BY_NAME: Final[dict[str, Level]] = {level: level for level in LEVELS}
_STATUS_BY_NAME: Final[dict[str, Status]] = {status: status for status in STATUSES}

# A full statistical code is 12 digits in five segments: province 2, city 2, county 2,
# township 3, village 3. A segment of zeros means "not below this level".
_SEGMENT_ENDS: Final = (2, 4, 6, 9, 12)
# The form a row's code takes in the CSV: GB/T 2260 (6 digits) down to county, 12 below.
_CSV_CODE_LENGTH: Final[dict[Level, int]] = {
    "province": 6,
    "city": 6,
    "county": 6,
    "township": 12,
    "village": 12,
}
_PARENT_LEVEL: Final[dict[Level, Level | None]] = {
    "province": None,
    "city": "province",
    "county": "city",
    "township": "county",
    "village": "township",
}
_DIGITS: Final = re.compile(r"[0-9]+")
_VERSION_LINE: Final = re.compile(r"#\s*version:\s*(\S+)\s*")
_COLUMNS: Final = ["code", "name", "level", "parent_code", "status", "source"]
# Stripped when names are compared, so that 表七/1's "（会立）" and "岭底" find 会立乡 and 岭底乡.
_NAME_NOISE: Final = re.compile(r"[\s（）()]")
_NAME_SUFFIXES: Final = ("街道", "社区", "乡", "镇", "村")


class RegionDataError(ValueError):
    """The region file breaks one of the table's rules."""


@dataclass(frozen=True)
class Region:
    """One administrative division as written in the region file."""

    code: str
    name: str
    level: Level
    parent_code: str | None
    status: Status
    source: str

    @property
    def full_code(self) -> str:
        """Return the 12-digit statistical form of the code."""
        return self.code.ljust(12, "0")

    @property
    def scope_code(self) -> str:
        """Return the code as it appears in a caseworker's token (village 12, township 9, else 6)."""
        if self.level == "township":
            return self.code[:9]
        return self.code


def full_code(code: str) -> str | None:
    """Return the 12-digit form of a 2-, 4-, 6-, 9- or 12-digit code, or None if malformed."""
    # Malformed: not ASCII digits, another length, all zeros, or a non-zero segment below a zero
    # one (140022). Refusing these keeps in_scope from turning a typo into a wide prefix.
    if not isinstance(code, str) or len(code) not in _SEGMENT_ENDS or not _DIGITS.fullmatch(code):
        return None
    padded = code.ljust(12, "0")
    depth = _depth(padded)
    if depth == 0:
        return None
    # Every segment up to the deepest non-zero one must itself be non-zero.
    start = 0
    for end in _SEGMENT_ENDS[:depth]:
        if set(padded[start:end]) == {"0"}:
            return None
        start = end
    return padded


def _depth(padded: str) -> int:
    """Count the segments down to the last non-zero one (1 = province … 5 = village)."""
    depth = 0
    start = 0
    for index, end in enumerate(_SEGMENT_ENDS, start=1):
        if set(padded[start:end]) != {"0"}:
            depth = index
        start = end
    return depth


def in_scope(scope_code: str, code: str) -> bool:
    """Tell whether a principal whose region is scope_code may see the region code."""
    # A province (2 or 6 digits) sees everything in it, a county (6) its townships and villages,
    # a township (9, or 12 ending in 000) its villages, a village (12) only itself. Anything
    # malformed on either side is out of scope, so access fails closed.
    scope = full_code(scope_code)
    target = full_code(code)
    if scope is None or target is None:
        return False
    prefix = scope[: _SEGMENT_ENDS[_depth(scope) - 1]]
    return target.startswith(prefix)


def canonical_name(name: str) -> str:
    """Return a name without brackets, spaces and a trailing 乡/镇/街道/村/社区, for matching."""
    bare = _NAME_NOISE.sub("", name)
    for suffix in _NAME_SUFFIXES:
        if bare.endswith(suffix) and len(bare) > len(suffix):
            return bare[: -len(suffix)]
    return bare


class RegionTable:
    """All regions of one version of the region file, indexed by their 12-digit code."""

    def __init__(self, regions: list[Region], version: str) -> None:
        self.version = version
        self._by_full: dict[str, Region] = {}
        self._children: dict[str, list[Region]] = {}
        for region in regions:
            key = region.full_code
            if key in self._by_full:
                raise RegionDataError(f"duplicate region code {region.code}")
            self._by_full[key] = region
        for region in regions:
            _check_parent(region, self._by_full)
            if region.parent_code is not None:
                self._children.setdefault(region.parent_code, []).append(region)
        for siblings in self._children.values():
            siblings.sort(key=lambda r: r.code)

    @classmethod
    def load(cls, path: Path | None = None) -> RegionTable:
        """Read a region file; by default the one packaged with this module."""
        if path is None:
            resource = importlib.resources.files("shared") / "data" / "regions.csv"
            text = resource.read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        return cls.parse(text)

    @classmethod
    def parse(cls, text: str) -> RegionTable:
        """Build a table from the text of a region file."""
        lines = text.lstrip("\ufeff").splitlines()
        version: str | None = None
        body_start = 0
        for index, line in enumerate(lines):
            if not line.startswith("#"):
                body_start = index
                break
            match = _VERSION_LINE.fullmatch(line)
            if match and version is None:
                version = match.group(1)
        else:
            body_start = len(lines)
        if version is None:
            raise RegionDataError("the region file has no '# version: …' comment line")
        reader = csv.DictReader(io.StringIO("\n".join(lines[body_start:])))
        if reader.fieldnames != _COLUMNS:
            raise RegionDataError(f"expected columns {_COLUMNS}, found {reader.fieldnames}")
        regions = [_region_from_row(row, reader.line_num + body_start) for row in reader]
        return cls(regions, version)

    def __len__(self) -> int:
        return len(self._by_full)

    def __iter__(self) -> Iterator[Region]:
        return iter(sorted(self._by_full.values(), key=lambda r: r.full_code))

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.get(code) is not None

    def get(self, code: str) -> Region | None:
        """Return the region for a code in any accepted form (2/4/6/9/12 digits), or None."""
        key = full_code(code)
        return None if key is None else self._by_full.get(key)

    def is_village(self, code: str) -> bool:
        """Tell whether the code names a known village (村) or community (社区)."""
        region = self.get(code)
        return region is not None and region.level == "village"

    def parent_chain(self, code: str) -> list[Region]:
        """Return the region and its ancestors, nearest first (village … province); [] if unknown."""
        chain: list[Region] = []
        region = self.get(code)
        while region is not None:
            chain.append(region)
            region = None if region.parent_code is None else self.get(region.parent_code)
        return chain

    def township_of(self, code: str) -> Region | None:
        """Return the township of a village (or the township itself); None above township level."""
        return self._ancestor_at(code, "township")

    def county_of(self, code: str) -> Region | None:
        """Return the county of a county, township or village; None above county level."""
        return self._ancestor_at(code, "county")

    def children(self, code: str) -> list[Region]:
        """Return the direct children of a region, ordered by code."""
        region = self.get(code)
        return [] if region is None else list(self._children.get(region.code, []))

    def villages_of(self, code: str) -> list[Region]:
        """Return every village inside a region (a village yields itself), ordered by code."""
        if self.get(code) is None:
            return []
        return [r for r in self if r.level == "village" and in_scope(code, r.code)]

    def by_level(self, level: Level) -> list[Region]:
        """Return all regions of one level, ordered by code."""
        return [r for r in self if r.level == level]

    def find(
        self, name: str, *, within: str | None = None, level: Level | None = None
    ) -> list[Region]:
        """Find regions by name, ignoring brackets and the 乡/镇/村 suffix; optionally inside a region."""
        wanted = canonical_name(name)
        return [
            r
            for r in self
            if canonical_name(r.name) == wanted
            and (level is None or r.level == level)
            and (within is None or in_scope(within, r.code))
        ]

    def _ancestor_at(self, code: str, level: Level) -> Region | None:
        """Return the region itself or its ancestor at the given level."""
        for region in self.parent_chain(code):
            if region.level == level:
                return region
        return None


@functools.cache
def default_region_table() -> RegionTable:
    """Return the packaged region table, loaded once per process."""
    return RegionTable.load()


def _region_from_row(row: dict[str, str | None], line: int) -> Region:
    """Check one CSV row and turn it into a Region."""
    values = {key: (row.get(key) or "").strip() for key in _COLUMNS}
    code, name, level, parent, status = (
        values["code"],
        values["name"],
        values["level"],
        values["parent_code"],
        values["status"],
    )
    where = f"line {line} ({code or 'no code'})"
    if level not in _LEVEL_BY_NAME:
        raise RegionDataError(f"{where}: level must be one of {LEVELS}")
    if status not in _STATUS_BY_NAME:
        raise RegionDataError(f"{where}: status must be one of {STATUSES}")
    if not name:
        raise RegionDataError(f"{where}: name is empty")
    if not values["source"]:
        raise RegionDataError(f"{where}: source is empty; say where the code comes from")
    typed_level = _LEVEL_BY_NAME[level]
    typed_status = _STATUS_BY_NAME[status]
    if len(code) != _CSV_CODE_LENGTH[typed_level]:
        raise RegionDataError(
            f"{where}: a {level} code has {_CSV_CODE_LENGTH[typed_level]} digits in this file"
        )
    padded = full_code(code)
    if padded is None or LEVELS[_depth(padded) - 1] != level:
        raise RegionDataError(f"{where}: code is malformed or does not match level {level}")
    return Region(
        code=code,
        name=name,
        level=typed_level,
        parent_code=parent or None,
        status=typed_status,
        source=values["source"],
    )


def _check_parent(region: Region, by_full: dict[str, Region]) -> None:
    """Check that a region's parent exists, is one level up and contains its code."""
    expected = _PARENT_LEVEL[region.level]
    if expected is None:
        if region.parent_code is not None:
            raise RegionDataError(f"{region.code}: a province has no parent")
        return
    if region.parent_code is None:
        raise RegionDataError(f"{region.code}: a {region.level} needs a parent_code")
    parent_key = full_code(region.parent_code)
    parent = None if parent_key is None else by_full.get(parent_key)
    if parent is None or parent.code != region.parent_code:
        raise RegionDataError(f"{region.code}: parent {region.parent_code} is not in the table")
    if parent.level != expected:
        raise RegionDataError(f"{region.code}: parent {parent.code} is a {parent.level}")
    if not in_scope(parent.code, region.code):
        raise RegionDataError(f"{region.code}: code does not start with its parent's prefix")


def scope_prefix(scope_code: str) -> str | None:
    """Return the code prefix every region inside scope_code starts with (None if malformed).

    Used to select stored 12-digit (or shorter) codes with a LIKE 'prefix%' in SQL, the
    same rule as in_scope: 141122 → "141122", 141122100 → "141122100".
    """
    padded = full_code(scope_code)
    if padded is None:
        return None
    return padded[: _SEGMENT_ENDS[_depth(padded) - 1]]

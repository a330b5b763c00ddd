"""表七/1 from the registry: households and persons per township by category, with villages.

The printed table (domain.md §7.1, 目前交城县脱贫户分布情况表) has, per township, 脱贫户总数
and 已脱贫人口数 (户数, 人数), 脱贫不稳定户 and 边缘户 (户数, 人数), and 其中脱贫村数, with a
合计 row.  This module computes the same figures from household labels and member counts,
adds a 突发严重困难户 column (the third monitoring category, which the printed table lacks),
and renders the result as rows, CSV and XLSX.  It does no I/O: the caller reads the
registry and passes plain facts in.

Counting rules (docs/reports.md):

* A household counts under every label it carries: 脱贫户 ``tuopin``; 脱贫不稳定户
  ``unstable_escaped``; 边缘户 ``marginal``; 突发严重困难户 ``sudden_difficulty``.  An
  unstable household is also a 脱贫户, as in the printed table.
* Persons are the household's current members (not removed by a later roster).
* 已脱贫人口数 repeats 脱贫户总数: the registry records poverty status per household, not
  per person, and the printed table repeats the columns in every row as well.
* 其中脱贫村数 counts villages labelled ``tuopin_village`` (a poor village that exited).
* A household whose code names no township (a provisional household known only by the
  county of its head's resident ID) is counted in a row of its own, so the total still
  covers every household in scope.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Final

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from shared.regions import RegionTable, full_code, in_scope

ESCAPED: Final = "tuopin"
UNSTABLE: Final = "unstable_escaped"
MARGINAL: Final = "marginal"
SUDDEN: Final = "sudden_difficulty"
ESCAPED_VILLAGE: Final = "tuopin_village"
UNPLACED_NAME: Final = "未落实到乡镇"
TOTAL_NAME: Final = "合计"


@dataclass(frozen=True)
class HouseholdFact:
    """What the table needs of one household."""

    region_code: str
    labels: frozenset[str]
    persons: int


@dataclass(frozen=True)
class Column:
    """One numeric column: its key and the three header levels of the printed table."""

    key: str
    group: str
    title: str
    unit: str


COLUMNS: Final[tuple[Column, ...]] = (
    Column("escaped_households", "脱贫户分类", "脱贫户总数", "户数"),
    Column("escaped_persons", "脱贫户分类", "脱贫户总数", "人数"),
    Column("escaped_population_households", "脱贫户分类", "已脱贫人口数", "户数"),
    Column("escaped_population_persons", "脱贫户分类", "已脱贫人口数", "人数"),
    Column("unstable_households", "防返贫监测分类", "脱贫不稳定户", "户数"),
    Column("unstable_persons", "防返贫监测分类", "脱贫不稳定户", "人数"),
    Column("marginal_households", "防返贫监测分类", "边缘户", "户数"),
    Column("marginal_persons", "防返贫监测分类", "边缘户", "人数"),
    Column("sudden_households", "防返贫监测分类", "突发严重困难户", "户数"),
    Column("sudden_persons", "防返贫监测分类", "突发严重困难户", "人数"),
    Column("escaped_villages", "其中脱贫村数", "其中脱贫村数", ""),
)


@dataclass
class TownshipRow:
    """One row of the table (a township, the unplaced households, or the total)."""

    township_code: str | None
    name: str
    historical: bool = False
    escaped_households: int = 0
    escaped_persons: int = 0
    escaped_population_households: int = 0
    escaped_population_persons: int = 0
    unstable_households: int = 0
    unstable_persons: int = 0
    marginal_households: int = 0
    marginal_persons: int = 0
    sudden_households: int = 0
    sudden_persons: int = 0
    escaped_villages: int = 0

    def add(self, household: HouseholdFact) -> None:
        """Count one household under each of its labels."""
        if ESCAPED in household.labels:
            self.escaped_households += 1
            self.escaped_persons += household.persons
            self.escaped_population_households += 1
            self.escaped_population_persons += household.persons
        if UNSTABLE in household.labels:
            self.unstable_households += 1
            self.unstable_persons += household.persons
        if MARGINAL in household.labels:
            self.marginal_households += 1
            self.marginal_persons += household.persons
        if SUDDEN in household.labels:
            self.sudden_households += 1
            self.sudden_persons += household.persons

    def values(self) -> list[int]:
        """Return the numeric cells in column order."""
        return [int(getattr(self, c.key)) for c in COLUMNS]


@dataclass
class TownshipTable:
    """The whole table: title, scope, rows in township-code order, and the total."""

    title: str
    scope: str
    rows: list[TownshipRow]
    total: TownshipRow
    generated_at: datetime
    region_version: str
    notes: list[str] = field(default_factory=list)


def _township_code(region_code: str) -> str | None:
    """Return the 12-digit code of the township a stored region code lies in, if any."""
    padded = full_code(region_code)
    if padded is None or padded[6:9] == "000":
        return None
    return padded[:9] + "000"


def _scope_title(regions: RegionTable, scope: str) -> str:
    region = regions.get(scope)
    name = region.name if region is not None else scope
    return f"{name}脱贫户分布情况表"


def build_table(
    *,
    households: Iterable[HouseholdFact],
    escaped_villages: Iterable[str],
    regions: RegionTable,
    scope: str,
    generated_at: datetime,
) -> TownshipTable:
    """Count households, persons and villages per township inside scope."""
    rows: dict[str, TownshipRow] = {}
    # Every township in scope gets a row, even an empty one: a zero is an answer, and the
    # printed table lists 天宁镇's zero villages too.
    for township in regions.by_level("township"):
        if in_scope(scope, township.code) or in_scope(township.code, scope):
            rows[township.full_code] = TownshipRow(
                township_code=township.code,
                name=township.name,
                historical=township.status == "historical",
            )
    unplaced = TownshipRow(township_code=None, name=UNPLACED_NAME)
    for household in households:
        code = _township_code(household.region_code)
        if code is None:
            unplaced.add(household)
            continue
        row = rows.get(code)
        if row is None:
            # A township the region table does not (yet) know still gets its own row.
            row = rows[code] = TownshipRow(township_code=code, name=f"乡镇 {code[:9]}")
        row.add(household)
    for village in escaped_villages:
        code = _township_code(village)
        if code is not None:
            row = rows.get(code)
            if row is None:
                row = rows[code] = TownshipRow(township_code=code, name=f"乡镇 {code[:9]}")
            row.escaped_villages += 1
    ordered = [rows[k] for k in sorted(rows)]
    if any(unplaced.values()):
        ordered.append(unplaced)
    total = TownshipRow(township_code=None, name=TOTAL_NAME)
    numeric = [c.key for c in COLUMNS]
    for row in ordered:
        for key in numeric:
            setattr(total, key, getattr(total, key) + getattr(row, key))
    return TownshipTable(
        title=_scope_title(regions, scope),
        scope=scope,
        rows=ordered,
        total=total,
        generated_at=generated_at,
        region_version=regions.version,
        notes=[
            "已脱贫人口数按户记录的脱贫身份统计，与脱贫户总数相同",
            "突发严重困难户为本系统增列，原表无此列",
        ],
    )


def header_labels() -> list[str]:
    """Return one flat header per column, for CSV: 乡镇, 脱贫户总数(户数), …."""
    flat = ["乡镇"]
    for c in COLUMNS:
        flat.append(c.title if not c.unit else f"{c.title}({c.unit})")
    return flat


def to_csv(table: TownshipTable) -> str:
    """Render the table as CSV text (the caller adds a BOM for spreadsheet programs)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header_labels())
    for row in [*table.rows, table.total]:
        writer.writerow([row.name, *row.values()])
    return out.getvalue()


_THIN = Side(style="thin")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_CENTRE = Alignment(horizontal="center", vertical="center", wrap_text=True)


def to_xlsx(table: TownshipTable) -> bytes:
    """Render the table as an XLSX workbook with the printed table's three header rows."""
    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)
    sheet.title = "表七-1"
    width = 1 + len(COLUMNS)
    sheet.cell(row=1, column=1, value=table.title).font = Font(bold=True, size=14)
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    sheet.cell(row=1, column=1).alignment = _CENTRE
    # Rows 2-4 are the header: group, sub-column, 户数/人数 (merged where the print merges).
    sheet.cell(row=2, column=1, value="乡镇")
    sheet.merge_cells(start_row=2, start_column=1, end_row=4, end_column=1)
    _write_header(sheet)
    for row_no in range(2, 5):
        for col_no in range(1, width + 1):
            cell = sheet.cell(row=row_no, column=col_no)
            cell.alignment = _CENTRE
            cell.font = Font(bold=True)
            cell.border = _BOX
    row_no = 5
    for row in [*table.rows, table.total]:
        sheet.cell(row=row_no, column=1, value=row.name).border = _BOX
        for col_no, value in enumerate(row.values(), start=2):
            cell = sheet.cell(row=row_no, column=col_no, value=value)
            cell.border = _BOX
        if row is table.total:
            for col_no in range(1, width + 1):
                sheet.cell(row=row_no, column=col_no).font = Font(bold=True)
        row_no += 1
    note = (
        f"生成时间 {table.generated_at:%Y-%m-%d %H:%M} UTC；区划版本 {table.region_version}；"
        + "；".join(table.notes)
    )
    sheet.cell(row=row_no + 1, column=1, value=note)
    sheet.column_dimensions["A"].width = 14
    for col_no in range(2, width + 1):
        sheet.column_dimensions[get_column_letter(col_no)].width = 10
    sheet.freeze_panes = "B5"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _runs(labels: Sequence[str]) -> list[tuple[int, int]]:
    """Return (first, last) index pairs of runs of equal neighbouring labels."""
    runs: list[tuple[int, int]] = []
    start = 0
    for index in range(1, len(labels) + 1):
        if index == len(labels) or labels[index] != labels[start]:
            runs.append((start, index - 1))
            start = index
    return runs


def _write_header(sheet: Worksheet) -> None:
    """Write header rows 2-4 as printed: group, sub-column, then 户数/人数."""
    for first, last in _runs([c.group for c in COLUMNS]):
        col_a, col_b = first + 2, last + 2
        sheet.cell(row=2, column=col_a, value=COLUMNS[first].group)
        if not COLUMNS[first].unit:
            # A column without 户数/人数 (其中脱贫村数) spans all three header rows.
            sheet.merge_cells(start_row=2, start_column=col_a, end_row=4, end_column=col_b)
            continue
        if col_b > col_a:
            sheet.merge_cells(start_row=2, start_column=col_a, end_row=2, end_column=col_b)
        for t_first, t_last in _runs([c.title for c in COLUMNS[first : last + 1]]):
            t_a, t_b = col_a + t_first, col_a + t_last
            sheet.cell(row=3, column=t_a, value=COLUMNS[first + t_first].title)
            if t_b > t_a:
                sheet.merge_cells(start_row=3, start_column=t_a, end_row=3, end_column=t_b)
        for offset in range(first, last + 1):
            sheet.cell(row=4, column=offset + 2, value=COLUMNS[offset].unit)


def column_keys() -> list[str]:
    """Return the numeric column keys in order."""
    return [c.key for c in COLUMNS]


def row_fields() -> list[str]:
    """Return every field of a row (for schemas and tests)."""
    return [f.name for f in fields(TownshipRow)]

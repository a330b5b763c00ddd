"""Bulk push files (NDJSON, CSV, XLSX): checked on upload, then read row by row in constant memory.

No database and no event loop here: the API runs these functions in a worker thread.

Row numbers are what a person sees when they open the file: the line number for NDJSON, the
record number counting the header as row 1 for CSV (the first data row is 2), and the sheet
row for XLSX. Only UTF-8 text is accepted (a leading byte-order mark is fine); spreadsheets
saved as GBK are refused with a message saying how to re-save them.

Memory: NDJSON and CSV are read a line at a time. XLSX rows stream too (openpyxl read-only
mode), but a workbook's shared-strings table is loaded whole, so a million-row sheet of
distinct text cells costs memory in proportion; departments with monthly pushes that large
should send NDJSON or CSV.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final, Literal

import openpyxl

from services.intake.schemas import AlertCreate
from shared.problems import FieldError

BulkFormat = Literal["ndjson", "csv", "xlsx"]

XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES: Final[dict[str, BulkFormat]] = {
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "text/csv": "csv",
    XLSX_MEDIA_TYPE: "xlsx",
}
TEXT_FORMATS: Final = frozenset({"ndjson", "csv"})

# A line of NDJSON is one alert; anything this long is not one, and reading it whole would
# break the constant-memory promise.
MAX_LINE_BYTES: Final = 64 * 1024
COLUMNS: Final = tuple(AlertCreate.model_fields)
REQUIRED_COLUMNS: Final = ("alert_id", "alert_type", "subject_id_number", "occurred_on")
# Columns holding text that a spreadsheet may have turned into numbers.
_TEXT_COLUMNS: Final = frozenset({"alert_id", "alert_type", "village_code"})


class BulkFileError(Exception):
    """The file as a whole cannot be read; carries every problem found, in both languages."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.code}" for e in errors))
        self.errors = errors


def _file_error(code: str, zh: str, en: str, where: str = "body") -> BulkFileError:
    return BulkFileError([FieldError(where, code, zh, en)])


def format_for(content_type: str | None) -> BulkFormat | None:
    """Return the bulk format a Content-Type names, or None if it is not one we read.

    A charset parameter other than UTF-8 also yields None: we would misread the file.
    """
    if not content_type:
        return None
    media, _, params = content_type.partition(";")
    fmt = MEDIA_TYPES.get(media.strip().lower())
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return None
    return fmt


def encoding_error() -> BulkFileError:
    """Return the problem for a text file that is not UTF-8."""
    return _file_error(
        "encoding.not_utf8",
        "文件不是 UTF-8 编码；请在 Excel 中另存为“CSV UTF-8（逗号分隔）”或以 UTF-8 导出",
        "the file is not UTF-8; save it as 'CSV UTF-8' or export it as UTF-8",
    )


@dataclass
class RawRow:
    """One data row as read: its number, its fields, and problems found while reading it."""

    number: int
    data: dict[str, Any]
    errors: list[FieldError] = field(default_factory=list)


def inspect(path: Path, fmt: BulkFormat, *, max_rows: int) -> int | None:
    """Check a whole uploaded file's structure; return its row count (None if unknown)."""
    if fmt == "xlsx":
        total = _inspect_xlsx(path)
    else:
        total = _count_ndjson(path) if fmt == "ndjson" else _count_csv(path)
        if total == 0:
            raise _file_error("bulk.empty", "文件中没有数据行", "the file has no data rows")
    if total is not None and total > max_rows:
        raise _too_many(max_rows)
    return total


def _too_many(max_rows: int) -> BulkFileError:
    return _file_error(
        "bulk.too_many_rows",
        f"数据行数超过上限 {max_rows} 行，请拆分为多个文件",
        f"more than {max_rows} rows; split the file",
    )


def _count_ndjson(path: Path) -> int:
    """Count non-blank lines and prove the whole file is UTF-8, in fixed-size blocks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    rows = 0
    pending = False  # the line still being read has text on it
    with path.open("rb") as fh:
        try:
            while block := fh.read(1 << 20):
                *complete, tail = decoder.decode(block).split("\n")
                for line in complete:
                    rows += pending or _has_text(line)
                    pending = False
                pending = pending or _has_text(tail)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise encoding_error() from None
    return rows + pending


def _has_text(line: str) -> bool:
    return bool(line.lstrip("\ufeff").strip())


def _count_csv(path: Path) -> int:
    """Parse the whole CSV once: header, quoting, encoding; return its non-blank data rows."""
    with open_rows(path, "csv") as rows:
        return sum(1 for _ in rows)


@contextlib.contextmanager
def open_rows(path: Path, fmt: BulkFormat) -> Iterator[Iterator[RawRow]]:
    """Yield an iterator over a file's data rows; the file is closed on exit."""
    if fmt == "ndjson":
        with path.open("rb") as fh:
            yield _ndjson_rows(fh)
    elif fmt == "csv":
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            yield _csv_rows(fh)
    else:
        with path.open("rb") as fh:
            workbook = _open_workbook(fh)
            try:
                yield _xlsx_rows(workbook)
            finally:
                workbook.close()


def _ndjson_rows(fh: IO[bytes]) -> Iterator[RawRow]:
    number = 0
    while True:
        line = fh.readline(MAX_LINE_BYTES)
        if not line:
            return
        number += 1
        if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
            # Skip the rest of the over-long line in bounded reads.
            while True:
                rest = fh.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            yield RawRow(
                number,
                {},
                [
                    FieldError(
                        "body",
                        "row.too_long",
                        f"该行超过 {MAX_LINE_BYTES} 字节",
                        f"the line is longer than {MAX_LINE_BYTES} bytes",
                    )
                ],
            )
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise encoding_error() from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            # RecursionError: a line nested thousands of levels deep is as unreadable as bad JSON.
            yield RawRow(
                number,
                {},
                [
                    FieldError(
                        "body", "row.json_invalid", "该行不是合法的 JSON", "the line is not JSON"
                    )
                ],
            )
            continue
        if not isinstance(data, dict):
            yield RawRow(
                number,
                {},
                [
                    FieldError(
                        "body", "row.not_object", "该行应为 JSON 对象", "the line is not an object"
                    )
                ],
            )
            continue
        yield RawRow(number, data)


def _header(cells: list[Any]) -> list[str]:
    """Check a header row; return its column names or raise with every problem found."""
    names = [str(c).strip().lower() if c is not None else "" for c in cells]
    while names and not names[-1]:
        names.pop()  # spreadsheets often carry empty trailing header cells
    problems: list[FieldError] = []
    for name in names:
        if name not in COLUMNS:
            problems.append(
                FieldError(
                    f"header.{name or '(empty)'}",
                    "header.unknown_column",
                    f"未知的列名；可用列：{', '.join(COLUMNS)}",
                    f"unknown column; allowed: {', '.join(COLUMNS)}",
                )
            )
    for name in sorted({n for n in names if n and names.count(n) > 1}):
        problems.append(
            FieldError(f"header.{name}", "header.duplicate_column", "列名重复", "repeated column")
        )
    for name in REQUIRED_COLUMNS:
        if name not in names:
            problems.append(
                FieldError(
                    f"header.{name}", "header.missing_column", "缺少必需的列", "required column"
                )
            )
    if problems:
        raise BulkFileError(problems)
    return names


def _csv_rows(fh: IO[str]) -> Iterator[RawRow]:
    reader = csv.reader(fh, strict=True)
    try:
        try:
            first = next(reader)
        except StopIteration:
            raise _file_error(
                "csv.no_header", "CSV 文件缺少表头行", "the CSV has no header row"
            ) from None
        names = _header(first)
        id_at = names.index("alert_id")
        for number, record in enumerate(reader, start=2):
            if not any(cell.strip() for cell in record):
                continue
            if len(record) > len(names) and any(c.strip() for c in record[len(names) :]):
                yield RawRow(
                    number,
                    {"alert_id": record[id_at]} if id_at < len(record) else {},
                    [
                        FieldError(
                            "row",
                            "row.columns",
                            f"该行有 {len(record)} 列，表头有 {len(names)} 列",
                            f"the row has {len(record)} cells, the header {len(names)}",
                        )
                    ],
                )
                continue
            yield _cells_to_row(number, names, list(record))
    except csv.Error as exc:
        raise _file_error(
            "csv.malformed",
            f"CSV 格式错误（第 {reader.line_num} 行附近）：引号或分隔符不匹配",
            f"malformed CSV near line {reader.line_num}: {exc}",
        ) from None
    except UnicodeDecodeError:
        raise encoding_error() from None


def _cells_to_row(number: int, names: list[str], cells: list[Any]) -> RawRow:
    """Turn one row of cells into alert fields; empty cells are absent fields."""
    data: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, value in zip(names, cells, strict=False):
        if not name or value is None or (isinstance(value, str) and not value.strip()):
            continue
        if name == "details":
            parsed = _details(value)
            if parsed is None:
                errors.append(
                    FieldError(
                        "details",
                        "details.json_invalid",
                        '附加信息应为 JSON 对象文本，如 {"医院": "县医院"}',
                        "details must be a JSON object as text",
                    )
                )
                continue
            value = parsed
        elif name == "subject_id_number" and isinstance(value, int | float | Decimal):
            # Excel keeps 15 significant digits: an ID typed as a number has lost its tail.
            errors.append(
                FieldError(
                    name,
                    "resident_id.not_text",
                    "身份证号码单元格须设为文本格式（数字格式会丢失末几位）",
                    "the resident ID cell must be text; a number cell loses the last digits",
                )
            )
            continue
        data[name] = _cell_value(name, value)
    return RawRow(number, data, errors)


def _details(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _cell_value(name: str, value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if name in _TEXT_COLUMNS and isinstance(value, int | float) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date() if value.time() == time(0) else value
    if isinstance(value, date):
        return value
    return value


def _open_workbook(fh: IO[bytes]) -> Any:
    # A file object, not the path: openpyxl refuses paths without an .xlsx extension.
    try:
        return openpyxl.load_workbook(fh, read_only=True, data_only=True)
    except Exception:
        # openpyxl raises many types for a damaged file (BadZipFile, KeyError, XML errors).
        raise _open_workbook_error() from None


def _inspect_xlsx(path: Path) -> int | None:
    if not zipfile.is_zipfile(path):
        raise _open_workbook_error()
    with path.open("rb") as fh:
        workbook = _open_workbook(fh)
        try:
            sheet = workbook.worksheets[0]
            first = next(sheet.iter_rows(values_only=True), None)
            if first is None:
                raise _file_error(
                    "xlsx.no_header", "工作表缺少表头行", "the sheet has no header row"
                )
            _header(list(first))
            # The declared dimension is a writer's claim, good for progress but not a count.
            try:
                declared = sheet.max_row
            except Exception:
                declared = None
            return max(0, int(declared) - 1) if declared else None
        except BulkFileError:
            raise
        except Exception:
            raise _open_workbook_error() from None
        finally:
            workbook.close()


def _open_workbook_error() -> BulkFileError:
    return _file_error(
        "xlsx.unreadable",
        "无法读取 XLSX 文件，请确认是 Excel 2007 及以上格式（.xlsx）",
        "not a readable XLSX workbook",
    )


def _xlsx_rows(workbook: Any) -> Iterator[RawRow]:
    sheet = workbook.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    first = next(rows, None)
    if first is None:
        raise _file_error("xlsx.no_header", "工作表缺少表头行", "the sheet has no header row")
    names = _header(list(first))
    for number, cells in enumerate(rows, start=2):
        values = list(cells)
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        if len(values) > len(names) and any(v is not None for v in values[len(names) :]):
            yield RawRow(
                number,
                {},
                [
                    FieldError(
                        "row",
                        "row.columns",
                        "该行在表头之外还有数据",
                        "the row has cells beyond the header",
                    )
                ],
            )
            continue
        yield _cells_to_row(number, names, values)

"""Reading bulk files: media types, whole-file checks and row-by-row reading with row numbers."""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from services.intake import bulk_files
from services.intake.bulk_files import MAX_LINE_BYTES, XLSX_MEDIA_TYPE, BulkFileError

HEADER = "alert_id,alert_type,subject_id_number,occurred_on,details\r\n"


def _write(tmp_path: Path, data: bytes, name: str = "f.upload") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _rows(path: Path, fmt: bulk_files.BulkFormat) -> list[tuple[int, dict[str, Any], list[str]]]:
    with bulk_files.open_rows(path, fmt) as rows:
        return [(r.number, r.data, [e.code for e in r.errors]) for r in rows]


class TestFormatFor:
    @pytest.mark.parametrize(
        ("content_type", "expected"),
        [
            pytest.param("application/x-ndjson", "ndjson", id="ndjson"),
            pytest.param("application/jsonl; charset=utf-8", "ndjson", id="jsonl-utf8"),
            pytest.param("text/csv", "csv", id="csv"),
            pytest.param('TEXT/CSV; charset="UTF-8"', "csv", id="csv-upper-quoted"),
            pytest.param("text/csv; charset=gbk", None, id="csv-gbk"),
            pytest.param(XLSX_MEDIA_TYPE, "xlsx", id="xlsx"),
            pytest.param("application/vnd.ms-excel", None, id="old-excel"),
            pytest.param("application/json", None, id="json"),
            pytest.param("", None, id="empty"),
            pytest.param(None, None, id="none"),
        ],
    )
    def test_names_the_format(self, content_type: str | None, expected: str | None) -> None:
        assert bulk_files.format_for(content_type) == expected


class TestInspect:
    @pytest.mark.parametrize(
        ("fmt", "data", "rows"),
        [
            pytest.param(
                "ndjson", b'{"a":1}\n\n{"a":2}\r\n  \n{"a":3}', 3, id="ndjson-blank-lines"
            ),
            pytest.param("ndjson", b'\xef\xbb\xbf{"a":1}\n', 1, id="ndjson-bom"),
            pytest.param(
                "ndjson", '{"x":"县医院"}\n'.encode() * 70_000, 70_000, id="ndjson-multibyte-blocks"
            ),
            pytest.param(
                "csv",
                (HEADER + 'A,b,c,d,"{""x"":\r\n1}"\r\n,,,,\r\nB,b,c,d,\r\n').encode(),
                2,
                id="csv-quoted-newline-and-blank",
            ),
        ],
    )
    def test_counts_data_rows(self, tmp_path: Path, fmt: Any, data: bytes, rows: int) -> None:
        assert bulk_files.inspect(_write(tmp_path, data), fmt, max_rows=1_000_000) == rows

    def test_an_xlsx_count_comes_from_its_declared_size(self, tmp_path: Path) -> None:
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        assert sheet is not None
        sheet.append(["alert_id", "alert_type", "subject_id_number", "occurred_on"])
        for n in range(5):
            sheet.append([f"A-{n}", "t", "x", "2026-11-01"])
        out = io.BytesIO()
        workbook.save(out)

        assert bulk_files.inspect(_write(tmp_path, out.getvalue()), "xlsx", max_rows=10) == 5

    @pytest.mark.parametrize(
        ("fmt", "data", "code"),
        [
            pytest.param("ndjson", b'{"a":"\xff"}\n', "encoding.not_utf8", id="ndjson-bad-byte"),
            pytest.param(
                "ndjson", b'{"a":"\xe5\x8e"}', "encoding.not_utf8", id="ndjson-cut-character"
            ),
            pytest.param("csv", HEADER.encode("utf-16"), "encoding.not_utf8", id="csv-utf16"),
            pytest.param(
                "csv", (HEADER + 'A,"b"c,x,d,\r\n').encode(), "csv.malformed", id="csv-stray-quote"
            ),
            pytest.param(
                "csv",
                b"alert_id,alert_id,alert_type,subject_id_number,occurred_on\n",
                "header.duplicate_column",
                id="csv-repeated-column",
            ),
            pytest.param("ndjson", b'{"a":1}\n' * 4, "bulk.too_many_rows", id="too-many-rows"),
        ],
    )
    def test_refuses_a_file_as_a_whole(
        self, tmp_path: Path, fmt: Any, data: bytes, code: str
    ) -> None:
        with pytest.raises(BulkFileError) as caught:
            bulk_files.inspect(_write(tmp_path, data), fmt, max_rows=3)

        assert code in [e.code for e in caught.value.errors]
        assert all(e.message_zh and e.message_en for e in caught.value.errors)


class TestOpenRows:
    def test_ndjson_rows_are_numbered_by_line(self, tmp_path: Path) -> None:
        data = b'{"alert_id":"A"}\n\n[1]\n{oops\n' + b'{"x":"' + b"y" * MAX_LINE_BYTES + b'"}\n{}'

        rows = _rows(_write(tmp_path, data), "ndjson")

        assert rows == [
            (1, {"alert_id": "A"}, []),
            (3, {}, ["row.not_object"]),
            (4, {}, ["row.json_invalid"]),
            (5, {}, ["row.too_long"]),
            (6, {}, []),
        ]

    def test_csv_cells_become_fields_and_empty_cells_absent_fields(self, tmp_path: Path) -> None:
        data = (
            "\ufeff"
            + HEADER
            + 'A-1,t,11010519491231002X,2026-11-01,"{""医院"":""县医院""}"\r\n'
            + "A-2,t, ,2026-11-01,not json\r\n"
            + "A-3,t,x,2026-11-01,,surplus\r\n"
            + "A-4,t\r\n"
        ).encode()

        rows = _rows(_write(tmp_path, data), "csv")

        assert rows == [
            (
                2,
                {
                    "alert_id": "A-1",
                    "alert_type": "t",
                    "subject_id_number": "11010519491231002X",
                    "occurred_on": "2026-11-01",
                    "details": {"医院": "县医院"},
                },
                [],
            ),
            (
                3,
                {"alert_id": "A-2", "alert_type": "t", "occurred_on": "2026-11-01"},
                ["details.json_invalid"],
            ),
            (4, {"alert_id": "A-3"}, ["row.columns"]),
            (5, {"alert_id": "A-4", "alert_type": "t"}, []),
        ]

    def test_xlsx_cells_keep_text_and_dates(self, tmp_path: Path) -> None:
        # Spreadsheet cells hold naive date-times; a midnight one is read as a date.
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        assert sheet is not None
        sheet.append(["Alert_ID ", "alert_type", "subject_id_number", "occurred_on", "amount"])
        sheet.append([20261101, "t", "11010519491231002X", datetime(2026, 11, 1), 1.5])  # noqa: DTZ001
        sheet.append(["B", "t", 110105194912310021, date(2026, 11, 2), None])
        sheet.append([None, None, None, None, None])
        sheet.append(["C", "t", "x", datetime(2026, 11, 3, 8, 30), 2])  # noqa: DTZ001
        out = io.BytesIO()
        workbook.save(out)

        rows = _rows(_write(tmp_path, out.getvalue()), "xlsx")

        assert rows == [
            (
                2,
                {
                    "alert_id": "20261101",
                    "alert_type": "t",
                    "subject_id_number": "11010519491231002X",
                    "occurred_on": date(2026, 11, 1),
                    "amount": 1.5,
                },
                [],
            ),
            (
                3,
                {"alert_id": "B", "alert_type": "t", "occurred_on": date(2026, 11, 2)},
                ["resident_id.not_text"],
            ),
            (
                5,
                {
                    "alert_id": "C",
                    "alert_type": "t",
                    "subject_id_number": "x",
                    "occurred_on": datetime(2026, 11, 3, 8, 30),  # noqa: DTZ001
                    "amount": 2,
                },
                [],
            ),
        ]

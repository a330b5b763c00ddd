"""Tests for the roster routes: template, streamed import, rejection report, export."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from services.screening import roster
from tests.services.screening.harness import (
    COUNTY,
    OTHER_VILLAGE,
    VILLAGE,
    Screening,
    household_rows,
    member_row,
    person,
    write_roster,
)

XLSX = {"Content-Type": roster.XLSX_MEDIA_TYPE}
CSV = {"Content-Type": "text/csv"}


def xlsx_bytes(tmp_path: Path, rows: list[dict[str, Any]]) -> bytes:
    """Return a roster as XLSX bytes."""
    return write_roster(tmp_path / "upload.xlsx", rows).read_bytes()


async def upload(
    screening: Screening,
    body: bytes,
    *,
    headers: dict[str, str] = XLSX,
    role: Any = "county_officer",
    query: str = "",
) -> Any:
    """POST a roster as a county officer (or another role)."""
    return await screening.http.post(
        f"/v1/roster:import{query}", content=body, headers={**headers, **screening.auth(role)}
    )


class TestTemplateXlsx:
    async def test_downloads_the_workbook(self, screening: Screening, tmp_path: Path) -> None:
        response = await screening.http.get("/v1/roster/template.xlsx", headers=screening.auth())
        assert response.status_code == 200
        assert response.headers["content-type"] == roster.XLSX_MEDIA_TYPE
        assert "filename*=UTF-8''" in response.headers["content-disposition"]
        path = tmp_path / "t.xlsx"
        path.write_bytes(response.content)
        assert [c.value for c in openpyxl.load_workbook(path)[roster.SHEET_NAME][1]] == list(
            roster.HEADERS
        )

    async def test_needs_a_caseworker(self, screening: Screening) -> None:
        assert (await screening.http.get("/v1/roster/template.xlsx")).status_code == 401


class TestTemplateCsv:
    async def test_downloads_the_header_row(self, screening: Screening) -> None:
        response = await screening.http.get(
            "/v1/roster/template.csv", headers=screening.auth("village_officer", VILLAGE)
        )
        assert response.status_code == 200
        assert response.content.decode("utf-8-sig").strip() == ",".join(roster.HEADERS)


class TestImportRoster:
    async def test_imports_xlsx_and_reports_rejections(
        self, screening: Screening, tmp_path: Path, backend: str
    ) -> None:
        rows = [*household_rows("A", [1, 2]), member_row("B", person(3), relation="配偶")]
        response = await upload(screening, xlsx_bytes(tmp_path, rows), query="?file_name=台账.xlsx")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["format"], body["rows"], body["counts"]["households_created"]) == (
            "xlsx",
            3,
            1,
        )
        assert body["rejected_rows"] == 1
        assert body["rejections"][0]["code"] == "no_head"
        report = await screening.http.get(body["report_url"], headers=screening.auth())
        assert report.status_code == 200
        lines = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
        assert lines[0] == list(roster.REPORT_HEADERS)
        assert lines[1][0:2] == ["4", "B"]
        again = await screening.http.get(
            f"/v1/roster/imports/{body['import_id']}", headers=screening.auth("admin")
        )
        assert again.json()["counts"] == body["counts"]

    async def test_imports_csv_and_a_second_time_changes_nothing(
        self, screening: Screening, backend: str
    ) -> None:
        text = f"户编号,村代码,姓名,身份证号,与户主关系\r\nA,{VILLAGE},王,{person(1)},户主\r\n"
        first = await upload(screening, text.encode("gb18030"), headers=CSV)
        second = await upload(screening, text.encode("gb18030"), headers=CSV)
        assert first.json()["counts"]["households_created"] == 1
        assert second.json()["counts"]["households_unchanged"] == 1

    async def test_a_dry_run_stores_nothing(
        self, screening: Screening, tmp_path: Path, backend: str
    ) -> None:
        response = await upload(
            screening, xlsx_bytes(tmp_path, household_rows("A", [1])), query="?dry_run=true"
        )
        assert (response.json()["dry_run"], response.json()["import_id"]) == (True, None)
        listed = await screening.http.get("/v1/households", headers=screening.auth())
        assert listed.json()["total"] == 0

    async def test_rows_outside_the_officer_region_are_refused(
        self, screening: Screening, tmp_path: Path
    ) -> None:
        body = xlsx_bytes(tmp_path, household_rows("A", [1], village_code=OTHER_VILLAGE))
        response = await screening.http.post(
            "/v1/roster:import",
            content=body,
            headers={**XLSX, **screening.auth("admin", "141122100")},
        )
        assert response.json()["rejections"][0]["code"] == "out_of_region"

    @pytest.mark.parametrize(
        ("role", "headers", "content", "status", "code"),
        [
            pytest.param("village_officer", XLSX, b"x", 403, None, id="village-officer"),
            pytest.param(
                "county_officer", {"Content-Type": "application/json"}, b"{}", 415, None, id="json"
            ),
            pytest.param("county_officer", CSV, b"", 422, "empty", id="empty"),
            pytest.param(
                "county_officer", CSV, "姓名,地址\n".encode(), 422, "no_header", id="no-header"
            ),
            pytest.param(
                "county_officer",
                XLSX,
                b"PK\x03\x04broken",
                422,
                "unreadable_xlsx",
                id="broken-xlsx",
            ),
        ],
    )
    async def test_refuses(
        self,
        screening: Screening,
        role: Any,
        headers: dict[str, str],
        content: bytes,
        status: int,
        code: str | None,
    ) -> None:
        response = await upload(screening, content, headers=headers, role=role)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        if code is not None:
            assert response.json()["errors"][0]["code"] == code

    async def test_refuses_a_file_over_the_limit(self, screening: Screening) -> None:
        screening.app.state.screening.settings.roster_max_bytes = 100
        response = await upload(screening, b"a" * 101 + b"\n", headers=CSV)
        assert response.status_code == 413

    async def test_the_report_is_only_for_the_import_region(
        self, screening: Screening, tmp_path: Path
    ) -> None:
        rows = [member_row("B", person(3), relation="配偶")]
        body = (await upload(screening, xlsx_bytes(tmp_path, rows))).json()
        other = await screening.http.get(
            body["report_url"], headers=screening.auth("county_officer", "141123")
        )
        assert other.status_code == 404


class TestExportXlsx:
    async def test_exports_masked_rows_in_template_columns(
        self, screening: Screening, tmp_path: Path, backend: str
    ) -> None:
        await upload(
            screening,
            xlsx_bytes(
                tmp_path, household_rows("A", [1, 2], wages="1200", income_end_month="2026-10")
            ),
        )
        response = await screening.http.get("/v1/roster/export.xlsx", headers=screening.auth())
        assert response.status_code == 200
        path = tmp_path / "e.xlsx"
        path.write_bytes(response.content)
        sheet = openpyxl.load_workbook(path)[roster.SHEET_NAME]
        values = [[c.value for c in row] for row in sheet.iter_rows()]
        assert values[0] == list(roster.HEADERS)
        ids = [row[roster.HEADERS.index("身份证号")] for row in values[1:]]
        assert ids == [
            person(1)[:6] + "********" + person(1)[14:],
            person(2)[:6] + "********" + person(2)[14:],
        ]

    async def test_an_admin_export_imports_back_unchanged(
        self, screening: Screening, tmp_path: Path, backend: str
    ) -> None:
        await upload(
            screening,
            xlsx_bytes(
                tmp_path, household_rows("A", [1, 2], transfer="3600", income_end_month="2026-10")
            ),
        )
        exported = await screening.http.get(
            "/v1/roster/export.xlsx?unmask=true", headers=screening.auth("admin")
        )
        again = await upload(screening, exported.content)
        assert again.json()["counts"]["households_unchanged"] == 1

    async def test_an_officer_may_not_unmask(self, screening: Screening) -> None:
        response = await screening.http.get(
            "/v1/roster/export.xlsx?unmask=true", headers=screening.auth()
        )
        assert response.status_code == 403


class TestExportCsv:
    async def test_writes_monthly_columns_when_asked(
        self, screening: Screening, tmp_path: Path
    ) -> None:
        await upload(
            screening,
            xlsx_bytes(
                tmp_path, household_rows("A", [1], wages="1200", income_end_month="2026-10")
            ),
        )
        response = await screening.http.get(
            f"/v1/roster/export.csv?layout=monthly&region={COUNTY}", headers=screening.auth()
        )
        header = next(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert "工资性收入(2026-10)" in header
        assert "工资性收入" not in header

    async def test_refuses_a_region_outside_the_caller(self, screening: Screening) -> None:
        response = await screening.http.get(
            f"/v1/roster/export.csv?region={COUNTY}",
            headers=screening.auth("village_officer", VILLAGE),
        )
        assert response.status_code == 403

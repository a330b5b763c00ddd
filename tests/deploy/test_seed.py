"""`fangpin seed jiaocheng`: the registry it loads reproduces the printed 表七/1 cell by cell."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from deploy import seed
from services.screening import app as screening_app
from services.screening.settings import ScreeningSettings
from shared.auth import issue_token
from shared.clock import utc_now
from shared.db import create_engine, make_sessionmaker
from shared.regions import default_region_table
from shared.resident_id import validate_resident_id
from shared.secrets import Secrets
from shared.settings import DatabaseSettings

FIXTURE = Path(__file__).parent / "fixtures" / "table7_1_jiaocheng.csv"
# The printed columns in the order of the fixture, as the report names them.
PRINTED_KEYS = (
    "escaped_households",
    "escaped_persons",
    "escaped_population_households",
    "escaped_population_persons",
    "unstable_households",
    "unstable_persons",
    "marginal_households",
    "marginal_persons",
    "escaped_villages",
)


def printed_table() -> dict[str, list[int]]:
    """Return the transcribed table: printed township name (or 合计) → its nine numbers."""
    lines = [
        ln for ln in FIXTURE.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")
    ]
    reader = csv.reader(lines)
    next(reader)
    return {row[0]: [int(x) for x in row[1:]] for row in reader}


@asynccontextmanager
async def screening_client(url: str, secrets: Secrets) -> AsyncIterator[httpx.AsyncClient]:
    """Run the screening API in-process on a database."""
    app = screening_app.create_app(
        ScreeningSettings(database=DatabaseSettings(url=url)), secrets=secrets
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://screening.test") as c:
            yield c


def county_token(secrets: Secrets, region: str = "141122") -> dict[str, str]:
    token = issue_token(
        secrets.jwt_secret,
        sub="county-test",
        role="county_officer",
        region=region,
        now=utc_now(),
        ttl=timedelta(hours=1),
    )
    return {"Authorization": f"Bearer {token}"}


async def load(url: str, secrets: Secrets) -> seed.SeedSummary:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await seed.seed_jiaocheng(
                session, secrets.cipher(), utc_now(), default_region_table()
            )
    finally:
        await engine.dispose()


class TestJiaochengDataset:
    def test_every_person_has_a_valid_unique_resident_id(self) -> None:
        _, households = seed.jiaocheng_dataset(default_region_table())
        numbers = [p.id_number for h in households for p in h.people]
        assert len(numbers) == 27225 + 394
        assert len(set(numbers)) == len(numbers)
        today = utc_now().date()
        for number in numbers[::97]:
            assert validate_resident_id(number, today=today) == number

    def test_same_dataset_on_every_call(self) -> None:
        regions = default_region_table()
        first = seed.jiaocheng_dataset(regions)
        second = seed.jiaocheng_dataset(regions)
        assert first == second

    def test_villages_lie_in_their_townships(self) -> None:
        regions = default_region_table()
        villages, households = seed.jiaocheng_dataset(regions)
        codes = {v.code for v in villages}
        assert len(codes) == len(villages)
        for household in households:
            assert household.village_code in codes
            assert household.village_code[:9] == household.township_code[:9]


class TestSeedJiaocheng:
    async def test_report_reproduces_the_printed_table_cell_by_cell(
        self, backend: str, db_urls: dict[str, str], secrets: Secrets
    ) -> None:
        summary = await load(db_urls["screening"], secrets)
        assert summary.loaded
        assert summary.households == 11055 + 149
        printed = printed_table()
        regions = default_region_table()
        async with screening_client(db_urls["screening"], secrets) as client:
            got = await client.get(
                "/v1/reports/township-distribution", headers=county_token(secrets)
            )
            assert got.status_code == 200, got.text
            body = got.json()
            csv_body = await client.get(
                "/v1/reports/township-distribution.csv", headers=county_token(secrets)
            )
            xlsx_body = await client.get(
                "/v1/reports/township-distribution.xlsx", headers=county_token(secrets)
            )
        rows = {r["township_code"]: r for r in body["rows"]}
        # Exactly the ten reporting units: no unplaced households, no stray townships.
        expected_codes = {
            seed.township_for(regions, name).code for name in printed if name != "合计"
        }
        assert set(rows) == expected_codes
        for name, numbers in printed.items():
            row = body["total"] if name == "合计" else rows[seed.township_for(regions, name).code]
            for key, value in zip(PRINTED_KEYS, numbers, strict=True):
                assert row[key] == value, f"{name} {key}: report {row[key]}, printed {value}"
            # The added 突发严重困难户 column is empty in this dataset, as the print has none.
            assert row["sudden_households"] == 0
            assert row["sudden_persons"] == 0

        # The CSV and the workbook carry the same cells under the printed township names.
        assert csv_body.status_code == 200
        assert csv_body.headers["content-type"].startswith("text/csv")
        text = csv_body.content.decode("utf-8-sig")
        csv_rows = list(csv.reader(io.StringIO(text)))
        assert csv_rows[0][0] == "乡镇"
        by_name = {r[0]: r[1:] for r in csv_rows[1:]}
        assert xlsx_body.status_code == 200
        sheet = load_workbook(io.BytesIO(xlsx_body.content)).active
        assert sheet is not None
        assert sheet["A1"].value == "交城县脱贫户分布情况表"
        assert [sheet.cell(row=4, column=c).value for c in (2, 3)] == ["户数", "人数"]
        sheet_rows = {
            r[0]: list(r[1:]) for r in sheet.iter_rows(min_row=5, values_only=True) if r[0]
        }
        for name, numbers in printed.items():
            label = "合计" if name == "合计" else seed.township_for(regions, name).name
            csv_numbers = [int(x) for x in by_name[label]]
            cells = sheet_rows[label]
            # Report order: the nine printed columns, with 突发 (2 columns) before 村数.
            assert csv_numbers[:8] + csv_numbers[10:] == numbers
            assert cells[:8] + cells[10:] == numbers

    async def test_a_second_run_loads_nothing(
        self, db_urls: dict[str, str], secrets: Secrets
    ) -> None:
        assert (await load(db_urls["screening"], secrets)).loaded
        again = await load(db_urls["screening"], secrets)
        assert again == seed.SeedSummary(loaded=False, households=0, members=0, villages=0)

    async def test_a_township_officer_sees_only_their_township(
        self, db_urls: dict[str, str], secrets: Secrets
    ) -> None:
        await load(db_urls["screening"], secrets)
        token = issue_token(
            secrets.jwt_secret,
            sub="township-tianning",
            role="township_officer",
            region="141122100",
            now=utc_now(),
            ttl=timedelta(hours=1),
        )
        headers = {"Authorization": f"Bearer {token}"}
        async with screening_client(db_urls["screening"], secrets) as client:
            own = await client.get("/v1/reports/township-distribution", headers=headers)
            other = await client.get(
                "/v1/reports/township-distribution?region=141122",
                headers=headers,
            )
        assert own.status_code == 200
        body = own.json()
        assert [r["name"] for r in body["rows"]] == ["天宁镇"]
        assert body["total"]["escaped_households"] == 1218
        assert other.status_code == 403


@pytest.mark.parametrize("printed", ["（会立）", "岭底", "东坡底乡"])
def test_printed_names_find_their_township(printed: str) -> None:
    township = seed.township_for(default_region_table(), printed)
    assert township.level == "township"

"""Casework's report API on a real database: the SLA fixture and the pipeline, region-scoped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.casework.app import create_app
from services.casework.deadlines import due_instant
from services.casework.models import Case, CaseDeadline
from services.casework.settings import CaseworkSettings
from shared.auth import Role, issue_token
from shared.clock import FrozenClock
from shared.db import create_engine, make_sessionmaker
from shared.secrets import Secrets
from shared.settings import DatabaseSettings
from tests.services.casework import sla_fixture as fx


def case_row(village: str, *, stage: str = "monitoring", **extra: Any) -> Case:
    return Case(
        id=uuid.uuid4(),
        household_id=uuid.uuid4(),
        episode_id=uuid.uuid4(),
        region_code=village,
        stage=stage,
        opened_at=fx.cst(2026, 1, 1),
        score=60,
        level="high",
        categories=extra.pop("categories", []),
        reasons=extra.pop("reasons", []),
        review_flags=[],
        sources=extra.pop("sources", []),
        deadline_policy={},
        facts={},
        updated_at=fx.cst(2026, 1, 1),
    )


async def load_fixture(url: str) -> dict[int, uuid.UUID]:
    """Write the fixture's cases and clocks; return fixture case number → case id."""
    engine = create_engine(DatabaseSettings(url=url))
    ids: dict[int, uuid.UUID] = {}
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            for clock in fx.CLOCKS:
                if clock.case not in ids:
                    case = case_row(clock.village)
                    session.add(case)
                    await session.flush()
                    ids[clock.case] = case.id
            await session.flush()
            for clock in fx.CLOCKS:
                session.add(
                    CaseDeadline(
                        id=uuid.uuid4(),
                        case_id=ids[clock.case],
                        kind=clock.kind,
                        bound=clock.bound,
                        due_date=clock.due,
                        due_at=due_instant(clock.due),
                        started_at=fx.cst(2026, 1, 1),
                        met_at=clock.met_at,
                        breached_at=clock.breached_at,
                        escalation_level="village" if clock.breached_at else None,
                        paused_at=clock.paused_at,
                        closed_at=clock.closed_at,
                        citation="fixture",
                    )
                )
    finally:
        await engine.dispose()
    return ids


@asynccontextmanager
async def casework(url: str, secrets: Secrets) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        CaseworkSettings(database=DatabaseSettings(url=url)),
        clock=FrozenClock(fx.AS_OF.astimezone(fx.CST)),
        secrets=secrets,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://casework.test") as c:
            yield c


def auth(secrets: Secrets, role: Role, region: str) -> dict[str, str]:
    token = issue_token(
        secrets.jwt_secret,
        sub=f"{role}-test",
        role=role,
        region=region,
        now=fx.AS_OF,
        ttl=timedelta(days=3650),
    )
    return {"Authorization": f"Bearer {token}"}


class TestSlaReport:
    async def test_county_figures_match_the_hand_computed_fixture(
        self, backend: str, db_urls: dict[str, str], secrets: Secrets
    ) -> None:
        ids = await load_fixture(db_urls["casework"])
        async with casework(db_urls["casework"], secrets) as client:
            got = await client.get(
                "/v1/reports/sla?months=3", headers=auth(secrets, "county_officer", "141122")
            )
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["months"] == fx.MONTHS
        townships = {
            (c["township_code"], c["month"], c["metric"]): (
                c["on_time"],
                c["late"],
                c["pending"],
                c["share"],
            )
            for c in body["townships"]
        }
        assert townships == fx.EXPECTED_TOWNSHIPS
        totals = {
            (c["month"], c["metric"]): (c["on_time"], c["late"], c["pending"], c["share"])
            for c in body["totals"]
        }
        assert totals == fx.EXPECTED_TOTALS
        names = {c["township_code"]: c["township_name"] for c in body["townships"]}
        assert names == {fx.T1: "天宁镇", fx.T2: "夏家营镇"}
        assert body["overdue_total"] == len(fx.EXPECTED_OVERDUE)
        assert [
            (o["case_id"], o["kind"], o["due"], o["days_overdue"]) for o in body["overdue"]
        ] == [
            (str(ids[case]), kind, due.isoformat(), days)
            for case, kind, due, days in fx.EXPECTED_OVERDUE
        ]

    async def test_a_township_sees_only_its_own_clocks(
        self, db_urls: dict[str, str], secrets: Secrets
    ) -> None:
        await load_fixture(db_urls["casework"])
        async with casework(db_urls["casework"], secrets) as client:
            own = await client.get(
                "/v1/reports/sla?months=3", headers=auth(secrets, "township_officer", fx.T1)
            )
            wider = await client.get(
                "/v1/reports/sla?region=141122",
                headers=auth(secrets, "township_officer", fx.T1),
            )
            department = await client.get(
                "/v1/reports/sla", headers=auth(secrets, "department_officer", "141122")
            )
        assert own.status_code == 200
        assert {c["township_code"] for c in own.json()["townships"]} == {fx.T1}
        assert own.json()["overdue_total"] == 2
        assert wider.status_code == 403
        assert department.status_code == 403


class TestPipelineReport:
    async def test_counts_stages_channels_factors_and_categories(
        self, backend: str, db_urls: dict[str, str], secrets: Secrets
    ) -> None:
        alert = {"kind": "alert", "department": "medical_insurance", "alert_id": "A1"}
        declaration = {"kind": "declaration", "receipt_no": "R1"}
        report = {"kind": "report", "report_id": "V1"}
        illness = {"code": "RF-01", "title_zh": "大病", "contribution": 30}
        school = {"code": "RF-08", "title_zh": "因学", "contribution": 15}
        engine = create_engine(DatabaseSettings(url=db_urls["casework"]))
        async with make_sessionmaker(engine)() as session, session.begin():
            session.add_all(
                [
                    case_row(
                        fx.T1_VILLAGE,
                        stage="opened",
                        sources=[alert, declaration],
                        reasons=[illness, illness],
                    ),
                    case_row(
                        fx.T1_VILLAGE,
                        stage="monitoring",
                        sources=[declaration],
                        reasons=[illness, school],
                        categories=["unstable_escaped"],
                    ),
                    case_row(
                        fx.T2_VILLAGE,
                        stage="monitoring",
                        sources=[report, alert],
                        reasons=[school],
                        categories=["marginal", "sudden_difficulty"],
                    ),
                    # Another county: outside the caller's region.
                    case_row("141121100201", stage="opened", sources=[alert], reasons=[illness]),
                ]
            )
        await engine.dispose()
        async with casework(db_urls["casework"], secrets) as client:
            got = await client.get(
                "/v1/reports/pipeline", headers=auth(secrets, "county_officer", "141122")
            )
        assert got.status_code == 200, got.text
        body = got.json()

        def counts(key: str) -> dict[str, int]:
            return {c["key"]: c["count"] for c in body[key] if c["count"]}

        assert body["cases"] == 3
        assert counts("by_stage") == {"opened": 1, "monitoring": 2}
        assert [c["key"] for c in body["by_stage"]][:2] == ["opened", "home_verification"]
        assert counts("by_first_channel") == {"alert": 1, "declaration": 1, "report": 1}
        assert counts("signals_by_channel") == {"alert": 2, "declaration": 2, "report": 1}
        # RF-01 fired twice in one case: counted once for that case.
        assert [(c["key"], c["count"]) for c in body["by_risk_factor"]] == [
            ("RF-01", 2),
            ("RF-08", 2),
        ]
        assert counts("by_category") == {
            "unstable_escaped": 1,
            "marginal": 1,
            "sudden_difficulty": 1,
        }


@pytest.mark.parametrize("path", ["/v1/reports/sla", "/v1/reports/pipeline"])
async def test_reports_need_a_token(path: str, db_urls: dict[str, str], secrets: Secrets) -> None:
    async with casework(db_urls["casework"], secrets) as client:
        got = await client.get(path)
    assert got.status_code == 401

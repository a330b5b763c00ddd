"""The event path across real processes: intake → Kafka → screening → Kafka → casework.

The workers run as separate `fangpin worker` processes (tests/e2e/pipeline.py) on PostgreSQL
and Apache Kafka; the APIs run in the test process (they never talk to Kafka). Each test has
its own topic and group namespace on the shared broker and its own databases.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from deploy.migrate import SERVICES
from services.casework import app as casework_app
from services.casework.models import Case
from services.casework.settings import CaseworkSettings
from services.intake import app as intake_app
from services.intake import service as intake_service
from services.intake.catalogue import default_catalogue
from services.intake.settings import IntakeSettings
from services.screening.models import RiskAssessment, Signal
from shared.auth import ClientRegistry, signed_headers
from shared.clock import SystemClock
from shared.db import make_sessionmaker
from shared.settings import DatabaseSettings
from tests import factories
from tests.e2e.pipeline import Pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]


def _apps(pipe: Pipeline) -> tuple[Any, Any]:
    clients = ClientRegistry.from_file(pipe.var / "demo-credentials.json")
    intake = intake_app.create_app(
        IntakeSettings(database=DatabaseSettings(url=pipe.urls["intake"]), var_dir=pipe.var),
        secrets=pipe.secrets,
        clients=clients,
    )
    casework = casework_app.create_app(
        CaseworkSettings(database=DatabaseSettings(url=pipe.urls["casework"]), var_dir=pipe.var),
        secrets=pipe.secrets,
    )
    return intake, casework


class TestDeclarationThroughKafka:
    async def test_a_declaration_becomes_a_case_with_one_correlation_id(
        self, pipeline: Pipeline
    ) -> None:
        for service in SERVICES:
            pipeline.start(service)
        intake, casework = _apps(pipeline)
        mp = next(c for c in pipeline.creds["clients"] if c["kind"] == "miniprogram")
        county = next(c for c in pipeline.creds["caseworkers"] if c["role"] == "county_officer")
        body = json.dumps(factories.declaration(serial=7)).encode()
        async with (
            intake.router.lifespan_context(intake),
            casework.router.lifespan_context(casework),
        ):
            ic = httpx.AsyncClient(transport=httpx.ASGITransport(app=intake), base_url="http://i")
            cc = httpx.AsyncClient(transport=httpx.ASGITransport(app=casework), base_url="http://c")
            correlation = str(uuid.uuid4())
            headers = signed_headers(
                mp["client_id"], mp["secret"], "POST", "/v1/declarations", body, time.time()
            )
            headers |= {"Content-Type": "application/json", "X-Correlation-Id": correlation}
            filed = await ic.post("/v1/declarations", content=body, headers=headers)
            assert filed.status_code == 202, filed.text
            receipt = filed.json()["receipt_no"]

            async def case_opened() -> bool:
                r = await cc.get(
                    "/v1/cases", headers={"Authorization": f"Bearer {county['token']}"}
                )
                return bool(r.json()["total"] == 1)

            await pipeline.wait_for("the case", case_opened, seconds=60)
            r = await cc.get("/v1/cases", headers={"Authorization": f"Bearer {county['token']}"})
            assert r.json()["items"][0]["sources"][0]["receipt_no"] == receipt

            async def progress_updated() -> bool:
                p = f"/v1/declarations/{receipt}"
                h = signed_headers(mp["client_id"], mp["secret"], "GET", p, b"", time.time())
                r = await ic.get(p, headers=h)
                # Two polls inside one second carry the same signature: the second is refused
                # as a replay (401), which only means "ask again".
                return r.status_code == 200 and r.json()["stage"] == "under_verification"

            await pipeline.wait_for("applicant progress", progress_updated, seconds=60)
            await ic.aclose()
            await cc.aclose()
        # The correlation id given at the front door is on the event casework published.
        async with make_sessionmaker(pipeline.engines["casework"])() as session:
            values = (
                (await session.execute(text("SELECT value FROM outbox_message"))).scalars().all()
            )
        assert {json.loads(v)["correlation_id"] for v in values} == {correlation}


class TestKillScreening:
    async def test_sigkill_mid_stream_loses_and_duplicates_nothing(
        self, pipeline: Pipeline
    ) -> None:
        total = 2000
        engine = pipeline.engines["intake"]
        ctx = intake_service.IntakeContext(
            outbox=intake_app.intake_outbox(),
            cipher=pipeline.secrets.cipher(),
            clock=SystemClock(),
            catalogue=default_catalogue(),
        )
        client = ClientRegistry.from_file(pipeline.var / "demo-credentials.json").get(
            "dept-medical_insurance"
        )
        assert client is not None
        for start in range(0, total, 1000):
            items = [
                factories.alert(f"YB-{n}", factories.resident_id(5000 + n))
                for n in range(start, start + 1000)
            ]
            async with make_sessionmaker(engine)() as session, session.begin():
                result = await intake_service.receive_alert_batch(
                    session, ctx, client=client, items=items
                )
            assert result.accepted == 1000, result.results[:3]

        for service in SERVICES:
            pipeline.start(service)
        assessments = select(func.count()).select_from(RiskAssessment)

        async def some_done() -> bool:
            return await pipeline.count("screening", assessments) >= 150

        await pipeline.wait_for("first assessments", some_done, seconds=120)
        pipeline.kill("screening")
        killed_at = await pipeline.count("screening", assessments)
        assert killed_at < total, "screening finished before the kill; the test proves nothing"
        pipeline.start("screening")

        async def all_assessed() -> bool:
            return await pipeline.count("screening", assessments) >= total

        await pipeline.wait_for("every assessment", all_assessed, seconds=300)
        expected_cases = await pipeline.count(
            "screening",
            select(func.count()).select_from(RiskAssessment).where(RiskAssessment.opens_case),
        )
        cases = select(func.count()).select_from(Case)

        async def all_cases() -> bool:
            return await pipeline.count("casework", cases) >= expected_cases

        await pipeline.wait_for("every case", all_cases, seconds=300)
        await asyncio.sleep(3)  # anything duplicated would arrive now
        assert await pipeline.count("screening", assessments) == total
        assert (
            await pipeline.count(
                "screening", select(func.count(func.distinct(RiskAssessment.source_event_id)))
            )
            == total
        )
        assert await pipeline.count("screening", select(func.count()).select_from(Signal)) == total
        assert await pipeline.count("casework", cases) == expected_cases > 0
        assert (
            await pipeline.count("casework", select(func.count(func.distinct(Case.household_id))))
            == expected_cases
        )

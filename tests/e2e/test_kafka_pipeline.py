"""The event path across real processes: intake → Kafka → screening → Kafka → casework.

The workers run as separate `fangpin worker` processes on PostgreSQL and Apache Kafka; the
APIs run in the test process (they never talk to Kafka). Each test has its own topic and
group namespace on the shared broker and its own databases.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from deploy.demo import write_demo_credentials
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
from shared.contracts.topics import Topic
from shared.db import create_engine, make_sessionmaker
from shared.secrets import Secrets
from shared.settings import DatabaseSettings
from tests import factories
from tests.conftest import KAFKA, create_pg_databases, drop_pg_databases

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]


async def create_topics(namespace: str) -> None:
    """Create the namespaced topics (the broker does not auto-create them)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    namespace + t,
                    num_partitions=1 if t.endswith(".dlq") else 6,
                    replication_factor=1,
                )
                for t in Topic
            ]
        )
    finally:
        await admin.close()


class Pipeline:
    """Worker processes plus in-process intake and casework APIs."""

    def __init__(self, urls: dict[str, str], secrets: Secrets, var: Path, namespace: str) -> None:
        self.urls = urls
        self.secrets = secrets
        self.var = var
        self.namespace = namespace
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.engines: dict[str, AsyncEngine] = {
            s: create_engine(DatabaseSettings(url=u)) for s, u in urls.items()
        }
        self.creds = write_demo_credentials(
            var / "demo-credentials.json", secrets.jwt_secret, SystemClock().now()
        )

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for service in SERVICES:
            prefix = service.upper()
            env[f"{prefix}_DATABASE__URL"] = self.urls[service]
            env[f"{prefix}_BUS"] = "kafka"
            env[f"{prefix}_ENVIRONMENT"] = "test"
            env[f"{prefix}_KAFKA__BOOTSTRAP_SERVERS"] = str(KAFKA)
            env[f"{prefix}_KAFKA__NAMESPACE"] = self.namespace
            env[f"{prefix}_VAR_DIR"] = str(self.var)
            env[f"{prefix}_RELAY__IDLE_POLL_SECONDS"] = "0.05"
        env["FANGPIN_PII_ENCRYPTION_KEY"] = self.secrets.pii_encryption_key
        env["FANGPIN_PII_HASH_KEY"] = self.secrets.pii_hash_key
        env["FANGPIN_JWT_SECRET"] = self.secrets.jwt_secret
        env["CASEWORK_SWEEP_INTERVAL_SECONDS"] = "5"
        return env

    def start(self, service: str) -> None:
        log = open(self.var / f"{service}-worker.log", "ab")  # noqa: SIM115 - kept open for the child
        self.procs[service] = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "worker", service],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=log,
        )

    def kill(self, service: str) -> None:
        proc = self.procs.pop(service)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:]
            for p in self.var.glob("*.log")
        )

    async def count(self, service: str, stmt: Any) -> int:
        async with make_sessionmaker(self.engines[service])() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def wait_for(
        self, what: str, check: Callable[[], Awaitable[bool]], seconds: float
    ) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await check():
                return
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{name} worker exited ({proc.returncode})\n{self.logs()}")
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")


@pytest.fixture
async def pipeline(
    pg_templates: dict[str, str], secrets: Secrets, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    namespace = f"t{uuid.uuid4().hex[:8]}."
    await create_topics(namespace)
    urls = await create_pg_databases(pg_templates)
    pipe = Pipeline(urls, secrets, tmp_path, namespace)
    try:
        yield pipe
    finally:
        pipe.stop_all()
        for engine in pipe.engines.values():
            await engine.dispose()
        await drop_pg_databases(urls)


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
                return bool((await ic.get(p, headers=h)).json()["stage"] == "under_verification")

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

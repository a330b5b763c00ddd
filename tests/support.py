"""An in-process Fangpin for tests: three apps over ASGI, and workers pumped by hand."""

from __future__ import annotations

import json
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from deploy.demo import write_demo_credentials
from services.casework import app as casework_app
from services.casework import worker as casework_worker
from services.casework.models import metadata as casework_metadata
from services.casework.service import CaseworkContext
from services.casework.settings import CaseworkSettings
from services.casework.sweeper import DeadlineSweeper
from services.intake import app as intake_app
from services.intake import worker as intake_worker
from services.intake.models import metadata as intake_metadata
from services.intake.settings import IntakeSettings
from services.screening import app as screening_app
from services.screening import worker as screening_worker
from services.screening.models import metadata as screening_metadata
from services.screening.settings import ScreeningSettings
from shared.auth import ClientRegistry, signed_headers
from shared.clock import FrozenClock
from shared.contracts.topics import dead_letter_topic
from shared.db import create_engine, make_sessionmaker
from shared.messaging.consumer import ConsumerRunner
from shared.messaging.memory import InMemoryBus, InMemorySource
from shared.messaging.outbox import OutboxRelay
from shared.secrets import Secrets
from shared.settings import ConsumerSettings, DatabaseSettings, RelaySettings
from shared.worker import WorkerSpec

METADATA: dict[str, MetaData] = {
    "intake": intake_metadata,
    "screening": screening_metadata,
    "casework": casework_metadata,
}


class Stack:
    """All three services in one event loop; `pump()` runs relays and consumers to quiescence."""

    def __init__(
        self, urls: dict[str, str], secrets: Secrets, clock: FrozenClock, var: Path
    ) -> None:
        self.urls = urls
        self.secrets = secrets
        self.clock = clock
        self.var = var
        self.bus = InMemoryBus()
        self.creds: dict[str, Any] = {}
        self.http: dict[str, httpx.AsyncClient] = {}
        self.apps: dict[str, FastAPI] = {}
        self.engines: dict[str, AsyncEngine] = {}
        self.sessionmakers: dict[str, async_sessionmaker[AsyncSession]] = {}
        self.relays: list[OutboxRelay] = []
        self.runners: list[tuple[ConsumerRunner, InMemorySource]] = []
        self._exit = AsyncExitStack()

    async def __aenter__(self) -> Stack:
        creds_path = self.var / "demo-credentials.json"
        self.creds = write_demo_credentials(creds_path, self.secrets.jwt_secret, self.clock.now())
        clients = ClientRegistry.from_file(creds_path)
        db = {s: DatabaseSettings(url=u) for s, u in self.urls.items()}
        intake_cfg = IntakeSettings(database=db["intake"], var_dir=self.var)
        screening_cfg = ScreeningSettings(database=db["screening"], var_dir=self.var)
        casework_cfg = CaseworkSettings(database=db["casework"], var_dir=self.var)
        apps: dict[str, FastAPI] = {
            "intake": intake_app.create_app(
                intake_cfg, clock=self.clock, secrets=self.secrets, clients=clients
            ),
            "screening": screening_app.create_app(screening_cfg, secrets=self.secrets),
            "casework": casework_app.create_app(
                casework_cfg, clock=self.clock, secrets=self.secrets
            ),
        }
        self.apps = apps
        for name, app in apps.items():
            await self._exit.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://{name}.test"
            )
            self.http[name] = await self._exit.enter_async_context(client)
        specs = {
            "intake": intake_worker.worker_spec(self.clock),
            "screening": screening_worker.worker_spec(self.clock, self.secrets.cipher()),
            "casework": casework_worker.worker_spec(casework_cfg, self.clock),
        }
        for name, spec in specs.items():
            await self._wire(name, spec, db[name])
        return self

    async def _wire(self, name: str, spec: WorkerSpec, db: DatabaseSettings) -> None:
        engine = create_engine(db)
        self.engines[name] = engine
        sm = make_sessionmaker(engine)
        self.sessionmakers[name] = sm
        self.relays.append(
            OutboxRelay(
                service=name,
                sessionmaker=sm,
                table=spec.outbox,
                publisher=self.bus.publisher(),
                clock=self.clock,
                settings=RelaySettings(),
            )
        )
        for consumer in spec.consumers:
            source = self.bus.source(consumer.group, consumer.topics)
            await source.start()
            runner = ConsumerRunner(
                group=consumer.group,
                source=source,
                dead_letters=self.bus.publisher(),
                dlq_topic=dead_letter_topic(consumer.group),
                sessionmaker=sm,
                inbox=spec.inbox,
                handlers=consumer.handlers,
                batch_handler=consumer.batch_handler,
                clock=self.clock,
                settings=ConsumerSettings(initial_backoff_seconds=0.01, max_attempts=3),
            )
            self.runners.append((runner, source))

    async def __aexit__(self, *exc: object) -> None:
        await self._exit.aclose()
        for engine in self.engines.values():
            await engine.dispose()

    async def pump(self, rounds: int = 100) -> int:
        """Relay and consume until nothing moves; return how many records were handled."""
        handled = 0
        for _ in range(rounds):
            moved = 0
            for relay in self.relays:
                moved += await relay.drain()
            for runner, source in self.runners:
                batch = await source.fetch(max_records=500, timeout_ms=0)
                if batch:
                    await runner.process(batch)
                    moved += len(batch)
            handled += moved
            if moved == 0:
                return handled
        raise AssertionError("the stack did not settle")

    async def sweep(self) -> int:
        """Run the casework deadline sweep once."""
        sweeper = DeadlineSweeper(
            sessionmaker=self.sessionmakers["casework"],
            ctx=CaseworkContext(outbox=casework_worker.casework_outbox(), clock=self.clock),
            interval_seconds=60,
            batch_size=1000,
        )
        return await sweeper.sweep_once()

    async def database_text(self, service: str) -> dict[str, list[str]]:
        """Return every value of every row of every table of one service, as text per table."""
        out: dict[str, list[str]] = {}
        metadata = METADATA[service]
        async with self.sessionmakers[service]() as session:
            for table in metadata.sorted_tables:
                texts = out.setdefault(table.name, [])
                for row in (await session.execute(select(table))).all():
                    texts.extend(
                        json.dumps(value, ensure_ascii=False, default=str)
                        if isinstance(value, dict | list)
                        else str(value)
                        for value in row
                        if value is not None
                    )
        return out

    def bus_text(self) -> list[str]:
        """Return key, value and headers of every record on every topic of the bus."""
        out: list[str] = []
        for topic in sorted({topic for topic, _partition in self.bus._logs}):
            for record in self.bus.records(topic):
                out.append(record.value.decode("utf-8", errors="replace"))
                out.append((record.key or b"").decode("utf-8", errors="replace"))
                out.extend(v.decode("utf-8", errors="replace") for _k, v in record.headers)
        return out

    def client(self, kind: str, department: str | None = None) -> dict[str, Any]:
        """Return a demo machine client's credentials."""
        for c in self.creds["clients"]:
            if c["kind"] == kind and (department is None or c.get("department") == department):
                return dict(c)
        raise KeyError(kind)

    def token(self, role: str, region: str | None = None) -> str:
        """Return a demo caseworker's JWT."""
        for c in self.creds["caseworkers"]:
            if c["role"] == role and (region is None or c["region"] == region):
                return str(c["token"])
        raise KeyError(role)

    async def signed(
        self,
        method: str,
        path: str,
        client: dict[str, Any],
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> httpx.Response:
        """Send an HMAC-signed request to intake."""
        content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        h = signed_headers(
            client["client_id"], client["secret"], method, path, content, time.time()
        )
        if content:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        return await self.http["intake"].request(method, path, content=content, headers=h)

    async def as_caseworker(
        self, service: str, method: str, path: str, token: str, body: Any = None
    ) -> httpx.Response:
        """Send a request with a caseworker's bearer token."""
        return await self.http[service].request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )

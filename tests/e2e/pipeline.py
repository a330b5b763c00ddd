"""Real processes for end-to-end tests on PostgreSQL and Apache Kafka.

`Pipeline` runs `fangpin worker <svc>` (and, when asked, `fangpin serve intake`) as child
processes against per-test databases and a per-test topic namespace on the shared broker, so
a test can SIGKILL and restart them. `servers()` calls the fault switches of
deploy/servers.sh (stop/start the broker or PostgreSQL with their data kept). Counts are read
straight from the three databases.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy.ext.asyncio import AsyncEngine

from deploy.children import Children, free_port
from deploy.demo import write_demo_credentials
from deploy.dlq import list_dead_letters, partitions_of
from deploy.migrate import SERVICES
from shared.clock import SystemClock
from shared.contracts.topics import Topic
from shared.db import create_engine, make_sessionmaker
from shared.secrets import Secrets
from shared.settings import DatabaseSettings, KafkaSettings
from tests.conftest import KAFKA

ROOT = Path(__file__).resolve().parents[2]
SERVERS_SCRIPT = os.environ.get("FANGPIN_SERVERS_SCRIPT", "")


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


def servers(command: str) -> float:
    """Run `deploy/servers.sh <command>` (kafka-stop, pg-start, …); return its seconds."""
    if not SERVERS_SCRIPT:
        raise RuntimeError(
            "fault injection needs servers run by deploy/servers.sh (FANGPIN_SERVERS_SCRIPT)"
        )
    started = time.monotonic()
    subprocess.run(
        ["bash", SERVERS_SCRIPT, command],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=240,
    )
    return time.monotonic() - started


class Pipeline(Children):
    """Worker processes (and optionally the intake API) of one test, with its databases."""

    failure = AssertionError

    def __init__(self, urls: dict[str, str], secrets: Secrets, var: Path, namespace: str) -> None:
        super().__init__(var)
        self.urls = urls
        self.secrets = secrets
        self.namespace = namespace
        self.engines: dict[str, AsyncEngine] = {
            s: create_engine(DatabaseSettings(url=u)) for s, u in urls.items()
        }
        self.creds = write_demo_credentials(
            var / "demo-credentials.json", secrets.jwt_secret, SystemClock().now()
        )
        self.api_url: str | None = None

    def env(self) -> dict[str, str]:
        """Return the environment every child process gets."""
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

    def _spawn(self, name: str, args: list[str]) -> None:
        self.spawn_cli(name, args, self.env())

    def start(self, service: str) -> None:
        """Start a service's worker process."""
        self._spawn(service, ["worker", service])

    async def start_api(self, seconds: float = 60) -> str:
        """Start `fangpin serve intake` on a free port; return its base URL once it answers."""
        port = free_port()
        self._spawn("intake-api", ["serve", "intake", "--port", str(port)])
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(base_url=url, timeout=2) as client:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        self.api_url = url
                        return url
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"intake API did not answer at {url}\n{self.logs()}")

    async def count(self, service: str, stmt: Any) -> int:
        """Return the single integer a statement selects from a service's database."""
        async with make_sessionmaker(self.engines[service])() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def rows(self, service: str, stmt: Any) -> list[Any]:
        """Return every row a statement selects from a service's database."""
        async with make_sessionmaker(self.engines[service])() as session:
            return list((await session.execute(stmt)).all())

    async def wait_for(
        self, what: str, check: Callable[[], Awaitable[bool]], seconds: float
    ) -> None:
        """Poll check until it holds; fail on timeout or when a child dies."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await check():
                return
            self.check_alive()
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def kafka_settings(self) -> KafkaSettings:
        """Return the Kafka settings of this pipeline's namespace."""
        return KafkaSettings(bootstrap_servers=str(KAFKA), namespace=self.namespace)

    async def group_lag(self, group: str, topic: str) -> int:
        """Return how many records of a topic a consumer group has not committed yet."""
        name = self.namespace + topic
        tps = [TopicPartition(name, p) for p in await partitions_of(self.kafka_settings(), name)]
        assert tps, f"no topic {name}"
        admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA)
        await admin.start()
        await consumer.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.namespace + group)
            ends = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
            await admin.close()
        return sum(
            end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
        )

    async def dead_letters(self, name: str) -> list[dict[str, Any]]:
        """Return the summaries `fangpin dlq list` shows for a group or dead-letter topic."""
        return await list_dead_letters(self.kafka_settings(), name)

    async def close(self) -> None:
        """Stop the children and release the database connections."""
        self.stop_all()
        for engine in self.engines.values():
            await engine.dispose()

"""The real stack a scenario runs on: fresh databases, namespaced topics, worker processes.

Each scenario gets its own three databases (copied from migrated templates built once per
run) and its own topic namespace on the broker, so scenarios never see each other's data.
Workers and the intake API run as `fangpin worker|serve` child processes, exactly as in
production; the benchmark process only feeds them and reads the databases.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets as pysecrets
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deploy.children import Children, free_port
from deploy.demo import write_demo_credentials
from deploy.migrate import SERVICES, migrate
from services.intake.catalogue import default_catalogue
from shared.auth import issue_token
from shared.clock import SystemClock
from shared.contracts.topics import Topic
from shared.pii import generate_key_b64
from shared.secrets import Secrets

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6
# Bench clients are not rate limited: the limiter would measure itself, not the service.
UNLIMITED_RATE = 100_000_000


def rss_kib(pid: int) -> int:
    """Return a process's resident set size in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def cpu_seconds(pid: int) -> float:
    """Return the user+system CPU seconds a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass
class Servers:
    """Where PostgreSQL and Kafka are, and the migrated template databases."""

    pg_url: str  # SQLAlchemy URL of any database on the server (asyncpg driver)
    pg_admin_dsn: str  # libpq DSN of a database the benchmark may CREATE DATABASE from
    kafka: str
    templates: dict[str, str] = field(default_factory=dict)

    def url_for(self, database: str) -> str:
        """Return the SQLAlchemy URL of a database on the server."""
        return f"{self.pg_url.rpartition('/')[0]}/{database}"

    def dsn_for(self, database: str) -> str:
        """Return the asyncpg DSN of a database on the server."""
        return self.url_for(database).replace("postgresql+asyncpg://", "postgresql://")

    async def admin(self) -> asyncpg.Connection:
        """Open a connection allowed to create and drop databases."""
        return await asyncpg.connect(self.pg_admin_dsn)

    async def build_templates(self) -> None:
        """Migrate one template database per service (once per run)."""
        tag = uuid.uuid4().hex[:8]
        conn = await self.admin()
        try:
            for service in SERVICES:
                name = f"bench_tpl_{service}_{tag}"
                await conn.execute(f'CREATE DATABASE "{name}"')
                self.templates[service] = name
        finally:
            await conn.close()
        for service, name in self.templates.items():
            await migrate(service, self.url_for(name))

    async def drop_templates(self) -> None:
        """Drop the template databases."""
        conn = await self.admin()
        try:
            for name in self.templates.values():
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self.templates.clear()


def bench_credentials(path: Path, jwt_secret: str) -> dict[str, Any]:
    """Write demo credentials whose machine clients have no practical rate limit."""
    # Never reuse a file from an earlier run: its tokens were signed with another secret.
    path.unlink(missing_ok=True)
    data = write_demo_credentials(path, jwt_secret, SystemClock().now())
    for client in data["clients"]:
        client["rate_per_minute"] = UNLIMITED_RATE
    data["caseworkers"].append(
        {
            "username": "bench-village",
            "role": "village_officer",
            "region": "141122100201",
            "token": issue_token(
                jwt_secret,
                sub="bench-village",
                role="village_officer",
                region="141122100201",
                now=SystemClock().now(),
                ttl=timedelta(days=2),
            ),
        }
    )
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return data


class Stack(Children):
    """One scenario's databases, topics and processes."""

    def __init__(
        self,
        servers: Servers,
        var: Path,
        *,
        name: str,
        templates: dict[str, str] | None = None,
        secrets: Secrets | None = None,
    ) -> None:
        super().__init__(var / name)
        self.servers = servers
        self.templates = {**servers.templates, **(templates or {})}
        self.var.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.namespace = f"b{uuid.uuid4().hex[:8]}."
        self.databases: dict[str, str] = {}
        self.secrets = secrets or Secrets(
            generate_key_b64(), generate_key_b64(), pysecrets.token_hex(16)
        )
        self.creds: dict[str, Any] = {}
        self.api_port = 0
        self._pools: dict[str, asyncpg.Pool] = {}

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Stack:
        conn = await self.servers.admin()
        try:
            for service in SERVICES:
                db = f"bench_{self.name}_{service}_{uuid.uuid4().hex[:6]}"
                await conn.execute(f'CREATE DATABASE "{db}" TEMPLATE "{self.templates[service]}"')
                self.databases[service] = db
        finally:
            await conn.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.servers.kafka)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        self.namespace + t,
                        num_partitions=1 if t.endswith(".dlq") else PARTITIONS,
                        replication_factor=1,
                    )
                    for t in Topic
                ]
            )
        finally:
            await admin.close()
        self.creds = bench_credentials(self.var / "credentials.json", self.secrets.jwt_secret)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop_all()
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()
        conn = await self.servers.admin()
        try:
            for db in self.databases.values():
                await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await conn.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.servers.kafka)
        await admin.start()
        try:
            await admin.delete_topics([self.namespace + t for t in Topic])
        except Exception:  # leftover topics only cost disk on a throwaway broker
            pass
        finally:
            await admin.close()

    # ---------------------------------------------------------------- processes

    def env(self) -> dict[str, str]:
        """The environment of every child process (production shape, bench namespace)."""
        env = dict(os.environ)
        for service in SERVICES:
            prefix = service.upper()
            env[f"{prefix}_DATABASE__URL"] = self.servers.url_for(self.databases[service])
            env[f"{prefix}_BUS"] = "kafka"
            env[f"{prefix}_ENVIRONMENT"] = "test"
            env[f"{prefix}_KAFKA__BOOTSTRAP_SERVERS"] = self.servers.kafka
            env[f"{prefix}_KAFKA__NAMESPACE"] = self.namespace
            env[f"{prefix}_VAR_DIR"] = str(self.var)
            env[f"{prefix}_RELAY__IDLE_POLL_SECONDS"] = "0.05"
            env[f"{prefix}_LOG_LEVEL"] = "WARNING"
        env["INTAKE_CLIENTS_FILE"] = str(self.var / "credentials.json")
        env["INTAKE_MAX_BODY_BYTES"] = str(8 * 1024 * 1024)
        env["FANGPIN_PII_ENCRYPTION_KEY"] = self.secrets.pii_encryption_key
        env["FANGPIN_PII_HASH_KEY"] = self.secrets.pii_hash_key
        env["FANGPIN_JWT_SECRET"] = self.secrets.jwt_secret
        env["CASEWORK_SWEEP_INTERVAL_SECONDS"] = "3600"
        return env

    def _spawn(self, key: str, args: list[str]) -> None:
        self.spawn_cli(key, args, self.env())

    def start_worker(self, service: str) -> None:
        """Start `fangpin worker <service>`."""
        self._spawn(f"{service}-worker", ["worker", service])

    async def start_api(self, service: str = "intake") -> str:
        """Start `fangpin serve <service>` on a free port; return its base URL once ready."""
        self.api_port = free_port()
        self._spawn(f"{service}-api", ["serve", service, "--port", str(self.api_port)])
        await wait_http(self.api_port, self.procs[f"{service}-api"], self.logs)
        return f"http://127.0.0.1:{self.api_port}"

    # ---------------------------------------------------------------- databases

    async def pool(self, service: str) -> asyncpg.Pool:
        """A small asyncpg pool on a service's database."""
        if service not in self._pools:
            self._pools[service] = await asyncpg.create_pool(
                self.servers.dsn_for(self.databases[service]), min_size=1, max_size=4
            )
        return self._pools[service]

    async def scalar(self, service: str, sql: str, *args: Any) -> Any:
        """Run one query and return its first value."""
        pool = await self.pool(service)
        return await pool.fetchval(sql, *args)

    async def wait_for_cases(self, poll: float) -> int:
        """Wait until casework has a case for every household screening said needs one.

        Return that number of households (the cases expected).
        """
        expected = int(
            await self.scalar(
                "screening",
                "SELECT count(DISTINCT household_id) FROM risk_assessment WHERE opens_case",
            )
        )

        async def all_cases() -> bool:
            return int(await self.scalar("casework", 'SELECT count(*) FROM "case"')) >= expected

        await self.wait_for("every case opened", all_cases, seconds=3600, poll=poll)
        return expected

    async def wait_for(
        self, what: str, check: Callable[[], Awaitable[bool]], seconds: float, poll: float = 0.25
    ) -> float:
        """Poll check until true; return the time it took. Raise on timeout or a dead child."""
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            if await check():
                return time.perf_counter() - started
            self.check_alive()
            await asyncio.sleep(poll)
        raise TimeoutError(f"{self.name}: timed out after {seconds:.0f}s waiting for {what}")

    def department_client(self, department: str) -> dict[str, Any]:
        """The credentials of a department's machine client."""
        return next(c for c in self.creds["clients"] if c.get("department") == department)

    def miniprogram_client(self) -> dict[str, Any]:
        """The credentials of the mini-program backend."""
        return next(c for c in self.creds["clients"] if c["kind"] == "miniprogram")


async def wait_http(port: int, proc: subprocess.Popen[bytes], logs: Callable[[], str]) -> None:
    """Wait until something answers HTTP on the port (up to 60 s)."""
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode})\n{logs()}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            await asyncio.wait_for(reader.read(100), timeout=5)
            writer.close()
            return
        except (OSError, TimeoutError):
            await asyncio.sleep(0.2)
    raise TimeoutError(f"nothing answered on port {port}\n{logs()}")


def departments() -> list[tuple[str, str]]:
    """(department, an alert type of it needing no extra fields) for departments that have one."""
    out = []
    for dep in default_catalogue().departments:
        for at in dep.alert_types:
            if not any(v == "required" for v in at.fields.values()):
                out.append((dep.code, at.code))
                break
    return out

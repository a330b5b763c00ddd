"""S2 — a province batch: department alerts straight onto intake.events (no HTTP), screened
against a registry of millions of persons.

Goal: screening ≥ 50 % of the raw consume rate of the same records, RSS growth < 10 %.
The raw rate is measured on the very topic the worker then reads, before it starts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from deploy.bench import data
from deploy.bench.limits import consume_all
from deploy.bench.stack import Servers, Stack, cpu_seconds, rss_kib
from shared.pii import generate_key_b64
from shared.secrets import Secrets


async def _produce(stack: Stack, records: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.servers.kafka, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    started = time.perf_counter()
    try:
        topic = stack.namespace + "intake.events"
        for i in range(0, len(records), 1000):
            futures = [await producer.send(topic, key=k, value=v) for k, v in records[i : i + 1000]]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def registry_template(
    servers: Servers, *, alerts: int, persons: int
) -> tuple[str, Secrets, float]:
    """Load the registry once into a template database; every repeat copies it."""
    keys = Secrets(generate_key_b64(), generate_key_b64(), "bench")
    name = f"bench_registry_{uuid.uuid4().hex[:6]}"
    admin = await servers.admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{servers.templates["screening"]}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(servers.dsn_for(name))
    try:
        seconds = await data.load_registry(conn, keys.cipher(), persons=persons, alerted=alerts)
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return name, keys, seconds


async def drop_database(servers: Servers, name: str) -> None:
    """Drop a database made here."""
    admin = await servers.admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run_once(
    servers: Servers,
    var: Any,
    *,
    alerts: int,
    registry: str,
    keys: Secrets,
    tag: str,
) -> dict[str, Any]:
    """One province batch through a fresh screening worker, on a copy of the registry."""
    async with Stack(
        servers, var, name=f"s2{tag}", templates={"screening": registry}, secrets=keys
    ) as stack:
        cipher = stack.secrets.cipher()
        records = data.alert_envelopes(cipher, list(range(alerts)))
        produce_s = await _produce(stack, records)
        raw_s = await consume_all(stack, stack.namespace + "intake.events", alerts)
        raw_rate = alerts / raw_s
        stack.start_worker("screening")
        pid = stack.procs["screening-worker"].pid
        samples: list[tuple[int, int]] = []  # (assessed, rss KiB)
        spawned = time.perf_counter()
        # CPU is counted from the first assessment seen: process start-up (imports, group
        # join) is not screening work. The records done before it are counted out of it.
        started = cpu0 = 0.0
        first = done = 0
        while done < alerts:
            await asyncio.sleep(0.25)
            stack.check_alive()
            done = int(await stack.scalar("screening", "SELECT count(*) FROM risk_assessment"))
            samples.append((done, rss_kib(pid)))
            if done and not started:
                started, cpu0, first = time.perf_counter(), cpu_seconds(pid), done
            if time.perf_counter() - spawned > 3600:
                raise TimeoutError("S2 did not finish in an hour")
        # The span from the first assessment to the last, as the worker stamped them: exact
        # whatever the polling interval, and free of start-up (imports, joining the group).
        span = await stack.scalar(
            "screening",
            "SELECT extract(epoch FROM max(assessed_at) - min(assessed_at)) FROM risk_assessment",
        )
        seconds = max(float(span), 1e-3)
        startup = started - spawned
        cpu = cpu_seconds(pid) - cpu0
        # Memory after warm-up (a tenth of the batch) against the most it reached later.
        warm = next((rss for n, rss in samples if n >= alerts // 10 and rss), samples[-1][1])
        peak = max(rss for _, rss in samples)
        matched = int(
            await stack.scalar(
                "screening",
                "SELECT count(*) FROM signal s JOIN household h ON h.id = s.household_id"
                " WHERE NOT h.provisional",
            )
        )
        distinct = int(
            await stack.scalar(
                "screening", "SELECT count(DISTINCT source_event_id) FROM risk_assessment"
            )
        )
        members = int(await stack.scalar("screening", "SELECT count(*) FROM member"))
    rate = (alerts - 1) / seconds
    return {
        "alerts": alerts,
        "persons": members,
        "feed_produce_seconds": round(produce_s, 2),
        "raw_consume_rate": round(raw_rate, 1),
        "seconds": round(seconds, 2),
        "rate": round(rate, 1),
        "ratio_to_raw_consume": round(rate / raw_rate, 4),
        "worker_startup_seconds": round(startup, 2),
        "worker_cpu_seconds": round(cpu, 2),
        "worker_cpu_ms_per_alert": round(cpu * 1000 / max(1, alerts - first), 2),
        "rss_warm_kib": warm,
        "rss_peak_kib": peak,
        "rss_growth": round((peak - warm) / warm, 4) if warm else 0.0,
        "matched_to_registry": matched,
        "distinct_assessed_events": distinct,
        "lost": alerts - distinct,
    }

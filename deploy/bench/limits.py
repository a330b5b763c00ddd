"""Raw limits, measured in the same run with the same libraries and payloads as the scenarios.

L_http      no-op FastAPI endpoint on intake's uvicorn settings, closed loop, declaration bodies
L_produce   aiokafka send() + gather per 1,000, acks=all, idempotent, real alert envelopes
L_consume   aiokafka getmany(max_records=500) over those records
L_pg_copy   asyncpg copy_records_to_table of real alert rows into intake's `alert` table
L_pg_batch  asyncpg executemany of the same rows, 1,000 per transaction
L_chain     the bare three-process pipeline (bare.py), alerts in arrays of 1,000
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from deploy.bench import bare, data, load
from deploy.bench.stack import Stack, wait_http
from deploy.children import free_port, spawn
from services.intake import schemas
from services.intake import service as intake_service
from services.intake.catalogue import default_catalogue
from shared.auth import ClientRecord
from shared.clock import SystemClock


def declaration_requests(stack: Stack, *, offset: int = 0) -> Any:
    """A request maker: signed declarations, every fifth a status look-up of an earlier one."""
    client = stack.miniprogram_client()
    codes = data.villages()

    def make(i: int) -> bytes:
        n = offset + i
        body = data.json_bytes(data.declaration(n, codes[n % len(codes)]))
        return data.signed_request(client, "POST", "/v1/declarations", body)

    return make


async def http_noop(stack: Stack, *, seconds: float) -> dict[str, Any]:
    """Saturation of the no-op endpoint with 32 keep-alive connections."""
    port = free_port()
    proc = spawn(["-m", "deploy.bench.noop", "--port", str(port)], stack.var / "noop.log")
    try:
        await wait_http(port, proc, stack.logs)
        make = declaration_requests(stack, offset=10_000_000)
        await load.closed_loop(port, make, concurrency=32, seconds=1.0)  # warm-up
        result = await load.closed_loop(port, make, concurrency=32, seconds=seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return result.summary()


def alert_rows(stack: Stack, count: int) -> list[dict[str, Any]]:
    """Real intake alert rows (encrypted, hashed, masked) as the service stores them."""
    ctx = intake_service.IntakeContext(
        outbox=intake_service.intake_outbox(),
        cipher=stack.secrets.cipher(),
        clock=SystemClock(),
        catalogue=default_catalogue(),
    )
    client = ClientRecord(
        client_id="dept-medical_insurance",
        secret="-",
        kind="department",
        department="medical_insurance",
    )
    codes = data.villages()
    now = datetime.now().astimezone()
    rows = []
    for n in range(count):
        body = schemas.AlertCreate.model_validate(
            data.alert(n, village=codes[n % len(codes)], tag=f"L{uuid.uuid4().hex[:4]}")
        )
        rows.append(
            intake_service.prepare_alert(ctx, client, body, now=now, correlation=uuid.uuid4())
        )
    return [p.row | {"_value": p.outbox_row["value"]} for p in rows]


async def consume_all(stack: Stack, topic: str, total: int) -> float:
    """Read `total` records of a topic from the start with a fresh group; return the seconds."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.servers.kafka,
        group_id=f"limit-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        got = 0
        started = time.perf_counter()
        while got < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            got += sum(len(rs) for rs in batches.values())
            if time.perf_counter() - started > 300:
                raise TimeoutError("raw consume did not finish")
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def kafka_produce_consume(stack: Stack, values: list[bytes]) -> dict[str, Any]:
    """Produce the values to a fresh topic, then consume them all back."""
    topic = stack.namespace + "intake.events"
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.servers.kafka, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        started = time.perf_counter()
        for i in range(0, len(values), 1000):
            futures = [
                await producer.send(topic, key=str(j).encode(), value=v)
                for j, v in enumerate(values[i : i + 1000], start=i)
            ]
            await asyncio.gather(*futures)
        produce_s = time.perf_counter() - started
    finally:
        await producer.stop()
    consume_s = await consume_all(stack, topic, len(values))
    size = sum(len(v) for v in values) / len(values)
    return {
        "produce": {
            "messages": len(values),
            "seconds": round(produce_s, 3),
            "rate": round(len(values) / produce_s, 1),
            "bytes_per_message": round(size),
        },
        "consume": {
            "messages": len(values),
            "seconds": round(consume_s, 3),
            "rate": round(len(values) / consume_s, 1),
        },
    }


_ALERT_COLUMNS = (
    "id",
    "department",
    "alert_id",
    "alert_type",
    "client_id",
    "subject_ref",
    "subject_id_cipher",
    "subject_id_masked",
    "village_code",
    "amount",
    "count",
    "grade",
    "occurred_on",
    "details",
    "correlation_id",
    "received_at",
    "job_id",
)


async def pg_copy_and_batch(stack: Stack, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """COPY the rows into intake's alert table, then executemany them (1,000 per transaction)."""
    pool = await stack.pool("intake")
    records = [
        tuple(data.json_bytes(r[c]).decode() if c == "details" else r[c] for c in _ALERT_COLUMNS)
        for r in rows
    ]
    async with pool.acquire() as conn:
        started = time.perf_counter()
        for i in range(0, len(records), 10_000):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "alert", records=records[i : i + 10_000], columns=list(_ALERT_COLUMNS)
                )
        copy_s = time.perf_counter() - started
        await conn.execute("TRUNCATE alert")
        placeholders = ", ".join(f"${i + 1}" for i in range(len(_ALERT_COLUMNS)))
        sql = f"INSERT INTO alert ({', '.join(_ALERT_COLUMNS)}) VALUES ({placeholders})"
        started = time.perf_counter()
        for i in range(0, len(records), 1000):
            async with conn.transaction():
                await conn.executemany(sql, records[i : i + 1000])
        batch_s = time.perf_counter() - started
        await conn.execute("TRUNCATE alert")
    n = len(records)
    return {
        "copy": {"rows": n, "seconds": round(copy_s, 3), "rate": round(n / copy_s, 1)},
        "batch": {"rows": n, "seconds": round(batch_s, 3), "rate": round(n / batch_s, 1)},
    }


async def push(stack: Stack, alerts: list[dict[str, Any]]) -> None:
    """POST alerts to the stack's intake as arrays, each department with its own client."""
    by_department: dict[str, list[dict[str, Any]]] = {}
    for a in alerts:
        by_department.setdefault(a["alert_type"].split(".")[0], []).append(a)
    for department, items in by_department.items():
        await post_arrays(
            stack.api_port,
            items,
            path="/v1/alerts:batch",
            sign=stack.department_client(department),
            concurrency=2,
        )


async def warm_up(stack: Stack) -> None:
    """Push the warm-up alerts (see data.WARM_UP) and wait for their cases."""
    await push(stack, data.warm_up_alerts())
    await stack.wait_for_cases(poll=0.25)


async def bare_chain(stack: Stack, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """Push the alerts through the bare pipeline; alerts/s until the last row is stored."""
    ns = stack.namespace
    kafka = stack.servers.kafka
    dsn = stack.servers.dsn_for(stack.databases["casework"])
    port = free_port()
    group = f"bare-{uuid.uuid4().hex[:6]}"
    stages = {
        "bare-http": ["http", "--port", str(port), "--out", ns + "screening.events"],
        "bare-score": [
            "score",
            "--in",
            ns + "screening.events",
            "--out",
            ns + "casework.events",
            "--group",
            group,
        ],
        "bare-store": ["store", "--in", ns + "casework.events", "--group", group, "--dsn", dsn],
    }
    pool = await stack.pool("casework")
    await pool.execute(bare.TABLE_SQL)
    procs = []
    for name, args in stages.items():
        procs.append(
            spawn(
                ["-m", "deploy.bench.bare", args[0], "--kafka", kafka, *args[1:]],
                stack.var / f"{name}.log",
            )
        )
    try:
        await wait_http_post(port, procs[0], stack)
        # Warmed up like the real stack in S1, so neither side's start-up is timed.
        await post_arrays(port, data.warm_up_alerts(), path="/alerts", sign=None)

        async def warmed() -> bool:
            return int(await pool.fetchval("SELECT count(*) FROM bare_case")) >= data.WARM_UP

        await stack.wait_for("the bare pipeline's warm-up", warmed, seconds=600, poll=0.1)
        expected = data.WARM_UP + len({a["subject_id_number"] for a in alerts if "amount" in a})
        started = time.perf_counter()
        result = await post_arrays(port, alerts, path="/alerts", sign=None)
        posted_s = time.perf_counter() - started

        async def stored() -> bool:
            return int(await pool.fetchval("SELECT count(*) FROM bare_case")) >= expected

        await stack.wait_for("the bare pipeline", stored, seconds=600, poll=0.1)
        total_s = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
    return {
        "alerts": len(alerts),
        "cases": expected,
        "http_errors": result.errors,
        "ingest_seconds": round(posted_s, 3),
        "seconds": round(total_s, 3),
        "rate": round(len(alerts) / total_s, 1),
    }


async def wait_http_post(port: int, proc: subprocess.Popen[bytes], stack: Stack) -> None:
    """Wait for the bare HTTP stage (it has no health route; any answer will do)."""
    await wait_http(port, proc, stack.logs)


async def post_arrays(
    port: int,
    alerts: list[dict[str, Any]],
    *,
    path: str,
    sign: dict[str, Any] | None,
    per_request: int = 1000,
    concurrency: int = 4,
) -> load.LoadResult:
    """POST the alerts as JSON arrays (wrapped as {"alerts": […]} when signing for intake)."""
    chunks = [alerts[i : i + per_request] for i in range(0, len(alerts), per_request)]
    result = load.LoadResult()
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for chunk in chunks:
        queue.put_nowait(chunk)

    async def worker() -> None:
        conn = await load.Connection.open(port)
        try:
            while not queue.empty():
                chunk = queue.get_nowait()
                if sign is None:
                    body = data.json_bytes(chunk)
                    request = (
                        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json"
                        f"\r\nContent-Length: {len(body)}\r\n\r\n"
                    ).encode() + body
                else:
                    body = data.json_bytes({"alerts": chunk})
                    request = data.signed_request(sign, "POST", path, body)
                started = time.perf_counter()
                result.sent += 1
                status, reply = await conn.send(request)
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status < 300:
                    result.ok += 1
                else:
                    result.errors += 1
                    raise RuntimeError(f"POST {path} → {status}: {reply[:500]!r}")
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result

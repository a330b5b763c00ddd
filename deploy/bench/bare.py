"""The bare pipeline, the end-to-end peer: HTTP → Kafka → score → Kafka → insert.

Three small processes with the same libraries as the services and none of their rules (no
validation, encryption, outbox, inbox, ORM or episodes):

    python -m deploy.bench.bare http  --port P --kafka K --out T1
    python -m deploy.bench.bare score --kafka K --in T1 --out T2 --group G
    python -m deploy.bench.bare store --kafka K --in T2 --group G --dsn DSN

`http` takes JSON arrays of alerts and produces each one (send, then wait for the whole
array); `score` reads with getmany, scores by threshold and produces; `store` reads with
getmany and writes one row per subject (a repeat changes nothing) with one executemany and
one commit per batch, then commits the offsets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI, Request, Response

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS bare_case (
    subject text PRIMARY KEY,
    score integer NOT NULL,
    alert_id text NOT NULL,
    opened_at timestamptz NOT NULL
)
"""


def score(alert: dict[str, object]) -> int:
    """A threshold score standing in for the policy."""
    amount = alert.get("amount")
    return 60 if isinstance(amount, int | float) and amount > 20000 else 40


def http_app(kafka: str, topic: str) -> FastAPI:
    """The front door: every alert of a posted array goes to Kafka before the 202."""
    producer: dict[str, AIOKafkaProducer] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        p = AIOKafkaProducer(
            bootstrap_servers=kafka, acks="all", enable_idempotence=True, linger_ms=5
        )
        await p.start()
        producer["p"] = p
        yield
        await p.stop()

    app = FastAPI(lifespan=lifespan)

    @app.post("/alerts")
    async def alerts(request: Request) -> Response:
        items = json.loads(await request.body())
        p = producer["p"]
        futures = [
            await p.send(
                topic,
                key=str(item["subject_id_number"]).encode(),
                value=json.dumps(item).encode(),
            )
            for item in items
        ]
        await asyncio.gather(*futures)
        return Response(status_code=202)

    return app


async def _consume(kafka: str, topic: str, group: str, handle: object, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            records = [r for rs in batches.values() for r in rs]
            if records:
                await handle(records)  # type: ignore[operator]
                await consumer.commit()
    finally:
        await consumer.stop()


async def run_score(kafka: str, source: str, target: str, group: str) -> None:
    """getmany → score → produce (all acknowledged before the offsets move)."""
    stop = _stop_event()
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()

    async def handle(records: list[object]) -> None:
        futures = []
        for rec in records:
            alert = json.loads(rec.value)  # type: ignore[attr-defined]
            out = {
                "subject": alert["subject_id_number"],
                "alert_id": alert["alert_id"],
                "score": score(alert),
            }
            futures.append(
                await producer.send(target, key=rec.key, value=json.dumps(out).encode())  # type: ignore[attr-defined]
            )
        await asyncio.gather(*futures)

    try:
        await _consume(kafka, source, group, handle, stop)
    finally:
        await producer.stop()


async def run_store(kafka: str, source: str, group: str, dsn: str) -> None:
    """getmany → one executemany and one commit per batch."""
    stop = _stop_event()
    conn = await asyncpg.connect(dsn)
    await conn.execute(TABLE_SQL)

    async def handle(records: list[object]) -> None:
        now = datetime.now(UTC)
        rows = []
        for rec in records:
            item = json.loads(rec.value)  # type: ignore[attr-defined]
            if item["score"] >= 50:
                rows.append((item["subject"], item["score"], item["alert_id"], now))
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO bare_case (subject, score, alert_id, opened_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (subject) DO NOTHING",
                rows,
            )

    try:
        await _consume(kafka, source, group, handle, stop)
    finally:
        await conn.close()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def main() -> None:
    """Run one stage."""
    parser = argparse.ArgumentParser(prog="bare")
    parser.add_argument("stage", choices=("http", "score", "store"))
    parser.add_argument("--kafka", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--in", dest="source", default="")
    parser.add_argument("--out", dest="target", default="")
    parser.add_argument("--group", default="bare")
    parser.add_argument("--dsn", default="")
    args = parser.parse_args()
    if args.stage == "http":
        uvicorn.run(
            http_app(args.kafka, args.target),
            host="127.0.0.1",
            port=args.port,
            log_config=None,
            access_log=False,
        )
    elif args.stage == "score":
        asyncio.run(run_score(args.kafka, args.source, args.target, args.group))
    else:
        asyncio.run(run_store(args.kafka, args.source, args.group, args.dsn))


if __name__ == "__main__":
    main()

"""S4 — a disaster burst with a screening crash in the middle.

Steady background of single alerts, then a burst of alerts in arrays of 100 at a fixed
schedule (open loop); halfway through the burst the screening worker is SIGKILLed and
started again. Alert → case latency is intake's received_at to casework's opened_at for the
alert that opened the case.
Goals: steady-state p99 ≤ 2 s; backlog drained ≤ 60 s after the burst; 0 lost, 0 duplicated.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from deploy.bench import data, limits, load
from deploy.bench.stack import Servers, Stack

CHUNK = 100


async def run_once(
    servers: Servers,
    var: Any,
    *,
    burst: int,
    burst_seconds: float,
    steady_rate: float,
    steady_seconds: float,
    tag: str,
) -> dict[str, Any]:
    """One burst through a fresh stack."""
    codes = data.villages()
    async with Stack(servers, var, name=f"s4{tag}") as stack:
        for service in ("intake", "screening", "casework"):
            stack.start_worker(service)
        await stack.start_api("intake")
        await limits.warm_up(stack)
        client = stack.department_client(data.PRIMARY[0])

        def single(i: int) -> bytes:
            n = 5_000_000 + i
            body = data.json_bytes(data.alert(n, village=codes[n % len(codes)], tag="S4s"))
            return data.signed_request(client, "POST", "/v1/alerts", body)

        def chunk(i: int) -> bytes:
            alerts = [
                data.alert(n, village=codes[n % len(codes)], tag="S4b")
                for n in range(i * CHUNK, (i + 1) * CHUNK)
            ]
            return data.signed_request(
                client, "POST", "/v1/alerts:batch", data.json_bytes({"alerts": alerts})
            )

        steady = await load.open_loop(
            stack.api_port, single, rate=steady_rate, seconds=steady_seconds
        )
        chunks = max(1, burst // CHUNK)

        async def crash_screening() -> float:
            await asyncio.sleep(burst_seconds / 2)
            stack.kill("screening-worker")
            at = time.perf_counter()
            stack.start_worker("screening")
            return at

        burst_started = time.perf_counter()
        crash = asyncio.create_task(crash_screening())
        pushed = await load.open_loop(
            stack.api_port, chunk, rate=chunks / burst_seconds, seconds=burst_seconds
        )
        burst_ended = time.perf_counter()
        await crash
        stored = int(await stack.scalar("intake", "SELECT count(*) FROM alert"))

        async def all_scored() -> bool:
            n = await stack.scalar("screening", "SELECT count(*) FROM risk_assessment")
            return int(n) >= stored

        await stack.wait_for("every alert scored", all_scored, seconds=3600, poll=0.25)
        expected = await stack.wait_for_cases(poll=0.25)
        drained_after = time.perf_counter() - burst_ended
        await asyncio.sleep(2)  # anything redelivered twice would land now
        received = {
            r["alert_id"]: r["received_at"]
            for r in await (await stack.pool("intake")).fetch(
                "SELECT alert_id, received_at FROM alert"
            )
        }
        opened = await (await stack.pool("casework")).fetch(
            """SELECT sources->0->>'alert_id' AS alert_id, opened_at FROM "case" """
        )
        cases = len(opened)
        households = int(
            await stack.scalar("casework", 'SELECT count(DISTINCT household_id) FROM "case"')
        )
        distinct = int(
            await stack.scalar(
                "screening", "SELECT count(DISTINCT source_event_id) FROM risk_assessment"
            )
        )
        assessed = int(await stack.scalar("screening", "SELECT count(*) FROM risk_assessment"))
    latency: dict[str, list[float]] = {"S4s": [], "S4b": []}
    for row in opened:
        at = received.get(row["alert_id"])
        # The warm-up's cases belong to neither phase.
        phase = latency.get(row["alert_id"].split("-")[0])
        if at is not None and phase is not None:
            phase.append((row["opened_at"] - at).total_seconds() * 1000)
    return {
        "steady_alerts": steady.ok,
        "steady_http": steady.summary(),
        "burst_alerts": pushed.ok * CHUNK,
        "burst_http": pushed.summary(),
        "burst_seconds": round(burst_ended - burst_started, 2),
        "stored": stored,
        "drained_seconds_after_burst": round(drained_after, 2),
        "steady_latency_ms": load.percentiles(latency["S4s"]),
        "burst_latency_ms": load.percentiles(latency["S4b"]),
        "assessed": assessed,
        "distinct_assessed_events": distinct,
        "lost": stored - distinct,
        "redelivered_assessments": assessed - distinct,
        "cases": cases,
        "expected_cases": expected,
        "duplicate_cases": cases - households,
    }

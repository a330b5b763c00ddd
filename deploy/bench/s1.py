"""S1 — a county's monthly department push: alerts in arrays of 1,000 through the intake API,
10 % of them a second department's alert about a person already alerted.

Goal: all scored and cases opened in ≤ 60 s, ≥ 50 % of the bare pipeline, 0 duplicate cases.
"""

from __future__ import annotations

import time
from typing import Any

from deploy.bench import data, limits
from deploy.bench.stack import Servers, Stack

WARM_UP = data.WARM_UP


async def run_once(servers: Servers, var: Any, *, alerts: int, tag: str) -> dict[str, Any]:
    """One push through a fresh stack; returns timings and correctness counts."""
    push = data.county_push(alerts)
    async with Stack(servers, var, name=f"s1{tag}") as stack:
        for service in ("intake", "screening", "casework"):
            stack.start_worker(service)
        await stack.start_api("intake")
        await limits.warm_up(stack)
        started = time.perf_counter()
        await limits.push(stack, push)
        ingest_s = time.perf_counter() - started
        stored = int(await stack.scalar("intake", "SELECT count(*) FROM alert"))

        async def all_scored() -> bool:
            return (
                int(await stack.scalar("screening", "SELECT count(*) FROM risk_assessment"))
                >= stored
            )

        await stack.wait_for("every alert scored", all_scored, seconds=3600, poll=0.5)
        scored_s = time.perf_counter() - started
        expected = await stack.wait_for_cases(poll=0.5)
        total_s = time.perf_counter() - started
        cases = int(await stack.scalar("casework", 'SELECT count(*) FROM "case"'))
        households = int(
            await stack.scalar("casework", 'SELECT count(DISTINCT household_id) FROM "case"')
        )
        assessed = int(await stack.scalar("screening", "SELECT count(*) FROM risk_assessment"))
        distinct_events = int(
            await stack.scalar(
                "screening", "SELECT count(DISTINCT source_event_id) FROM risk_assessment"
            )
        )
        dead = int(
            await stack.scalar(
                "screening", "SELECT count(*) FROM outbox_message WHERE published_at IS NULL"
            )
        )
    people = len({a["subject_id_number"] for a in push})
    return {
        "alerts": alerts,
        "people": people,
        "stored": stored - WARM_UP,
        "warm_up_alerts": WARM_UP,
        "ingest_seconds": round(ingest_s, 2),
        "scored_seconds": round(scored_s, 2),
        "seconds": round(total_s, 2),
        "rate": round(alerts / total_s, 1),
        "assessed": assessed - WARM_UP,
        "distinct_assessed_events": distinct_events - WARM_UP,
        "cases": cases,
        "case_households": households,
        "expected_cases": expected,
        "duplicate_cases": cases - households,
        "lost": stored - distinct_events,
        "screening_outbox_left": dead,
    }

"""S5 — deadline sweep over a province's cases, and casework transitions under load.

Casework holds `cases` opened cases with one live identification clock each; a thousandth of
the clocks fell due yesterday. The sweep (DeadlineSweeper.sweep_once, as the worker runs it)
must breach exactly those, and the index query that finds them is timed on its own (EXPLAIN
ANALYZE). Transitions (`start_verification`) go open loop to the real casework API.
Goals: sweep ≤ 1 s; transition p99 ≤ 20 ms.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from deploy.bench import data, load
from deploy.bench.stack import Servers, Stack
from services.casework import worker as casework_worker
from services.casework.deadlines import load_default_deadline_policy
from services.casework.repository import sweep_statement
from services.casework.service import CaseworkContext
from services.casework.sweeper import DeadlineSweeper
from shared.clock import SystemClock, china_date
from shared.db import create_engine, make_sessionmaker
from shared.settings import DatabaseSettings

VILLAGE = "141122100201"
OVERDUE_EVERY = 1000


async def _generate(stack: Stack, cases: int) -> float:
    """Insert the cases and their clocks the bulk way (indexes rebuilt once afterwards)."""
    started = time.perf_counter()
    now = datetime.now().astimezone()
    today = china_date(now)
    policy = json.dumps(load_default_deadline_policy().model_dump(mode="json"))
    pool = await stack.pool("casework")
    async with pool.acquire() as conn:
        indexes = await conn.fetch(
            "SELECT tablename, indexname, indexdef FROM pg_indexes"
            " WHERE tablename IN ('case', 'case_deadline') AND indexname NOT LIKE 'pk_%'"
        )
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        await conn.execute(
            """
            INSERT INTO "case" (id, household_id, episode_id, region_code, stage, opened_at,
                                score, level, categories, reasons, review_flags, sources,
                                deadline_policy, facts, updated_at, version)
            SELECT ('00000000-0000-4000-a000-' || lpad(to_hex(i), 12, '0'))::uuid,
                   gen_random_uuid(), gen_random_uuid(), $4, 'opened', $1, 60, 'high',
                   '[]', '[]', '[]', '[]', $2::jsonb, '{}', $1, 1
            FROM generate_series(0, $3 - 1) AS i
            """,
            now,
            policy,
            cases,
            VILLAGE,
        )
        # Clock i: every thousandth fell due yesterday; the rest fall due over the next
        # 20 to 219 days. Due instants are the next Beijing midnight after the due date.
        await conn.execute(
            """
            INSERT INTO case_deadline (id, case_id, kind, bound, due_date, due_at, started_at,
                                       citation)
            SELECT ('00000000-0000-4000-b000-' || lpad(to_hex(i), 12, '0'))::uuid,
                   ('00000000-0000-4000-a000-' || lpad(to_hex(i), 12, '0'))::uuid,
                   'identification', 'deadline', d.due,
                   (d.due + 1)::timestamp AT TIME ZONE 'Asia/Shanghai', $1, 'D1'
            FROM generate_series(0, $2 - 1) AS i
            CROSS JOIN LATERAL (
                SELECT CASE WHEN i % $4 = 0 THEN $3::date - 1
                            ELSE $3::date + 20 + i % 200 END AS due
            ) AS d
            """,
            now,
            cases,
            today,
            OVERDUE_EVERY,
        )
        for index in indexes:
            await conn.execute(index["indexdef"])
        await conn.execute('ANALYZE "case"')
        await conn.execute("ANALYZE case_deadline")
    return time.perf_counter() - started


async def _pull_next_due(stack: Stack, count: int) -> None:
    """Make the next `count` live clocks overdue (a fresh sweep for the next repeat)."""
    yesterday = china_date(datetime.now().astimezone()) - timedelta(days=1)
    await stack.scalar(
        "casework",
        """
        UPDATE case_deadline SET due_date = $1::date,
               due_at = ($1::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
        WHERE id IN (SELECT id FROM case_deadline
                     WHERE met_at IS NULL AND breached_at IS NULL AND paused_at IS NULL
                       AND closed_at IS NULL ORDER BY due_at LIMIT $2)
        """,
        yesterday,
        count,
    )


async def run(
    servers: Servers, var: Any, *, cases: int, repeats: int, rate: float, seconds: float
) -> dict[str, Any]:
    """Generate once; sweep `repeats` times; one open-loop transition run per repeat."""
    runs = []
    async with Stack(servers, var, name="s5") as stack:
        generate_s = await _generate(stack, cases)
        engine = create_engine(DatabaseSettings(url=servers.url_for(stack.databases["casework"])))
        sweeper = DeadlineSweeper(
            sessionmaker=make_sessionmaker(engine),
            ctx=CaseworkContext(outbox=casework_worker.casework_outbox(), clock=SystemClock()),
            interval_seconds=60,
            batch_size=1000,
        )
        await stack.start_api("casework")
        token = next(
            c["token"] for c in stack.creds["caseworkers"] if c["username"] == "bench-village"
        )
        try:
            next_case = 1  # case 0 and every thousandth are swept; transitions take others
            for r in range(repeats):
                if r:
                    await _pull_next_due(stack, cases // OVERDUE_EVERY)
                expected = int(
                    await stack.scalar(
                        "casework",
                        "SELECT count(*) FROM case_deadline WHERE met_at IS NULL"
                        " AND breached_at IS NULL AND paused_at IS NULL AND closed_at IS NULL"
                        " AND due_at <= now()",
                    )
                )
                plan = await stack.scalar(
                    "casework",
                    "EXPLAIN (ANALYZE, FORMAT JSON) "
                    + str(
                        sweep_statement(datetime.now().astimezone(), 1000).compile(
                            dialect=engine.dialect, compile_kwargs={"literal_binds": True}
                        )
                    ),
                )
                query_ms = float(json.loads(plan)[0]["Execution Time"])
                started = time.perf_counter()
                breached = await sweeper.sweep_once()
                sweep_s = time.perf_counter() - started

                ids: list[uuid.UUID] = []
                while len(ids) < int(rate * seconds):
                    if next_case % OVERDUE_EVERY:
                        ids.append(uuid.UUID(f"00000000-0000-4000-a000-{next_case:012x}"))
                    next_case += 1
                body = data.json_bytes({"action": "start_verification"})

                def make(i: int, ids: list[uuid.UUID] = ids, body: bytes = body) -> bytes:
                    path = f"/v1/cases/{ids[i]}/actions"
                    return (
                        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}"
                        f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                        "\r\n\r\n"
                    ).encode() + body

                transitions = await load.open_loop(stack.api_port, make, rate=rate, seconds=seconds)
                runs.append(
                    {
                        "expected_overdue": expected,
                        "breached": breached,
                        "sweep_seconds": round(sweep_s, 3),
                        "sweep_query_ms": round(query_ms, 2),
                        "transitions": {"offered_rate": rate, **transitions.summary()},
                        "transition_statuses": transitions.statuses,
                    }
                )
        finally:
            await engine.dispose()
        total = int(await stack.scalar("casework", 'SELECT count(*) FROM "case"'))
    return {"cases": total, "generate_seconds": round(generate_s, 1), "runs": runs}

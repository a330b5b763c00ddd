"""Tests for casework's SQL: region prefixes and the index-driven deadline sweep."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import ClauseElement

from services.casework.deadlines import due_instant, load_default_deadline_policy
from services.casework.models import CaseDeadline, CaseEvent
from services.casework.repository import CaseRepository, region_prefix, sweep_statement
from shared.secrets import Secrets
from tests.services.casework.harness import running

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
FIRST_DUE = date(2026, 2, 20)
ROWS = 1_000_000
CASES = 1_000
SWEEP_BATCH = 1_000


class TestRegionPrefix:
    @pytest.mark.parametrize(
        ("scope", "prefix"),
        [
            pytest.param("141122100201", "141122100201", id="village"),
            pytest.param("141122100", "141122100", id="township-9"),
            pytest.param("141122100000", "141122100", id="township-12"),
            pytest.param("141122", "141122", id="county"),
            pytest.param("140000", "14", id="province"),
        ],
    )
    def test_prefix(self, scope: str, prefix: str) -> None:
        assert region_prefix(scope) == prefix


def _sql(limit: int, *, ids_only: bool) -> str:
    """Return the sweep query as the repository runs it, with its parameters inlined."""
    stmt = sweep_statement(NOW, limit).with_for_update(skip_locked=True)
    chosen: ClauseElement = (
        stmt.with_only_columns(CaseDeadline.id, CaseDeadline.due_at) if ids_only else stmt
    )
    # SQLAlchemy's dialect constructors carry no annotations.
    dialect: Dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
    return str(chosen.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


@pytest.fixture
async def pg(pg_casework_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection to the test's casework database."""
    conn = await asyncpg.connect(pg_casework_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        yield conn
    finally:
        await conn.close()


async def _store_a_million(conn: asyncpg.Connection) -> None:
    policy = json.dumps(load_default_deadline_policy().model_dump(mode="json"))
    await conn.execute(
        """
        INSERT INTO "case" (id, household_id, episode_id, region_code, stage, opened_at, score,
                            level, categories, reasons, review_flags, sources, deadline_policy,
                            facts, updated_at, version)
        SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), '141122100201',
               'opened', $1, 60, 'high', '[]', '[]', '[]', '[]', $2::jsonb, '{}', $1, 1
        FROM generate_series(1, $3)
        """,
        NOW,
        policy,
        CASES,
    )
    # A bulk load the usual way: the secondary indexes are dropped and rebuilt from their own
    # definitions afterwards (building an index once is far cheaper than a million inserts
    # into it), and the throwaway table skips the WAL.  The schema swept is the migrated one.
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE tablename = 'case_deadline' AND indexname <> 'pk_case_deadline'"
    )
    for index in indexes:
        await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    await conn.execute("ALTER TABLE case_deadline SET UNLOGGED")
    # Row i belongs to case i % 1000 and is due 2026-02-20 + i/1000 days (so 1,000 clocks a
    # day from 20 February 2026 to mid-November 2028: about 1% are past due at NOW), with
    # every state the sweep must skip mixed in at co-prime strides.
    await conn.execute(
        """
        WITH c AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM "case")
        INSERT INTO case_deadline (id, case_id, kind, bound, due_date, due_at, started_at,
                                   met_at, breached_at, paused_at, closed_at, citation)
        SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
               c.id,
               CASE WHEN i % 5 = 4 THEN 'monthly_visit' ELSE 'identification' END,
               CASE WHEN i % 10 = 9 THEN 'minimum'
                    WHEN i % 5 = 4 THEN 'recurring' ELSE 'deadline' END,
               d.due,
               (d.due + 1)::timestamp AT TIME ZONE 'Asia/Shanghai',
               $3::timestamptz,
               CASE WHEN i % 7 = 0 THEN $3::timestamptz END,
               CASE WHEN i % 11 = 0 THEN $3::timestamptz END,
               CASE WHEN i % 13 = 0 THEN $3::timestamptz END,
               CASE WHEN i % 17 = 0 THEN $3::timestamptz END,
               'D1'
        FROM generate_series(0, $1 - 1) AS i
        JOIN c ON c.n = i % $2
        CROSS JOIN LATERAL (SELECT date '2026-02-20' + i / $2 AS due) AS d
        """,
        ROWS,
        CASES,
        NOW,
    )
    for index in indexes:
        await conn.execute(index["indexdef"])
    await conn.execute("ANALYZE case_deadline")


def _expected_overdue() -> int:
    """Count the overdue clocks from the generation formulas alone, row by row."""
    count = 0
    for i in range(ROWS):
        due = FIRST_DUE + timedelta(days=i // CASES)
        if due_instant(due) > NOW:
            continue
        if i % 10 == 9 or i % 7 == 0 or i % 11 == 0 or i % 13 == 0 or i % 17 == 0:
            continue  # a minimum, or met, breached, paused or closed
        count += 1
    return count


# Every row read and tested on its own, with the index planning switched off.
BRUTE_FORCE = """
    SELECT id, due_at FROM case_deadline
    WHERE coalesce(met_at, breached_at, paused_at, closed_at) IS NULL
      AND bound IN ('deadline', 'recurring')
      AND due_at <= $1
"""


def _plan_nodes(plan: Any) -> list[dict[str, Any]]:
    """Flatten an EXPLAIN (FORMAT JSON) plan into its nodes."""
    out = []
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(node.get("Plans", []))
    return out


@pytest.mark.postgres
class TestSweepStatement:
    async def test_a_million_clocks_sweep_exactly_the_overdue_through_the_index(
        self, pg: asyncpg.Connection
    ) -> None:
        await _store_a_million(pg)
        assert await pg.fetchval("SELECT count(*) FROM case_deadline") == ROWS

        # Brute force, twice: a full scan of the table, and the formulas the rows came from.
        async with pg.transaction():
            for switch in ("indexscan", "bitmapscan", "indexonlyscan"):
                await pg.execute(f"SET LOCAL enable_{switch} = off")
            scan = json.loads(await pg.fetchval("EXPLAIN (FORMAT JSON) " + BRUTE_FORCE, NOW))
            assert {n["Node Type"] for n in _plan_nodes(scan)} <= {"Seq Scan", "Gather"}
            expected = {r["id"]: r["due_at"] for r in await pg.fetch(BRUTE_FORCE, NOW)}
        assert len(expected) == _expected_overdue()
        assert 0 < len(expected) < ROWS // 100

        # The sweep query itself, unbatched: exactly the overdue clocks.
        found = await pg.fetch(_sql(ROWS, ids_only=True))
        assert len(found) == len(expected)
        assert {r["id"] for r in found} == set(expected)

        # One sweeper batch: the oldest due first.
        batch = await pg.fetch(_sql(SWEEP_BATCH, ids_only=True))
        assert [r["due_at"] for r in batch] == sorted(expected.values())[:SWEEP_BATCH]

        # The batch query is served by the partial index, not a scan of the table.
        plan = json.loads(
            await pg.fetchval("EXPLAIN (FORMAT JSON) " + _sql(SWEEP_BATCH, ids_only=False))
        )
        nodes = _plan_nodes(plan)
        assert any(n.get("Index Name") == "ix_case_deadline_live_due" for n in nodes), nodes
        assert not any(n["Node Type"] == "Seq Scan" for n in nodes), nodes

    async def test_the_index_predicate_is_the_sweep_predicate(self, pg: asyncpg.Connection) -> None:
        definition = await pg.fetchval(
            "SELECT pg_get_indexdef('ix_case_deadline_live_due'::regclass)"
        )
        for clause in (
            "met_at IS NULL",
            "breached_at IS NULL",
            "paused_at IS NULL",
            "closed_at IS NULL",
        ):
            assert clause in definition
        assert "'minimum'" in definition
        assert "(due_at)" in definition


@pytest.mark.postgres
class TestGetForUpdate:
    async def test_a_locked_case_still_takes_history_rows(
        self, pg_casework_url: str, secrets: Secrets, tmp_path: Path
    ) -> None:
        # The sweeper holds clock locks when it appends a case's history; an action holding
        # the case must not block that insert, or the two could deadlock.
        async with running(pg_casework_url, secrets, tmp_path) as cw:
            case_id = uuid.UUID(await cw.open_case())
            async with cw.sessionmaker() as action, action.begin():
                locked = await CaseRepository(action).get_for_update(case_id)
                assert locked is not None
                async with cw.sessionmaker() as sweeper, sweeper.begin():
                    sweeper.add(
                        CaseEvent(
                            case_id=case_id,
                            at=NOW,
                            actor="system",
                            actor_role="system",
                            action="deadline_breached",
                            to_stage="opened",
                            data={},
                        )
                    )
                    await asyncio.wait_for(sweeper.flush(), timeout=5)


class TestSweepStatementShape:
    def test_reads_only_live_clocks_in_due_order(self) -> None:
        sql = _sql(SWEEP_BATCH, ids_only=False)
        assert "met_at IS NULL AND breached_at IS NULL AND paused_at IS NULL" in sql
        assert "ORDER BY case_deadline.due_at" in sql
        assert "FOR UPDATE SKIP LOCKED" in sql
        assert f"LIMIT {SWEEP_BATCH}" in sql

    def test_selects_clock_rows(self) -> None:
        stmt = sweep_statement(NOW, 10)
        assert stmt.selected_columns.keys() == select(CaseDeadline).selected_columns.keys()

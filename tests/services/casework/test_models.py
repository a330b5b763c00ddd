"""Tests for casework's tables as the migrations build them."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from services.casework.models import CaseEvent
from tests.services.casework.harness import Casework


class TestCaseEvent:
    @pytest.mark.parametrize(
        "statement",
        [
            pytest.param("UPDATE case_event SET reason = 'rewritten'", id="update"),
            pytest.param("UPDATE case_event SET to_stage = 'exited'", id="update-stage"),
            pytest.param("DELETE FROM case_event", id="delete"),
        ],
    )
    async def test_the_database_keeps_history_append_only(
        self, cw: Casework, statement: str
    ) -> None:
        case_id = await cw.open_case()
        await cw.ok(case_id, cw.village, "start_verification", reason="核查")
        with pytest.raises(DBAPIError, match="append-only"):
            async with cw.sessionmaker() as session, session.begin():
                await session.execute(text(statement))
        async with cw.sessionmaker() as session:
            rows = (await session.execute(select(CaseEvent).order_by(CaseEvent.id))).scalars().all()
            count = (
                await session.execute(select(func.count()).select_from(CaseEvent))
            ).scalar_one()
        assert count == 2
        assert [(r.action, r.reason) for r in rows] == [
            ("open", None),
            ("start_verification", "核查"),
        ]

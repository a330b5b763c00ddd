"""Casework's consumer: a fetched batch of assessments ends where one at a time ends."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from services.casework import service
from services.casework.handlers import CaseworkHandlers
from services.casework.models import Case, CaseDeadline, CaseEvent, outbox_table
from shared.contracts.envelope import EventEnvelope
from shared.contracts.registry import build_envelope, decode
from shared.contracts.screening import RiskAssessedV1
from tests.services.casework.harness import Casework


def plan(cw: Casework, run: str) -> tuple[list[uuid.UUID], list[RiskAssessedV1]]:
    """Four households; the last has a live case before the batch."""
    homes = [uuid.uuid4() for _ in range(4)]

    def a(i: int, n: int, *, opens: bool = True) -> RiskAssessedV1:
        return cw.assessment(
            household_id=homes[i], opens_case=opens, score=60 + n, receipt_no=f"{run}-{i}-{n}"
        )

    return homes, [
        a(0, 1),
        a(0, 2),  # evidence for the case the batch just opened
        a(1, 3, opens=False),  # no case yet: nothing opens
        a(1, 4),
        a(3, 5),  # evidence for a case opened before the batch
        a(2, 6),
    ]


def envelope(assessed: RiskAssessedV1, cw: Casework) -> EventEnvelope[Any]:
    now = cw.clock.now()
    return build_envelope(
        assessed,
        producer="screening",
        subject_key=str(assessed.household_id),
        occurred_at=now,
        produced_at=now,
    )


async def outcome(cw: Casework, homes: list[uuid.UUID], run: str) -> list[Any]:
    """Per household, in plan order: its cases, clocks, history and events, ids left out."""
    async with cw.sessionmaker() as session:
        out = []
        for home in homes:
            cases = list(
                (await session.execute(select(Case).where(Case.household_id == home))).scalars()
            )
            ids = [c.id for c in cases]
            clocks = (
                await session.execute(
                    select(CaseDeadline.kind, CaseDeadline.due_date).where(
                        CaseDeadline.case_id.in_(ids)
                    )
                )
            ).all()
            actions = (
                await session.execute(
                    select(CaseEvent.action, CaseEvent.to_stage)
                    .where(CaseEvent.case_id.in_(ids))
                    .order_by(CaseEvent.id)
                )
            ).all()
            events = (
                await session.execute(
                    select(outbox_table.c.event_type, outbox_table.c.value)
                    .where(outbox_table.c.message_key == str(home))
                    .order_by(outbox_table.c.id)
                )
            ).all()
            out.append(
                {
                    "cases": [
                        (
                            c.stage,
                            c.score,
                            [s["receipt_no"].removeprefix(run) for s in c.sources],
                        )
                        for c in cases
                    ],
                    "clocks": sorted(clocks),
                    "history": list(actions),
                    "events": [
                        (t, [d.kind for d in getattr(decode(v.encode()).payload, "deadlines", ())])
                        for t, v in events
                    ],
                }
            )
        return out


async def test_a_batch_ends_where_one_assessment_at_a_time_ends(cw: Casework) -> None:
    handlers = CaseworkHandlers(cw.ctx)
    runs = {}
    for run, batched in (("A", True), ("B", False)):
        homes, items = plan(cw, run)
        await cw.assess(cw.assessment(household_id=homes[3], receipt_no=f"{run}-3-0"))
        envelopes = [envelope(i, cw) for i in items]
        if batched:
            async with cw.sessionmaker() as session, session.begin():
                await handlers.on_batch(session, envelopes)
        else:
            for one in envelopes:
                async with cw.sessionmaker() as session, session.begin():
                    await handlers.on_risk_assessed(session, one)
        runs[run] = await outcome(cw, homes, run)

    assert runs["A"] == runs["B"]
    first, second, third, fourth = runs["A"]
    assert [c[2] for c in first["cases"]] == [["-0-1", "-0-2"]]
    assert [c[2] for c in second["cases"]] == [["-1-4"]]
    assert len(third["cases"]) == 1
    assert [c[2] for c in fourth["cases"]] == [["-3-0", "-3-5"]]
    assert [a for a, _ in first["history"]] == ["open", "evidence_added"]
    assert first["events"][0][0] == "casework.case_opened"
    assert first["events"][0][1]  # with the deadlines it started


async def test_returns_each_assessments_case(cw: Casework) -> None:
    homes, items = plan(cw, "C")
    async with cw.sessionmaker() as session, session.begin():
        cases = await service.on_risk_assessed_many(
            session, cw.ctx, [service.Assessed(i, uuid.uuid4(), uuid.uuid4()) for i in items]
        )
    assert [c.household_id if c else None for c in cases] == [
        homes[0],
        homes[0],
        None,
        homes[1],
        homes[3],
        homes[2],
    ]
    assert cases[0] is cases[1]

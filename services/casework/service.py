"""Casework's use cases: open cases from assessments, start and sweep the statutory clocks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import deadlines
from services.casework.models import Case, CaseDeadline, CaseEvent
from services.casework.repository import CalendarRepository, CaseRepository
from services.casework.workdays import CalendarOverride, WorkingCalendar
from shared.clock import Clock
from shared.contracts.casework import CaseOpenedV1, DeadlineBreachedV1, DeadlineV1
from shared.contracts.common import SourceRefV1
from shared.contracts.screening import RiskAssessedV1
from shared.messaging.outbox import Outbox

SYSTEM = "system"
# Breach escalation ladder (village → township → county): a clock still unmet this many days
# after its breach moves one level up, so a county sees what its villages could not fix.
ESCALATION_LADDER = ("village", "township", "county")
ESCALATE_AFTER_DAYS = 3


@dataclass(frozen=True)
class CaseworkContext:
    """What casework's use cases need besides the session."""

    outbox: Outbox
    clock: Clock


async def load_calendar(session: AsyncSession) -> WorkingCalendar:
    """Return the official working-day calendar with the admin's overrides applied."""
    rows = await CalendarRepository(session).overrides()
    return WorkingCalendar(
        overrides=[CalendarOverride(day=r.day, kind=r.kind, reason=r.reason) for r in rows]  # type: ignore[arg-type]
    )


def policy_of(case: Case) -> deadlines.DeadlinePolicy:
    """Return the deadline policy bound to a case when it opened."""
    return deadlines.DeadlinePolicy.model_validate(case.deadline_policy)


def start_clocks(
    session: AsyncSession,
    case: Case,
    *,
    event: deadlines.StartEvent,
    at: datetime,
    calendar: WorkingCalendar,
) -> list[CaseDeadline]:
    """Create the deadline rows whose clock this event starts, from the case's own policy."""
    created = []
    for rule in policy_of(case).rules_starting_on(event):
        if rule.applies_to is not None and rule.applies_to not in case.facts.get("labels", []):
            continue
        due = deadlines.due_date(rule, at, calendar)
        row = CaseDeadline(
            id=uuid.uuid4(),
            case_id=case.id,
            kind=str(rule.kind),
            bound=rule.bound,
            due_date=due,
            due_at=deadlines.due_instant(due),
            started_at=at,
            citation=rule.citation,
        )
        session.add(row)
        created.append(row)
    return created


def record(
    session: AsyncSession,
    case: Case,
    *,
    at: datetime,
    actor: str,
    actor_role: str,
    action: str,
    to_stage: str,
    from_stage: str | None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> CaseEvent:
    """Append one entry to the case history."""
    entry = CaseEvent(
        case_id=case.id,
        at=at,
        actor=actor,
        actor_role=actor_role,
        action=action,
        from_stage=from_stage,
        to_stage=to_stage,
        reason=reason,
        data=data or {},
    )
    session.add(entry)
    return entry


def _merge_sources(
    existing: list[dict[str, Any]], new: tuple[SourceRefV1, ...]
) -> list[dict[str, Any]]:
    merged = list(existing)
    seen = {tuple(sorted(s.items())) for s in existing}
    for src in new:
        item = src.model_dump(exclude_none=True)
        key = tuple(sorted(item.items()))
        if key not in seen:
            seen.add(key)
            merged.append(item)
    return merged


async def on_risk_assessed(
    session: AsyncSession,
    ctx: CaseworkContext,
    assessed: RiskAssessedV1,
    *,
    correlation_id: uuid.UUID,
    causation_id: uuid.UUID,
) -> Case | None:
    """Open a case for an assessment that calls for one, or add the evidence to the live case."""
    now = ctx.clock.now()
    repo = CaseRepository(session)
    case = await repo.open_for_household(assessed.household_id)
    if case is not None:
        case.sources = _merge_sources(case.sources, assessed.sources)
        case.score, case.level = assessed.score, assessed.level
        case.categories = list(assessed.categories)
        case.reasons = [r.model_dump() for r in assessed.reasons]
        case.review_flags = [r.model_dump() for r in assessed.review_flags]
        case.updated_at = now
        record(
            session,
            case,
            at=now,
            actor=SYSTEM,
            actor_role=SYSTEM,
            action="evidence_added",
            from_stage=case.stage,
            to_stage=case.stage,
            data={"assessment_id": str(assessed.assessment_id), "score": assessed.score},
        )
        return case
    if not assessed.opens_case:
        return None
    policy = deadlines.load_default_deadline_policy()
    case = Case(
        id=uuid.uuid4(),
        household_id=assessed.household_id,
        episode_id=assessed.episode_id,
        region_code=assessed.village_code,
        stage="opened",
        opened_at=now,
        head_name=assessed.head.name if assessed.head else None,
        head_id_masked=assessed.head.id_masked if assessed.head else None,
        score=assessed.score,
        level=assessed.level,
        categories=list(assessed.categories),
        reasons=[r.model_dump() for r in assessed.reasons],
        review_flags=[r.model_dump() for r in assessed.review_flags],
        sources=_merge_sources([], assessed.sources),
        deadline_policy=policy.model_dump(mode="json"),
        facts={"must_verify": assessed.must_verify},
        updated_at=now,
    )
    session.add(case)
    await session.flush()
    calendar = await load_calendar(session)
    clocks = start_clocks(session, case, event="case_opened", at=now, calendar=calendar)
    record(
        session,
        case,
        at=now,
        actor=SYSTEM,
        actor_role=SYSTEM,
        action="open",
        from_stage=None,
        to_stage="opened",
        data={"assessment_id": str(assessed.assessment_id), "score": assessed.score},
    )
    await ctx.outbox.add(
        session,
        CaseOpenedV1(
            case_id=case.id,
            episode_id=case.episode_id,
            household_id=case.household_id,
            village_code=case.region_code,
            opened_at=now,
            sources=tuple(SourceRefV1.model_validate(s) for s in case.sources),
            deadlines=tuple(DeadlineV1(kind=c.kind, due=c.due_date) for c in clocks),
        ),
        subject_key=str(case.household_id),
        occurred_at=now,
        now=now,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
    return case


async def sweep(session: AsyncSession, ctx: CaseworkContext, *, limit: int) -> int:
    """Mark live deadlines past due as breached, once each, and publish the breach."""
    now = ctx.clock.now()
    repo = CaseRepository(session)
    due = await repo.due_for_sweep(now, limit)
    for clock in due:
        clock.breached_at = now
        clock.escalation_level = ESCALATION_LADDER[0]
        case = await repo.get(clock.case_id)
        assert case is not None
        await ctx.outbox.add(
            session,
            DeadlineBreachedV1(
                case_id=clock.case_id,
                deadline_id=clock.id,
                kind=clock.kind,
                due=clock.due_date,
                breached_at=now,
                escalation_level=ESCALATION_LADDER[0],
                village_code=case.region_code,
            ),
            subject_key=str(case.household_id),
            occurred_at=now,
            now=now,
        )
    return len(due)

"""All of casework's SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import ColumnElement, Select, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from services.casework.models import (
    LIVE_CLOCK,
    CalendarOverrideRow,
    CalendarYearDeclaration,
    Case,
    CaseDeadline,
    CaseEvent,
    CaseVisit,
    Helper,
    HelperAssignment,
    PlanItem,
)


def region_prefix(scope: str) -> str:
    """Return the code prefix every region inside scope starts with.

    Region codes nest (province 2 ⊂ city 4 ⊂ county 6 ⊂ township 9 ⊂ village 12 digits), so
    "inside my region" is a prefix match that an index on region_code can serve.
    """
    prefix = scope
    for full, cut in ((12, 9), (9, 6), (6, 4), (4, 2)):
        if len(prefix) == full and set(prefix[cut:]) == {"0"}:
            prefix = prefix[:cut]
    return prefix


def overdue_clock() -> tuple[ColumnElement[bool], ...]:
    """Return models.OVERDUE_CLOCK as qualified column expressions, safe inside joins."""
    return (
        CaseDeadline.breached_at.is_not(None),
        CaseDeadline.met_at.is_(None),
        CaseDeadline.closed_at.is_(None),
    )


def sweep_statement(now: datetime, limit: int) -> Select[CaseDeadline]:
    """Return the sweep query: live clocks past their due instant, oldest first."""
    # The LIVE_CLOCK text is the partial index's own predicate, so the planner can serve the
    # query from ix_case_deadline_live_due alone, in due order, and stop after `limit` rows.
    return (
        select(CaseDeadline)
        .where(text(LIVE_CLOCK), CaseDeadline.due_at <= now)
        .order_by(CaseDeadline.due_at)
        .limit(limit)
    )


class CaseRepository:
    """Cases, their clocks and their history."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, case_id: uuid.UUID) -> Case | None:
        """Return a case by id."""
        return await self.session.get(Case, case_id)

    async def for_clock_entries(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Case]:
        """Return cases by id with only what a clock-only history entry and its event read.

        The sweep reads up to a batch of cases at once and never looks at their facts,
        sources, screening reasons or procedure, most of each row; touching one of those
        on a case returned here raises instead of querying.
        """
        wanted = set(case_ids)
        if not wanted:
            return {}
        stmt = (
            select(Case)
            .where(Case.id.in_(wanted))
            .options(
                load_only(
                    Case.household_id,
                    Case.region_code,
                    Case.stage,
                    Case.deadline_policy,
                    Case.version,
                    raiseload=True,
                )
            )
        )
        return {case.id: case for case in (await self.session.execute(stmt)).scalars()}

    async def get_for_update(self, case_id: uuid.UUID) -> Case | None:
        """Return a case locked for the rest of the transaction (PostgreSQL)."""
        # FOR NO KEY UPDATE: it serialises changes to the case but, unlike FOR UPDATE, lets
        # the sweeper insert history rows referring to it (their FK check takes KEY SHARE).
        # The sweeper already holds clock locks at that point, so FOR UPDATE here could
        # deadlock with it.
        stmt = select(Case).where(Case.id == case_id).with_for_update(key_share=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def open_for_households(
        self, household_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Case]:
        """Return the live cases of several households, locked in household order."""
        wanted = sorted(set(household_ids))
        if not wanted:
            return {}
        stmt = (
            select(Case)
            .where(Case.household_id.in_(wanted), Case.closed_at.is_(None))
            .order_by(Case.household_id)
            .with_for_update(key_share=True)
        )
        return {c.household_id: c for c in (await self.session.execute(stmt)).scalars()}

    def _listing(self, *, region: str, stage: str | None, overdue: bool) -> Select[Case]:
        stmt = select(Case).where(Case.region_code.startswith(region_prefix(region)))
        if stage:
            stmt = stmt.where(Case.stage == stage)
        if overdue:
            breached = select(CaseDeadline.case_id).where(*overdue_clock()).scalar_subquery()
            stmt = stmt.where(Case.id.in_(breached))
        return stmt

    async def page(
        self,
        *,
        region: str,
        stage: str | None,
        overdue: bool,
        page: int,
        size: int,
    ) -> tuple[list[Case], int]:
        """Return a page of cases inside a region, newest first, and the total."""
        stmt = self._listing(region=region, stage=stage, overdue=overdue)
        total = (
            await self.session.execute(select(func.count()).select_from(stmt.subquery()))
        ).scalar_one()
        rows = await self.session.execute(
            stmt.order_by(Case.opened_at.desc(), Case.id).offset((page - 1) * size).limit(size)
        )
        return list(rows.scalars()), int(total)

    async def deadlines_of(
        self, case_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[CaseDeadline]]:
        """Return the clocks of several cases, keyed by case."""
        out: dict[uuid.UUID, list[CaseDeadline]] = {cid: [] for cid in case_ids}
        if not case_ids:
            return out
        stmt = (
            select(CaseDeadline)
            .where(CaseDeadline.case_id.in_(case_ids))
            .order_by(CaseDeadline.due_date, CaseDeadline.kind, CaseDeadline.started_at)
        )
        for row in (await self.session.execute(stmt)).scalars():
            out[row.case_id].append(row)
        return out

    async def clocks_for_update(self, case_id: uuid.UUID) -> list[CaseDeadline]:
        """Return every clock of a case, locked so the sweeper skips them meanwhile."""
        stmt = (
            select(CaseDeadline)
            .where(CaseDeadline.case_id == case_id)
            .order_by(CaseDeadline.due_date, CaseDeadline.kind, CaseDeadline.started_at)
            .with_for_update()
        )
        return list((await self.session.execute(stmt)).scalars())

    async def history(self, case_id: uuid.UUID) -> list[CaseEvent]:
        """Return a case's history, oldest first."""
        stmt = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        return list((await self.session.execute(stmt)).scalars())

    async def due_for_sweep(self, now: datetime, limit: int) -> list[CaseDeadline]:
        """Return live deadlines past their due instant, oldest first, locked (SKIP LOCKED)."""
        stmt = sweep_statement(now, limit).with_for_update(skip_locked=True)
        return list((await self.session.execute(stmt)).scalars())

    async def due_for_escalation(self, now: datetime, limit: int) -> list[CaseDeadline]:
        """Return breached, unmet clocks whose next escalation is due, locked (SKIP LOCKED)."""
        stmt = (
            select(CaseDeadline)
            .where(CaseDeadline.escalate_at.is_not(None), CaseDeadline.escalate_at <= now)
            .order_by(CaseDeadline.escalate_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def count_overdue(self) -> int:
        """Return how many breached deadlines are still owed."""
        stmt = select(func.count()).select_from(CaseDeadline).where(*overdue_clock())
        return int((await self.session.execute(stmt)).scalar_one())

    async def overdue_page(
        self, *, region: str, level: str | None, page: int, size: int
    ) -> tuple[list[tuple[CaseDeadline, Case]], int]:
        """Return breached, owed clocks inside a region, oldest breach first, and the total."""
        stmt = (
            select(CaseDeadline, Case)
            .join(Case, Case.id == CaseDeadline.case_id)
            .where(*overdue_clock(), Case.region_code.startswith(region_prefix(region)))
        )
        if level:
            stmt = stmt.where(CaseDeadline.escalation_level == level)
        total = (
            await self.session.execute(select(func.count()).select_from(stmt.subquery()))
        ).scalar_one()
        rows = await self.session.execute(
            stmt.order_by(CaseDeadline.breached_at, CaseDeadline.id)
            .offset((page - 1) * size)
            .limit(size)
        )
        return [(d, c) for d, c in rows.all()], int(total)

    async def visits(self, case_id: uuid.UUID) -> list[CaseVisit]:
        """Return a case's visits, newest first."""
        return (await self.visits_of([case_id]))[case_id]

    async def visits_of(self, case_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[CaseVisit]]:
        """Return the visits of several cases, keyed by case, each newest first."""
        out: dict[uuid.UUID, list[CaseVisit]] = {cid: [] for cid in case_ids}
        if not case_ids:
            return out
        stmt = (
            select(CaseVisit)
            .where(CaseVisit.case_id.in_(case_ids))
            .order_by(CaseVisit.visited_on.desc(), CaseVisit.recorded_at.desc())
        )
        for row in (await self.session.execute(stmt)).scalars():
            out[row.case_id].append(row)
        return out

    async def plan_items(self, case_id: uuid.UUID) -> list[PlanItem]:
        """Return a case's plan items in the order they were recorded."""
        stmt = (
            select(PlanItem)
            .where(PlanItem.case_id == case_id)
            .order_by(PlanItem.created_at, PlanItem.measure_code)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def plan_item(self, case_id: uuid.UUID, item_id: uuid.UUID) -> PlanItem | None:
        """Return one plan item of a case."""
        stmt = select(PlanItem).where(PlanItem.case_id == case_id, PlanItem.id == item_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def current_assignment(
        self, case_id: uuid.UUID
    ) -> tuple[HelperAssignment, Helper] | None:
        """Return the case's current helper assignment with the helper."""
        stmt = (
            select(HelperAssignment, Helper)
            .join(Helper, Helper.helper_id == HelperAssignment.helper_id)
            .where(HelperAssignment.case_id == case_id, HelperAssignment.ended_at.is_(None))
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row[0], row[1])


class HelperRepository:
    """Responsible helpers and their workload."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, helper_id: str) -> Helper | None:
        """Return a helper by id."""
        return await self.session.get(Helper, helper_id)

    async def workload(self, region: str) -> list[tuple[Helper, int, int]]:
        """Return helpers serving in, or assigned to a live case in, a region, with counts.

        Each row is (helper, live cases overall, live cases inside the region): the first
        is the person's workload, the second what the caller's region asks of them.
        """
        prefix = region_prefix(region)
        live = (
            select(HelperAssignment.helper_id, Case.region_code)
            .join(Case, Case.id == HelperAssignment.case_id)
            .where(HelperAssignment.ended_at.is_(None), Case.closed_at.is_(None))
            .subquery()
        )
        overall = (
            select(live.c.helper_id, func.count().label("n")).group_by(live.c.helper_id).subquery()
        )
        inside = (
            select(live.c.helper_id, func.count().label("n"))
            .where(live.c.region_code.startswith(prefix))
            .group_by(live.c.helper_id)
            .subquery()
        )
        stmt = (
            select(
                Helper,
                func.coalesce(overall.c.n, 0),
                func.coalesce(inside.c.n, 0),
            )
            .outerjoin(overall, overall.c.helper_id == Helper.helper_id)
            .outerjoin(inside, inside.c.helper_id == Helper.helper_id)
            .where(or_(Helper.region_code.startswith(prefix), inside.c.n.is_not(None)))
            .order_by(func.coalesce(overall.c.n, 0).desc(), Helper.name, Helper.helper_id)
        )
        rows = await self.session.execute(stmt)
        return [(h, int(total), int(in_region)) for h, total, in_region in rows.all()]


class CalendarRepository:
    """Admin overrides of the working-day calendar and the years declared complete."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def overrides(self, year: int | None = None) -> list[CalendarOverrideRow]:
        """Return the overrides (of one year, if given), by day."""
        stmt = select(CalendarOverrideRow).order_by(CalendarOverrideRow.day)
        if year is not None:
            stmt = stmt.where(
                CalendarOverrideRow.day >= date(year, 1, 1),
                CalendarOverrideRow.day <= date(year, 12, 31),
            )
        return list((await self.session.execute(stmt)).scalars())

    async def override_days(self, days: Sequence[date]) -> list[CalendarOverrideRow]:
        """Return the overrides already stored for any of these days."""
        stmt = select(CalendarOverrideRow).where(CalendarOverrideRow.day.in_(days))
        return list((await self.session.execute(stmt)).scalars())

    async def declarations(self) -> list[CalendarYearDeclaration]:
        """Return every year an admin declared complete, by year."""
        stmt = select(CalendarYearDeclaration).order_by(CalendarYearDeclaration.year)
        return list((await self.session.execute(stmt)).scalars())

    async def declaration(self, year: int) -> CalendarYearDeclaration | None:
        """Return the declaration of one year."""
        return await self.session.get(CalendarYearDeclaration, year)

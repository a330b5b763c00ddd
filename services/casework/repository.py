"""All of casework's SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework.models import CalendarOverrideRow, Case, CaseDeadline, CaseEvent


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


class CaseRepository:
    """Cases, their clocks and their history."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, case_id: uuid.UUID) -> Case | None:
        """Return a case by id."""
        return await self.session.get(Case, case_id)

    async def open_for_household(self, household_id: uuid.UUID) -> Case | None:
        """Return the household's live case, if any (locked for update on PostgreSQL)."""
        stmt = (
            select(Case)
            .where(Case.household_id == household_id, Case.closed_at.is_(None))
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    def _listing(self, *, region: str, stage: str | None, overdue: bool) -> Select[Case]:
        stmt = select(Case).where(Case.region_code.startswith(region_prefix(region)))
        if stage:
            stmt = stmt.where(Case.stage == stage)
        if overdue:
            breached = (
                select(CaseDeadline.case_id)
                .where(CaseDeadline.breached_at.is_not(None), CaseDeadline.met_at.is_(None))
                .scalar_subquery()
            )
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
            .order_by(CaseDeadline.due_date, CaseDeadline.kind)
        )
        for row in (await self.session.execute(stmt)).scalars():
            out[row.case_id].append(row)
        return out

    async def history(self, case_id: uuid.UUID) -> list[CaseEvent]:
        """Return a case's history, oldest first."""
        stmt = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        return list((await self.session.execute(stmt)).scalars())

    async def due_for_sweep(self, now: datetime, limit: int) -> list[CaseDeadline]:
        """Return live deadlines past their due instant, oldest first, locked (SKIP LOCKED)."""
        stmt = (
            select(CaseDeadline)
            .where(
                CaseDeadline.met_at.is_(None),
                CaseDeadline.breached_at.is_(None),
                CaseDeadline.bound == "deadline",
                CaseDeadline.due_at <= now,
            )
            .order_by(CaseDeadline.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def count_overdue(self) -> int:
        """Return how many breached deadlines are still unmet."""
        stmt = select(func.count()).where(
            CaseDeadline.breached_at.is_not(None), CaseDeadline.met_at.is_(None)
        )
        return int((await self.session.execute(stmt)).scalar_one())


class CalendarRepository:
    """Admin overrides of the working-day calendar."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def overrides(self) -> list[CalendarOverrideRow]:
        """Return every override."""
        return list((await self.session.execute(select(CalendarOverrideRow))).scalars())

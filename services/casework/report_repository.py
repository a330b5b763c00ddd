"""Casework's report queries: clocks for compliance, cases for the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework.models import Case, CaseDeadline
from services.casework.repository import region_prefix
from services.casework.sla import ClockFact


@dataclass(frozen=True)
class CaseFact:
    """What the pipeline report needs of one case."""

    region_code: str
    stage: str
    categories: tuple[str, ...]
    sources: tuple[dict[str, Any], ...]
    reasons: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class OverdueFact:
    """A breached, still-owed clock with its case."""

    case_id: str
    region_code: str
    stage: str
    head_name: str | None
    kind: str
    due_date: date
    escalation_level: str | None


# models.OVERDUE_CLOCK spelled with qualified columns: joined with "case", whose closed_at
# would otherwise make the bare text ambiguous.
_OWED = and_(
    CaseDeadline.breached_at.is_not(None),
    CaseDeadline.met_at.is_(None),
    CaseDeadline.closed_at.is_(None),
)


class ReportRepository:
    """Read-only queries behind casework's reports."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def clock_facts(
        self, region: str, *, kinds: tuple[str, ...], due_from: date
    ) -> list[ClockFact]:
        """Return the clocks of these kinds due on or after due_from, in the region."""
        stmt = (
            select(
                CaseDeadline.kind,
                CaseDeadline.bound,
                Case.region_code,
                CaseDeadline.due_date,
                CaseDeadline.met_at,
                CaseDeadline.breached_at,
                CaseDeadline.paused_at,
                CaseDeadline.closed_at,
            )
            .join(Case, Case.id == CaseDeadline.case_id)
            .where(
                CaseDeadline.kind.in_(kinds),
                CaseDeadline.due_date >= due_from,
                Case.region_code.startswith(region_prefix(region)),
            )
        )
        return [ClockFact(*row) for row in (await self.session.execute(stmt)).all()]

    async def case_facts(self, region: str) -> list[CaseFact]:
        """Return every case in the region (open and closed)."""
        stmt = select(
            Case.region_code, Case.stage, Case.categories, Case.sources, Case.reasons
        ).where(Case.region_code.startswith(region_prefix(region)))
        return [
            CaseFact(
                region_code=code,
                stage=stage,
                categories=tuple(categories or ()),
                sources=tuple(sources or ()),
                reasons=tuple(reasons or ()),
            )
            for code, stage, categories, sources, reasons in (
                await self.session.execute(stmt)
            ).all()
        ]

    async def overdue(self, region: str, *, limit: int) -> tuple[list[OverdueFact], int]:
        """Return the longest-overdue owed clocks in the region (up to limit) and their count."""
        base = (
            select(CaseDeadline, Case)
            .join(Case, Case.id == CaseDeadline.case_id)
            .where(_OWED, Case.region_code.startswith(region_prefix(region)))
        )
        rows = (
            await self.session.execute(
                base.order_by(CaseDeadline.due_date, CaseDeadline.id).limit(limit)
            )
        ).all()
        items = [
            OverdueFact(
                case_id=str(c.id),
                region_code=c.region_code,
                stage=c.stage,
                head_name=c.head_name,
                kind=d.kind,
                due_date=d.due_date,
                escalation_level=d.escalation_level,
            )
            for d, c in rows
        ]
        count_stmt = (
            select(func.count())
            .select_from(CaseDeadline)
            .join(Case, Case.id == CaseDeadline.case_id)
            .where(_OWED, Case.region_code.startswith(region_prefix(region)))
        )
        total = int((await self.session.execute(count_stmt)).scalar_one())
        return items, total

"""All of screening's SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.screening.models import (
    Household,
    IncomeRecord,
    Member,
    PolicyRecord,
    RiskAssessment,
    RiskEpisode,
    Signal,
)


class RegistryRepository:
    """Households, members and incomes."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def member_by_ref(self, person_ref: str) -> Member | None:
        """Return the member whose resident ID hashes to person_ref."""
        stmt = select(Member).where(Member.person_ref == person_ref)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def members_by_refs(self, refs: Sequence[str]) -> dict[str, Member]:
        """Return the members among these person refs, keyed by ref."""
        if not refs:
            return {}
        stmt = select(Member).where(Member.person_ref.in_(refs))
        return {m.person_ref: m for m in (await self.session.execute(stmt)).scalars()}

    async def household(self, household_id: uuid.UUID) -> Household | None:
        """Return a household by id."""
        return await self.session.get(Household, household_id)

    async def members_of(self, household_id: uuid.UUID) -> list[Member]:
        """Return a household's members."""
        stmt = select(Member).where(Member.household_id == household_id).order_by(Member.id)
        return list((await self.session.execute(stmt)).scalars())

    async def incomes_of(self, household_id: uuid.UUID, since: date) -> list[IncomeRecord]:
        """Return a household's income records from a month on."""
        stmt = select(IncomeRecord).where(
            IncomeRecord.household_id == household_id, IncomeRecord.month >= since
        )
        return list((await self.session.execute(stmt)).scalars())


class EpisodeRepository:
    """Risk episodes, their signals and assessments."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_episode(self, household_id: uuid.UUID) -> RiskEpisode | None:
        """Return the household's open episode, if any (locked for update on PostgreSQL)."""
        stmt = (
            select(RiskEpisode)
            .where(RiskEpisode.household_id == household_id, RiskEpisode.closed_at.is_(None))
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def signals_of(self, episode_id: uuid.UUID) -> list[Signal]:
        """Return an episode's signals in arrival order."""
        stmt = select(Signal).where(Signal.episode_id == episode_id).order_by(Signal.received_at)
        return list((await self.session.execute(stmt)).scalars())

    async def signal_by_event(self, event_id: uuid.UUID) -> Signal | None:
        """Return the signal stored for a source event."""
        stmt = select(Signal).where(Signal.event_id == event_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def assessments_of(self, episode_id: uuid.UUID) -> list[RiskAssessment]:
        """Return an episode's assessment history, oldest first."""
        stmt = (
            select(RiskAssessment)
            .where(RiskAssessment.episode_id == episode_id)
            .order_by(RiskAssessment.assessed_at)
        )
        return list((await self.session.execute(stmt)).scalars())


class PolicyRepository:
    """Scoring policy versions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active(self) -> list[PolicyRecord]:
        """Return every active policy version."""
        stmt = select(PolicyRecord).where(PolicyRecord.status == "active")
        return list((await self.session.execute(stmt)).scalars())

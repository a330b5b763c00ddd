"""Screening's report queries: registry counts, department outcomes and area alerts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from services.screening.models import (
    AreaAlert,
    Household,
    Inclusion,
    Member,
    RiskEpisode,
    Signal,
    VillageProfile,
)
from services.screening.township_table import ESCAPED_VILLAGE, HouseholdFact


def _within(column: InstrumentedAttribute[str], prefix: str) -> ColumnElement[bool]:
    # Region codes are digits only, so a plain LIKE prefix needs no escaping.
    return column.like(f"{prefix}%")


@dataclass(frozen=True)
class AlertOutcome:
    """One department alert and whether its household was included because of it."""

    department: str
    alert_type: str | None
    region_code: str
    received_at: datetime
    included: bool


@dataclass(frozen=True)
class CauseSignal:
    """A signal as the area watch sees it: where, when, about which household, why."""

    household_id: uuid.UUID
    region_code: str
    occurred_on: date
    channel: str
    alert_type: str | None
    difficulty_types: tuple[str, ...]
    # Lets the area watch tell a batch's own signals from those stored before it.
    event_id: uuid.UUID | None = None


class ReportRepository:
    """Read-only queries behind the reports."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def household_facts(self, prefix: str) -> list[HouseholdFact]:
        """Return every live household in scope with its labels and current member count."""
        # Grouped by the primary key, so labels and region come along (functional dependency
        # on PostgreSQL, plain on SQLite); the join walks member's household_id index.
        stmt = (
            select(Household.region_code, Household.labels, func.count(Member.id))
            .outerjoin(
                Member, and_(Member.household_id == Household.id, Member.removed_at.is_(None))
            )
            .where(Household.merged_into_id.is_(None), _within(Household.region_code, prefix))
            .group_by(Household.id)
        )
        rows = (await self.session.execute(stmt)).all()
        return [
            HouseholdFact(region_code=code, labels=frozenset(labels or ()), persons=int(n))
            for code, labels, n in rows
        ]

    async def escaped_villages(self, prefix: str) -> list[str]:
        """Return the codes of villages in scope labelled 脱贫村."""
        stmt = select(VillageProfile.village_code, VillageProfile.labels).where(
            _within(VillageProfile.village_code, prefix)
        )
        return [
            code
            for code, labels in (await self.session.execute(stmt)).all()
            if ESCAPED_VILLAGE in (labels or ())
        ]

    async def alert_outcomes(self, prefix: str, *, since: datetime | None) -> list[AlertOutcome]:
        """Return every department alert in scope, marked if its episode ended in inclusion."""
        stmt = (
            select(
                Signal.id,
                Signal.department,
                Signal.alert_type,
                Household.region_code,
                Signal.received_at,
                Inclusion.case_id,
            )
            .join(Household, Household.id == Signal.household_id)
            .outerjoin(
                Inclusion,
                and_(
                    Inclusion.episode_id == Signal.episode_id,
                    Inclusion.household_id == Signal.household_id,
                ),
            )
            .where(Signal.channel == "alert", _within(Household.region_code, prefix))
        )
        if since is not None:
            stmt = stmt.where(Signal.received_at >= since)
        # One episode could in principle be included by two cases (one closed, a later one
        # reopened); each alert still counts once.
        by_signal: dict[uuid.UUID, AlertOutcome] = {}
        for signal_id, department, alert_type, region, received, case_id in (
            await self.session.execute(stmt)
        ).all():
            earlier = by_signal.get(signal_id)
            by_signal[signal_id] = AlertOutcome(
                department=department or "unknown",
                alert_type=alert_type,
                region_code=region,
                received_at=received,
                included=case_id is not None or (earlier is not None and earlier.included),
            )
        out = list(by_signal.values())
        return out

    async def cause_signals(self, prefix: str, *, start: date, end: date) -> list[CauseSignal]:
        """Return signals in scope that occurred in [start, end]."""
        stmt = (
            select(
                Signal.household_id,
                Household.region_code,
                Signal.occurred_on,
                Signal.channel,
                Signal.alert_type,
                Signal.difficulty_types,
                Signal.event_id,
            )
            .join(Household, Household.id == Signal.household_id)
            .where(
                Signal.occurred_on >= start,
                Signal.occurred_on <= end,
                _within(Household.region_code, prefix),
            )
        )
        return [
            CauseSignal(
                household_id=hid,
                region_code=region,
                occurred_on=day,
                channel=channel,
                alert_type=alert_type,
                difficulty_types=tuple(kinds or ()),
                event_id=event_id,
            )
            for hid, region, day, channel, alert_type, kinds, event_id in (
                await self.session.execute(stmt)
            ).all()
        ]

    async def area_alerts(self, prefix: str, *, since: date | None) -> Sequence[AreaAlert]:
        """Return area alerts of townships in scope, newest week first."""
        stmt = select(AreaAlert).where(_within(AreaAlert.township_code, prefix))
        if since is not None:
            stmt = stmt.where(AreaAlert.week_start >= since)
        stmt = stmt.order_by(AreaAlert.week_start.desc(), AreaAlert.township_code, AreaAlert.cause)
        return (await self.session.execute(stmt)).scalars().all()

    async def area_alerts_among(
        self, keys: Iterable[tuple[str, str, date]]
    ) -> set[tuple[str, str, date]]:
        """Return which (township, cause, week) keys have raised their alert already."""
        wanted = set(keys)
        if not wanted:
            return set()
        stmt = select(AreaAlert.township_code, AreaAlert.cause, AreaAlert.week_start).where(
            AreaAlert.township_code.in_(sorted({k[0] for k in wanted})),
            AreaAlert.week_start.in_(sorted({k[2] for k in wanted})),
        )
        found = {(t, c, w) for t, c, w in (await self.session.execute(stmt)).all()}
        return found & wanted

    async def open_episode_of(self, household_id: uuid.UUID) -> RiskEpisode | None:
        """Return the household's open episode, or else its latest one."""
        stmt = (
            select(RiskEpisode)
            .where(RiskEpisode.household_id == household_id)
            .order_by(RiskEpisode.closed_at.is_not(None), RiskEpisode.opened_at.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def inclusion(self, case_id: uuid.UUID) -> Inclusion | None:
        """Return the inclusion recorded for a case, if any."""
        return await self.session.get(Inclusion, case_id)

    async def household(self, household_id: uuid.UUID) -> Household | None:
        """Return a household by id."""
        return await self.session.get(Household, household_id)

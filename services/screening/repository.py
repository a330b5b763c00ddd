"""All of screening's SQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import (
    JSON,
    Column,
    Text,
    Uuid,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import Table

from services.screening.models import (
    Household,
    IncomeRecord,
    Member,
    PolicyRecord,
    RiskAssessment,
    RiskEpisode,
    RosterImport,
    Signal,
)
from shared.db import dialect_of
from shared.regions import full_code

# Keeps IN lists well under SQLite's bound-parameter limit and PostgreSQL's statement size.
IN_CHUNK: Final = 2000
_SEGMENT_STARTS: Final = {12: 9, 9: 6, 6: 4, 4: 2, 2: 0}


def scope_prefix(region: str) -> str | None:
    """Return the code prefix of everything inside a region (141122 → '141122'); None if bad."""
    padded = full_code(region)
    if padded is None:
        return None
    for end, start in _SEGMENT_STARTS.items():
        if set(padded[start:end]) != {"0"}:
            return padded[:end]
    return None


def chunked(items: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    """Yield consecutive slices of at most size items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def bulk_insert(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows at once: COPY on PostgreSQL, one executemany elsewhere."""
    if not rows:
        return
    if dialect_of(session) != "postgresql":
        await session.execute(insert(table), list(rows))
        return
    # COPY is several times faster than INSERT for the hundreds of thousands of monthly
    # income records a county roster carries; it runs inside the session's transaction.
    columns = [c.name for c in table.columns if c.name in rows[0]]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    processors = [_copy_value(table.c[name]) for name in columns]
    records = [
        tuple(process(row[name]) for name, process in zip(columns, processors, strict=True))
        for row in rows
    ]
    await driver.copy_records_to_table(table.name, records=records, columns=columns)


def _copy_value(column: Column[Any]) -> Callable[[Any], Any]:
    # COPY bypasses SQLAlchemy's bind processing: JSON columns must arrive as JSON text.
    if isinstance(column.type, JSON):
        return lambda value: json.dumps(value, ensure_ascii=False)
    return lambda value: value


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

    async def households(self, household_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Household]:
        """Return several households by id."""
        out: dict[uuid.UUID, Household] = {}
        for part in chunked(sorted(set(household_ids))):
            stmt = select(Household).where(Household.id.in_(part))
            out.update((h.id, h) for h in (await self.session.execute(stmt)).scalars())
        return out

    async def members_of(self, household_id: uuid.UUID) -> list[Member]:
        """Return a household's current members (not those the roster says have left)."""
        stmt = (
            select(Member)
            .where(Member.household_id == household_id, Member.removed_at.is_(None))
            .order_by(Member.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def household_for_update(self, household_id: uuid.UUID) -> Household | None:
        """Return a household locked against concurrent changes (PostgreSQL)."""
        stmt = select(Household).where(Household.id == household_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_roster_no(self, roster_no: str) -> Household | None:
        """Return the household the roster knows by this number."""
        stmt = select(Household).where(Household.roster_no == roster_no)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def has_episodes(self, household_id: uuid.UUID) -> bool:
        """Tell whether any risk episode was ever opened for the household."""
        stmt = select(exists().where(RiskEpisode.household_id == household_id))
        return bool((await self.session.execute(stmt)).scalar_one())

    async def list_households(
        self,
        prefix: str,
        *,
        provisional: bool | None,
        roster_no: str | None,
        offset: int,
        limit: int,
    ) -> tuple[list[Household], int]:
        """Return a page of the households inside a region prefix, and how many there are."""
        where = [Household.region_code.startswith(prefix), Household.merged_into_id.is_(None)]
        if provisional is not None:
            where.append(Household.provisional.is_(provisional))
        if roster_no:
            where.append(Household.roster_no == roster_no)
        total = (
            await self.session.execute(select(func.count()).select_from(Household).where(*where))
        ).scalar_one()
        stmt = (
            select(Household)
            .where(*where)
            .order_by(Household.region_code, Household.roster_no, Household.id)
            .offset(offset)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars()), int(total)

    async def members_of_many(self, household_ids: Sequence[uuid.UUID]) -> list[Member]:
        """Return the current members of several households."""
        out: list[Member] = []
        for part in chunked(household_ids):
            stmt = (
                select(Member)
                .where(Member.household_id.in_(part), Member.removed_at.is_(None))
                .order_by(Member.household_id, Member.id)
            )
            out.extend((await self.session.execute(stmt)).scalars())
        return out

    async def incomes_of_many(
        self, household_ids: Sequence[uuid.UUID], since: date | None = None
    ) -> list[IncomeRecord]:
        """Return the income records of several households (from a month on)."""
        out: list[IncomeRecord] = []
        for part in chunked(household_ids):
            stmt = select(IncomeRecord).where(IncomeRecord.household_id.in_(part))
            if since is not None:
                stmt = stmt.where(IncomeRecord.month >= since)
            out.extend((await self.session.execute(stmt)).scalars())
        return out

    async def incomes_of(self, household_id: uuid.UUID, since: date) -> list[IncomeRecord]:
        """Return a household's income records from a month on."""
        stmt = select(IncomeRecord).where(
            IncomeRecord.household_id == household_id, IncomeRecord.month >= since
        )
        return list((await self.session.execute(stmt)).scalars())

    async def roster_page(
        self,
        prefix: str,
        *,
        after: tuple[str, str, uuid.UUID] | None,
        limit: int,
        include_provisional: bool,
    ) -> list[Household]:
        """Return the next households of a region for export, by village and roster number."""
        key = tuple_(Household.region_code, func.coalesce(Household.roster_no, ""), Household.id)
        stmt = select(Household).where(
            Household.region_code.startswith(prefix), Household.merged_into_id.is_(None)
        )
        if not include_provisional:
            stmt = stmt.where(Household.provisional.is_(False))
        if after is not None:
            stmt = stmt.where(
                key > tuple_(literal(after[0]), literal(after[1]), literal(after[2], Uuid))
            )
        stmt = stmt.order_by(*key.clauses).limit(limit)
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

    async def open_episodes(
        self, household_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, RiskEpisode]:
        """Return the open episodes of several households, locked for update on PostgreSQL.

        Locked in household order, so two workers locking overlapping sets wait for each
        other instead of deadlocking.
        """
        out: dict[uuid.UUID, RiskEpisode] = {}
        for part in chunked(sorted(set(household_ids))):
            stmt = (
                select(RiskEpisode)
                .where(RiskEpisode.household_id.in_(part), RiskEpisode.closed_at.is_(None))
                .order_by(RiskEpisode.household_id)
                .with_for_update()
            )
            out.update((e.household_id, e) for e in (await self.session.execute(stmt)).scalars())
        return out

    async def signals_of_many(
        self, episode_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Signal]]:
        """Return the signals of several episodes, each in arrival order."""
        out: dict[uuid.UUID, list[Signal]] = {e: [] for e in episode_ids}
        for part in chunked(list(out)):
            stmt = (
                select(Signal)
                .where(Signal.episode_id.in_(part))
                .order_by(Signal.received_at, Signal.id)
            )
            for signal in (await self.session.execute(stmt)).scalars():
                out[signal.episode_id].append(signal)
        return out

    async def signals_of(self, episode_id: uuid.UUID) -> list[Signal]:
        """Return an episode's signals in arrival order."""
        stmt = select(Signal).where(Signal.episode_id == episode_id).order_by(Signal.received_at)
        return list((await self.session.execute(stmt)).scalars())

    async def signal_by_event(self, event_id: uuid.UUID) -> Signal | None:
        """Return the signal stored for a source event."""
        stmt = select(Signal).where(Signal.event_id == event_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def episode(self, episode_id: uuid.UUID) -> RiskEpisode | None:
        """Return an episode by id."""
        return await self.session.get(RiskEpisode, episode_id)

    async def assessment(self, assessment_id: uuid.UUID) -> RiskAssessment | None:
        """Return an assessment by id."""
        return await self.session.get(RiskAssessment, assessment_id)

    async def list_in_region(
        self, prefix: str, *, open_only: bool, offset: int, limit: int
    ) -> tuple[list[tuple[RiskEpisode, str]], int]:
        """Return a page of episodes (with their household's region code) and the total."""
        where = [Household.region_code.startswith(prefix)]
        if open_only:
            where.append(RiskEpisode.closed_at.is_(None))
        base = select(RiskEpisode, Household.region_code).join(
            Household, Household.id == RiskEpisode.household_id
        )
        total = (
            await self.session.execute(
                select(func.count())
                .select_from(RiskEpisode)
                .join(Household, Household.id == RiskEpisode.household_id)
                .where(*where)
            )
        ).scalar_one()
        stmt = (
            base.where(*where)
            .order_by(RiskEpisode.last_signal_at.desc(), RiskEpisode.id)
            .offset(offset)
            .limit(limit)
        )
        rows = [(episode, region) for episode, region in (await self.session.execute(stmt)).all()]
        return rows, int(total)

    async def signal_counts(self, episode_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Return how many signals each episode holds."""
        if not episode_ids:
            return {}
        stmt = (
            select(Signal.episode_id, func.count())
            .where(Signal.episode_id.in_(episode_ids))
            .group_by(Signal.episode_id)
        )
        return {e: int(n) for e, n in (await self.session.execute(stmt)).all()}

    async def latest_assessments(
        self, episode_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, RiskAssessment]:
        """Return each episode's most recent assessment."""
        if not episode_ids:
            return {}
        stmt = (
            select(RiskAssessment)
            .where(RiskAssessment.episode_id.in_(episode_ids))
            .order_by(RiskAssessment.assessed_at)
        )
        # Later rows overwrite earlier ones: what is left is the latest per episode.
        return {a.episode_id: a for a in (await self.session.execute(stmt)).scalars()}

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


@dataclass(frozen=True, slots=True)
class IncomeSpreadRow:
    """An annual total to write as twelve monthly records ending at end_month."""

    household_id: uuid.UUID
    end_month: date
    component: str
    share: Decimal  # each of the first eleven months
    last: Decimal  # the end month, which takes the rounding remainder


def _spread_lines(row: IncomeSpreadRow) -> list[dict[str, Any]]:
    months = []
    index = row.end_month.year * 12 + row.end_month.month - 1
    for offset in range(12):
        back = index - offset
        months.append(date(back // 12, back % 12 + 1, 1))
    return [
        {
            "id": uuid.uuid4(),
            "household_id": row.household_id,
            "month": month,
            "component": row.component,
            "amount": row.last if offset == 0 else row.share,
        }
        for offset, month in enumerate(months)
    ]


@dataclass(frozen=True, slots=True)
class KnownMember:
    """Where a person the roster names already is in the registry."""

    member_id: uuid.UUID
    household_id: uuid.UUID
    provisional: bool
    in_roster: bool


@dataclass(frozen=True, slots=True)
class KnownHousehold:
    """A roster household already in the registry."""

    household_id: uuid.UUID
    content_hash: str | None


class RosterRepository:
    """Set-at-a-time reads and writes of a roster import."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def households_by_roster_no(self, numbers: Sequence[str]) -> dict[str, KnownHousehold]:
        """Return the registry's households for these roster numbers."""
        out: dict[str, KnownHousehold] = {}
        for part in chunked(numbers):
            stmt = select(Household.roster_no, Household.id, Household.content_hash).where(
                Household.roster_no.in_(part)
            )
            for number, household_id, digest in (await self.session.execute(stmt)).all():
                if number is not None:
                    out[number] = KnownHousehold(household_id, digest)
        return out

    async def members_by_ref(self, refs: Sequence[str]) -> dict[str, KnownMember]:
        """Return where each of these people is registered, if anywhere."""
        out: dict[str, KnownMember] = {}
        for part in chunked(refs):
            stmt = (
                select(
                    Member.person_ref,
                    Member.id,
                    Member.household_id,
                    Household.provisional,
                    Member.in_roster,
                )
                .join(Household, Household.id == Member.household_id)
                .where(Member.person_ref.in_(part))
            )
            for ref, member_id, household_id, provisional, in_roster in (
                await self.session.execute(stmt)
            ).all():
                out[ref] = KnownMember(member_id, household_id, provisional, in_roster)
        return out

    async def roster_members_of(
        self, household_ids: Sequence[uuid.UUID]
    ) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
        """Return (member id, household id, person ref) of current roster members."""
        out: list[tuple[uuid.UUID, uuid.UUID, str]] = []
        for part in chunked(household_ids):
            stmt = select(Member.id, Member.household_id, Member.person_ref).where(
                Member.household_id.in_(part),
                Member.in_roster.is_(True),
                Member.removed_at.is_(None),
            )
            out.extend((m, h, r) for m, h, r in (await self.session.execute(stmt)).all())
        return out

    async def insert_households(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert new households."""
        await bulk_insert(self.session, Household.__table__, rows)  # type: ignore[arg-type]

    async def update_households(self, rows: Sequence[dict[str, Any]]) -> None:
        """Update households by primary key (each dict carries its id)."""
        if rows:
            await self.session.execute(update(Household), list(rows))

    async def insert_members(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert new members."""
        await bulk_insert(self.session, Member.__table__, rows)  # type: ignore[arg-type]

    async def update_members(self, rows: Sequence[dict[str, Any]]) -> None:
        """Update members by primary key (each dict carries its id)."""
        if rows:
            await self.session.execute(update(Member), list(rows))

    async def mark_removed(self, member_ids: Sequence[uuid.UUID], at: datetime) -> None:
        """Record that the roster no longer lists these members."""
        for part in chunked(member_ids):
            await self.session.execute(
                update(Member).where(Member.id.in_(part)).values(removed_at=at)
            )

    async def replace_incomes(
        self,
        household_ids: Sequence[uuid.UUID],
        lines: Sequence[dict[str, Any]],
        spreads: Sequence[IncomeSpreadRow],
    ) -> None:
        """Delete the households' income records; insert monthly lines and annual spreads."""
        for part in chunked(household_ids):
            await self.session.execute(
                IncomeRecord.__table__.delete().where(IncomeRecord.household_id.in_(part))  # type: ignore[attr-defined]
            )
        if dialect_of(self.session) == "postgresql":
            if spreads:
                await self._expand_on_server(spreads)
            rows = list(lines)
        else:
            rows = [*lines, *(line for row in spreads for line in _spread_lines(row))]
        await bulk_insert(self.session, IncomeRecord.__table__, rows)  # type: ignore[arg-type]

    async def _expand_on_server(self, spreads: Sequence[IncomeSpreadRow]) -> None:
        # An annual total becomes twelve monthly rows. Sending one row per total and letting
        # PostgreSQL expand it moves a twelfth of the data that COPY of the monthly rows
        # would; the amounts themselves are computed in Python (IncomeSpread.shares).
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.execute(
            """
            INSERT INTO income_record (id, household_id, month, component, amount)
            SELECT gen_random_uuid(), t.household_id,
                   (t.end_month - make_interval(months => k.k))::date, t.component,
                   CASE WHEN k.k = 0 THEN t.last ELSE t.share END
            FROM unnest($1::uuid[], $2::date[], $3::varchar[], $4::numeric[], $5::numeric[])
                 AS t(household_id, end_month, component, share, last)
            CROSS JOIN generate_series(0, 11) AS k(k)
            """,
            [r.household_id for r in spreads],
            [r.end_month for r in spreads],
            [r.component for r in spreads],
            [r.share for r in spreads],
            [r.last for r in spreads],
        )

    async def forget_fingerprints(self, household_ids: Iterable[uuid.UUID]) -> None:
        """Make the next import rewrite these households (their members changed elsewhere)."""
        ids = list(household_ids)
        for part in chunked(ids):
            await self.session.execute(
                update(Household).where(Household.id.in_(part)).values(content_hash=None)
            )

    async def save_import(self, record: RosterImport) -> None:
        """Store the record of an import."""
        self.session.add(record)
        await self.session.flush()

    async def get_import(self, import_id: uuid.UUID) -> RosterImport | None:
        """Return an import record."""
        return await self.session.get(RosterImport, import_id)


class MergeRepository:
    """Moves a household's people and history onto another household."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def move_members(self, source: uuid.UUID, target: uuid.UUID) -> int:
        """Move every member; return how many moved."""
        result = await self.session.execute(
            update(Member).where(Member.household_id == source).values(household_id=target)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def demote_heads(self, household_id: uuid.UUID, member_ids: Sequence[uuid.UUID]) -> None:
        """Make these members 'other': the household they joined already has a head."""
        for part in chunked(member_ids):
            await self.session.execute(
                update(Member)
                .where(
                    Member.household_id == household_id,
                    Member.id.in_(part),
                    Member.relation.in_(("head", "self")),
                )
                .values(relation="other")
            )

    async def move_incomes(self, source: uuid.UUID, target: uuid.UUID) -> None:
        """Move income records the target lacks; drop the source's duplicates of its months."""
        taken = select(IncomeRecord.month, IncomeRecord.component).where(
            IncomeRecord.household_id == target
        )
        existing = {(m, c) for m, c in (await self.session.execute(taken)).all()}
        rows = (
            await self.session.execute(
                select(IncomeRecord.id, IncomeRecord.month, IncomeRecord.component).where(
                    IncomeRecord.household_id == source
                )
            )
        ).all()
        clash = [i for i, m, c in rows if (m, c) in existing]
        for part in chunked(clash):
            await self.session.execute(
                IncomeRecord.__table__.delete().where(IncomeRecord.id.in_(part))  # type: ignore[attr-defined]
            )
        await self.session.execute(
            update(IncomeRecord)
            .where(IncomeRecord.household_id == source)
            .values(household_id=target)
        )

    async def move_signals(self, source_episode: uuid.UUID, target_episode: uuid.UUID) -> int:
        """Move an episode's signals into another episode; return how many moved."""
        result = await self.session.execute(
            update(Signal)
            .where(Signal.episode_id == source_episode)
            .values(episode_id=target_episode)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def rehome_history(self, source: uuid.UUID, target: uuid.UUID) -> None:
        """Point the source household's episodes, signals and assessments at the target."""
        for model in (RiskEpisode, Signal, RiskAssessment):
            await self.session.execute(
                update(model).where(model.household_id == source).values(household_id=target)
            )


class PolicyAdminRepository:
    """Every version of every stored scoring policy."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, policy_id: str, version: int, *, lock: bool = False) -> PolicyRecord | None:
        """Return one version of a policy."""
        stmt = select(PolicyRecord).where(
            PolicyRecord.policy_id == policy_id, PolicyRecord.version == version
        )
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def versions_of(self, policy_id: str) -> list[PolicyRecord]:
        """Return every version of a policy, oldest first."""
        stmt = (
            select(PolicyRecord)
            .where(PolicyRecord.policy_id == policy_id)
            .order_by(PolicyRecord.version)
            .with_for_update()
        )
        return list((await self.session.execute(stmt)).scalars())

    async def all(self, status: str | None = None) -> list[PolicyRecord]:
        """Return every stored version, optionally of one status."""
        stmt = select(PolicyRecord).order_by(PolicyRecord.policy_id, PolicyRecord.version)
        if status is not None:
            stmt = stmt.where(PolicyRecord.status == status)
        return list((await self.session.execute(stmt)).scalars())

    async def add(self, record: PolicyRecord) -> None:
        """Store a new version."""
        self.session.add(record)
        await self.session.flush()


class SimulationRepository:
    """What a policy simulation replays: the period's signals and the registry behind them.

    Rows, not ORM objects: a year of a county's signals is a hundred thousand of them, and
    building mapped instances for each would take longer than scoring them all.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _in_period(self, prefix: str, start: date, end: date) -> list[Any]:
        return [
            Signal.occurred_on >= start,
            Signal.occurred_on <= end,
            Household.region_code.startswith(prefix),
        ]

    def _period_households(self, prefix: str, start: date, end: date) -> Any:
        return (
            select(Signal.household_id)
            .join(Household, Household.id == Signal.household_id)
            .where(*self._in_period(prefix, start, end))
            .distinct()
        )

    async def signals(self, prefix: str, start: date, end: date) -> Sequence[Any]:
        """Return the signals about the region's households that occurred in the period."""
        stmt = (
            select(
                Signal.id,
                Signal.episode_id,
                Signal.household_id,
                Signal.member_id,
                Signal.channel,
                Signal.occurred_on,
                Signal.alert_type,
                # Decoded only where not empty: most alerts carry no difficulty types.
                cast(Signal.difficulty_types, Text).label("difficulty_types"),
                Signal.department,
                Signal.amount,
                Signal.count,
                Signal.grade,
                Signal.self_reported_income,
            )
            .join(Household, Household.id == Signal.household_id)
            .where(*self._in_period(prefix, start, end))
            .order_by(Signal.episode_id, Signal.received_at)
        )
        return (await self.session.execute(stmt)).all()

    async def households(self, prefix: str, start: date, end: date) -> Sequence[Any]:
        """Return the households those signals are about."""
        stmt = select(*Household.__table__.columns).where(
            Household.id.in_(self._period_households(prefix, start, end))
        )
        return (await self.session.execute(stmt)).all()

    async def members(self, prefix: str, start: date, end: date) -> Sequence[Any]:
        """Return the current members of those households."""
        stmt = select(*Member.__table__.columns).where(
            Member.household_id.in_(self._period_households(prefix, start, end)),
            Member.removed_at.is_(None),
        )
        return (await self.session.execute(stmt)).all()

    async def incomes(self, prefix: str, start: date, end: date, since: date) -> Sequence[Any]:
        """Return those households' income records from a month on."""
        stmt = select(
            IncomeRecord.household_id,
            IncomeRecord.month,
            IncomeRecord.component,
            IncomeRecord.amount,
        ).where(
            IncomeRecord.household_id.in_(self._period_households(prefix, start, end)),
            IncomeRecord.month >= since,
        )
        return (await self.session.execute(stmt)).all()

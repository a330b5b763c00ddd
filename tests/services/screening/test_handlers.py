"""Screening's consumer: a fetched batch ends exactly where one record at a time ends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from deploy.migrate import migrate
from services.screening.area_watch import AreaWatch
from services.screening.handlers import ScreeningHandlers
from services.screening.models import (
    AreaAlert,
    Member,
    RiskAssessment,
    RiskEpisode,
    Signal,
    outbox_table,
)
from services.screening.worker import screening_outbox
from shared.clock import Clock, FrozenClock
from shared.contracts.common import PersonV1
from shared.contracts.envelope import EventEnvelope
from shared.contracts.intake import AlertReceivedV1, DeclarationReceivedV1
from shared.contracts.registry import build_envelope, decode
from shared.db import UnitOfWork, create_engine, make_sessionmaker
from shared.pii import PiiCipher
from shared.resident_id import mask_resident_id
from shared.settings import DatabaseSettings
from tests.conftest import create_pg_databases, drop_pg_databases
from tests.factories import resident_id

VILLAGE = "141122202201"
START = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # a Wednesday, China time
LONG_AGO = START - timedelta(days=400)  # beyond the default policy's 365-day episode window


class Ticking(Clock):
    """A clock that moves one second on every reading, the same way in every run."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


def person(cipher: PiiCipher, serial: int, relation: str | None = None) -> PersonV1:
    number = resident_id(serial)
    return PersonV1(
        person_ref=cipher.keyed_hash(number),
        id_cipher=cipher.encrypt(number),
        id_masked=mask_resident_id(number),
        name=f"村民{serial}",
        relation=relation,
    )


def wrap(payload: Any, at: datetime) -> EventEnvelope[Any]:
    return build_envelope(
        payload, producer="intake", subject_key="k", occurred_at=at, produced_at=at
    )


def alert(cipher: PiiCipher, serial: int, n: int, at: datetime) -> EventEnvelope[Any]:
    return wrap(
        AlertReceivedV1(
            department="medical_insurance",
            alert_id=f"MI-{serial}-{n}",
            alert_type="medical_insurance.large_out_of_pocket",
            subject=person(cipher, serial),
            village_code=VILLAGE,
            amount=Decimal("48000"),
            occurred_on=at.date(),
            received_at=at,
        ),
        at,
    )


def declaration(
    cipher: PiiCipher,
    serial: int,
    at: datetime,
    *,
    members: Sequence[int] = (),
    kinds: tuple[str, ...] = ("illness",),
) -> EventEnvelope[Any]:
    return wrap(
        DeclarationReceivedV1(
            receipt_no=f"SB-{serial}",
            village_code=VILLAGE,
            applicant=person(cipher, serial, "self"),
            members=tuple(person(cipher, m, "child") for m in members),
            difficulty_types=kinds,
            income_last_12_months=Decimal("3000"),
            received_at=at,
        ),
        at,
    )


def events(cipher: PiiCipher) -> tuple[list[EventEnvelope[Any]], list[EventEnvelope[Any]]]:
    """An earlier signal, then a batch that exercises every in-batch dependency."""
    earlier = [alert(cipher, 1, 0, LONG_AGO)]
    batch = [
        # Two unknown people in one declaration; an alert about the second must find the
        # household the first signal of the batch created.
        declaration(cipher, 2, START, members=[3], kinds=("disability",)),
        alert(cipher, 3, 1, START),
        # Person 1's episode lapsed long ago: closed, and a new one opened and then joined.
        alert(cipher, 1, 2, START),
        alert(cipher, 1, 3, START),
        # Illness in one township-week (the medical alerts above count too): the area alert
        # is raised by the fifth such signal, with the figures of that moment (5 signals,
        # 4 households), not those of the end of the batch (10 signals, 8 households).
        *(declaration(cipher, 10 + i, START) for i in range(6)),
        # The same person twice in one batch.
        declaration(cipher, 12, START),
    ]
    return earlier, batch


@asynccontextmanager
async def two_databases(
    backend: str, tmp_path: Path, pg_templates: dict[str, str]
) -> AsyncIterator[tuple[UnitOfWork, UnitOfWork]]:
    if backend == "postgres":
        first = await create_pg_databases(pg_templates)
        second = await create_pg_databases(pg_templates)
        urls = [first["screening"], second["screening"]]
    else:
        urls = [f"sqlite+aiosqlite:///{tmp_path}/one.db", f"sqlite+aiosqlite:///{tmp_path}/two.db"]
        for url in urls:
            await migrate("screening", url)
    engines = [create_engine(DatabaseSettings(url=u)) for u in urls]
    try:
        yield UnitOfWork(make_sessionmaker(engines[0])), UnitOfWork(make_sessionmaker(engines[1]))
    finally:
        for engine in engines:
            await engine.dispose()
        if backend == "postgres":
            await drop_pg_databases(first)
            await drop_pg_databases(second)


def handlers_for(cipher: PiiCipher, clock: Ticking) -> ScreeningHandlers:
    outbox = screening_outbox()
    # The watch reads a clock of its own: a raise between two signals would otherwise move
    # the ticking clock under the later ones in one run and not the other.
    watch = AreaWatch(clock=FrozenClock(START), outbox=outbox)
    return ScreeningHandlers(clock=clock, outbox=outbox, cipher=cipher, area_watch=watch)


async def outcome(uow: UnitOfWork) -> dict[str, Any]:
    """Everything the handlers wrote, with random ids replaced by the people they concern."""
    async with uow.read() as session:
        members = list((await session.execute(select(Member))).scalars())
        people: dict[uuid.UUID, frozenset[str]] = {}
        for m in members:
            people[m.household_id] = people.get(m.household_id, frozenset()) | {m.person_ref}
        member_ref = {m.id: m.person_ref for m in members}
        episodes = list((await session.execute(select(RiskEpisode))).scalars())
        episode_key = {
            e.id: (people[e.household_id], e.opened_at, e.closed_at, e.last_signal_at)
            for e in episodes
        }
        signals = list((await session.execute(select(Signal))).scalars())
        assessments = list((await session.execute(select(RiskAssessment))).scalars())
        alerts = list((await session.execute(select(AreaAlert))).scalars())
        outbox = (await session.execute(select(outbox_table).order_by(outbox_table.c.id))).all()
    per_subject: dict[Any, list[Any]] = {}
    for row in outbox:
        payload: Any = decode(row.value.encode()).payload
        if row.event_type == "screening.risk_assessed":
            subject: Any = people[payload.household_id]
            fact: Any = (
                payload.score,
                payload.level,
                payload.categories,
                payload.must_verify,
                payload.opens_case,
                len(payload.sources),
                payload.assessed_at,
            )
        else:
            subject = payload.township_code
            fact = (payload.cause, payload.week_start, payload.signal_count, payload.threshold)
        per_subject.setdefault(subject, []).append((row.event_type, fact))
    return {
        "households": sorted(sorted(p) for p in people.values()),
        "episodes": sorted(episode_key.values(), key=repr),
        "signals": sorted(
            (
                str(s.event_id),
                people[s.household_id],
                member_ref.get(s.member_id) if s.member_id else None,
                episode_key[s.episode_id],
                s.received_at,
            )
            for s in signals
        ),
        "assessments": sorted(
            (str(a.source_event_id), episode_key[a.episode_id], a.score, a.level, a.assessed_at)
            for a in assessments
        ),
        "area_alerts": sorted(
            (a.township_code, a.cause, a.week_start, a.signal_count, a.household_count)
            for a in alerts
        ),
        "events": per_subject,
    }


async def test_a_batch_ends_where_one_record_at_a_time_ends(
    backend: str, tmp_path: Path, pg_templates: dict[str, str], cipher: PiiCipher
) -> None:
    earlier, batch = events(cipher)
    async with two_databases(backend, tmp_path, pg_templates) as (together, apart):
        clock = Ticking(LONG_AGO)
        one = handlers_for(cipher, clock)
        async with together.transaction() as session:
            await one.on_batch(session, earlier)
        clock.at = START
        async with together.transaction() as session:
            await one.on_batch(session, batch)
        clock.at = LONG_AGO
        other = handlers_for(cipher, clock)
        for envelope in earlier:
            async with apart.transaction() as session:
                await other.on_event(session, envelope)
        clock.at = START
        for envelope in batch:
            async with apart.transaction() as session:
                await other.on_event(session, envelope)
        batched, singly = await outcome(together), await outcome(apart)

    assert batched == singly
    # And the run did meet what the batch was built to exercise:
    assert len(batched["signals"]) == len(earlier) + len(batch)
    assert [sorted(p) for p in batched["households"] if len(p) == 2], (
        "person 3's alert joined the household person 2's declaration created"
    )
    assert sum(1 for e in batched["episodes"] if e[2] is not None) == 1  # the lapsed one
    assert batched["area_alerts"] == [("141122202000", "illness", date(2026, 11, 16), 5, 4)]

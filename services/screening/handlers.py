"""Screening's consumer: match each signal to a household, join its episode, rescore it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.screening import assess
from services.screening.area_watch import AreaWatch, Watched
from services.screening.assess import INCOME_LOOKBACK
from services.screening.models import (
    Household,
    IncomeRecord,
    Member,
    PolicyRecord,
    RiskAssessment,
    RiskEpisode,
    Signal,
)
from services.screening.policy import ScoringPolicy
from services.screening.repository import EpisodeRepository, PolicyRepository, RegistryRepository
from shared.clock import Clock, china_date
from shared.contracts.common import PersonV1, SourceRefV1
from shared.contracts.envelope import EventEnvelope
from shared.contracts.intake import AlertReceivedV1, DeclarationReceivedV1, ReportReceivedV1
from shared.contracts.screening import RiskAssessedV1
from shared.messaging.outbox import Outbox, Staged
from shared.pii import PiiCipher
from shared.resident_id import birth_date_of


@dataclass(frozen=True)
class IncomingSignal:
    """The parts of any intake event screening works with."""

    channel: str
    subject: PersonV1
    members: tuple[PersonV1, ...]
    village_code: str | None
    receipt_no: str | None = None
    department: str | None = None
    alert_id: str | None = None
    report_id: str | None = None
    alert_type: str | None = None
    difficulty_types: tuple[str, ...] = ()
    amount: Decimal | None = None
    count: int | None = None
    grade: int | None = None
    self_reported_income: Decimal | None = None
    occurred_on: date | None = None


def source_of(signal: Signal) -> SourceRefV1:
    """Return the contract form of a stored signal's origin."""
    return SourceRefV1(
        kind=signal.channel,  # type: ignore[arg-type]
        receipt_no=signal.receipt_no,
        department=signal.department,
        alert_id=signal.alert_id,
        report_id=signal.report_id,
    )


def incoming_of(envelope: EventEnvelope[Any]) -> IncomingSignal:
    """Return the screening view of an intake event."""
    p = envelope.payload
    if isinstance(p, DeclarationReceivedV1):
        # A self-declaration always goes to verification (应纳尽纳).
        return IncomingSignal(
            channel="declaration",
            subject=p.applicant,
            members=p.members,
            village_code=p.village_code,
            receipt_no=p.receipt_no,
            difficulty_types=p.difficulty_types,
            self_reported_income=p.income_last_12_months,
            occurred_on=china_date(p.received_at),
        )
    if isinstance(p, AlertReceivedV1):
        return IncomingSignal(
            channel="alert",
            subject=p.subject,
            members=(),
            village_code=p.village_code,
            department=p.department,
            alert_id=p.alert_id,
            alert_type=p.alert_type,
            amount=p.amount,
            count=p.count,
            grade=p.grade,
            occurred_on=p.occurred_on,
        )
    if isinstance(p, ReportReceivedV1):
        # A cadre's visit report always goes to verification too.
        return IncomingSignal(
            channel="report",
            subject=p.subject,
            members=p.members,
            village_code=p.village_code,
            report_id=p.report_id,
            difficulty_types=p.difficulty_types,
            self_reported_income=p.income_last_12_months,
            occurred_on=p.visit_date,
        )
    raise TypeError(f"screening does not take {envelope.event_type}")


class _Batch:
    """What one batch read from the registry, and what it has added so far, in memory.

    Each signal is matched, joined and scored against this state in arrival order, so the
    batch ends where applying its signals one transaction at a time would have ended.
    """

    def __init__(self) -> None:
        self.people: dict[str, Member] = {}
        self.households: dict[uuid.UUID, Household] = {}
        self.episodes: dict[uuid.UUID, RiskEpisode] = {}
        self.signals: dict[uuid.UUID, list[Signal]] = {}
        self.new_households: list[Household] = []
        self.new_members: list[Member] = []
        self.new_episodes: list[RiskEpisode] = []


class ScreeningHandlers:
    """Handlers for intake.events: one batch path, which a single record also takes."""

    def __init__(
        self,
        *,
        clock: Clock,
        outbox: Outbox,
        cipher: PiiCipher,
        area_watch: AreaWatch | None = None,
    ) -> None:
        self.clock = clock
        self.outbox = outbox
        self.cipher = cipher
        self.area_watch = area_watch
        # Policy bodies never change once stored (a change is a new version): parse each once.
        self._parsed: dict[uuid.UUID, ScoringPolicy] = {}

    def table(self) -> dict[tuple[str, int], Any]:
        """Return the (event_type, version) → handler map for the consumer runner."""
        return {
            ("intake.declaration_received", 1): self.on_event,
            ("intake.alert_received", 1): self.on_event,
            ("intake.report_received", 1): self.on_event,
        }

    async def on_event(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        """Apply one intake event (the record-by-record path)."""
        await self.on_batch(session, [envelope])

    async def on_batch(
        self, session: AsyncSession, envelopes: Sequence[EventEnvelope[Any]]
    ) -> None:
        """Apply fresh intake events in order, then run the area watch over what they stored."""
        stored = await self.ingest_many(session, [(e, incoming_of(e)) for e in envelopes])
        if self.area_watch is not None:
            # The same transaction: an area alert and the signals that tripped it commit together.
            await self.area_watch.after_signals(session, stored)

    async def ingest_many(
        self,
        session: AsyncSession,
        items: Sequence[tuple[EventEnvelope[Any], IncomingSignal]],
    ) -> list[Watched]:
        """Match, store, join episodes, score and publish the assessments of several signals.

        A fixed number of statements whatever the batch size: the registry rows, open
        episodes and their signals are read once, the new rows written in one flush per table.
        """
        if not items:
            return []
        registry = RegistryRepository(session)
        episodes = EpisodeRepository(session)
        nows = [self.clock.now() for _ in items]
        batch = _Batch()
        refs = {
            ref
            for _, incoming in items
            for ref in (incoming.subject.person_ref, *(m.person_ref for m in incoming.members))
        }
        batch.people = await registry.members_by_refs(sorted(refs))
        batch.households = await registry.households(
            [m.household_id for m in batch.people.values()]
        )
        matched = [
            self._match(batch, incoming, now)
            for (_, incoming), now in zip(items, nows, strict=True)
        ]
        if batch.new_households:
            session.add_all(batch.new_households)
            session.add_all(batch.new_members)
            await session.flush()
        household_ids = list({h.id for h, _ in matched})
        batch.episodes = await episodes.open_episodes(household_ids)
        batch.signals = await episodes.signals_of_many([e.id for e in batch.episodes.values()])
        members: dict[uuid.UUID, list[Member]] = {h: [] for h in household_ids}
        for m in await registry.members_of_many(household_ids):
            members[m.household_id].append(m)
        earliest = min(china_date(now) for now in nows) - INCOME_LOOKBACK
        incomes: dict[uuid.UUID, list[IncomeRecord]] = {h: [] for h in household_ids}
        for i in await registry.incomes_of_many(household_ids, earliest):
            incomes[i.household_id].append(i)
        records = await PolicyRepository(session).active()
        active = [self._policy(r) for r in records]
        chosen: dict[tuple[str, date], ScoringPolicy] = {}

        signals: list[Signal] = []
        assessments: list[RiskAssessment] = []
        staged: list[Staged] = []
        stored: list[Watched] = []
        for (envelope, incoming), now, (household, member) in zip(
            items, nows, matched, strict=True
        ):
            today = china_date(now)
            key = (household.region_code, today)
            policy = chosen.get(key)
            if policy is None:
                policy = chosen[key] = assess.choose_policy(active, *key)
            episode = self._join_episode(batch, household, now, assess.episode_window_days(policy))
            signal = self._signal(envelope, incoming, household, episode, member, now)
            signals.append(signal)
            episode_signals = batch.signals[episode.id]
            episode_signals.append(signal)
            since = today - INCOME_LOOKBACK
            result = assess.assess(
                household=household,
                members=members[household.id],
                incomes=[i for i in incomes[household.id] if i.month >= since],
                signals=episode_signals,
                policy=policy,
                as_of=today,
            )
            assessment = self._assessment(envelope, household, episode, result, now)
            assessments.append(assessment)
            staged.append(
                self._risk_assessed(
                    envelope, incoming, household, assessment, result, episode_signals
                )
            )
            stored.append(Watched(signal, household.region_code, envelope.correlation_id))
        # Closing a lapsed episode must reach the database before its successor, which the
        # one-open-episode-per-household index would otherwise refuse.
        await session.flush()
        session.add_all(batch.new_episodes)
        await session.flush()
        session.add_all(signals)
        await session.flush()
        session.add_all(assessments)
        await session.flush()
        await self.outbox.add_many(session, staged, now=nows[-1])
        return stored

    def _policy(self, record: PolicyRecord) -> ScoringPolicy:
        parsed = self._parsed.get(record.id)
        if parsed is None:
            parsed = self._parsed[record.id] = ScoringPolicy.model_validate(record.body)
        return parsed

    def _match(
        self, batch: _Batch, incoming: IncomingSignal, now: datetime
    ) -> tuple[Household, Member | None]:
        refs = [incoming.subject.person_ref, *(m.person_ref for m in incoming.members)]
        for ref in refs:
            found = batch.people.get(ref)
            if found is not None:
                return (
                    batch.households[found.household_id],
                    batch.people.get(incoming.subject.person_ref),
                )
        # Monitoring covers every rural resident, not only the roster: someone unknown gets a
        # provisional household, to be linked by a roster import or a caseworker later.
        region = incoming.village_code or self._county_of(incoming.subject)
        household = Household(
            id=uuid.uuid4(),
            village_code=incoming.village_code,
            region_code=region,
            provisional=True,
            labels=[],
            facts={},
            created_at=now,
            updated_at=now,
        )
        batch.households[household.id] = household
        batch.new_households.append(household)
        subject_member = self._new_member(household, incoming.subject, "self")
        added = [subject_member]
        for m in incoming.members:
            if m.person_ref != incoming.subject.person_ref:
                added.append(self._new_member(household, m, m.relation))
        for member in added:
            # Later signals of the batch about these people find this household.
            batch.people.setdefault(member.person_ref, member)
        batch.new_members.extend(added)
        return household, subject_member

    def _county_of(self, person: PersonV1) -> str:
        # The first six digits of a resident ID name the county that issued it.
        return person.id_masked[:6]

    def _new_member(self, household: Household, person: PersonV1, relation: str | None) -> Member:
        try:
            born: date | None = birth_date_of(self.cipher.decrypt(person.id_cipher))
        except Exception:
            born = None
        return Member(
            id=uuid.uuid4(),
            household_id=household.id,
            person_ref=person.person_ref,
            id_cipher=person.id_cipher,
            id_masked=person.id_masked,
            name=person.name,
            relation=relation,
            birth_date=born,
            removed_at=None,
        )

    def _join_episode(
        self, batch: _Batch, household: Household, now: datetime, window_days: int
    ) -> RiskEpisode:
        episode = batch.episodes.get(household.id)
        if episode is not None:
            if now - episode.last_signal_at <= timedelta(days=window_days):
                episode.last_signal_at = now
                return episode
            # The window lapsed: that episode is history, this signal starts a new one.
            episode.closed_at = now
        episode = RiskEpisode(
            id=uuid.uuid4(),
            household_id=household.id,
            opened_at=now,
            last_signal_at=now,
            closed_at=None,
        )
        batch.episodes[household.id] = episode
        batch.signals[episode.id] = []
        batch.new_episodes.append(episode)
        return episode

    def _signal(
        self,
        envelope: EventEnvelope[Any],
        incoming: IncomingSignal,
        household: Household,
        episode: RiskEpisode,
        member: Member | None,
        now: datetime,
    ) -> Signal:
        return Signal(
            id=uuid.uuid4(),
            event_id=envelope.event_id,
            household_id=household.id,
            episode_id=episode.id,
            member_id=member.id if member else None,
            channel=incoming.channel,
            receipt_no=incoming.receipt_no,
            department=incoming.department,
            alert_id=incoming.alert_id,
            report_id=incoming.report_id,
            alert_type=incoming.alert_type,
            difficulty_types=list(incoming.difficulty_types),
            amount=incoming.amount,
            count=incoming.count,
            grade=incoming.grade,
            self_reported_income=incoming.self_reported_income,
            occurred_on=incoming.occurred_on or china_date(now),
            received_at=now,
        )

    def _assessment(
        self,
        envelope: EventEnvelope[Any],
        household: Household,
        episode: RiskEpisode,
        result: assess.Result,
        now: datetime,
    ) -> RiskAssessment:
        return RiskAssessment(
            id=uuid.uuid4(),
            episode_id=episode.id,
            household_id=household.id,
            source_event_id=envelope.event_id,
            score=result.score,
            level=result.level,
            categories=list(result.categories),
            reasons=[r.model_dump() for r in result.reasons],
            review_flags=[r.model_dump() for r in result.review_flags],
            must_verify=result.must_verify,
            opens_case=result.opens_case,
            policy_id=result.policy_id,
            policy_version=result.policy_version,
            assessed_at=now,
        )

    def _risk_assessed(
        self,
        envelope: EventEnvelope[Any],
        incoming: IncomingSignal,
        household: Household,
        assessment: RiskAssessment,
        result: assess.Result,
        signals: Sequence[Signal],
    ) -> Staged:
        a = assessment
        return Staged(
            payload=RiskAssessedV1(
                assessment_id=a.id,
                household_id=household.id,
                episode_id=a.episode_id,
                village_code=household.village_code or household.region_code,
                head=incoming.subject if incoming.channel != "alert" else None,
                score=a.score,
                level=a.level,
                categories=tuple(a.categories),
                reasons=result.reasons,
                review_flags=result.review_flags,
                must_verify=a.must_verify,
                opens_case=a.opens_case,
                policy_id=a.policy_id,
                policy_version=a.policy_version,
                source_event_id=envelope.event_id,
                sources=tuple(source_of(s) for s in signals),
                assessed_at=a.assessed_at,
            ),
            subject_key=str(household.id),
            occurred_at=a.assessed_at,
            correlation_id=envelope.correlation_id,
            causation_id=envelope.event_id,
        )

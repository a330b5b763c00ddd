"""Screening's consumer: match each signal to a household, join its episode, rescore it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.screening import assess
from services.screening.models import Household, Member, RiskAssessment, RiskEpisode, Signal
from services.screening.repository import EpisodeRepository, PolicyRepository, RegistryRepository
from shared.clock import Clock, china_date
from shared.contracts.common import PersonV1, SourceRefV1
from shared.contracts.envelope import EventEnvelope
from shared.contracts.intake import AlertReceivedV1, DeclarationReceivedV1, ReportReceivedV1
from shared.contracts.screening import ReasonV1, RiskAssessedV1
from shared.messaging.outbox import Outbox
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


class ScreeningHandlers:
    """Handlers for intake.events."""

    def __init__(self, *, clock: Clock, outbox: Outbox, cipher: PiiCipher) -> None:
        self.clock = clock
        self.outbox = outbox
        self.cipher = cipher

    def table(self) -> dict[tuple[str, int], Any]:
        """Return the (event_type, version) → handler map for the consumer runner."""
        return {
            ("intake.declaration_received", 1): self.on_declaration_received,
            ("intake.alert_received", 1): self.on_alert_received,
            ("intake.report_received", 1): self.on_report_received,
        }

    async def on_declaration_received(
        self, session: AsyncSession, envelope: EventEnvelope[Any]
    ) -> None:
        """A self-declaration: always goes to verification (应纳尽纳)."""
        p: DeclarationReceivedV1 = envelope.payload
        await self.ingest(
            session,
            envelope,
            IncomingSignal(
                channel="declaration",
                subject=p.applicant,
                members=p.members,
                village_code=p.village_code,
                receipt_no=p.receipt_no,
                difficulty_types=p.difficulty_types,
                self_reported_income=p.income_last_12_months,
                occurred_on=china_date(p.received_at),
            ),
        )

    async def on_alert_received(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        """A department's data-comparison alert."""
        p: AlertReceivedV1 = envelope.payload
        await self.ingest(
            session,
            envelope,
            IncomingSignal(
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
            ),
        )

    async def on_report_received(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        """A cadre's visit report: always goes to verification."""
        p: ReportReceivedV1 = envelope.payload
        await self.ingest(
            session,
            envelope,
            IncomingSignal(
                channel="report",
                subject=p.subject,
                members=p.members,
                village_code=p.village_code,
                report_id=p.report_id,
                difficulty_types=p.difficulty_types,
                self_reported_income=p.income_last_12_months,
                occurred_on=p.visit_date,
            ),
        )

    async def ingest(
        self, session: AsyncSession, envelope: EventEnvelope[Any], incoming: IncomingSignal
    ) -> RiskAssessment:
        """Match, store, join the episode, score it and publish the assessment."""
        now = self.clock.now()
        registry = RegistryRepository(session)
        household, member = await self._match(session, registry, incoming, now)
        policies = await PolicyRepository(session).active()
        policy = assess.policy_for(policies, household.region_code, china_date(now))
        episode = await self._join_episode(
            session, household, now, assess.episode_window_days(policy)
        )
        signal = Signal(
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
        session.add(signal)
        await session.flush()
        episodes = EpisodeRepository(session)
        signals = await episodes.signals_of(episode.id)
        members = await registry.members_of(household.id)
        incomes = await registry.incomes_of(household.id, china_date(now) - timedelta(days=800))
        result = assess.assess(
            household=household,
            members=members,
            incomes=incomes,
            signals=signals,
            policy=policy,
            as_of=china_date(now),
        )
        assessment = RiskAssessment(
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
        session.add(assessment)
        head = incoming.subject if incoming.channel != "alert" else None
        await self.outbox.add(
            session,
            RiskAssessedV1(
                assessment_id=assessment.id,
                household_id=household.id,
                episode_id=episode.id,
                village_code=household.village_code or household.region_code,
                head=head,
                score=result.score,
                level=result.level,
                categories=tuple(result.categories),
                reasons=tuple(result.reasons),
                review_flags=tuple(result.review_flags),
                must_verify=result.must_verify,
                opens_case=result.opens_case,
                policy_id=result.policy_id,
                policy_version=result.policy_version,
                source_event_id=envelope.event_id,
                sources=tuple(source_of(s) for s in signals),
                assessed_at=now,
            ),
            subject_key=str(household.id),
            occurred_at=now,
            now=now,
            correlation_id=envelope.correlation_id,
            causation_id=envelope.event_id,
        )
        return assessment

    async def _match(
        self,
        session: AsyncSession,
        registry: RegistryRepository,
        incoming: IncomingSignal,
        now: datetime,
    ) -> tuple[Household, Member | None]:
        refs = [incoming.subject.person_ref, *(m.person_ref for m in incoming.members)]
        known = await registry.members_by_refs(refs)
        for ref in refs:
            found = known.get(ref)
            if found is not None:
                household = await registry.household(found.household_id)
                assert household is not None
                return household, known.get(incoming.subject.person_ref)
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
        session.add(household)
        subject_member = self._new_member(household, incoming.subject, "self")
        session.add(subject_member)
        for m in incoming.members:
            if m.person_ref != incoming.subject.person_ref:
                session.add(self._new_member(household, m, m.relation))
        await session.flush()
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
        )

    async def _join_episode(
        self, session: AsyncSession, household: Household, now: datetime, window_days: int
    ) -> RiskEpisode:
        episode = await EpisodeRepository(session).open_episode(household.id)
        if episode is not None:
            if now - episode.last_signal_at <= timedelta(days=window_days):
                episode.last_signal_at = now
                return episode
            # The window lapsed: that episode is history, this signal starts a new one.
            episode.closed_at = now
            await session.flush()
        episode = RiskEpisode(
            id=uuid.uuid4(), household_id=household.id, opened_at=now, last_signal_at=now
        )
        session.add(episode)
        await session.flush()
        return episode


def reason_list(items: list[dict[str, Any]]) -> tuple[ReasonV1, ...]:
    """Rebuild contract reasons from stored JSON."""
    return tuple(ReasonV1.model_validate(i) for i in items)

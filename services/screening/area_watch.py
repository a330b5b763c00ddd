"""Early warning of clustered risk (规模性返贫): same-cause signal spikes per township and week.

The rule is versioned policy data (`policies/area_alerts.json`): a township's signals of one
cause in one Monday-to-Sunday week are compared with its own weekly counts of that cause over
the previous `baseline_weeks` weeks; the week alerts when its count reaches `min_signals`,
involves at least `min_households` households, and exceeds mean + k·sd of the baseline.
The arithmetic here is pure; `AreaWatch.after_signals` runs it inside the consumer's
transaction right after a batch of signals is stored, and raises `screening.area_alert_raised` through
the outbox at most once per township, cause and week.
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.screening.models import AreaAlert, Signal
from services.screening.report_repository import CauseSignal, ReportRepository
from shared.clock import Clock
from shared.contracts.screening import AreaAlertRaisedV1
from shared.messaging.outbox import Outbox
from shared.regions import full_code

CENT = Decimal("0.01")


class Cause(BaseModel):
    """One cause: its Chinese name and the signal kinds that count as it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name_zh: str = Field(min_length=1)
    alert_types: tuple[str, ...] = ()
    difficulty_types: tuple[str, ...] = ()


class AreaAlertPolicy(BaseModel):
    """The thresholds of the area watch, with their version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    effective_from: date
    description: str = ""
    baseline_weeks: int = Field(ge=2, le=104)
    k: Decimal = Field(ge=0)
    min_signals: int = Field(ge=1)
    min_households: int = Field(ge=1)
    causes: dict[str, Cause]

    def causes_of(
        self, *, alert_type: str | None, difficulty_types: Iterable[str]
    ) -> tuple[str, ...]:
        """Return every cause a signal counts towards (a declaration may name several)."""
        kinds = set(difficulty_types)
        return tuple(
            code
            for code, cause in self.causes.items()
            if (alert_type is not None and alert_type in cause.alert_types)
            or kinds.intersection(cause.difficulty_types)
        )


@functools.cache
def load_area_alert_policy() -> AreaAlertPolicy:
    """Return the packaged area-alert policy."""
    text = (
        resources.files("services.screening")
        .joinpath("policies/area_alerts.json")
        .read_text(encoding="utf-8")
    )
    return AreaAlertPolicy.model_validate(json.loads(text))


def week_start(day: date) -> date:
    """Return the Monday of the week a day falls in."""
    return day - timedelta(days=day.weekday())


def township_of(region_code: str) -> str | None:
    """Return the 12-digit township code of a stored region code, None above township."""
    padded = full_code(region_code)
    if padded is None or padded[6:9] == "000":
        return None
    return padded[:9] + "000"


@dataclass(frozen=True)
class WeekCount:
    """Signals and distinct households of one cause in one township-week."""

    signals: int
    households: int


@dataclass(frozen=True)
class Spike:
    """The verdict on one township, cause and week."""

    count: WeekCount
    baseline: tuple[int, ...]
    mean: Decimal
    sd: Decimal
    threshold: Decimal
    alert: bool


def judge(current: WeekCount, baseline: Sequence[int], policy: AreaAlertPolicy) -> Spike:
    """Compare a week with its baseline weeks (population sd; every baseline week counts)."""
    n = len(baseline)
    mean = sum(baseline) / n if n else 0.0
    variance = sum((x - mean) ** 2 for x in baseline) / n if n else 0.0
    sd = math.sqrt(variance)
    mean_d = Decimal(str(mean)).quantize(CENT, ROUND_HALF_UP)
    sd_d = Decimal(str(sd)).quantize(CENT, ROUND_HALF_UP)
    # Compared unrounded; the rounded figures are what people read.
    limit = Decimal(str(mean)) + policy.k * Decimal(str(sd))
    alert = (
        current.signals >= policy.min_signals
        and current.households >= policy.min_households
        and Decimal(current.signals) > limit
    )
    return Spike(
        count=current,
        baseline=tuple(baseline),
        mean=mean_d,
        sd=sd_d,
        # What a reader compares the count with: the floor or the spike line, whichever is
        # higher (on an empty baseline the floor alone decides).
        threshold=max(Decimal(policy.min_signals), limit).quantize(CENT, ROUND_HALF_UP),
        alert=alert,
    )


class WeekTally:
    """Running counts of one cause in one township over a week and the weeks before it.

    Signals are added one at a time, so a batch can judge the week after each of its own
    signals exactly as if they had been stored one transaction apart.
    """

    def __init__(self, *, township: str, cause: str, week: date, policy: AreaAlertPolicy) -> None:
        self.township = township
        self.cause = cause
        self.week = week
        self.policy = policy
        self.weeks = [week - timedelta(weeks=i) for i in range(policy.baseline_weeks, -1, -1)]
        self._signals = dict.fromkeys(self.weeks, 0)
        self._households: dict[date, set[uuid.UUID]] = {w: set() for w in self.weeks}

    def add(self, signal: CauseSignal) -> None:
        """Count a signal if it is of this township, cause and run of weeks."""
        if township_of(signal.region_code) != self.township:
            return
        if self.cause not in self.policy.causes_of(
            alert_type=signal.alert_type, difficulty_types=signal.difficulty_types
        ):
            return
        week = week_start(signal.occurred_on)
        if week in self._signals:
            self._signals[week] += 1
            self._households[week].add(signal.household_id)

    def judge(self) -> Spike:
        """Judge the week against its baseline as counted so far."""
        current = WeekCount(
            signals=self._signals[self.week], households=len(self._households[self.week])
        )
        return judge(current, [self._signals[w] for w in self.weeks[:-1]], self.policy)


def assess_week(
    signals: Iterable[CauseSignal],
    *,
    township: str,
    cause: str,
    week: date,
    policy: AreaAlertPolicy,
) -> Spike:
    """Judge one township-week of a cause against the weeks before it."""
    tally = WeekTally(township=township, cause=cause, week=week, policy=policy)
    for signal in signals:
        tally.add(signal)
    return tally.judge()


@dataclass(frozen=True, slots=True)
class Watched:
    """A signal just stored, with what the watch needs to judge it."""

    signal: Signal
    region_code: str
    correlation_id: uuid.UUID | None

    def cause_signal(self) -> CauseSignal:
        """Return the signal as the reports' queries would read it back."""
        s = self.signal
        return CauseSignal(
            household_id=s.household_id,
            region_code=self.region_code,
            occurred_on=s.occurred_on,
            channel=s.channel,
            alert_type=s.alert_type,
            difficulty_types=tuple(s.difficulty_types or ()),
            event_id=s.event_id,
        )


class AreaWatch:
    """Runs after each stored signal, in the same transaction."""

    def __init__(
        self, *, clock: Clock, outbox: Outbox, policy: AreaAlertPolicy | None = None
    ) -> None:
        self.clock = clock
        self.outbox = outbox
        self.policy = policy or load_area_alert_policy()

    async def after_signals(
        self, session: AsyncSession, stored: Sequence[Watched]
    ) -> list[AreaAlert]:
        """Judge the township-weeks of just-stored signals, in their order; raise new alerts.

        Each week is judged after each of its signals, counting the batch's signals only up
        to that one, so the alert and its figures are those a one-by-one run would raise.
        """
        keyed: list[tuple[Watched, list[tuple[str, str, date]]]] = []
        for item in stored:
            township = township_of(item.region_code)
            causes = self.policy.causes_of(
                alert_type=item.signal.alert_type,
                difficulty_types=item.signal.difficulty_types or (),
            )
            week = week_start(item.signal.occurred_on)
            keys = [(township, c, week) for c in causes] if township is not None else []
            keyed.append((item, keys))
        wanted = {k for _, keys in keyed for k in keys}
        if not wanted:
            return []
        repo = ReportRepository(session)
        pending = wanted - await repo.area_alerts_among(wanted)
        if not pending:
            return []
        tallies: dict[tuple[str, str, date], WeekTally] = {}
        fresh = {item.signal.event_id for item in stored}
        for township in sorted({t for t, _, _ in pending}):
            keys = [k for k in pending if k[0] == township]
            weeks = [w for _, _, w in keys]
            nearby = await repo.cause_signals(
                township[:9],
                start=min(weeks) - timedelta(weeks=self.policy.baseline_weeks),
                end=max(weeks) + timedelta(days=6),
            )
            earlier = [s for s in nearby if s.event_id not in fresh]
            for _, cause, week in keys:
                tally = WeekTally(township=township, cause=cause, week=week, policy=self.policy)
                for signal in earlier:
                    tally.add(signal)
                tallies[(township, cause, week)] = tally
        raised: list[AreaAlert] = []
        settled: set[tuple[str, str, date]] = set()
        for item, keys in keyed:
            seen = item.cause_signal()
            home = township_of(item.region_code)
            for key, running in tallies.items():
                if key[0] == home:
                    running.add(seen)
            for key in keys:
                found = tallies.get(key)
                if found is None or key in settled:
                    continue
                spike = found.judge()
                if not spike.alert:
                    continue  # judged again after the next signal of this week
                settled.add(key)
                alert = await self._raise(
                    session, *key, spike, item.signal.event_id, item.correlation_id
                )
                if alert is not None:
                    raised.append(alert)
        return raised

    async def _raise(
        self,
        session: AsyncSession,
        township: str,
        cause: str,
        week: date,
        spike: Spike,
        causation_id: uuid.UUID,
        correlation_id: uuid.UUID | None,
    ) -> AreaAlert | None:
        now = self.clock.now()
        alert = AreaAlert(
            id=uuid.uuid4(),
            township_code=township,
            cause=cause,
            week_start=week,
            signal_count=spike.count.signals,
            household_count=spike.count.households,
            baseline_weeks=self.policy.baseline_weeks,
            baseline_mean=spike.mean,
            baseline_sd=spike.sd,
            threshold=spike.threshold,
            policy_version=self.policy.version,
            raised_at=now,
        )
        try:
            # Another worker may raise the same township-week at the same moment: the unique
            # key decides, and losing the race must not undo this signal's own work.
            async with session.begin_nested():
                session.add(alert)
                await session.flush()
        except IntegrityError:
            return None
        await self.outbox.add(
            session,
            AreaAlertRaisedV1(
                alert_id=alert.id,
                township_code=township,
                cause=cause,
                cause_zh=self.policy.causes[cause].name_zh,
                week_start=week,
                signal_count=spike.count.signals,
                household_count=spike.count.households,
                baseline_weeks=self.policy.baseline_weeks,
                baseline_mean=spike.mean,
                baseline_sd=spike.sd,
                threshold=spike.threshold,
                policy_version=self.policy.version,
                raised_at=now,
            ),
            subject_key=township,
            occurred_at=now,
            now=now,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        return alert


def recent_weeks(today: date, count: int) -> list[date]:
    """Return the Mondays of the last `count` weeks up to today's, oldest first."""
    this = week_start(today)
    return [this - timedelta(weeks=i) for i in range(count - 1, -1, -1)]


def as_datetime_window(weeks: Sequence[date]) -> tuple[date, date]:
    """Return the first and last day covered by a run of weeks."""
    return weeks[0], weeks[-1] + timedelta(days=6)

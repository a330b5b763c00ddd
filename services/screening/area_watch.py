"""Early warning of clustered risk (规模性返贫): same-cause signal spikes per township and week.

The rule is versioned policy data (`policies/area_alerts.json`): a township's signals of one
cause in one Monday-to-Sunday week are compared with its own weekly counts of that cause over
the previous `baseline_weeks` weeks; the week alerts when its count reaches `min_signals`,
involves at least `min_households` households, and exceeds mean + k·sd of the baseline.
The arithmetic here is pure; `AreaWatch.after_signal` runs it inside the consumer's
transaction right after a signal is stored, and raises `screening.area_alert_raised` through
the outbox at most once per township, cause and week.
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.screening.models import AreaAlert, Household, Signal
from services.screening.report_repository import CauseSignal, ReportRepository
from shared.clock import Clock
from shared.contracts.envelope import EventEnvelope
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


def weekly_counts(
    signals: Iterable[CauseSignal],
    *,
    township: str,
    cause: str,
    policy: AreaAlertPolicy,
    weeks: Sequence[date],
) -> dict[date, WeekCount]:
    """Count one cause's signals and households per week (given as Mondays) in a township."""
    per_week: dict[date, list[CauseSignal]] = {w: [] for w in weeks}
    for signal in signals:
        if township_of(signal.region_code) != township:
            continue
        if cause not in policy.causes_of(
            alert_type=signal.alert_type, difficulty_types=signal.difficulty_types
        ):
            continue
        bucket = per_week.get(week_start(signal.occurred_on))
        if bucket is not None:
            bucket.append(signal)
    return {
        w: WeekCount(signals=len(items), households=len({s.household_id for s in items}))
        for w, items in per_week.items()
    }


def assess_week(
    signals: Iterable[CauseSignal],
    *,
    township: str,
    cause: str,
    week: date,
    policy: AreaAlertPolicy,
) -> Spike:
    """Judge one township-week of a cause against the weeks before it."""
    weeks = [week - timedelta(weeks=i) for i in range(policy.baseline_weeks, -1, -1)]
    counts = weekly_counts(signals, township=township, cause=cause, policy=policy, weeks=weeks)
    return judge(counts[week], [counts[w].signals for w in weeks[:-1]], policy)


class AreaWatch:
    """Runs after each stored signal, in the same transaction."""

    def __init__(
        self, *, clock: Clock, outbox: Outbox, policy: AreaAlertPolicy | None = None
    ) -> None:
        self.clock = clock
        self.outbox = outbox
        self.policy = policy or load_area_alert_policy()

    def wrap(self, table: Mapping[tuple[str, int], Any]) -> dict[tuple[str, int], Any]:
        """Return the handler table with the watch run after each signal handler."""
        return {key: self._after(handler) for key, handler in table.items()}

    def _after(self, handler: Any) -> Any:
        async def run(session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
            await handler(session, envelope)
            await self.after_signal(session, envelope.event_id, envelope.correlation_id)

        return run

    async def after_signal(
        self, session: AsyncSession, event_id: uuid.UUID, correlation_id: uuid.UUID | None
    ) -> list[AreaAlert]:
        """Check the stored signal's township-week for each of its causes; raise new alerts."""
        row = (
            await session.execute(
                select(Signal, Household.region_code)
                .join(Household, Household.id == Signal.household_id)
                .where(Signal.event_id == event_id)
            )
        ).first()
        if row is None:
            return []
        signal, region_code = row
        township = township_of(region_code)
        causes = self.policy.causes_of(
            alert_type=signal.alert_type, difficulty_types=signal.difficulty_types or ()
        )
        if township is None or not causes:
            return []
        week = week_start(signal.occurred_on)
        repo = ReportRepository(session)
        pending = [c for c in causes if not await repo.area_alert_exists(township, c, week)]
        if not pending:
            return []
        nearby = await repo.cause_signals(
            township[:9],
            start=week - timedelta(weeks=self.policy.baseline_weeks),
            end=week + timedelta(days=6),
        )
        raised = []
        for cause in pending:
            spike = assess_week(
                nearby, township=township, cause=cause, week=week, policy=self.policy
            )
            if spike.alert:
                alert = await self._raise(
                    session, township, cause, week, spike, event_id, correlation_id
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

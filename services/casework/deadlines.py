"""Casework deadlines as versioned policy data plus pure date arithmetic.

Every rule of domain.md §6.2 that binds a single case (one household or one care object)
is a `DeadlineKind`; the default policy in `policies/default.json` carries its numbers and
citations.  Counting conventions (decided here because the documents are silent, §6.1):

* Clocks run on the Asia/Shanghai local date of the start instant.  The start day is day 0,
  so a 15-calendar-day rule started on D is due at the end of D+15 (the usual Chinese rule
  that the first day of a period is not counted).  A deadline is breached when the end of
  the due date has passed (`due_instant`) and it is not met.
* Publicity "不少于5天" [002:42] started on D runs over D..D+4, the way village notices state
  "公示期 D 至 D+4"; the step may close from D+5 (`publicity_satisfied`).
* Calendar-period rules ("每月至少…1次") are counted in whole local calendar weeks (Monday to
  Sunday), months or years.  `length` is how many periods after the start's period the first
  one falls due: the monthly visit uses 1, so the partial month of inclusion is exempt,
  because the helper who makes the visit may lawfully be named up to 10 working days after
  inclusion [002:42].  The annual 遍访 rules use 0 (the year of inclusion counts).
* Rules marked 原则上 ("in principle") and every other deadline are flagged when breached,
  never used to block a step (domain §9 A2).

Rules of §6.2 deliberately left out (they do not bind a single case):
  D8 county secretary's annual visits to townships and villages; D9 resident cadres' days in
  the village; D12 the Hebei county's "每月动态开展入户核查", a county-wide screening cadence
  that does not say each household is visited, and which D4 already covers for monitored
  households; D14-D18, D20 meetings, dispatches and reports; D19 the annual campaign; D21 a
  fixed 2020 rectification date; D22 the relocation labour ledger; D23 job fairs; D24 the
  低保 gradual-exit period, a benefit rule of the 2020 city document owned by civil affairs;
  D25 assessment weight; D26 the county transition period; D27 staffing.
"""

from __future__ import annotations

import calendar as gregorian
import functools
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from importlib import resources
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.casework.workdays import WorkingCalendar

__all__ = [
    "CST",
    "DeadlineBound",
    "DeadlineKind",
    "DeadlinePolicy",
    "DeadlineRule",
    "DeadlineUnit",
    "EscalationRule",
    "ExtensionUnit",
    "PeriodUnit",
    "StartEvent",
    "apply_pauses",
    "due_date",
    "due_instant",
    "extend",
    "is_breached",
    "load_default_deadline_policy",
    "local_date",
    "next_monthly_visit_due",
    "next_recurring_due",
    "period_of",
    "publicity_end",
    "publicity_satisfied",
    "visits_missing",
]

CST = ZoneInfo("Asia/Shanghai")

DeadlineUnit = Literal[
    "calendar_days", "working_days", "calendar_week", "calendar_month", "calendar_year"
]
PeriodUnit = Literal["calendar_week", "calendar_month", "calendar_year"]
ExtensionUnit = Literal["calendar_days", "working_days"]
DeadlineBound = Literal["deadline", "minimum", "recurring"]
StartEvent = Literal[
    "case_opened",
    "publicity_started",
    "included",
    "monitoring_started",
    "care_started",
    "problem_found",
]

_PERIOD_UNITS: frozenset[str] = frozenset({"calendar_week", "calendar_month", "calendar_year"})
_MONTHS_PER_YEAR = 12
_SUNDAY = 6


class DeadlineKind(StrEnum):
    """Each single-case rule of domain.md §6.2."""

    # D1 认定 ≤ 15 days "原则上" [002:42; 002:388].
    IDENTIFICATION = "identification"
    # D2 村内公示 ≥ 5 days [002:42; 002:388].
    PUBLICITY_MIN = "publicity_min"
    # D3 帮扶责任人 within 10 working days of inclusion [002:42; 002:393].
    HELPER_ASSIGNMENT = "helper_assignment"
    # D3 "一户一策" measures within the same 10 working days [002:42; 002:393].
    ASSISTANCE_PLAN = "assistance_plan"
    # D4 helping cadre visits ≥ 1 a month [002:42; 002:393].
    MONTHLY_VISIT = "monthly_visit"
    # D5 helpers visit 脱贫户 in March, August and November [002:28; 002:102].
    ESCAPED_HOUSEHOLD_VISIT = "escaped_household_visit"
    # D6 village Party secretary and First Secretary visit every 监测户 each year [002:27].
    VILLAGE_SECRETARY_VISIT = "village_secretary_visit"
    # D7 township Party secretary visits every 监测户 each year [002:27].
    TOWNSHIP_SECRETARY_VISIT = "township_secretary_visit"
    # D10 ordinary special-care object: ≥ 2 visits a month [002:43; 002:415].
    SPECIAL_CARE_VISIT = "special_care_visit"
    # D10 especially difficult special-care object: ≥ 1 home visit a week [002:43; 002:415].
    SPECIAL_CARE_WEEKLY_VISIT = "special_care_weekly_visit"
    # D11 relocated 脱贫户: one visit to the household and each person a month [001:104].
    RELOCATION_FOLLOWUP_VISIT = "relocation_followup_visit"
    # D13 三保障 and drinking-water problems cleared within the month (月清零) [002:44; 002:437].
    GUARANTEE_PROBLEM_CLEARANCE = "guarantee_problem_clearance"


class DeadlineRule(BaseModel):
    """One deadline, minimum duration or recurring visit obligation, with its source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DeadlineKind
    length: int = Field(ge=0)
    unit: DeadlineUnit
    starts_on: StartEvent
    citation: str = Field(min_length=1)
    # deadline: done no later than the due date; minimum: not done before it;
    # recurring: `count` times in every period from the first due period on.
    bound: DeadlineBound = "deadline"
    count: int = Field(default=1, ge=1)
    # For calendar_month rules: the only months in which the obligation applies (D5).
    months: tuple[int, ...] = ()
    # The household or person label that makes the rule apply; None means every case.
    applies_to: str | None = None
    table_ref: str = ""

    @model_validator(mode="after")
    def _check_shape(self) -> DeadlineRule:
        """Reject combinations the arithmetic cannot honour."""
        if self.bound == "recurring" and self.unit not in _PERIOD_UNITS:
            raise ValueError("a recurring rule needs a calendar_week/month/year unit")
        if self.bound == "minimum" and self.unit not in ("calendar_days", "working_days"):
            raise ValueError("a minimum duration is counted in days")
        if self.months and self.unit != "calendar_month":
            raise ValueError("months only apply to calendar_month rules")
        if any(not 1 <= month <= _MONTHS_PER_YEAR for month in self.months):
            raise ValueError("months must be 1..12")
        if self.months != tuple(sorted(set(self.months))):
            raise ValueError("months must be ascending without repeats")
        return self


class EscalationRule(BaseModel):
    """How a breached clock climbs the ladder of responsible levels while it stays unmet."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The first level is told at the breach; each next one after `after_days` more days.
    levels: tuple[str, ...] = Field(default=("village", "township", "county"), min_length=1)
    after_days: int = Field(default=3, ge=1, le=365)
    citation: str = (
        "No document sets an escalation (domain §10 item 12); the levels follow the "
        "accountability chain 约谈、督办、问责 [002:29]."
    )


class DeadlinePolicy(BaseModel):
    """A versioned, per-region set of deadline rules, bound to a case when it opens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    region_code: str = Field(min_length=1)
    effective_from: date
    description: str = ""
    rules: tuple[DeadlineRule, ...]
    # Policies stored on cases before escalation was configurable get the default ladder.
    escalation: EscalationRule = Field(default_factory=EscalationRule)

    @model_validator(mode="after")
    def _unique_kinds(self) -> DeadlinePolicy:
        """Keep one rule per kind so that a case gets one deadline row per kind."""
        kinds = [rule.kind for rule in self.rules]
        if len(kinds) != len(set(kinds)):
            raise ValueError("a policy holds at most one rule per deadline kind")
        return self

    def rule(self, kind: DeadlineKind) -> DeadlineRule:
        """Return the rule for kind, or raise KeyError when the policy has none."""
        for candidate in self.rules:
            if candidate.kind == kind:
                return candidate
        raise KeyError(kind)

    def rules_starting_on(self, event: StartEvent) -> tuple[DeadlineRule, ...]:
        """Return the rules whose clock the given event starts."""
        return tuple(rule for rule in self.rules if rule.starts_on == event)


@functools.cache
def load_default_deadline_policy() -> DeadlinePolicy:
    """Load the packaged default policy (policies/default.json); the result is immutable."""
    text = (
        resources.files("services.casework")
        .joinpath("policies/default.json")
        .read_text(encoding="utf-8")
    )
    return DeadlinePolicy.model_validate(json.loads(text))


def local_date(instant: datetime) -> date:
    """Return the Asia/Shanghai calendar date of an aware instant."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("local_date needs a timezone-aware datetime")
    return instant.astimezone(CST).date()


def due_date(rule: DeadlineRule, start: datetime, calendar: WorkingCalendar) -> date:
    """Return the last local day on which the rule is met (first allowed day for minimums)."""
    start_day = local_date(start)
    if rule.unit == "calendar_days":
        return start_day + timedelta(days=rule.length)
    if rule.unit == "working_days":
        return calendar.add_working_days(start_day, rule.length)
    return next_recurring_due(rule, last_met=None, started=start_day)


def due_instant(due: date) -> datetime:
    """Return the end of the local due day (the next Beijing midnight) as an aware UTC instant."""
    next_midnight = datetime.combine(due + timedelta(days=1), time(0), tzinfo=CST)
    return next_midnight.astimezone(UTC)


def is_breached(due: date, met_at: datetime | None, now: datetime) -> bool:
    """Return whether the deadline has passed unmet (or was met only after it passed)."""
    if now.tzinfo is None or (met_at is not None and met_at.tzinfo is None):
        raise ValueError("is_breached needs timezone-aware datetimes")
    limit = due_instant(due)
    if now < limit:
        return False
    return met_at is None or met_at >= limit


def publicity_end(start_date: date, min_days: int) -> date:
    """Return the last day of a minimum publicity started on start_date (day 1 = start)."""
    if min_days < 1:
        raise ValueError("a publicity lasts at least one day")
    return start_date + timedelta(days=min_days - 1)


def publicity_satisfied(start_date: date | None, today: date, min_days: int) -> bool:
    """Return whether a publicity started on start_date may be closed today."""
    if start_date is None:
        return False
    return today > publicity_end(start_date, min_days)


def period_of(day: date, unit: PeriodUnit) -> tuple[date, date]:
    """Return the first and last day of the calendar week/month/year containing day."""
    if unit == "calendar_week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=_SUNDAY)
    if unit == "calendar_month":
        last = gregorian.monthrange(day.year, day.month)[1]
        return day.replace(day=1), day.replace(day=last)
    if unit == "calendar_year":
        return date(day.year, 1, 1), date(day.year, 12, 31)
    raise ValueError(f"not a calendar period unit: {unit!r}")


def next_recurring_due(rule: DeadlineRule, *, last_met: date | None, started: date) -> date:
    """Return the end of the next period whose quota is owed, given the last met period."""
    if rule.unit == "calendar_week":
        week = _week_index(started) + rule.length
        if last_met is not None:
            week = max(week, _week_index(last_met) + 1)
        # Week w runs from ordinal 7w+1 (a Monday) to 7w+7 (a Sunday).
        return date.fromordinal(7 * week + 7)
    if rule.unit == "calendar_month":
        index = started.year * _MONTHS_PER_YEAR + started.month - 1 + rule.length
        if last_met is not None:
            index = max(index, last_met.year * _MONTHS_PER_YEAR + last_met.month)
        if rule.months:
            # D5: only listed months carry the obligation, so skip to the next one.
            while index % _MONTHS_PER_YEAR + 1 not in rule.months:
                index += 1
        year, month0 = divmod(index, _MONTHS_PER_YEAR)
        return date(year, month0 + 1, gregorian.monthrange(year, month0 + 1)[1])
    if rule.unit == "calendar_year":
        year = started.year + rule.length
        if last_met is not None:
            year = max(year, last_met.year + 1)
        return date(year, 12, 31)
    raise ValueError(f"{rule.kind} is not a calendar-period rule")


def _week_index(day: date) -> int:
    """Return the number of the Monday-to-Sunday week containing day."""
    # date.fromordinal(1) is a Monday, so weeks are aligned on ordinals 1, 8, 15, ...
    return (day.toordinal() - 1) // 7


# D4 "每月至少入户走访1次" [002:42]; the inclusion month is exempt (see module docstring).
_MONTHLY_VISIT_RULE = DeadlineRule(
    kind=DeadlineKind.MONTHLY_VISIT,
    length=1,
    unit="calendar_month",
    starts_on="monitoring_started",
    bound="recurring",
    citation="[002:42; 002:393] 帮扶干部每月至少入户走访1次",
    table_ref="D4",
)


def next_monthly_visit_due(last_visit: date | None, monitoring_started: date) -> date:
    """Return the month-end by which the next home visit is owed under the default D4 rule."""
    # A case bound to another policy uses next_recurring_due with its own monthly_visit rule.
    return next_recurring_due(_MONTHLY_VISIT_RULE, last_met=last_visit, started=monitoring_started)


def visits_missing(rule: DeadlineRule, visits: Iterable[date], within: date) -> int:
    """Return how many visits the period containing `within` still lacks under rule."""
    unit = rule.unit
    if unit == "calendar_days" or unit == "working_days":
        raise ValueError(f"{rule.kind} is not a calendar-period rule")
    first, last = period_of(within, unit)
    done = sum(1 for visit in visits if first <= visit <= last)
    return max(rule.count - done, 0)


def extend(due: date, *, days: int, unit: ExtensionUnit, calendar: WorkingCalendar) -> date:
    """Return due moved later by a justified extension of days (domain §9 A2)."""
    if days < 0:
        raise ValueError("an extension cannot shorten a deadline")
    if unit == "calendar_days":
        return due + timedelta(days=days)
    if unit == "working_days":
        return calendar.add_working_days(due, days)
    raise ValueError(f"cannot extend by {unit!r}")


def apply_pauses(
    due: date,
    pauses: Iterable[tuple[date, date]],
    unit: ExtensionUnit,
    calendar: WorkingCalendar,
) -> date:
    """Return due after stopping the clock over each inclusive (start, end) local-date pause."""
    # Pauses are the periods recorded while this deadline ran; one that begins after the
    # (running) due date cannot revive an expired clock, so it is ignored.
    merged: list[tuple[date, date]] = []
    for start, end in sorted(pauses):
        if end < start:
            raise ValueError("a pause cannot end before it starts")
        if merged and start <= merged[-1][1] + timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    result = due
    for start, end in merged:
        if start > result:
            break
        if unit == "calendar_days":
            # Days start..result were still owed; they resume the day after the pause.
            result = end + timedelta(days=(result - start).days + 1)
        elif unit == "working_days":
            owed = calendar.working_days_between(start - timedelta(days=1), result)
            if owed > 0:
                # A due day that is not itself a working day (after a calendar-day extension)
                # must not move earlier because a pause over rest days "used up" nothing.
                result = max(result, calendar.add_working_days(end, owed))
        else:
            raise ValueError(f"cannot pause a {unit!r} deadline")
    return result

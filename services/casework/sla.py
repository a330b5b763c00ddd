"""Statutory time-limit compliance per township and month, from the cases' deadline clocks.

Four figures of domain.md §7.4 item 5, each read off `case_deadline` rows (the clocks the
procedure starts and meets), never from a second bookkeeping:

* 认定不超过15天 — ``identification`` clocks (D1) met no later than their due instant;
* 村内公示不少于5天 — ``publicity_min`` clocks (D2) whose publicity ended on or after the
  first day it was allowed to close;
* 10个工作日内明确帮扶责任人和一户一策 — ``helper_assignment`` and ``assistance_plan``
  clocks (D3) met in time;
* 每月至少入户走访1次 — ``monthly_visit`` clocks (D4), one per case and month, met in
  their month.

A clock belongs to the month of its due date (the period the obligation falls in), and to
the township of its case's village.  Each clock is on time, late, or pending (not yet due,
running, or paused); a clock that lapsed unmet because the case moved on (closed) is left
out.  The share is on time / (on time + late); pending clocks are counted but not judged.
Pure: the caller passes the clocks and the instant to judge them at.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final, Literal

from services.casework.deadlines import due_instant, local_date

Verdict = Literal["on_time", "late", "pending", "excluded"]


@dataclass(frozen=True)
class Metric:
    """One compliance figure: which clock kinds it reads and how it is named."""

    key: str
    kinds: tuple[str, ...]
    title_zh: str
    rule: str


METRICS: Final[tuple[Metric, ...]] = (
    Metric("identification", ("identification",), "15天内完成认定", "D1 [002:42; 002:388]"),
    Metric("publicity", ("publicity_min",), "村内公示不少于5天", "D2 [002:42; 002:388]"),
    Metric("helper", ("helper_assignment",), "10个工作日内明确帮扶责任人", "D3 [002:42; 002:393]"),
    Metric("plan", ("assistance_plan",), "10个工作日内制定一户一策", "D3 [002:42; 002:393]"),
    Metric("monthly_visit", ("monthly_visit",), "每月入户走访", "D4 [002:42; 002:393]"),
)
_METRIC_OF_KIND: Final = {kind: m.key for m in METRICS for kind in m.kinds}


@dataclass(frozen=True)
class ClockFact:
    """What the report needs of one deadline clock and its case."""

    kind: str
    bound: str
    region_code: str
    due_date: date
    met_at: datetime | None
    breached_at: datetime | None
    paused_at: datetime | None
    closed_at: datetime | None


def verdict(clock: ClockFact, now: datetime) -> Verdict:
    """Judge one clock at an instant."""
    if clock.bound == "minimum":
        # A minimum is respected when the step ended no earlier than the first allowed day.
        if clock.met_at is not None:
            return "on_time" if local_date(clock.met_at) >= clock.due_date else "late"
        return "excluded" if clock.closed_at is not None else "pending"
    limit = due_instant(clock.due_date)
    if clock.met_at is not None:
        return "on_time" if clock.met_at < limit else "late"
    if clock.closed_at is not None:
        return "excluded"
    if clock.breached_at is not None:
        return "late"
    if clock.paused_at is not None or now < limit:
        return "pending"
    # Past due but not yet swept: late all the same; the sweep only records it.
    return "late"


@dataclass
class Tally:
    """Counts of one metric in one township and month."""

    on_time: int = 0
    late: int = 0
    pending: int = 0

    @property
    def judged(self) -> int:
        """Clocks already decided either way."""
        return self.on_time + self.late

    @property
    def share(self) -> float | None:
        """On-time share of the decided clocks (None when nothing is decided yet)."""
        return round(self.on_time / self.judged, 4) if self.judged else None

    def add(self, result: Verdict) -> None:
        """Count one verdict (excluded clocks are not counted)."""
        if result == "on_time":
            self.on_time += 1
        elif result == "late":
            self.late += 1
        elif result == "pending":
            self.pending += 1


def township_code(region_code: str) -> str | None:
    """Return the 9-digit township a case's region code lies in (None above township)."""
    padded = region_code.ljust(12, "0")
    if len(region_code) < 9 or padded[6:9] == "000":
        return None
    return padded[:9]


def month_of(day: date) -> str:
    """Return the YYYY-MM a day falls in."""
    return f"{day:%Y-%m}"


@dataclass
class Compliance:
    """Tallies per (township or None, month, metric), plus the all-township totals."""

    cells: dict[tuple[str | None, str, str], Tally] = field(default_factory=dict)
    totals: dict[tuple[str, str], Tally] = field(default_factory=dict)


def compliance(clocks: Iterable[ClockFact], *, now: datetime, months: Iterable[str]) -> Compliance:
    """Tally every clock of a reported kind whose due month is one of `months`."""
    wanted = set(months)
    cells: dict[tuple[str | None, str, str], Tally] = defaultdict(Tally)
    totals: dict[tuple[str, str], Tally] = defaultdict(Tally)
    for clock in clocks:
        metric = _METRIC_OF_KIND.get(clock.kind)
        month = month_of(clock.due_date)
        if metric is None or month not in wanted:
            continue
        result = verdict(clock, now)
        if result == "excluded":
            continue
        cells[(township_code(clock.region_code), month, metric)].add(result)
        totals[(month, metric)].add(result)
    return Compliance(cells=dict(cells), totals=dict(totals))


def last_months(today: date, count: int) -> list[str]:
    """Return the YYYY-MM of the last `count` months up to today's, oldest first."""
    index = today.year * 12 + today.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]

"""The official Chinese working-day calendar (法定节假日 and 调休 make-up workdays).

Day status comes from the `holidays` package's China calendar, wrapped so that a year
without an official State Council arrangement raises `CalendarUnavailable` instead of
silently falling back to the library's rule-based guess (infra-notes §4, gap 1).

Which years are official:

* `PINNED_LIBRARY_YEARS` pins the years whose arrangement the pinned `holidays` release
  (0.109) encodes from the State Council notices: 2001-2026.  A pinned year is used only if
  the installed library also shows make-up workdays for it (the library's own marker of an
  encoded notice: every notice from 2001 to 2026 has 5-12 of them, the rule-based 2027 has
  none).  Requiring both means neither a library regression nor a stale pin can turn a guess
  into an "official" day.
* `extra_official_years` lets an administrator declare further years official the day the
  State Council publishes them (infra-notes §4, gap 2).  If the installed library carries
  that year's notice, its data is used; otherwise the year starts from plain Monday-Friday
  working weeks and the administrator supplies every day off and make-up workday as
  `CalendarOverride` rows, so nothing in it is guessed.  The casework service passes every
  year an admin has declared complete (`POST /v1/calendar/overrides` with `declares_year`,
  stored as `calendar_year_declaration`); overrides alone never make a year official.

Overrides are applied on top of every year (official corrections, e.g. an extra day off).
Only national arrangements are modelled; local ones are not (infra-notes §4, gap 3).

Known limit: a notice for year Y+1 can move days in late December of year Y (the 2002
notice made 2001-12-29/30 workdays).  Year Y is treated as official once its own notice is
in; a later change to its last days must be entered as an override.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import holidays

__all__ = [
    "PINNED_LIBRARY_YEARS",
    "CalendarOverride",
    "CalendarUnavailable",
    "WorkingCalendar",
]

# Years whose official arrangement holidays 0.109 encodes (infra-notes §4: 2001-2026,
# 2027 has 0 make-up days).  Extend this when constraints.txt moves to a release that
# carries the next notice.
PINNED_LIBRARY_YEARS: frozenset[int] = frozenset(range(2001, 2027))

# The library checks its China data against the State Council notices from 2001 only.
_FIRST_CHECKED_YEAR = 2001
_LAST_LIBRARY_YEAR = 2100
_SATURDAY = 5


class CalendarUnavailable(Exception):
    """No official working-day data exists for a year the computation needs."""

    def __init__(self, year: int) -> None:
        self.year = year
        self.message_zh = f"{year}年的国务院节假日及调休安排尚未收录，无法计算工作日。"
        self.message_en = (
            f"No official holiday and make-up workday arrangement is recorded for {year}; "
            "working days cannot be computed."
        )
        super().__init__(f"{self.message_zh} / {self.message_en}")


@dataclass(frozen=True)
class CalendarOverride:
    """One administrator-maintained correction of a day's status."""

    day: date
    kind: Literal["workday", "holiday"]
    reason: str

    def __post_init__(self) -> None:
        if self.kind not in ("workday", "holiday"):
            raise ValueError(f"override kind must be 'workday' or 'holiday', not {self.kind!r}")
        if not self.reason.strip():
            # An override changes legal deadlines, so it must say which notice it follows.
            raise ValueError("an override needs a reason (e.g. the State Council notice)")


@dataclass(frozen=True)
class _LibraryData:
    """Days off and make-up workdays of the library's officially encoded years."""

    days_off: dict[int, frozenset[date]]
    makeup_workdays: dict[int, frozenset[date]]


@functools.cache
def _library_data() -> _LibraryData:
    """Load the library's China calendar once per process, bucketed by year."""
    lib = holidays.country_holidays("CN", years=range(_FIRST_CHECKED_YEAR, _LAST_LIBRARY_YEAR))
    days_off: dict[int, set[date]] = {}
    for day in lib:
        days_off.setdefault(day.year, set()).add(day)
    makeup: dict[int, set[date]] = {}
    for day in lib.weekend_workdays:
        makeup.setdefault(day.year, set()).add(day)
    return _LibraryData(
        days_off={year: frozenset(days) for year, days in days_off.items()},
        makeup_workdays={year: frozenset(days) for year, days in makeup.items()},
    )


@dataclass(frozen=True)
class _Year:
    """Precomputed working days of one year, as sorted ordinals and as a set."""

    ordinals: tuple[int, ...]
    members: frozenset[int]


class WorkingCalendar:
    """Working days per the official national arrangement, plus overrides."""

    def __init__(
        self,
        overrides: Iterable[CalendarOverride] = (),
        extra_official_years: Iterable[int] = (),
    ) -> None:
        by_day: dict[date, CalendarOverride] = {}
        for override in overrides:
            known = by_day.get(override.day)
            if known is not None and known.kind != override.kind:
                raise ValueError(f"conflicting overrides for {override.day.isoformat()}")
            by_day[override.day] = override
        self._overrides = by_day
        library = _library_data()
        # A pinned year counts only while the installed library still carries its notice.
        self._library_years = frozenset(
            year for year in PINNED_LIBRARY_YEARS if library.makeup_workdays.get(year)
        )
        self._official_years = self._library_years | frozenset(extra_official_years)
        self._years: dict[int, _Year] = {}

    @property
    def official_years(self) -> frozenset[int]:
        """Years for which working days can be computed."""
        return self._official_years

    @property
    def overrides(self) -> tuple[CalendarOverride, ...]:
        """The overrides in effect, ordered by day."""
        return tuple(self._overrides[day] for day in sorted(self._overrides))

    def is_working_day(self, d: date) -> bool:
        """Return whether d is a working day; raise CalendarUnavailable for unofficial years."""
        return d.toordinal() in self._year(d.year).members

    def add_working_days(self, start: date, n: int) -> date:
        """Return the n-th working day strictly after start (start itself when n is 0)."""
        if n < 0:
            raise ValueError("n must be zero or positive")
        if n == 0:
            return start
        year = start.year
        data = self._year(year)
        position = bisect.bisect_right(data.ordinals, start.toordinal())
        remaining = n
        while position + remaining > len(data.ordinals):
            remaining -= len(data.ordinals) - position
            year += 1
            data = self._year(year)
            position = 0
        return date.fromordinal(data.ordinals[position + remaining - 1])

    def working_days_between(self, a: date, b: date) -> int:
        """Count working days d with a < d <= b (negative when b is before a)."""
        # Half-open so that working_days_between(a, add_working_days(a, n)) == n; the
        # library's get_working_days_count counts a closed interval instead.
        if b < a:
            return -self.working_days_between(b, a)
        if a == b:
            return 0
        first = a + timedelta(days=1)
        total = 0
        for year in range(first.year, b.year + 1):
            data = self._year(year)
            low = first.toordinal() if year == first.year else None
            high = b.toordinal() if year == b.year else None
            lo_index = 0 if low is None else bisect.bisect_left(data.ordinals, low)
            hi_index = (
                len(data.ordinals) if high is None else bisect.bisect_right(data.ordinals, high)
            )
            total += hi_index - lo_index
        return total

    def _year(self, year: int) -> _Year:
        """Return the cached working days of year, building them on first use."""
        cached = self._years.get(year)
        if cached is not None:
            return cached
        if year not in self._official_years:
            raise CalendarUnavailable(year)
        built = self._build_year(year)
        self._years[year] = built
        return built

    def _build_year(self, year: int) -> _Year:
        """Compute one year's working days from library data and overrides."""
        library = _library_data()
        if year in self._library_years or library.makeup_workdays.get(year):
            days_off = library.days_off.get(year, frozenset())
            makeup = library.makeup_workdays.get(year, frozenset())
        else:
            # Declared official but not in the library: weekends only, the rest comes
            # from overrides, so the library's rule-based estimate is never used.
            days_off = frozenset()
            makeup = frozenset()
        ordinals: list[int] = []
        day = date(year, 1, 1)
        one = timedelta(days=1)
        while day.year == year:
            override = self._overrides.get(day)
            if override is not None:
                working = override.kind == "workday"
            elif day.weekday() >= _SATURDAY:
                working = day in makeup
            else:
                working = day not in days_off
            if working:
                ordinals.append(day.toordinal())
            day += one
        return _Year(ordinals=tuple(ordinals), members=frozenset(ordinals))

"""Properties of the deadline arithmetic, held over generated dates, pauses and extensions.

The table-driven cases in test_deadlines.py pin the rules to the documents; these check the
invariants any date must keep: a clock is breached exactly from the Beijing midnight after
its due day, pausing or extending never brings a deadline forward, and a pause stops the
clock for exactly its own length.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.casework.deadlines import (
    CST,
    DeadlineKind,
    DeadlineRule,
    apply_pauses,
    due_instant,
    extend,
    is_breached,
    local_date,
    next_recurring_due,
    period_of,
)
from services.casework.workdays import WorkingCalendar

# Years with official holiday data, so working-day arithmetic never has to refuse.
OFFICIAL = st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 9, 30))
ANY_DAY = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))
CALENDAR = WorkingCalendar()
# Hypothesis takes naive bounds and attaches the zone itself.
INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2090, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


def _pauses(around: date) -> st.SearchStrategy[list[tuple[date, date]]]:
    start = st.integers(min_value=-30, max_value=30)
    length = st.integers(min_value=0, max_value=20)
    return st.lists(
        st.tuples(start, length).map(
            lambda p: (around + timedelta(days=p[0]), around + timedelta(days=p[0] + p[1]))
        ),
        max_size=4,
    )


class TestIsBreached:
    @given(due=ANY_DAY, now=INSTANTS)
    def test_an_unmet_clock_is_breached_exactly_from_the_midnight_after_its_day(
        self, due: date, now: datetime
    ) -> None:
        assert is_breached(due, None, now) == (local_date(now) > due)

    @given(due=ANY_DAY, met=INSTANTS, now=INSTANTS)
    def test_a_clock_met_on_or_before_its_day_is_never_breached(
        self, due: date, met: datetime, now: datetime
    ) -> None:
        breached = is_breached(due, met, now)

        if local_date(met) <= due:
            assert not breached
        else:
            assert breached == (local_date(now) > due)


class TestDueInstant:
    @given(due=ANY_DAY)
    def test_is_the_first_instant_of_the_next_beijing_day(self, due: date) -> None:
        limit = due_instant(due)

        assert limit.tzinfo is not None
        assert local_date(limit) == due + timedelta(days=1)
        assert local_date(limit - timedelta(microseconds=1)) == due
        assert limit.astimezone(CST).time().isoformat() == "00:00:00"


class TestApplyPauses:
    @given(due=ANY_DAY, data=st.data())
    def test_calendar_pauses_never_bring_a_deadline_forward_and_repeat_harmlessly(
        self, due: date, data: st.DataObject
    ) -> None:
        pauses = data.draw(_pauses(due))
        moved = apply_pauses(due, pauses, "calendar_days", CALENDAR)

        assert moved >= due
        assert apply_pauses(due, pauses + pauses, "calendar_days", CALENDAR) == moved

    @given(due=ANY_DAY, start=st.integers(-30, 0), length=st.integers(0, 20))
    def test_one_calendar_pause_before_the_due_day_adds_its_length(
        self, due: date, start: int, length: int
    ) -> None:
        begin = due + timedelta(days=start)
        pause = (begin, begin + timedelta(days=length))

        assert apply_pauses(due, [pause], "calendar_days", CALENDAR) == due + timedelta(
            days=length + 1
        )

    @given(due=ANY_DAY, after=st.integers(1, 30), length=st.integers(0, 20))
    def test_a_pause_after_the_due_day_changes_nothing(
        self, due: date, after: int, length: int
    ) -> None:
        begin = due + timedelta(days=after)
        pause = (begin, begin + timedelta(days=length))

        assert apply_pauses(due, [pause], "calendar_days", CALENDAR) == due

    @given(due=OFFICIAL, data=st.data())
    def test_working_day_pauses_never_bring_a_deadline_forward(
        self, due: date, data: st.DataObject
    ) -> None:
        pauses = [
            (a, b)
            for a, b in data.draw(_pauses(due))
            if b <= date(2026, 10, 31) and a >= date(2024, 1, 1)
        ]
        moved = apply_pauses(due, pauses, "working_days", CALENDAR)

        assert moved >= due

    def test_a_rest_day_pause_before_a_rest_day_due_keeps_the_due_day(self) -> None:
        # Found by the property above: Sunday 26 May paused, due Saturday 1 June 2024 (a
        # calendar-day extension can end on a rest day); it used to come back as 31 May.
        sunday = date(2024, 5, 26)

        assert apply_pauses(date(2024, 6, 1), [(sunday, sunday)], "working_days", CALENDAR) == (
            date(2024, 6, 1)
        )


class TestExtend:
    @given(due=OFFICIAL, a=st.integers(0, 20), b=st.integers(0, 20))
    def test_longer_extensions_end_later_and_zero_is_no_extension(
        self, due: date, a: int, b: int
    ) -> None:
        for unit in ("calendar_days", "working_days"):
            shorter = extend(due, days=a, unit=unit, calendar=CALENDAR)
            longer = extend(due, days=a + b, unit=unit, calendar=CALENDAR)
            assert due <= shorter <= longer
            assert extend(due, days=0, unit=unit, calendar=CALENDAR) == due
        assert extend(due, days=a, unit="calendar_days", calendar=CALENDAR) == due + timedelta(
            days=a
        )


class TestNextRecurringDue:
    @given(
        started=ANY_DAY,
        last=st.none() | ANY_DAY,
        unit=st.sampled_from(["calendar_week", "calendar_month", "calendar_year"]),
        length=st.integers(0, 2),
    )
    def test_is_a_period_end_after_the_last_met_period(
        self, started: date, last: date | None, unit: str, length: int
    ) -> None:
        rule = DeadlineRule(
            kind=DeadlineKind.MONTHLY_VISIT,
            length=length,
            unit=unit,  # type: ignore[arg-type]
            starts_on="monitoring_started",
            bound="recurring",
            citation="test",
        )
        due = next_recurring_due(rule, last_met=last, started=started)

        assert period_of(due, unit)[1] == due  # type: ignore[arg-type]
        assert due >= period_of(started, unit)[1]  # type: ignore[arg-type]
        if last is not None:
            assert due > period_of(last, unit)[1]  # type: ignore[arg-type]

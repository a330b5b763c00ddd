"""Tests for the official working-day calendar (infra-notes §4)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.casework.workdays import (
    PINNED_LIBRARY_YEARS,
    CalendarOverride,
    CalendarUnavailable,
    WorkingCalendar,
)

D = date.fromisoformat


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    """The calendar without overrides."""
    return WorkingCalendar()


class TestOfficialYears:
    def test_official_years_are_the_pinned_library_years(self, calendar: WorkingCalendar) -> None:
        assert calendar.official_years == frozenset(range(2001, 2027))
        assert calendar.official_years == PINNED_LIBRARY_YEARS

    def test_extra_years_are_added(self) -> None:
        cal = WorkingCalendar(extra_official_years=[2027])
        assert 2027 in cal.official_years
        assert 2026 in cal.official_years


class TestIsWorkingDay:
    @pytest.mark.parametrize(
        ("day", "expected"),
        [
            pytest.param("2025-01-01", False, id="2025-new-year"),
            pytest.param("2025-01-26", True, id="2025-spring-festival-makeup-sunday"),
            pytest.param("2025-01-28", False, id="2025-spring-festival-eve"),
            pytest.param("2025-02-04", False, id="2025-spring-festival-substituted-day-off"),
            pytest.param("2025-02-08", True, id="2025-spring-festival-makeup-saturday"),
            pytest.param("2025-04-04", False, id="2025-qingming"),
            pytest.param("2025-04-27", True, id="2025-labour-day-makeup-sunday"),
            pytest.param("2025-05-05", False, id="2025-labour-day-substituted"),
            pytest.param("2025-06-02", False, id="2025-dragon-boat-monday"),
            pytest.param("2025-09-28", True, id="2025-national-day-makeup-sunday"),
            pytest.param("2025-10-06", False, id="2025-mid-autumn"),
            pytest.param("2025-10-08", False, id="2025-national-day-last-day"),
            pytest.param("2025-10-09", True, id="2025-after-national-day"),
            pytest.param("2025-10-11", True, id="2025-national-day-makeup-saturday"),
            pytest.param("2025-10-12", False, id="2025-ordinary-sunday"),
            pytest.param("2025-11-19", True, id="2025-ordinary-wednesday"),
            pytest.param("2026-01-02", False, id="2026-new-year-friday"),
            pytest.param("2026-01-04", True, id="2026-new-year-makeup-sunday"),
            pytest.param("2026-02-14", True, id="2026-spring-festival-makeup-saturday"),
            pytest.param("2026-02-16", False, id="2026-spring-festival-eve"),
            pytest.param("2026-02-23", False, id="2026-spring-festival-last-day"),
            pytest.param("2026-02-24", True, id="2026-after-spring-festival"),
            pytest.param("2026-02-28", True, id="2026-spring-festival-makeup-saturday-2"),
            pytest.param("2026-04-06", False, id="2026-qingming-monday"),
            pytest.param("2026-05-05", False, id="2026-labour-day-tuesday"),
            pytest.param("2026-05-09", True, id="2026-labour-day-makeup-saturday"),
            pytest.param("2026-06-19", False, id="2026-dragon-boat"),
            pytest.param("2026-09-20", True, id="2026-national-day-makeup-sunday"),
            pytest.param("2026-09-25", False, id="2026-mid-autumn"),
            pytest.param("2026-10-07", False, id="2026-national-day-last-day"),
            pytest.param("2026-10-10", True, id="2026-national-day-makeup-saturday"),
        ],
    )
    def test_day_status(self, calendar: WorkingCalendar, day: str, expected: bool) -> None:
        assert calendar.is_working_day(D(day)) is expected

    @pytest.mark.parametrize(
        "day",
        [
            pytest.param("2027-01-04", id="2027-no-official-data"),
            pytest.param("2000-06-01", id="2000-before-checked-data"),
        ],
    )
    def test_unofficial_year_raises(self, calendar: WorkingCalendar, day: str) -> None:
        with pytest.raises(CalendarUnavailable) as caught:
            calendar.is_working_day(D(day))
        assert caught.value.year == D(day).year


class TestAddWorkingDays:
    @pytest.mark.parametrize(
        ("start", "n", "expected"),
        [
            # National Day 2025 (10-01..10-08, make-up 09-28 Sun and 10-11 Sat).
            pytest.param("2025-09-26", 1, "2025-09-28", id="nd2025-fri+1-makeup-sunday"),
            pytest.param("2025-09-26", 3, "2025-09-30", id="nd2025-fri+3"),
            pytest.param("2025-09-26", 5, "2025-10-10", id="nd2025-fri+5"),
            pytest.param("2025-09-27", 1, "2025-09-28", id="nd2025-sat+1"),
            pytest.param("2025-09-30", 1, "2025-10-09", id="nd2025-eve+1"),
            pytest.param("2025-09-30", 3, "2025-10-11", id="nd2025-eve+3-makeup-saturday"),
            pytest.param("2025-09-30", 5, "2025-10-14", id="nd2025-eve+5"),
            pytest.param("2025-10-01", 1, "2025-10-09", id="nd2025-holiday+1"),
            pytest.param("2025-10-08", 1, "2025-10-09", id="nd2025-last-holiday+1"),
            pytest.param("2025-10-11", 1, "2025-10-13", id="nd2025-makeup+1"),
            # Spring Festival 2025 (01-28..02-04, make-up 01-26 Sun and 02-08 Sat).
            pytest.param("2025-01-24", 1, "2025-01-26", id="sf2025-makeup-sunday"),
            pytest.param("2025-01-27", 1, "2025-02-05", id="sf2025-across-holiday"),
            pytest.param("2025-02-07", 1, "2025-02-08", id="sf2025-makeup-saturday"),
            # Spring Festival 2026 (02-15..02-23, make-up 02-14 Sat and 02-28 Sat).
            pytest.param("2026-02-13", 1, "2026-02-14", id="sf2026-fri+1-makeup-saturday"),
            pytest.param("2026-02-13", 3, "2026-02-25", id="sf2026-fri+3"),
            pytest.param("2026-02-13", 5, "2026-02-27", id="sf2026-fri+5"),
            pytest.param("2026-02-14", 1, "2026-02-24", id="sf2026-makeup+1"),
            pytest.param("2026-02-14", 5, "2026-02-28", id="sf2026-makeup+5-makeup"),
            pytest.param("2026-02-15", 1, "2026-02-24", id="sf2026-holiday+1"),
            pytest.param("2026-02-23", 1, "2026-02-24", id="sf2026-last-holiday+1"),
            # Qingming.
            pytest.param("2025-04-03", 1, "2025-04-07", id="qingming2025"),
            pytest.param("2026-04-03", 1, "2026-04-07", id="qingming2026"),
            # Labour Day.
            pytest.param("2025-04-25", 1, "2025-04-27", id="labour2025-makeup-sunday"),
            pytest.param("2025-04-30", 1, "2025-05-06", id="labour2025"),
            pytest.param("2026-04-30", 1, "2026-05-06", id="labour2026"),
            pytest.param("2026-05-08", 1, "2026-05-09", id="labour2026-makeup-saturday"),
            # Dragon Boat.
            pytest.param("2025-05-30", 1, "2025-06-03", id="dragon-boat2025"),
            pytest.param("2026-06-18", 1, "2026-06-22", id="dragon-boat2026"),
            # New Year, across the year boundary.
            pytest.param("2024-12-31", 1, "2025-01-02", id="new-year2025"),
            pytest.param("2025-12-31", 1, "2026-01-04", id="new-year2026-makeup-sunday"),
            # Mid-Autumn and National Day 2026.
            pytest.param("2026-09-18", 1, "2026-09-20", id="mid-autumn2026-makeup-sunday"),
            pytest.param("2026-09-30", 1, "2026-10-08", id="nd2026"),
            pytest.param("2026-10-09", 1, "2026-10-10", id="nd2026-makeup-saturday"),
            # Long counts.
            pytest.param("2025-09-26", 10, "2025-10-16", id="nd2025-ten-days"),
            pytest.param("2026-02-10", 10, "2026-03-02", id="sf2026-ten-days"),
            pytest.param("2026-12-16", 10, "2026-12-30", id="last-days-of-2026"),
        ],
    )
    def test_nth_working_day_after(
        self, calendar: WorkingCalendar, start: str, n: int, expected: str
    ) -> None:
        assert calendar.add_working_days(D(start), n) == D(expected)

    @pytest.mark.parametrize(
        "start",
        [
            pytest.param("2025-10-01", id="holiday"),
            pytest.param("2025-11-19", id="working-day"),
            pytest.param("2027-03-01", id="unofficial-year"),
        ],
    )
    def test_zero_returns_start(self, calendar: WorkingCalendar, start: str) -> None:
        assert calendar.add_working_days(D(start), 0) == D(start)

    def test_negative_count_is_refused(self, calendar: WorkingCalendar) -> None:
        with pytest.raises(ValueError, match="zero or positive"):
            calendar.add_working_days(D("2025-10-01"), -1)

    @pytest.mark.parametrize(
        ("start", "n"),
        [
            pytest.param("2026-12-18", 10, id="ten-days-into-2027"),
            pytest.param("2026-12-31", 1, id="last-day-of-2026"),
            pytest.param("2026-12-28", 5, id="new-year-week"),
        ],
    )
    def test_counting_into_2027_raises(self, calendar: WorkingCalendar, start: str, n: int) -> None:
        with pytest.raises(CalendarUnavailable) as caught:
            calendar.add_working_days(D(start), n)
        assert caught.value.year == 2027
        assert "2027" in caught.value.message_zh
        assert "2027" in caught.value.message_en


class TestWorkingDaysBetween:
    @pytest.mark.parametrize(
        ("a", "b", "expected"),
        [
            pytest.param("2025-09-25", "2025-10-12", 7, id="national-day-2025"),
            pytest.param("2025-10-01", "2025-10-01", 0, id="same-day"),
            pytest.param("2025-10-12", "2025-09-25", -7, id="reversed"),
            pytest.param("2026-02-13", "2026-02-24", 2, id="spring-festival-2026"),
            pytest.param("2025-12-31", "2026-01-05", 2, id="across-year-boundary"),
            # 261 weekdays - 18 weekday days off + 5 make-up days.
            pytest.param("2024-12-31", "2025-12-31", 248, id="whole-2025"),
        ],
    )
    def test_half_open_count(
        self, calendar: WorkingCalendar, a: str, b: str, expected: int
    ) -> None:
        assert calendar.working_days_between(D(a), D(b)) == expected

    def test_into_2027_raises(self, calendar: WorkingCalendar) -> None:
        with pytest.raises(CalendarUnavailable):
            calendar.working_days_between(D("2026-12-01"), D("2027-01-10"))

    @given(
        start=st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 10, 31)),
        n=st.integers(min_value=0, max_value=40),
    )
    def test_inverse_of_add_working_days(self, start: date, n: int) -> None:
        cal = _SHARED
        end = cal.add_working_days(start, n)
        assert cal.working_days_between(start, end) == n
        assert n == 0 or cal.is_working_day(end)


_SHARED = WorkingCalendar()


class TestOverrides:
    def test_override_makes_2027_usable(self) -> None:
        cal = WorkingCalendar(
            overrides=[
                CalendarOverride(D("2027-01-01"), "holiday", "2027 notice: 元旦"),
            ],
            extra_official_years=[2027],
        )
        # 12-29, 12-30, 12-31, then 01-01 is off, then 01-04 and 01-05.
        assert cal.add_working_days(D("2026-12-28"), 5) == D("2027-01-05")

    def test_declared_year_uses_no_library_guess(self) -> None:
        cal = WorkingCalendar(extra_official_years=[2027])
        # The library's rule-based 2027 marks 02-09 (Tue) as an observed day off; a declared
        # year only takes what the administrator entered, so it stays a working day.
        assert cal.is_working_day(D("2027-02-09")) is True
        assert cal.is_working_day(D("2027-02-06")) is False

    def test_override_holiday_changes_result(self) -> None:
        plain = WorkingCalendar()
        patched = WorkingCalendar(
            overrides=[CalendarOverride(D("2026-03-09"), "holiday", "extra day off")]
        )
        assert plain.add_working_days(D("2026-03-06"), 1) == D("2026-03-09")
        assert patched.add_working_days(D("2026-03-06"), 1) == D("2026-03-10")
        assert patched.working_days_between(D("2026-03-06"), D("2026-03-10")) == 1

    def test_override_workday_on_a_weekend(self) -> None:
        patched = WorkingCalendar(
            overrides=[CalendarOverride(D("2026-03-07"), "workday", "make-up day")]
        )
        assert patched.add_working_days(D("2026-03-06"), 1) == D("2026-03-07")

    def test_override_alone_does_not_make_a_year_official(self) -> None:
        cal = WorkingCalendar(
            overrides=[CalendarOverride(D("2027-01-01"), "holiday", "2027 notice: 元旦")]
        )
        with pytest.raises(CalendarUnavailable):
            cal.is_working_day(D("2027-01-04"))

    def test_conflicting_overrides_are_refused(self) -> None:
        with pytest.raises(ValueError, match="conflicting"):
            WorkingCalendar(
                overrides=[
                    CalendarOverride(D("2026-03-02"), "holiday", "a"),
                    CalendarOverride(D("2026-03-02"), "workday", "b"),
                ]
            )

    def test_override_needs_a_reason(self) -> None:
        with pytest.raises(ValueError, match="reason"):
            CalendarOverride(D("2026-03-02"), "holiday", " ")

    def test_overrides_are_listed_by_day(self) -> None:
        later = CalendarOverride(D("2026-03-09"), "holiday", "b")
        earlier = CalendarOverride(D("2026-03-02"), "holiday", "a")
        assert WorkingCalendar(overrides=[later, earlier]).overrides == (earlier, later)


def test_calendar_unavailable_message_is_bilingual() -> None:
    error = CalendarUnavailable(2027)
    assert error.year == 2027
    assert "调休" in str(error)
    assert "make-up workday" in str(error)


def test_2025_deviates_from_monday_to_friday_exactly_as_the_notice_says() -> None:
    cal = WorkingCalendar()
    deviations = set()
    day = D("2025-01-01")
    while day.year == 2025:
        if cal.is_working_day(day) != (day.weekday() < 5):
            deviations.add(day)
        day += timedelta(days=1)
    makeup = {"01-26", "02-08", "04-27", "09-28", "10-11"}
    weekdays_off = {
        *("01-01", "01-28", "01-29", "01-30", "01-31", "02-03", "02-04", "04-04"),
        *("05-01", "05-02", "05-05", "06-02", "10-01", "10-02", "10-03", "10-06"),
        *("10-07", "10-08"),
    }
    assert deviations == {D(f"2025-{md}") for md in makeup | weekdays_off}

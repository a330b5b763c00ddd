"""Tests for deadline policy data and the pure deadline arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.casework import deadlines
from services.casework.deadlines import (
    CST,
    DeadlineKind,
    DeadlinePolicy,
    DeadlineRule,
    apply_pauses,
    due_date,
    due_instant,
    extend,
    is_breached,
    load_default_deadline_policy,
    local_date,
    next_monthly_visit_due,
    next_recurring_due,
    period_of,
    publicity_end,
    publicity_satisfied,
    visits_missing,
)
from services.casework.workdays import CalendarUnavailable, WorkingCalendar

D = date.fromisoformat


def utc(text: str) -> datetime:
    """Parse an ISO instant given in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    """The official calendar without overrides."""
    return WorkingCalendar()


@pytest.fixture(scope="module")
def policy() -> DeadlinePolicy:
    """The packaged default policy."""
    return load_default_deadline_policy()


class TestLocalDate:
    @pytest.mark.parametrize(
        ("instant", "expected"),
        [
            pytest.param(utc("2026-11-22T17:00:00"), "2026-11-23", id="01h-beijing-next-day"),
            pytest.param(utc("2026-11-22T16:00:00"), "2026-11-23", id="beijing-midnight"),
            pytest.param(utc("2026-11-22T15:59:59"), "2026-11-22", id="one-second-before"),
            pytest.param(
                datetime(2026, 11, 23, 1, 0, tzinfo=CST), "2026-11-23", id="already-beijing"
            ),
        ],
    )
    def test_beijing_date(self, instant: datetime, expected: str) -> None:
        assert local_date(instant) == D(expected)

    def test_naive_datetime_is_refused(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            local_date(datetime(2026, 11, 23, 1, 0))  # noqa: DTZ001 - the point of the test


class TestDefaultPolicy:
    @pytest.mark.parametrize(
        ("kind", "length", "unit", "starts_on", "bound", "count"),
        [
            pytest.param(
                DeadlineKind.IDENTIFICATION, 15, "calendar_days", "case_opened", "deadline", 1
            ),
            pytest.param(
                DeadlineKind.PUBLICITY_MIN, 5, "calendar_days", "publicity_started", "minimum", 1
            ),
            pytest.param(
                DeadlineKind.HELPER_ASSIGNMENT, 10, "working_days", "included", "deadline", 1
            ),
            pytest.param(
                DeadlineKind.ASSISTANCE_PLAN, 10, "working_days", "included", "deadline", 1
            ),
            pytest.param(
                DeadlineKind.MONTHLY_VISIT,
                1,
                "calendar_month",
                "monitoring_started",
                "recurring",
                1,
            ),
            pytest.param(
                DeadlineKind.SPECIAL_CARE_VISIT, 1, "calendar_month", "care_started", "recurring", 2
            ),
            pytest.param(
                DeadlineKind.SPECIAL_CARE_WEEKLY_VISIT,
                1,
                "calendar_week",
                "care_started",
                "recurring",
                1,
            ),
        ],
    )
    def test_core_rules(
        self,
        policy: DeadlinePolicy,
        kind: DeadlineKind,
        length: int,
        unit: str,
        starts_on: str,
        bound: str,
        count: int,
    ) -> None:
        rule = policy.rule(kind)
        assert (rule.length, rule.unit, rule.starts_on, rule.bound, rule.count) == (
            length,
            unit,
            starts_on,
            bound,
            count,
        )

    def test_every_kind_has_exactly_one_cited_rule(self, policy: DeadlinePolicy) -> None:
        assert {rule.kind for rule in policy.rules} == set(DeadlineKind)
        for rule in policy.rules:
            assert rule.citation.startswith("["), rule.kind
            assert rule.table_ref.startswith("D"), rule.kind

    def test_policy_metadata(self, policy: DeadlinePolicy) -> None:
        assert policy.region_code == "default"
        assert policy.effective_from == D("2022-05-20")
        assert policy.version

    def test_escaped_household_visit_months(self, policy: DeadlinePolicy) -> None:
        assert policy.rule(DeadlineKind.ESCAPED_HOUSEHOLD_VISIT).months == (3, 8, 11)

    def test_rules_starting_on_inclusion(self, policy: DeadlinePolicy) -> None:
        kinds = {rule.kind for rule in policy.rules_starting_on("included")}
        assert kinds == {DeadlineKind.HELPER_ASSIGNMENT, DeadlineKind.ASSISTANCE_PLAN}

    def test_round_trips_through_json(self, policy: DeadlinePolicy) -> None:
        # Cases store their bound policy as JSON and validate it back later.
        stored = policy.model_dump(mode="json")
        assert DeadlinePolicy.model_validate(stored) == policy

    def test_unknown_kind_raises_key_error(self) -> None:
        empty = DeadlinePolicy(
            version="x", region_code="r", effective_from=D("2026-01-01"), rules=()
        )
        with pytest.raises(KeyError):
            empty.rule(DeadlineKind.IDENTIFICATION)


class TestEscalationPolicy:
    def test_default_ladder(self, policy: DeadlinePolicy) -> None:
        assert policy.escalation.levels == ("village", "township", "county")
        assert policy.escalation.after_days == 3
        assert "[002:29]" in policy.escalation.citation

    def test_policies_stored_before_escalation_get_the_default(
        self, policy: DeadlinePolicy
    ) -> None:
        # Cases opened earlier carry a policy snapshot without the escalation block.
        stored = policy.model_dump(mode="json")
        del stored["escalation"]
        fallback = DeadlinePolicy.model_validate(stored).escalation
        assert (fallback.levels, fallback.after_days) == (("village", "township", "county"), 3)

    @pytest.mark.parametrize(
        "escalation",
        [
            pytest.param({"levels": [], "after_days": 3}, id="no-levels"),
            pytest.param({"levels": ["village"], "after_days": 0}, id="zero-days"),
        ],
    )
    def test_invalid_ladders_are_refused(
        self, policy: DeadlinePolicy, escalation: dict[str, object]
    ) -> None:
        stored = policy.model_dump(mode="json")
        stored["escalation"] = escalation
        with pytest.raises(ValidationError):
            DeadlinePolicy.model_validate(stored)


class TestRuleValidation:
    @pytest.mark.parametrize(
        "overrides",
        [
            pytest.param({"bound": "recurring", "unit": "calendar_days"}, id="recurring-in-days"),
            pytest.param({"bound": "minimum", "unit": "calendar_month"}, id="minimum-in-months"),
            pytest.param({"months": (3,), "unit": "working_days"}, id="months-on-day-rule"),
            pytest.param(
                {"months": (13,), "unit": "calendar_month", "bound": "recurring"}, id="month-13"
            ),
            pytest.param(
                {"months": (8, 3), "unit": "calendar_month", "bound": "recurring"},
                id="months-unsorted",
            ),
            pytest.param({"length": -1}, id="negative-length"),
            pytest.param({"citation": ""}, id="no-citation"),
        ],
    )
    def test_invalid_rules_are_refused(self, overrides: dict[str, object]) -> None:
        data: dict[str, object] = {
            "kind": "identification",
            "length": 15,
            "unit": "calendar_days",
            "starts_on": "case_opened",
            "citation": "[002:42]",
        }
        data.update(overrides)
        with pytest.raises(ValidationError):
            DeadlineRule.model_validate(data)

    def test_duplicate_kinds_are_refused(self, policy: DeadlinePolicy) -> None:
        rule = policy.rule(DeadlineKind.IDENTIFICATION)
        with pytest.raises(ValidationError, match="one rule per"):
            DeadlinePolicy(
                version="x", region_code="r", effective_from=D("2026-01-01"), rules=(rule, rule)
            )


class TestDueDate:
    @pytest.mark.parametrize(
        ("kind", "start", "expected"),
        [
            # 2026-11-23 01:00 Beijing = 2026-11-22 17:00 UTC counts from 11-23.
            pytest.param(
                DeadlineKind.IDENTIFICATION,
                "2026-11-22T17:00:00",
                "2026-12-08",
                id="identification-cst-utc-boundary",
            ),
            pytest.param(
                DeadlineKind.IDENTIFICATION,
                "2026-11-22T15:59:00",
                "2026-12-07",
                id="identification-before-beijing-midnight",
            ),
            pytest.param(
                DeadlineKind.PUBLICITY_MIN,
                "2026-11-22T17:00:00",
                "2026-11-28",
                id="publicity-first-closing-day",
            ),
            # Included on 2025-09-26 (Fri): 09-28 (Sun, make-up), 09-29, 09-30, then the
            # National Day break to 10-08, then 10-09, 10-10, 10-11 (Sat, make-up), 10-13..16.
            pytest.param(
                DeadlineKind.HELPER_ASSIGNMENT,
                "2025-09-26T02:00:00",
                "2025-10-16",
                id="helper-across-national-day-2025",
            ),
            # Included on 2026-02-10 (Tue): 02-11..13, 02-14 (Sat, make-up), Spring Festival
            # 02-15..23, then 02-24..27, 02-28 (Sat, make-up), 03-02.
            pytest.param(
                DeadlineKind.ASSISTANCE_PLAN,
                "2026-02-10T02:00:00",
                "2026-03-02",
                id="plan-across-spring-festival-2026",
            ),
            pytest.param(
                DeadlineKind.MONTHLY_VISIT,
                "2026-11-22T17:00:00",
                "2026-12-31",
                id="monthly-visit-first-full-month",
            ),
            pytest.param(
                DeadlineKind.VILLAGE_SECRETARY_VISIT,
                "2026-03-01T00:00:00",
                "2026-12-31",
                id="annual-visit-same-year",
            ),
            pytest.param(
                DeadlineKind.ESCAPED_HOUSEHOLD_VISIT,
                "2026-08-20T00:00:00",
                "2026-08-31",
                id="escaped-household-august",
            ),
            pytest.param(
                DeadlineKind.ESCAPED_HOUSEHOLD_VISIT,
                "2026-09-01T00:00:00",
                "2026-11-30",
                id="escaped-household-next-listed-month",
            ),
            # 2026-11-25 is a Wednesday; the first full week ends on Sunday 12-06.
            pytest.param(
                DeadlineKind.SPECIAL_CARE_WEEKLY_VISIT,
                "2026-11-25T00:00:00",
                "2026-12-06",
                id="weekly-care-visit",
            ),
            pytest.param(
                DeadlineKind.GUARANTEE_PROBLEM_CLEARANCE,
                "2026-11-10T00:00:00",
                "2026-11-30",
                id="monthly-clearance",
            ),
        ],
    )
    def test_due_date(
        self,
        policy: DeadlinePolicy,
        calendar: WorkingCalendar,
        kind: DeadlineKind,
        start: str,
        expected: str,
    ) -> None:
        assert due_date(policy.rule(kind), utc(start), calendar) == D(expected)

    def test_working_days_into_a_year_without_official_data_raise(
        self, policy: DeadlinePolicy, calendar: WorkingCalendar
    ) -> None:
        rule = policy.rule(DeadlineKind.HELPER_ASSIGNMENT)
        with pytest.raises(CalendarUnavailable) as caught:
            due_date(rule, utc("2026-12-18T02:00:00"), calendar)
        assert caught.value.year == 2027

    def test_calendar_days_need_no_official_calendar(
        self, policy: DeadlinePolicy, calendar: WorkingCalendar
    ) -> None:
        rule = policy.rule(DeadlineKind.IDENTIFICATION)
        assert due_date(rule, utc("2026-12-28T02:00:00"), calendar) == D("2027-01-12")

    def test_publicity_rule_agrees_with_publicity_helpers(
        self, policy: DeadlinePolicy, calendar: WorkingCalendar
    ) -> None:
        rule = policy.rule(DeadlineKind.PUBLICITY_MIN)
        start = utc("2026-11-22T17:00:00")
        first_closing_day = due_date(rule, start, calendar)
        assert first_closing_day == publicity_end(local_date(start), rule.length) + timedelta(1)
        assert publicity_satisfied(local_date(start), first_closing_day, rule.length)


class TestDueInstant:
    @pytest.mark.parametrize(
        ("due", "expected"),
        [
            pytest.param("2026-12-08", "2026-12-08T16:00:00", id="end-of-beijing-day"),
            pytest.param("2026-12-31", "2026-12-31T16:00:00", id="year-end"),
        ],
    )
    def test_next_beijing_midnight_in_utc(self, due: str, expected: str) -> None:
        instant = due_instant(D(due))
        assert instant == utc(expected)
        assert instant.utcoffset() == timedelta(0)


class TestIsBreached:
    @pytest.mark.parametrize(
        ("met_at", "now", "expected"),
        [
            pytest.param(None, "2026-12-08T15:59:59", False, id="unmet-before-end-of-day"),
            pytest.param(None, "2026-12-08T16:00:00", True, id="unmet-at-end-of-day"),
            pytest.param("2026-12-08T15:00:00", "2026-12-09T00:00:00", False, id="met-in-time"),
            pytest.param("2026-12-08T16:00:00", "2026-12-09T00:00:00", True, id="met-late"),
            pytest.param("2026-12-01T00:00:00", "2026-12-01T01:00:00", False, id="met-early"),
        ],
    )
    def test_breach(self, met_at: str | None, now: str, expected: bool) -> None:
        met = None if met_at is None else utc(met_at)
        assert is_breached(D("2026-12-08"), met, utc(now)) is expected

    def test_naive_now_is_refused(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            is_breached(D("2026-12-08"), None, datetime(2026, 12, 9))  # noqa: DTZ001


class TestPublicity:
    @pytest.mark.parametrize(
        ("start", "min_days", "end"),
        [
            pytest.param("2026-11-23", 5, "2026-11-27", id="five-days"),
            pytest.param("2026-11-23", 1, "2026-11-23", id="one-day"),
            pytest.param("2026-02-14", 5, "2026-02-18", id="over-spring-festival"),
        ],
    )
    def test_end(self, start: str, min_days: int, end: str) -> None:
        assert publicity_end(D(start), min_days) == D(end)

    @pytest.mark.parametrize(
        ("start", "today", "expected"),
        [
            pytest.param("2026-11-23", "2026-11-23", False, id="first-day"),
            pytest.param("2026-11-23", "2026-11-27", False, id="last-day-of-publicity"),
            pytest.param("2026-11-23", "2026-11-28", True, id="day-after"),
            pytest.param(None, "2026-11-28", False, id="never-started"),
        ],
    )
    def test_satisfied(self, start: str | None, today: str, expected: bool) -> None:
        started = None if start is None else D(start)
        assert publicity_satisfied(started, D(today), 5) is expected

    def test_zero_days_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least one day"):
            publicity_end(D("2026-11-23"), 0)


class TestNextMonthlyVisitDue:
    @pytest.mark.parametrize(
        ("last_visit", "started", "expected"),
        [
            pytest.param(None, "2026-11-23", "2026-12-31", id="inclusion-month-exempt"),
            pytest.param(None, "2026-11-01", "2026-12-31", id="first-of-month"),
            pytest.param("2026-11-25", "2026-11-23", "2026-12-31", id="visit-in-inclusion-month"),
            pytest.param("2026-12-05", "2026-11-23", "2027-01-31", id="december-visit"),
            pytest.param("2026-10-10", "2026-11-23", "2026-12-31", id="visit-before-inclusion"),
            pytest.param("2027-01-31", "2026-11-23", "2027-02-28", id="february"),
            pytest.param("2028-01-02", "2026-11-23", "2028-02-29", id="leap-february"),
        ],
    )
    def test_next_due(self, last_visit: str | None, started: str, expected: str) -> None:
        last = None if last_visit is None else D(last_visit)
        assert next_monthly_visit_due(last, D(started)) == D(expected)

    def test_agrees_with_the_default_policy_rule(self, policy: DeadlinePolicy) -> None:
        rule = policy.rule(DeadlineKind.MONTHLY_VISIT)
        for last in (None, D("2026-12-05"), D("2027-01-31")):
            assert next_monthly_visit_due(last, D("2026-11-23")) == next_recurring_due(
                rule, last_met=last, started=D("2026-11-23")
            )


class TestNextRecurringDue:
    @pytest.mark.parametrize(
        ("kind", "last_met", "started", "expected"),
        [
            pytest.param(
                DeadlineKind.ESCAPED_HOUSEHOLD_VISIT,
                "2026-11-10",
                "2026-08-20",
                "2027-03-31",
                id="listed-months-wrap-to-march",
            ),
            pytest.param(
                DeadlineKind.ESCAPED_HOUSEHOLD_VISIT,
                "2027-03-02",
                "2026-08-20",
                "2027-08-31",
                id="listed-months-march-to-august",
            ),
            pytest.param(
                DeadlineKind.SPECIAL_CARE_WEEKLY_VISIT,
                "2026-12-02",
                "2026-11-25",
                "2026-12-13",
                id="weekly-after-visit",
            ),
            pytest.param(
                DeadlineKind.SPECIAL_CARE_WEEKLY_VISIT,
                "2026-12-06",
                "2026-11-25",
                "2026-12-13",
                id="weekly-visit-on-sunday",
            ),
            pytest.param(
                DeadlineKind.TOWNSHIP_SECRETARY_VISIT,
                "2026-12-01",
                "2026-11-23",
                "2027-12-31",
                id="annual-after-visit",
            ),
        ],
    )
    def test_next_due(
        self,
        policy: DeadlinePolicy,
        kind: DeadlineKind,
        last_met: str,
        started: str,
        expected: str,
    ) -> None:
        rule = policy.rule(kind)
        assert next_recurring_due(rule, last_met=D(last_met), started=D(started)) == D(expected)

    def test_day_rules_are_not_periodic(self, policy: DeadlinePolicy) -> None:
        with pytest.raises(ValueError, match="calendar-period"):
            next_recurring_due(
                policy.rule(DeadlineKind.IDENTIFICATION), last_met=None, started=D("2026-11-23")
            )


class TestPeriods:
    @pytest.mark.parametrize(
        ("day", "unit", "first", "last"),
        [
            pytest.param("2026-11-25", "calendar_week", "2026-11-23", "2026-11-29", id="week"),
            pytest.param("2026-11-29", "calendar_week", "2026-11-23", "2026-11-29", id="sunday"),
            pytest.param("2028-02-10", "calendar_month", "2028-02-01", "2028-02-29", id="month"),
            pytest.param("2026-06-15", "calendar_year", "2026-01-01", "2026-12-31", id="year"),
        ],
    )
    def test_period_of(self, day: str, unit: deadlines.PeriodUnit, first: str, last: str) -> None:
        assert period_of(D(day), unit) == (D(first), D(last))

    @pytest.mark.parametrize(
        ("visits", "expected"),
        [
            pytest.param([], 2, id="none"),
            pytest.param(["2026-11-03"], 1, id="one"),
            pytest.param(["2026-11-03", "2026-11-30"], 0, id="two"),
            pytest.param(["2026-10-31", "2026-11-03", "2026-12-01"], 1, id="outside-month"),
            pytest.param(["2026-11-03", "2026-11-04", "2026-11-05"], 0, id="more-than-enough"),
        ],
    )
    def test_special_care_visits_missing(
        self, policy: DeadlinePolicy, visits: list[str], expected: int
    ) -> None:
        rule = policy.rule(DeadlineKind.SPECIAL_CARE_VISIT)
        assert visits_missing(rule, [D(v) for v in visits], D("2026-11-15")) == expected

    def test_visits_missing_needs_a_period_rule(self, policy: DeadlinePolicy) -> None:
        with pytest.raises(ValueError, match="calendar-period"):
            visits_missing(policy.rule(DeadlineKind.IDENTIFICATION), [], D("2026-11-15"))


class TestExtend:
    @pytest.mark.parametrize(
        ("due", "days", "unit", "expected"),
        [
            pytest.param("2026-12-08", 5, "calendar_days", "2026-12-13", id="calendar"),
            pytest.param("2026-02-13", 3, "working_days", "2026-02-25", id="spring-festival"),
            pytest.param("2026-12-08", 0, "working_days", "2026-12-08", id="zero"),
        ],
    )
    def test_extend(
        self,
        calendar: WorkingCalendar,
        due: str,
        days: int,
        unit: deadlines.ExtensionUnit,
        expected: str,
    ) -> None:
        assert extend(D(due), days=days, unit=unit, calendar=calendar) == D(expected)

    def test_negative_extension_is_refused(self, calendar: WorkingCalendar) -> None:
        with pytest.raises(ValueError, match="shorten"):
            extend(D("2026-12-08"), days=-1, unit="calendar_days", calendar=calendar)

    def test_working_day_extension_into_2027_raises(self, calendar: WorkingCalendar) -> None:
        with pytest.raises(CalendarUnavailable):
            extend(D("2026-12-28"), days=5, unit="working_days", calendar=calendar)


class TestApplyPauses:
    @pytest.mark.parametrize(
        ("due", "pauses", "unit", "expected"),
        [
            pytest.param("2026-12-08", [], "calendar_days", "2026-12-08", id="no-pause"),
            pytest.param(
                "2026-12-08",
                [("2026-12-01", "2026-12-03")],
                "calendar_days",
                "2026-12-11",
                id="three-day-pause",
            ),
            pytest.param(
                "2026-12-08",
                [("2026-12-08", "2026-12-08")],
                "calendar_days",
                "2026-12-09",
                id="pause-on-due-day",
            ),
            pytest.param(
                "2026-12-08",
                [("2026-12-09", "2026-12-20")],
                "calendar_days",
                "2026-12-08",
                id="pause-after-due-ignored",
            ),
            pytest.param(
                "2026-12-08",
                [("2026-12-01", "2026-12-03"), ("2026-12-02", "2026-12-05")],
                "calendar_days",
                "2026-12-13",
                id="overlapping-pauses-merged",
            ),
            pytest.param(
                "2026-12-08",
                [("2026-12-10", "2026-12-10"), ("2026-12-01", "2026-12-03")],
                "calendar_days",
                "2026-12-12",
                id="second-pause-inside-moved-deadline",
            ),
            pytest.param(
                "2026-12-08",
                [("2026-12-06", "2026-12-12")],
                "calendar_days",
                "2026-12-15",
                id="pause-across-due",
            ),
            # One working day (09-29) paused: due 09-30 moves one working day, past the
            # National Day break to 10-09.
            pytest.param(
                "2025-09-30",
                [("2025-09-29", "2025-09-29")],
                "working_days",
                "2025-10-09",
                id="working-days-across-national-day",
            ),
            # A pause over the Spring Festival break holds no working day but 02-14.
            pytest.param(
                "2026-02-25",
                [("2026-02-14", "2026-02-23")],
                "working_days",
                "2026-02-26",
                id="working-days-pause-over-holiday",
            ),
        ],
    )
    def test_apply_pauses(
        self,
        calendar: WorkingCalendar,
        due: str,
        pauses: list[tuple[str, str]],
        unit: deadlines.ExtensionUnit,
        expected: str,
    ) -> None:
        parsed = [(D(start), D(end)) for start, end in pauses]
        assert apply_pauses(D(due), parsed, unit, calendar) == D(expected)

    def test_inverted_pause_is_refused(self, calendar: WorkingCalendar) -> None:
        with pytest.raises(ValueError, match="end before"):
            apply_pauses(
                D("2026-12-08"), [(D("2026-12-03"), D("2026-12-01"))], "calendar_days", calendar
            )

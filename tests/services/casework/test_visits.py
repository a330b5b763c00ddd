"""Tests for which visits count towards which visit clocks."""

from __future__ import annotations

from datetime import date

import pytest

from services.casework.deadlines import DeadlineKind, load_default_deadline_policy
from services.casework.visits import VisitorRole, kinds_met_by, last_period_met, quota_met

D = date.fromisoformat
POLICY = load_default_deadline_policy()


class TestKindsMetBy:
    @pytest.mark.parametrize(
        ("role", "kind", "expected"),
        [
            pytest.param("helper", DeadlineKind.MONTHLY_VISIT, True, id="helper-monthly"),
            pytest.param("helper", DeadlineKind.SPECIAL_CARE_WEEKLY_VISIT, True, id="helper-care"),
            pytest.param("helper", DeadlineKind.VILLAGE_SECRETARY_VISIT, False, id="helper-not-d6"),
            pytest.param("first_secretary", DeadlineKind.VILLAGE_SECRETARY_VISIT, True, id="d6"),
            pytest.param("village_secretary", DeadlineKind.MONTHLY_VISIT, False, id="d6-not-d4"),
            pytest.param(
                "township_secretary", DeadlineKind.TOWNSHIP_SECRETARY_VISIT, True, id="d7"
            ),
        ],
    )
    def test_role_counts_towards(
        self, role: VisitorRole, kind: DeadlineKind, expected: bool
    ) -> None:
        assert (kind in kinds_met_by(role)) is expected


class TestQuotaMet:
    @pytest.mark.parametrize(
        ("kind", "visits", "within", "expected"),
        [
            pytest.param(
                DeadlineKind.MONTHLY_VISIT, ["2026-04-30"], "2026-04-01", True, id="one-a-month"
            ),
            pytest.param(
                DeadlineKind.MONTHLY_VISIT, ["2026-03-31"], "2026-04-01", False, id="last-month"
            ),
            pytest.param(
                DeadlineKind.SPECIAL_CARE_VISIT,
                ["2026-04-02"],
                "2026-04-20",
                False,
                id="care-needs-two",
            ),
            pytest.param(
                DeadlineKind.SPECIAL_CARE_VISIT,
                ["2026-04-02", "2026-04-29"],
                "2026-04-20",
                True,
                id="care-two",
            ),
            pytest.param(
                DeadlineKind.SPECIAL_CARE_WEEKLY_VISIT,
                ["2026-04-05"],
                "2026-04-06",
                False,
                id="sunday-is-last-week",
            ),
        ],
    )
    def test_quota(
        self, kind: DeadlineKind, visits: list[str], within: str, expected: bool
    ) -> None:
        assert quota_met(POLICY.rule(kind), [D(v) for v in visits], D(within)) is expected


class TestLastPeriodMet:
    @pytest.mark.parametrize(
        ("kind", "visits", "expected"),
        [
            pytest.param(DeadlineKind.MONTHLY_VISIT, [], None, id="none"),
            pytest.param(
                DeadlineKind.MONTHLY_VISIT, ["2026-02-03", "2026-05-09"], "2026-05-09", id="latest"
            ),
            pytest.param(
                DeadlineKind.SPECIAL_CARE_VISIT,
                ["2026-03-01", "2026-03-20", "2026-05-09"],
                "2026-03-20",
                id="care-latest-full-month",
            ),
            pytest.param(
                DeadlineKind.VILLAGE_SECRETARY_VISIT, ["2025-06-01"], "2025-06-01", id="annual"
            ),
        ],
    )
    def test_latest(self, kind: DeadlineKind, visits: list[str], expected: str | None) -> None:
        found = last_period_met(POLICY.rule(kind), [D(v) for v in visits])
        assert found == (None if expected is None else D(expected))

    def test_day_rules_have_no_period(self) -> None:
        with pytest.raises(ValueError, match="calendar-period"):
            last_period_met(POLICY.rule(DeadlineKind.IDENTIFICATION), [])

"""Tests for the risk-elimination criteria."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.casework.elimination import IncomeReading, evaluate, income_window
from services.casework.procedure import EliminationCriteria

D = date.fromisoformat
SECURE = {
    "food": "secure",
    "clothing": "secure",
    "compulsory_education": "not_applicable",
    "basic_medical": "secure",
    "housing_safety": "secure",
    "drinking_water": "secure",
}
CRITERIA = EliminationCriteria(
    income_line_yuan=Decimal("6000"),
    income_stable_months=3,
    require_guarantees_secure=True,
    require_plan_delivered=True,
    citation="test",
)


def monthly(*pairs: tuple[str, str]) -> list[IncomeReading]:
    """Return income readings from (ISO day, yuan) pairs."""
    return [IncomeReading(D(day), Decimal(amount)) for day, amount in pairs]


STABLE = monthly(("2026-04-10", "6500"), ("2026-05-12", "6800"), ("2026-06-03", "7000"))


class TestIncomeWindow:
    @pytest.mark.parametrize(
        ("today", "readings", "expected"),
        [
            pytest.param(
                "2026-06-20", STABLE, ["2026-04", "2026-05", "2026-06"], id="this-month-read"
            ),
            pytest.param(
                "2026-07-02", STABLE, ["2026-04", "2026-05", "2026-06"], id="this-month-pending"
            ),
            pytest.param(
                "2026-02-10",
                monthly(("2026-02-01", "7000")),
                ["2025-12", "2026-01", "2026-02"],
                id="across-new-year",
            ),
        ],
    )
    def test_window(self, today: str, readings: list[IncomeReading], expected: list[str]) -> None:
        months = income_window(3, D(today), readings)
        assert [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in months] == expected

    def test_zero_months_means_no_income_test(self) -> None:
        assert income_window(0, D("2026-06-20"), STABLE) == []


class TestEvaluate:
    @pytest.mark.parametrize(
        ("today", "incomes", "guarantees", "plan", "codes"),
        [
            pytest.param("2026-06-20", STABLE, SECURE, ["delivered"], [], id="all-met"),
            pytest.param(
                "2026-06-20",
                STABLE,
                SECURE,
                ["delivered", "cancelled"],
                [],
                id="cancelled-items-do-not-count",
            ),
            pytest.param(
                "2026-06-20",
                STABLE[1:],
                SECURE,
                ["delivered"],
                ["income_unrecorded"],
                id="a-month-without-income",
            ),
            pytest.param(
                "2026-06-20",
                [*STABLE, IncomeReading(D("2026-05-28"), Decimal("5999.99"))],
                SECURE,
                ["delivered"],
                ["income_below_line"],
                id="one-reading-below-line",
            ),
            pytest.param(
                "2026-06-20",
                [*STABLE, IncomeReading(D("2026-06-25"), Decimal("100"))],
                SECURE,
                ["delivered"],
                [],
                id="future-readings-ignored",
            ),
            pytest.param(
                "2026-06-20",
                STABLE,
                {**SECURE, "housing_safety": "at_risk"},
                ["delivered"],
                ["guarantees_not_secure"],
                id="housing-at-risk",
            ),
            pytest.param(
                "2026-06-20",
                STABLE,
                {k: v for k, v in SECURE.items() if k != "drinking_water"},
                ["delivered"],
                ["guarantees_not_secure"],
                id="water-never-checked",
            ),
            pytest.param(
                "2026-06-20",
                STABLE,
                SECURE,
                ["delivered", "in_progress"],
                ["plan_not_delivered"],
                id="plan-in-progress",
            ),
            pytest.param("2026-06-20", STABLE, SECURE, ["cancelled"], ["plan_empty"], id="no-plan"),
            pytest.param(
                "2026-09-01",
                STABLE,
                {},
                [],
                ["income_unrecorded", "guarantees_not_secure", "plan_empty"],
                id="nothing-met",
            ),
        ],
    )
    def test_shortfalls(
        self,
        today: str,
        incomes: list[IncomeReading],
        guarantees: dict[str, str],
        plan: list[str],
        codes: list[str],
    ) -> None:
        found = evaluate(
            CRITERIA, today=D(today), incomes=incomes, guarantees=guarantees, plan_statuses=plan
        )
        assert [s.code for s in found] == codes
        assert all(s.message_zh and s.message_en for s in found)

    def test_switched_off_criteria_are_not_checked(self) -> None:
        lenient = CRITERIA.model_copy(
            update={
                "income_stable_months": 0,
                "require_guarantees_secure": False,
                "require_plan_delivered": False,
            }
        )
        assert (
            evaluate(lenient, today=D("2026-06-20"), incomes=[], guarantees={}, plan_statuses=[])
            == ()
        )

    def test_message_names_the_missing_month(self) -> None:
        (found,) = evaluate(
            CRITERIA,
            today=D("2026-06-20"),
            incomes=STABLE[::2],
            guarantees=SECURE,
            plan_statuses=["delivered"],
        )
        assert "2026-05" in found.message_zh
        assert "2026-05" in found.message_en

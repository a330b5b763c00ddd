"""Compliance arithmetic against the hand-computed fixture, and single verdicts."""

from __future__ import annotations

from datetime import date

import pytest

from services.casework import sla
from tests.services.casework import sla_fixture as fx


def facts() -> list[sla.ClockFact]:
    return [
        sla.ClockFact(
            kind=c.kind,
            bound=c.bound,
            region_code=c.village,
            due_date=c.due,
            met_at=c.met_at,
            breached_at=c.breached_at,
            paused_at=c.paused_at,
            closed_at=c.closed_at,
        )
        for c in fx.CLOCKS
    ]


class TestCompliance:
    def test_matches_the_hand_computed_fixture(self) -> None:
        result = sla.compliance(facts(), now=fx.AS_OF, months=fx.MONTHS)
        got = {key: (t.on_time, t.late, t.pending, t.share) for key, t in result.cells.items()}
        assert got == fx.EXPECTED_TOWNSHIPS
        totals = {key: (t.on_time, t.late, t.pending, t.share) for key, t in result.totals.items()}
        assert totals == fx.EXPECTED_TOTALS

    def test_months_outside_the_window_are_left_out(self) -> None:
        result = sla.compliance(facts(), now=fx.AS_OF, months=["2025-12"])
        assert {k[2] for k in result.cells} == {"identification"}
        assert result.totals[("2025-12", "identification")].on_time == 1


class TestVerdict:
    @pytest.mark.parametrize(
        ("met_hour", "expected"),
        [(23, "on_time"), (None, "late")],
    )
    def test_a_deadline_is_met_until_the_end_of_its_day(
        self, met_hour: int | None, expected: str
    ) -> None:
        clock = sla.ClockFact(
            kind="identification",
            bound="deadline",
            region_code=fx.T1_VILLAGE,
            due_date=date(2026, 3, 1),
            met_at=None if met_hour is None else fx.cst(2026, 3, 1, met_hour),
            breached_at=None,
            paused_at=None,
            closed_at=None,
        )
        assert sla.verdict(clock, fx.cst(2026, 3, 2, 0)) == expected

    def test_a_minimum_ended_early_is_late(self) -> None:
        clock = sla.ClockFact(
            kind="publicity_min",
            bound="minimum",
            region_code=fx.T1_VILLAGE,
            due_date=date(2026, 3, 6),
            met_at=fx.cst(2026, 3, 5, 20),
            breached_at=None,
            paused_at=None,
            closed_at=None,
        )
        assert sla.verdict(clock, fx.AS_OF) == "late"


class TestLastMonths:
    def test_crosses_the_year(self) -> None:
        assert sla.last_months(date(2026, 2, 3), 4) == ["2025-11", "2025-12", "2026-01", "2026-02"]


class TestTownshipCode:
    @pytest.mark.parametrize(
        ("code", "township"),
        [("141122100201", "141122100"), ("141122100", "141122100"), ("141122", None)],
    )
    def test_codes(self, code: str, township: str | None) -> None:
        assert sla.township_code(code) == township

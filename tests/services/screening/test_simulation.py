"""Tests for the pure policy simulation: replay, tallies, township counts and changes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from services.screening import scoring, simulation
from services.screening.policy import ScoringPolicy, load_default_policy
from services.screening.simulation import Case, Outcome, Tally

DEFAULT = load_default_policy()
AS_OF = date(2026, 10, 15)


def policy(**weights: int) -> ScoringPolicy:
    """Return the default policy with some factor weights replaced."""
    data = DEFAULT.model_dump()
    data["factor_weights"] = {**DEFAULT.factor_weights, **weights}
    data["policy_id"] = "candidate"
    return ScoringPolicy.model_validate(data)


def case(ref: str, *alerts: str, region: str = "141122100201", as_of: date = AS_OF) -> Case:
    """Return a one-member household with department alerts."""
    return Case(
        household_ref=ref,
        region_code=region,
        township_code=region[:9] if len(region) == 12 else simulation.UNKNOWN_TOWNSHIP,
        household=scoring.HouseholdFacts(
            household_ref=ref,
            village_code=region,
            members=(
                scoring.MemberFacts(
                    member_ref=f"{ref}-m", relation="head", age=45, labour_capacity="full"
                ),
            ),
        ),
        signals=tuple(
            scoring.Signal(
                signal_id=f"{ref}-{n}",
                channel="alert",
                occurred_on=as_of,
                alert_type=alert,
                amount=Decimal("50000") if alert.startswith("medical") else None,
                grade=4 if alert.startswith("housing") else None,
            )
            for n, alert in enumerate(alerts)
        ),
        as_of=as_of,
    )


ILLNESS = "medical_insurance.large_out_of_pocket"
HOUSE = "housing.unsafe_house_appraisal"
MIGRANT = "human_resources.returned_migrant"


def run(cases: list[Case], candidate: ScoringPolicy, limit: int = 100) -> simulation.Report:
    """Simulate with the default as active policy and a township namer."""
    names = {"141122100": "天宁镇", "141122101": "夏家营镇"}
    return simulation.simulate(
        cases,
        active_policy=lambda _case: DEFAULT,
        candidate_policy=lambda _case: candidate,
        township_name=names.get,
        changes_limit=limit,
    )


class TestOutcomeOf:
    def test_records_the_policy_used(self) -> None:
        outcome = simulation.outcome_of(case("a", ILLNESS), DEFAULT)
        assert (outcome.level, outcome.policy_id, outcome.policy_version) == (
            "medium",
            "national-default",
            1,
        )
        assert outcome.score == DEFAULT.weight("RF-14")


class TestTally:
    def test_counts_levels_categories_and_cases(self) -> None:
        tally = Tally()
        tally.add(Outcome(0, "none", (), False, "p", 1))
        tally.add(Outcome(50, "medium", ("marginal", "sudden_difficulty"), True, "p", 1))
        assert (tally.households, tally.flagged, tally.opens_case) == (2, 1, 1)
        assert tally.by_level == {"none": 1, "low": 0, "medium": 1, "high": 0}
        assert tally.by_category == {"unstable_escaped": 0, "marginal": 1, "sudden_difficulty": 1}


class TestSimulate:
    SCENARIOS: ClassVar[list[Any]] = [
        pytest.param(
            [case("a", ILLNESS), case("b", HOUSE)],
            {},
            {},
            0,
            id="same-weights-change-nothing",
        ),
        pytest.param(
            [case("a", ILLNESS), case("b", HOUSE), case("c", MIGRANT)],
            {"RF-14": 10},
            {"medium→low": 1},
            1,
            id="a-lighter-factor-lowers-a-household",
        ),
        pytest.param(
            [case("a", ILLNESS), case("b", HOUSE)],
            {"RF-19": 60},
            {"low→medium": 1},
            1,
            id="a-heavier-factor-raises-a-household",
        ),
    ]

    @pytest.mark.parametrize(("cases", "weights", "transitions", "changed"), SCENARIOS)
    def test_compares_the_policies_household_by_household(
        self, cases: list[Case], weights: dict[str, int], transitions: dict[str, int], changed: int
    ) -> None:
        report = run(cases, policy(**weights))
        assert report.transitions == transitions
        assert report.changes_total == changed
        assert report.active.households == report.candidate.households == len(cases)
        assert report.episodes == report.signals == len(cases)

    def test_counts_per_township_with_names(self) -> None:
        cases = [
            case("a", ILLNESS),
            case("b", ILLNESS, region="141122101201"),
            case("c", ILLNESS, region="141122"),
        ]
        report = run(cases, policy())
        assert [
            (t.township_code, t.township_name, t.active.households) for t in report.townships
        ] == [
            ("", None, 1),
            ("141122100", "天宁镇", 1),
            ("141122101", "夏家营镇", 1),
        ]

    def test_a_household_with_several_episodes_counts_once_at_its_highest(self) -> None:
        cases = [
            case("a", MIGRANT, as_of=date(2026, 3, 1)),
            case("a", ILLNESS, as_of=date(2026, 9, 1)),
        ]
        report = run(cases, policy())
        assert (report.episodes, report.active.households) == (2, 1)
        assert report.active.by_level["medium"] == 1

    def test_lists_the_biggest_changes_first_and_caps_the_list(self) -> None:
        cases = [case("small", HOUSE), case("big", ILLNESS), case("none", MIGRANT)]
        report = run(cases, policy(**{"RF-14": 0, "RF-19": 0}), limit=1)
        assert report.changes_total == 2
        assert [c.household_ref for c in report.changes] == ["big"]
        assert (report.changes[0].active.level, report.changes[0].candidate.level) == (
            "medium",
            "none",
        )

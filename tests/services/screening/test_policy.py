"""Tests for the scoring policy model, the default policy data and policy selection."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from services.screening.policy import (
    LevelCutoffs,
    NoApplicablePolicyError,
    ScoringPolicy,
    Thresholds,
    load_default_policy,
    select_policy,
)

DEFAULT = load_default_policy()


def _variant(**update: Any) -> ScoringPolicy:
    """Return the default policy with some top-level fields replaced, validated again."""
    data = DEFAULT.model_dump()
    data.update(update)
    return ScoringPolicy.model_validate(data)


# ------------------------------------------------------------------ default data


def test_default_policy_carries_the_documented_values() -> None:
    p = DEFAULT
    assert p.region_code == ""
    assert p.income_line == Decimal("6000")
    assert p.income_concept == "per_capita_disposable"
    assert p.income_window_months == 12
    assert p.thresholds.transfer_income_share == Decimal("0.40")
    assert p.thresholds.college_students_min == 2
    assert p.thresholds.elderly_age == 60
    assert p.thresholds.severe_disability_max_grade == 2
    assert p.case_opening_level == "medium"


@pytest.mark.parametrize("code", ["RF-14", "RF-22", "RF-23", "RF-24"])
def test_one_serious_shock_reaches_medium(code: str) -> None:
    assert DEFAULT.level_cutoffs.level_of(DEFAULT.weight(code)) == "medium"


def test_every_threshold_and_rule_cites_its_source() -> None:
    keys = {f"thresholds.{name}" for name in Thresholds.model_fields}
    keys |= {"shock_rule.shock_factors", "shock_rule.rigid_expenditure_ratio"}
    keys |= {"shock_rule.income_fall_ratio", "categories.unstable_escaped", "categories.marginal"}
    keys |= {"income_line", "income_concept", "income_window_months", "factor_weights"}
    keys |= {"level_cutoffs", "case_opening_level", "special_group_labels", "escaped_label"}
    missing = keys - DEFAULT.notes.keys()
    assert not missing
    for key in keys:
        note = DEFAULT.notes[key]
        assert "domain.md" in note or "Policy choice" in note or "[SILENT]" in note, key


def test_policy_choices_are_labelled_as_such() -> None:
    # Values the documents do not give must say so rather than pose as quoted rules.
    for key in (
        "thresholds.large_out_of_pocket_medical",
        "thresholds.sharp_income_fall_ratio",
        "shock_rule.rigid_expenditure_ratio",
        "factor_weights",
        "level_cutoffs",
    ):
        assert "policy choice" in DEFAULT.notes[key].lower(), key


def test_policy_is_frozen() -> None:
    with pytest.raises(ValidationError):
        DEFAULT.version = 2  # type: ignore[misc]


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("region_code", "valid"),
    [
        pytest.param("", True, id="national"),
        pytest.param("14", True, id="province"),
        pytest.param("1411", True, id="prefecture"),
        pytest.param("141122", True, id="county"),
        pytest.param("1", False, id="one-digit"),
        pytest.param("141", False, id="three-digits"),
        pytest.param("141122100", False, id="township-code"),
        pytest.param("ab", False, id="letters"),
    ],
)
def test_region_code_forms(region_code: str, valid: bool) -> None:
    if valid:
        assert _variant(region_code=region_code).region_code == region_code
    else:
        with pytest.raises(ValidationError):
            _variant(region_code=region_code)


@pytest.mark.parametrize(
    "weights",
    [
        pytest.param({"RF-1": 10}, id="bad-code"),
        pytest.param({"NEG-01": 10}, id="review-flag-is-not-weighed"),
        pytest.param({"RF-01": 101}, id="above-100"),
        pytest.param({"RF-01": -1}, id="negative"),
    ],
)
def test_bad_factor_weights_are_refused(weights: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        _variant(factor_weights=weights)


@pytest.mark.parametrize(
    "cutoffs",
    [
        pytest.param({"low": 40, "medium": 40, "high": 70}, id="equal"),
        pytest.param({"low": 50, "medium": 40, "high": 70}, id="descending"),
        pytest.param({"low": 0, "medium": 40, "high": 70}, id="zero-low"),
    ],
)
def test_bad_level_cutoffs_are_refused(cutoffs: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        LevelCutoffs.model_validate(cutoffs)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        _variant(surprise=1)


@pytest.mark.parametrize(
    ("score", "level"),
    [
        pytest.param(0, "none", id="0-none"),
        pytest.param(9, "none", id="9-none"),
        pytest.param(10, "low", id="10-low"),
        pytest.param(39, "low", id="39-low"),
        pytest.param(40, "medium", id="40-medium"),
        pytest.param(69, "medium", id="69-medium"),
        pytest.param(70, "high", id="70-high"),
        pytest.param(100, "high", id="100-high"),
    ],
)
def test_level_cut_points(score: int, level: str) -> None:
    assert DEFAULT.level_cutoffs.level_of(score) == level


# ------------------------------------------------------------------ selection


def _p(policy_id: str, region: str, version: int, effective: date) -> ScoringPolicy:
    return _variant(
        policy_id=policy_id, region_code=region, version=version, effective_from=effective
    )


POLICIES = [
    _p("national", "", 1, date(2021, 1, 1)),
    _p("national", "", 2, date(2023, 1, 1)),
    _p("shanxi", "14", 1, date(2022, 1, 1)),
    _p("jiaocheng", "141122", 1, date(2023, 1, 1)),
    _p("jiaocheng", "141122", 2, date(2024, 1, 1)),
    _p("lvliang", "1411", 1, date(2025, 1, 1)),
]


@pytest.mark.parametrize(
    ("region", "on", "expected"),
    [
        pytest.param("320700000000", date(2022, 6, 1), ("national", 1), id="other-province-v1"),
        pytest.param("320700000000", date(2023, 1, 1), ("national", 2), id="national-v2-on-day"),
        pytest.param("141122100001", date(2021, 12, 31), ("national", 1), id="before-province"),
        pytest.param("141122100001", date(2022, 1, 1), ("shanxi", 1), id="province-from-day"),
        pytest.param("141122100001", date(2023, 6, 1), ("jiaocheng", 1), id="county-v1"),
        pytest.param("141122100001", date(2024, 1, 1), ("jiaocheng", 2), id="county-v2"),
        pytest.param("141122100001", date(2026, 1, 1), ("jiaocheng", 2), id="county-over-city"),
        pytest.param("141123000000", date(2024, 6, 1), ("shanxi", 1), id="sibling-county"),
        pytest.param("141123000000", date(2025, 6, 1), ("lvliang", 1), id="prefecture"),
        pytest.param("141122", date(2024, 6, 1), ("jiaocheng", 2), id="county-code-itself"),
    ],
)
def test_select_policy(region: str, on: date, expected: tuple[str, int]) -> None:
    chosen = select_policy(POLICIES, region, on)
    assert (chosen.policy_id, chosen.version) == expected


def test_select_policy_without_a_match_raises() -> None:
    with pytest.raises(NoApplicablePolicyError):
        select_policy(POLICIES, "141122100001", date(2020, 12, 31))
    with pytest.raises(NoApplicablePolicyError):
        select_policy(POLICIES[3:5], "320700000000", date(2024, 6, 1))


def test_select_policy_accepts_any_iterable() -> None:
    assert select_policy(iter(POLICIES), "14", date(2022, 6, 1)).policy_id == "shanxi"

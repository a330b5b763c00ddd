"""Tests for the pure scoring engine: factors, income window, categories, levels, flags."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.screening.policy import ScoringPolicy, load_default_policy
from services.screening.scoring import (
    ALERT_RULES,
    DIFFICULTY_RULES,
    FACTORS,
    Assessment,
    Channel,
    DifficultyType,
    HouseholdFacts,
    HousingFacts,
    IncomeRecord,
    MemberFacts,
    NegativeListFacts,
    ShockSeverity,
    Signal,
    assess_severity,
    income_window,
    is_marginal,
    is_sudden_difficulty,
    is_unstable_escaped,
    per_capita_income,
    review_flags,
    score,
)

D = Decimal
AS_OF = date(2022, 6, 15)
IN_WINDOW = date(2022, 5, 1)
POLICY = load_default_policy()


# ------------------------------------------------------------------ builders


def member(relation: Any = "head", age: int = 40, labour: Any = "full", **kw: Any) -> MemberFacts:
    ref = kw.pop("ref", f"{relation}-{age}")
    return MemberFacts(member_ref=ref, relation=relation, age=age, labour_capacity=labour, **kw)


def household(*members: MemberFacts, **kw: Any) -> HouseholdFacts:
    return HouseholdFacts(
        household_ref="H1",
        village_code="141122100001",
        members=members or (member(),),
        **kw,
    )


def two_adults(**kw: Any) -> HouseholdFacts:
    return household(member(), member("spouse", 38), **kw)


def income(total: str, component: Any = "wages", month: date = IN_WINDOW) -> IncomeRecord:
    return IncomeRecord(month=month, component=component, amount=D(total))


def alert(alert_type: str, **kw: Any) -> Signal:
    return Signal(
        signal_id=kw.pop("signal_id", alert_type),
        channel="alert",
        alert_type=alert_type,
        occurred_on=kw.pop("occurred_on", IN_WINDOW),
        **kw,
    )


def declared(*types: DifficultyType, channel: Any = "declaration", **kw: Any) -> Signal:
    return Signal(
        signal_id=kw.pop("signal_id", f"{channel}-1"),
        channel=channel,
        difficulty_types=types,
        occurred_on=kw.pop("occurred_on", IN_WINDOW),
        **kw,
    )


def assess(
    h: HouseholdFacts, signals: Sequence[Signal] = (), policy: ScoringPolicy = POLICY
) -> Assessment:
    return score(h, signals, policy, as_of=AS_OF)


def fired(h: HouseholdFacts, signals: Sequence[Signal] = ()) -> set[str]:
    return {r.code for r in assess(h, signals).reasons if r.kind == "factor"}


# ------------------------------------------------------------------ factor table


def case(code: str, name: str, h: HouseholdFacts, signals: Sequence[Signal], fires: bool) -> Any:
    return pytest.param(code, h, tuple(signals), fires, id=f"{code}-{name}")


OOP = "medical_insurance.large_out_of_pocket"
MAIN = "main"

FACTOR_CASES = [
    # RF-01 income below the line (2 members; the line is 6,000 per head)
    case("RF-01", "below-line", two_adults(incomes=(income("11999.88"),)), [], True),
    case("RF-01", "at-line", two_adults(incomes=(income("12000"),)), [], False),
    case(
        "RF-01",
        "declared-below",
        two_adults(),
        [declared("illness", self_reported_income=D("11999"))],
        True,
    ),
    case(
        "RF-01",
        "declared-at-line",
        two_adults(),
        [declared("other", self_reported_income=D("12000"))],
        False,
    ),
    case(
        "RF-01",
        "records-beat-declaration",
        two_adults(incomes=(income("12000"),)),
        [declared("other", self_reported_income=D("100"))],
        False,
    ),
    # RF-02 slightly above the line, rigid spending above income
    case(
        "RF-02",
        "at-line-rigid-above",
        two_adults(incomes=(income("12000"),)),
        [alert("emergency.disaster_loss", amount=D("12001"))],
        True,
    ),
    case(
        "RF-02",
        "rigid-equal-income",
        two_adults(incomes=(income("12000"),)),
        [alert("emergency.disaster_loss", amount=D("12000"))],
        False,
    ),
    case(
        "RF-02",
        "just-under-band",
        two_adults(incomes=(income("14399"),)),
        [alert("emergency.disaster_loss", amount=D("14400"))],
        True,
    ),
    case(
        "RF-02",
        "band-edge",
        two_adults(incomes=(income("14400"),)),
        [alert("emergency.disaster_loss", amount=D("20000"))],
        False,
    ),
    # RF-03 sharp fall (30%)
    case(
        "RF-03",
        "fall-30pct",
        two_adults(incomes=(income("7000"),), previous_year_income=D("10000")),
        [],
        True,
    ),
    case(
        "RF-03",
        "fall-under-30pct",
        two_adults(incomes=(income("7001"),), previous_year_income=D("10000")),
        [],
        False,
    ),
    case("RF-03", "no-previous", two_adults(incomes=(income("1000"),)), [], False),
    # RF-04 rigid spending >= 50% of last year's income
    case(
        "RF-04",
        "half-of-previous",
        household(previous_year_income=D("10000")),
        [alert(OOP, amount=D("5000"))],
        True,
    ),
    case(
        "RF-04",
        "under-half",
        household(previous_year_income=D("10000")),
        [alert(OOP, amount=D("4999"))],
        False,
    ),
    case(
        "RF-04",
        "declared-amount",
        household(previous_year_income=D("10000")),
        [declared("education_costs", amount=D("6000"))],
        True,
    ),
    case(
        "RF-04",
        "assistance-is-not-spending",
        household(previous_year_income=D("10000")),
        [alert("civil_affairs.temporary_assistance", amount=D("9000"))],
        False,
    ),
    # RF-05 transfer share > 40% for 脱贫户
    case(
        "RF-05",
        "share-above",
        household(
            labels=frozenset({"tuopin"}),
            incomes=(income("4001", "transfer"), income("5999")),
        ),
        [],
        True,
    ),
    case(
        "RF-05",
        "share-at-40pct",
        household(
            labels=frozenset({"tuopin"}),
            incomes=(income("4000", "transfer"), income("6000")),
        ),
        [],
        False,
    ),
    case(
        "RF-05",
        "not-tuopin",
        household(incomes=(income("9000", "transfer"), income("1000"))),
        [],
        False,
    ),
    case(
        "RF-05", "dibao-terminated", household(), [alert("civil_affairs.dibao_termination")], True
    ),
    # RF-06 negative growth short of a sharp fall
    case(
        "RF-06",
        "fall-29pct",
        household(incomes=(income("7100"),), previous_year_income=D("10000")),
        [],
        True,
    ),
    case(
        "RF-06",
        "flat",
        household(incomes=(income("10000"),), previous_year_income=D("10000")),
        [],
        False,
    ),
    case(
        "RF-06",
        "sharp-is-rf03-only",
        household(incomes=(income("7000"),), previous_year_income=D("10000")),
        [],
        False,
    ),
    # RF-07 business loss >= 5,000
    case(
        "RF-07",
        "loss-at-min",
        household(),
        [alert("agriculture.business_loss", amount=D(5000))],
        True,
    ),
    case(
        "RF-07",
        "loss-under-min",
        household(),
        [alert("agriculture.business_loss", amount=D(4999))],
        False,
    ),
    case("RF-07", "loss-no-amount", household(), [alert("agriculture.business_loss")], True),
    case("RF-07", "declared", household(), [declared("business_loss")], True),
    # RF-08 only one weak or half labourer
    case(
        "RF-08",
        "single-weak",
        household(member(labour="weak"), member("parent", 75, "none", receives_basic_pension=True)),
        [],
        True,
    ),
    case(
        "RF-08", "weak-plus-full", household(member(labour="half"), member("spouse", 38)), [], False
    ),
    case("RF-08", "single-full", household(member()), [], False),
    # RF-09 labour without industry or migrant work
    case("RF-09", "uncovered", household(industry_covered=False), [], True),
    case(
        "RF-09",
        "migrant-member",
        household(member(), member("child", 20, migrant_worker=True), industry_covered=False),
        [],
        False,
    ),
    case("RF-09", "covered", household(industry_covered=True), [], False),
    case("RF-09", "coverage-unknown", household(), [], False),
    # RF-10 unstable employment
    case(
        "RF-10",
        "unemployment-alert",
        household(),
        [alert("human_resources.unemployment_registered")],
        True,
    ),
    case("RF-10", "declared-unemployment", household(), [declared("unemployment")], True),
    case("RF-10", "nothing", household(), [], False),
    # RF-11 main labourer lost capacity (certificate grades 1-3 count)
    case("RF-11", "main-half", household(member(labour="half", is_main_labourer=True)), [], True),
    case(
        "RF-11",
        "main-grade-3",
        household(member(is_main_labourer=True, disability_grade=3)),
        [],
        True,
    ),
    case(
        "RF-11",
        "main-grade-4",
        household(member(is_main_labourer=True, disability_grade=4)),
        [],
        False,
    ),
    case("RF-11", "non-main-half", household(member(labour="half")), [], False),
    case(
        "RF-11",
        "certificate-main-grade-3",
        household(member(ref=MAIN, is_main_labourer=True)),
        [alert("disability.certificate_issued", grade=3, member_ref=MAIN)],
        True,
    ),
    case(
        "RF-11",
        "certificate-main-grade-4",
        household(member(ref=MAIN, is_main_labourer=True)),
        [alert("disability.certificate_issued", grade=4, member_ref=MAIN)],
        False,
    ),
    case(
        "RF-11",
        "certificate-other-member",
        household(member(ref=MAIN, is_main_labourer=True), member("child", 12, "none", ref="kid")),
        [alert("disability.certificate_issued", grade=1, member_ref="kid")],
        False,
    ),
    # RF-12 returned migrant
    case("RF-12", "returned", household(), [alert("human_resources.returned_migrant")], True),
    case("RF-12", "nothing", household(), [], False),
    # RF-13 weak labour without work
    case(
        "RF-13", "weak-at-home", household(member(labour="weak"), industry_covered=False), [], True
    ),
    case(
        "RF-13",
        "weak-migrant",
        household(member(labour="weak", migrant_worker=True), industry_covered=False),
        [],
        False,
    ),
    case("RF-13", "coverage-unknown", household(member(labour="weak")), [], False),
    # RF-14 illness and medical costs (large 10,000; chronic 5,000)
    case("RF-14", "roster-serious", household(member(health="serious_illness")), [], True),
    case("RF-14", "oop-at-large", household(), [alert(OOP, amount=D(10000))], True),
    case("RF-14", "oop-under-large", household(), [alert(OOP, amount=D("9999.99"))], False),
    case(
        "RF-14",
        "oop-summed",
        household(),
        [alert(OOP, amount=D(6000), signal_id="a"), alert(OOP, amount=D(4000), signal_id="b")],
        True,
    ),
    case("RF-14", "oop-no-amount", household(), [alert(OOP)], True),
    case(
        "RF-14",
        "chronic-oop-at-min",
        household(member(health="chronic")),
        [alert(OOP, amount=D(5000))],
        True,
    ),
    case(
        "RF-14",
        "chronic-oop-under",
        household(member(health="chronic")),
        [alert(OOP, amount=D(4999))],
        False,
    ),
    case(
        "RF-14",
        "chronic-alert-with-oop",
        household(),
        [alert("health.chronic_illness_registered"), alert(OOP, amount=D(5000))],
        True,
    ),
    case(
        "RF-14",
        "chronic-alone",
        household(member(health="chronic")),
        [alert("health.chronic_illness_registered")],
        False,
    ),
    case("RF-14", "diagnosis", household(), [alert("health.serious_illness_diagnosis")], True),
    case("RF-14", "declared-illness", household(), [declared("illness")], True),
    case("RF-14", "reported-illness", household(), [declared("illness", channel="report")], True),
    # RF-15 disability
    case("RF-15", "roster-grade-4", household(member(disability_grade=4)), [], True),
    case(
        "RF-15", "certificate", household(), [alert("disability.certificate_issued", grade=4)], True
    ),
    case("RF-15", "declared", household(), [declared("disability")], True),
    case("RF-15", "nothing", household(), [], False),
    # RF-16 education (2 unaided college students; 3 children at school)
    case(
        "RF-16",
        "two-unaided",
        household(
            member(),
            member("child", 19, schooling="college"),
            member("child", 20, schooling="vocational_college"),
        ),
        [],
        True,
    ),
    case(
        "RF-16",
        "one-aided",
        household(
            member(),
            member("child", 19, schooling="college"),
            member("child", 20, schooling="college", student_aided=True),
        ),
        [],
        False,
    ),
    case("RF-16", "alert-two", household(), [alert("education.college_students", count=2)], True),
    case(
        "RF-16",
        "alert-two-one-aided",
        household(member(), member("child", 20, schooling="college", student_aided=True)),
        [alert("education.college_students", count=2)],
        False,
    ),
    case(
        "RF-16",
        "alert-three-one-aided",
        household(member(), member("child", 20, schooling="college", student_aided=True)),
        [alert("education.college_students", count=3)],
        True,
    ),
    case(
        "RF-16",
        "three-at-school",
        household(
            member(),
            member("child", 8, schooling="compulsory"),
            member("child", 12, schooling="compulsory"),
            member("child", 16, schooling="high_school"),
        ),
        [],
        True,
    ),
    case(
        "RF-16",
        "two-at-school-one-preschool",
        household(
            member(),
            member("child", 4, schooling="preschool"),
            member("child", 8, schooling="compulsory"),
            member("child", 12, schooling="compulsory"),
        ),
        [],
        False,
    ),
    case("RF-16", "declared-costs", household(), [declared("education_costs")], True),
    # RF-17 dropout
    case(
        "RF-17",
        "roster",
        household(member(), member("child", 13, "none", dropout_risk=True)),
        [],
        True,
    ),
    case("RF-17", "alert", household(), [alert("education.dropout_risk")], True),
    case("RF-17", "nothing", household(), [], False),
    # RF-18 mud-brick house
    case("RF-18", "mud-brick", household(housing=HousingFacts(mud_brick_only=True)), [], True),
    case("RF-18", "nothing", household(), [], False),
    # RF-19 unsafe house (appraisal grade C=3 or worse)
    case("RF-19", "flag-unsafe", household(housing=HousingFacts(unsafe=True)), [], True),
    case(
        "RF-19", "flag-disaster", household(housing=HousingFacts(disaster_damaged=True)), [], True
    ),
    case("RF-19", "grade-C", household(), [alert("housing.unsafe_house_appraisal", grade=3)], True),
    case(
        "RF-19", "grade-B", household(), [alert("housing.unsafe_house_appraisal", grade=2)], False
    ),
    case("RF-19", "grade-missing", household(), [alert("housing.unsafe_house_appraisal")], True),
    case("RF-19", "disaster-house", household(), [alert("housing.disaster_damaged_house")], True),
    case("RF-19", "declared", household(), [declared("unsafe_housing")], True),
    # RF-20 hazard zone
    case("RF-20", "flag", household(hazard_zone=True), [], True),
    case("RF-20", "alert", household(), [alert("natural_resources.hazard_zone")], True),
    case("RF-20", "nothing", household(), [], False),
    # RF-21 water
    case("RF-21", "flag", household(water_unsafe=True), [], True),
    case("RF-21", "alert", household(), [alert("water.supply_unsafe")], True),
    case("RF-21", "declared", household(), [declared("drinking_water")], True),
    case("RF-21", "nothing", household(), [], False),
    # RF-22 disaster (loss >= 5,000)
    case(
        "RF-22",
        "loss-at-min",
        household(),
        [alert("emergency.disaster_loss", amount=D(5000))],
        True,
    ),
    case(
        "RF-22",
        "loss-under",
        household(),
        [alert("emergency.disaster_loss", amount=D(4999))],
        False,
    ),
    case("RF-22", "damaged-house", household(), [alert("housing.disaster_damaged_house")], True),
    case("RF-22", "declared", household(), [declared("disaster")], True),
    # RF-23 accident
    case("RF-23", "alert", household(), [alert("traffic_police.accident_injury")], True),
    case("RF-23", "declared", household(), [declared("accident")], True),
    case("RF-23", "nothing", household(), [], False),
    # RF-24 sudden change
    case("RF-24", "death", household(), [alert("public_security.member_death")], True),
    case("RF-24", "declared-other", household(), [declared("other")], False),
    # RF-26 skipped generation
    case(
        "RF-26",
        "grandparents-parents-away",
        household(
            member("head", 65),
            member("child", 35, migrant_worker=True),
            member("grandchild", 8, "none"),
        ),
        [],
        True,
    ),
    case(
        "RF-26",
        "parent-at-home",
        household(member("head", 65), member("child", 35), member("grandchild", 8, "none")),
        [],
        False,
    ),
    case(
        "RF-26",
        "head-is-away-parent",
        household(
            member("head", 35, migrant_worker=True),
            member("parent", 62),
            member("child", 9, "none"),
        ),
        [],
        True,
    ),
    case(
        "RF-26",
        "grandchild-adult",
        household(member("head", 65), member("grandchild", 18)),
        [],
        False,
    ),
    # RF-27 special groups
    case("RF-27", "tekun-label", household(labels=frozenset({"tekun"})), [], True),
    case(
        "RF-27",
        "dibao-no-supporter",
        household(
            member("head", 70, "weak", receives_basic_pension=True), labels=frozenset({"dibao"})
        ),
        [],
        True,
    ),
    case("RF-27", "dibao-with-supporter", household(labels=frozenset({"dibao"})), [], False),
    case(
        "RF-27",
        "grade-2-no-supporter",
        household(member("head", 50, "none", disability_grade=2)),
        [],
        True,
    ),
    case(
        "RF-27",
        "grade-2-with-supporter",
        household(member("head", 50, "none", disability_grade=2), member("spouse", 45)),
        [],
        False,
    ),
    case(
        "RF-27",
        "grade-3-no-supporter",
        household(member("head", 50, "none", disability_grade=3)),
        [],
        False,
    ),
    case(
        "RF-27", "tekun-application", household(), [alert("civil_affairs.tekun_application")], True
    ),
    # RF-28 elderly without pension (60)
    case("RF-28", "age-60", household(member(), member("parent", 60, "weak")), [], True),
    case("RF-28", "age-59", household(member(), member("parent", 59, "weak")), [], False),
    case(
        "RF-28",
        "pensioned",
        household(member(), member("parent", 70, "weak", receives_basic_pension=True)),
        [],
        False,
    ),
    # RF-29 negative list with low achievement
    case(
        "RF-29",
        "vehicle-and-water",
        household(negative_list=NegativeListFacts(vehicle=True), water_unsafe=True),
        [],
        True,
    ),
    case(
        "RF-29", "vehicle-only", household(negative_list=NegativeListFacts(vehicle=True)), [], False
    ),
    case("RF-29", "water-only", household(water_unsafe=True), [], False),
    case(
        "RF-29",
        "payroll-alert-uninsured",
        household(member(medical_insured=False)),
        [alert("human_resources.public_payroll")],
        True,
    ),
    # RF-30 basic living
    case(
        "RF-30", "dibao-application", household(), [alert("civil_affairs.dibao_application")], True
    ),
    case(
        "RF-30",
        "temporary-assistance",
        household(),
        [alert("civil_affairs.temporary_assistance", amount=D(800))],
        True,
    ),
    case("RF-30", "nothing", household(), [], False),
    # RF-31 medical insurance
    case(
        "RF-31",
        "uninsured",
        household(member(), member("child", 5, "none", medical_insured=False)),
        [],
        True,
    ),
    case("RF-31", "insured", household(), [], False),
]


@pytest.mark.parametrize(("code", "h", "signals", "fires"), FACTOR_CASES)
def test_factor(code: str, h: HouseholdFacts, signals: tuple[Signal, ...], fires: bool) -> None:
    result = assess(h, signals)
    hits = [r for r in result.reasons if r.code == code and r.kind == "factor"]
    assert bool(hits) is fires
    if fires:
        assert hits[0].contribution == POLICY.weight(code)
        assert hits[0].evidence
        assert hits[0].title_zh
        assert hits[0].title_en
    # The factor function itself agrees with the engine on in-window evidence.
    direct = FACTORS[code](h, signals, POLICY, AS_OF)
    assert (direct is not None) is fires


def test_every_implemented_factor_is_tested_both_ways() -> None:
    seen: dict[str, set[bool]] = {}
    for param in FACTOR_CASES:
        code, _, _, fires = param.values
        seen.setdefault(code, set()).add(fires)
    assert set(seen) == set(FACTORS)
    assert all(outcomes == {True, False} for outcomes in seen.values()), seen


def test_registry_matches_default_weights_and_omits_rf25() -> None:
    assert set(FACTORS) == set(POLICY.factor_weights)
    assert "RF-25" not in FACTORS
    assert list(FACTORS) == sorted(FACTORS)


def test_weight_is_taken_from_policy() -> None:
    heavier = POLICY.model_copy(update={"factor_weights": {**POLICY.factor_weights, "RF-20": 33}})
    result = assess(household(hazard_zone=True), policy=heavier)
    assert [r.contribution for r in result.reasons if r.code == "RF-20"] == [33]


def test_factor_missing_from_policy_is_switched_off() -> None:
    weights = {k: v for k, v in POLICY.factor_weights.items() if k != "RF-20"}
    off = POLICY.model_copy(update={"factor_weights": weights})
    assert "RF-20" not in {r.code for r in assess(household(hazard_zone=True), policy=off).reasons}


CONTRACT_ALERT_TYPES = [
    "medical_insurance.large_out_of_pocket",
    "health.serious_illness_diagnosis",
    "health.chronic_illness_registered",
    "civil_affairs.dibao_application",
    "civil_affairs.dibao_termination",
    "civil_affairs.tekun_application",
    "civil_affairs.temporary_assistance",
    "education.college_students",
    "education.dropout_risk",
    "housing.unsafe_house_appraisal",
    "housing.disaster_damaged_house",
    "disability.certificate_issued",
    "human_resources.unemployment_registered",
    "human_resources.returned_migrant",
    "human_resources.public_payroll",
    "emergency.disaster_loss",
    "traffic_police.accident_injury",
    "traffic_police.vehicle_registered",
    "public_security.member_death",
    "water.supply_unsafe",
    "agriculture.business_loss",
    "market_regulation.business_registered",
    "natural_resources.commercial_housing",
    "natural_resources.hazard_zone",
]


@pytest.mark.parametrize("alert_type", CONTRACT_ALERT_TYPES)
def test_every_catalogue_alert_type_is_mapped(alert_type: str) -> None:
    rule = ALERT_RULES[alert_type]
    assert rule.factors or rule.review
    assert all(code in FACTORS for code in rule.factors)


def test_every_difficulty_type_is_mapped() -> None:
    assert set(DIFFICULTY_RULES) == set(get_args(DifficultyType))
    for dtype, rule in DIFFICULTY_RULES.items():
        assert all(code in FACTORS for code in rule.factors)
        assert rule.factors or dtype == "other"


def test_unknown_alert_type_is_ignored() -> None:
    result = assess(household(), [alert("statistics.something_new")])
    assert result.score == 0


# ------------------------------------------------------------------ evidence wording


def test_income_reason_reads_as_chinese_with_numbers() -> None:
    h = two_adults(incomes=(income("8400"),))
    reason = next(r for r in assess(h).reasons if r.code == "RF-01")
    assert reason.evidence == (
        "近12个月（2021年6月至2022年5月）家庭人均可支配收入 4,200 元，低于监测标准 6,000 元"
    )


def test_declared_income_is_marked_unverified() -> None:
    reason = next(
        r
        for r in assess(two_adults(), [declared("illness", self_reported_income=D(5000))]).reasons
        if r.code == "RF-01"
    )
    assert "未经核实" in reason.evidence
    assert "2,500 元" in reason.evidence


# ------------------------------------------------------------------ episode window


@pytest.mark.parametrize(
    ("occurred_on", "counts"),
    [
        pytest.param(AS_OF, True, id="same-day"),
        pytest.param(AS_OF - timedelta(days=364), True, id="364-days-back"),
        pytest.param(AS_OF - timedelta(days=365), False, id="365-days-back"),
        pytest.param(AS_OF + timedelta(days=1), False, id="after-as-of"),
    ],
)
def test_signals_count_only_inside_the_episode_window(occurred_on: date, counts: bool) -> None:
    signals = [alert("traffic_police.accident_injury", occurred_on=occurred_on)]
    assert ("RF-23" in fired(household(), signals)) is counts


# ------------------------------------------------------------------ income


@pytest.mark.parametrize(
    ("as_of", "months", "window"),
    [
        pytest.param(date(2022, 6, 15), 12, (date(2021, 6, 1), date(2022, 5, 31)), id="june"),
        pytest.param(date(2022, 1, 1), 12, (date(2021, 1, 1), date(2021, 12, 31)), id="january"),
        pytest.param(date(2022, 3, 31), 12, (date(2021, 3, 1), date(2022, 2, 28)), id="march"),
        pytest.param(date(2024, 3, 10), 12, (date(2023, 3, 1), date(2024, 2, 29)), id="leap"),
        pytest.param(date(2022, 12, 31), 12, (date(2021, 12, 1), date(2022, 11, 30)), id="dec"),
        pytest.param(date(2022, 6, 15), 1, (date(2022, 5, 1), date(2022, 5, 31)), id="one-month"),
        pytest.param(date(2022, 6, 15), 24, (date(2020, 6, 1), date(2022, 5, 31)), id="24-months"),
    ],
)
def test_income_window(as_of: date, months: int, window: tuple[date, date]) -> None:
    assert income_window(as_of, months) == window


def test_income_window_needs_a_month() -> None:
    with pytest.raises(ValueError, match="months"):
        income_window(AS_OF, 0)


@pytest.mark.parametrize(
    ("records", "members", "expected"),
    [
        pytest.param((income("8400"),), 2, D("4200.00"), id="two-members"),
        pytest.param(
            (income("1000", month=date(2021, 6, 1)), income("1000", "transfer")),
            2,
            D("1000.00"),
            id="window-edges-included",
        ),
        pytest.param(
            (income("1000"), income("5000", month=date(2022, 6, 1))),
            1,
            D("1000.00"),
            id="determination-month-excluded",
        ),
        pytest.param(
            (income("1000"), income("5000", month=date(2021, 5, 1))),
            1,
            D("1000.00"),
            id="older-month-excluded",
        ),
        pytest.param((income("1000"), income("-400", "operating")), 3, D("200.00"), id="loss"),
        pytest.param((income("100"),), 3, D("33.33"), id="rounded-to-cent"),
        pytest.param((), 2, None, id="no-records"),
        pytest.param((income("5000", month=date(2021, 1, 1)),), 2, None, id="none-in-window"),
        pytest.param((income("1000"),), 0, None, id="no-members"),
    ],
)
def test_per_capita_income(
    records: tuple[IncomeRecord, ...], members: int, expected: Decimal | None
) -> None:
    h = HouseholdFacts(
        household_ref="H",
        village_code="141122100001",
        members=tuple(member(ref=str(i)) for i in range(members)),
        incomes=records,
    )
    assert per_capita_income(h, POLICY, AS_OF) == expected


def test_income_record_month_must_be_first_day() -> None:
    with pytest.raises(ValueError, match="first day"):
        IncomeRecord(month=date(2022, 5, 2), component="wages", amount=D(1))


def test_unknown_income_is_noted_for_verification() -> None:
    result = assess(
        household(labels=frozenset({"tuopin"}), incomes=()),
        [alert("health.serious_illness_diagnosis")],
    )
    note = next(r for r in result.reasons if r.code == "RF-01")
    assert note.kind == "note"
    assert note.contribution == 0
    assert "入户核查" in note.evidence
    assert "收入" in note.evidence
    assert result.per_capita_income is None
    assert result.categories == ()
    assert "RF-14" in {r.code for r in result.reasons}


def test_unknown_previous_income_is_noted_when_there_is_rigid_spending() -> None:
    result = assess(household(incomes=(income("100000"),)), [alert(OOP, amount=D(30000))])
    note = next(r for r in result.reasons if r.code == "RF-04")
    assert note.kind == "note"
    assert note.contribution == 0
    assert "上年度" in note.evidence


# ------------------------------------------------------------------ categories

NOT_SEVERE = ShockSeverity(D(0), None, None, None, False)
SEVERE = ShockSeverity(D(20000), D(10000), D(2), None, True)
TUOPIN = household(labels=frozenset({"tuopin"}))
OTHER = household(labels=frozenset({"monitored"}))


@pytest.mark.parametrize(
    ("h", "per_capita", "codes", "severity", "expected"),
    [
        pytest.param(TUOPIN, D("5999.99"), {"RF-10"}, NOT_SEVERE, True, id="unstable-employment"),
        pytest.param(TUOPIN, D("6000"), {"RF-10"}, NOT_SEVERE, False, id="at-line"),
        pytest.param(TUOPIN, None, {"RF-10"}, NOT_SEVERE, False, id="income-unknown"),
        pytest.param(OTHER, D("5000"), {"RF-10"}, NOT_SEVERE, False, id="not-tuopin"),
        pytest.param(TUOPIN, D("5000"), {"RF-11"}, NOT_SEVERE, True, id="main-labourer"),
        pytest.param(TUOPIN, D("5000"), {"RF-14"}, NOT_SEVERE, False, id="illness-not-severe"),
        pytest.param(TUOPIN, D("5000"), {"RF-14"}, SEVERE, True, id="illness-severe"),
        pytest.param(TUOPIN, D("5000"), {"RF-07"}, SEVERE, True, id="business-loss-severe"),
        pytest.param(TUOPIN, D("5000"), {"RF-18"}, SEVERE, False, id="not-a-listed-cause"),
        pytest.param(TUOPIN, D("5000"), set(), SEVERE, False, id="no-cause"),
    ],
)
def test_unstable_escaped_rule(
    h: HouseholdFacts,
    per_capita: Decimal | None,
    codes: set[str],
    severity: ShockSeverity,
    expected: bool,
) -> None:
    assert is_unstable_escaped(h, per_capita, frozenset(codes), severity, POLICY) is expected


@pytest.mark.parametrize(
    ("h", "per_capita", "codes", "severity", "expected"),
    [
        pytest.param(OTHER, D("5000"), {"RF-14"}, NOT_SEVERE, True, id="illness"),
        pytest.param(OTHER, D("5000"), {"RF-16"}, NOT_SEVERE, True, id="college"),
        pytest.param(OTHER, D("5000"), {"RF-11"}, NOT_SEVERE, True, id="main-labourer"),
        pytest.param(OTHER, D("5000"), {"RF-29"}, NOT_SEVERE, True, id="negative-list-low"),
        pytest.param(OTHER, D("5000"), {"RF-22"}, NOT_SEVERE, False, id="disaster-not-severe"),
        pytest.param(OTHER, D("5000"), {"RF-22"}, SEVERE, True, id="disaster-severe"),
        pytest.param(OTHER, D("5000"), {"RF-10"}, SEVERE, False, id="not-a-listed-cause"),
        pytest.param(OTHER, D("6000"), {"RF-14"}, NOT_SEVERE, False, id="at-line"),
        pytest.param(OTHER, None, {"RF-14"}, NOT_SEVERE, False, id="income-unknown"),
        pytest.param(TUOPIN, D("5000"), {"RF-14"}, NOT_SEVERE, False, id="tuopin-is-not-marginal"),
    ],
)
def test_marginal_rule(
    h: HouseholdFacts,
    per_capita: Decimal | None,
    codes: set[str],
    severity: ShockSeverity,
    expected: bool,
) -> None:
    assert is_marginal(h, per_capita, frozenset(codes), severity, POLICY) is expected


@pytest.mark.parametrize(
    ("codes", "severity", "expected"),
    [
        pytest.param({"RF-14"}, SEVERE, True, id="illness-severe"),
        pytest.param({"RF-22"}, SEVERE, True, id="disaster-severe"),
        pytest.param({"RF-23"}, SEVERE, True, id="accident-severe"),
        pytest.param({"RF-24"}, SEVERE, True, id="sudden-event-severe"),
        pytest.param({"RF-14"}, NOT_SEVERE, False, id="illness-mild"),
        pytest.param({"RF-18"}, SEVERE, False, id="no-shock"),
        pytest.param(set(), SEVERE, False, id="nothing-fired"),
    ],
)
def test_sudden_difficulty_rule(codes: set[str], severity: ShockSeverity, expected: bool) -> None:
    assert is_sudden_difficulty(frozenset(codes), severity, POLICY) is expected


@pytest.mark.parametrize(
    ("h", "signals", "severe"),
    [
        pytest.param(
            household(previous_year_income=D(10000)),
            [alert(OOP, amount=D(10000))],
            True,
            id="rigid-equals-previous",
        ),
        pytest.param(
            household(previous_year_income=D(10000)),
            [alert(OOP, amount=D(9999))],
            False,
            id="rigid-below-previous",
        ),
        pytest.param(
            household(previous_year_income=D(0)),
            [alert(OOP, amount=D(1))],
            True,
            id="no-previous-income",
        ),
        pytest.param(household(), [alert(OOP, amount=D(99999))], False, id="previous-unknown"),
        pytest.param(
            household(incomes=(income("7000"),), previous_year_income=D(10000)),
            [],
            True,
            id="fall-30pct",
        ),
        pytest.param(
            household(incomes=(income("7001"),), previous_year_income=D(10000)),
            [],
            False,
            id="fall-under-30pct",
        ),
    ],
)
def test_shock_severity(h: HouseholdFacts, signals: list[Signal], severe: bool) -> None:
    assert assess_severity(h, signals, POLICY, AS_OF).severe is severe


def test_marginal_household_end_to_end() -> None:
    h = two_adults(incomes=(income("8000"),))
    result = assess(h, [alert("health.serious_illness_diagnosis")])
    assert result.categories == ("marginal",)


def test_unstable_escaped_and_sudden_difficulty_together() -> None:
    h = two_adults(
        labels=frozenset({"tuopin"}),
        incomes=(income("8000"),),
        previous_year_income=D(20000),
    )
    result = assess(h, [alert(OOP, amount=D(30000))])
    assert result.categories == ("unstable_escaped", "sudden_difficulty")


def test_sudden_difficulty_has_no_income_line() -> None:
    h = two_adults(incomes=(income("60000"),), previous_year_income=D(50000))
    result = assess(h, [alert(OOP, amount=D(60000))])
    assert result.categories == ("sudden_difficulty",)
    assert result.per_capita_income == D("30000.00")


# ------------------------------------------------------------------ levels, verification


WEAK_AT_HOME = household(
    member(migrant_worker=True), member("spouse", 38, "weak"), industry_covered=False
)


@pytest.mark.parametrize(
    ("h", "signals", "points", "level", "opens"),
    [
        pytest.param(household(), [], 0, "none", False, id="0-none"),
        pytest.param(WEAK_AT_HOME, [], 5, "none", False, id="5-none"),
        pytest.param(household(hazard_zone=True), [], 10, "low", False, id="10-low"),
        pytest.param(
            WEAK_AT_HOME, [alert("civil_affairs.dibao_application")], 35, "low", False, id="35-low"
        ),
        pytest.param(
            household(),
            [alert("traffic_police.accident_injury")],
            40,
            "medium",
            True,
            id="40-shock",
        ),
        pytest.param(
            household(hazard_zone=True, housing=HousingFacts(mud_brick_only=True)),
            [alert("traffic_police.accident_injury")],
            65,
            "medium",
            True,
            id="65-medium",
        ),
        pytest.param(
            household(hazard_zone=True, water_unsafe=True),
            [alert("traffic_police.accident_injury")],
            70,
            "high",
            True,
            id="70-high",
        ),
    ],
)
def test_levels_and_case_opening(
    h: HouseholdFacts, signals: list[Signal], points: int, level: str, opens: bool
) -> None:
    result = assess(h, signals)
    assert result.score == points
    assert result.level == level
    assert result.opens_case is opens


def test_score_is_capped_at_100() -> None:
    signals = [
        alert("traffic_police.accident_injury"),
        alert("public_security.member_death"),
        alert("health.serious_illness_diagnosis"),
    ]
    result = assess(household(), signals)
    assert result.uncapped_score == 120
    assert result.score == 100


@pytest.mark.parametrize(
    ("signals", "must_verify"),
    [
        pytest.param([declared("other")], True, id="declaration-zero-score"),
        pytest.param([declared("other", channel="report")], True, id="report-zero-score"),
        pytest.param([declared("other", occurred_on=date(2019, 1, 1))], True, id="old-declaration"),
        pytest.param([alert("traffic_police.accident_injury")], False, id="alert-only"),
        pytest.param([], False, id="no-signal"),
    ],
)
def test_must_verify_on_declaration_and_report(signals: list[Signal], must_verify: bool) -> None:
    result = assess(household(), signals)
    assert result.must_verify is must_verify
    if must_verify:
        assert result.opens_case


def test_opening_level_comes_from_policy() -> None:
    strict = POLICY.model_copy(update={"case_opening_level": "high"})
    lenient = POLICY.model_copy(update={"case_opening_level": "low"})
    h = household()
    signals = [alert("traffic_police.accident_injury")]
    assert not assess(h, signals, strict).opens_case
    assert assess(household(hazard_zone=True), (), lenient).opens_case


def test_assessment_names_its_policy() -> None:
    result = assess(household())
    assert (result.policy_id, result.policy_version) == (POLICY.policy_id, POLICY.version)


# ------------------------------------------------------------------ negative list


def test_negative_list_is_a_review_flag_never_a_rejection() -> None:
    everything = NegativeListFacts(
        vehicle=True,
        business=True,
        public_payroll=True,
        commercial_housing=True,
        large_deposits=True,
    )
    base = two_adults(incomes=(income("8000"),))
    flagged = two_adults(incomes=(income("8000"),), negative_list=everything)
    signals = [alert("health.serious_illness_diagnosis")]
    plain, hit = assess(base, signals), assess(flagged, signals)
    assert [f.code for f in hit.review_flags] == ["NEG-01", "NEG-02", "NEG-03", "NEG-04", "NEG-05"]
    assert all(f.kind == "review" and f.contribution == 0 for f in hit.review_flags)
    assert all("不作为排除依据" in f.evidence for f in hit.review_flags)
    assert hit.score >= plain.score
    assert hit.categories == plain.categories == ("marginal",)
    assert hit.opens_case == plain.opens_case


@pytest.mark.parametrize(
    ("alert_type", "code"),
    [
        pytest.param("traffic_police.vehicle_registered", "NEG-01", id="vehicle"),
        pytest.param("market_regulation.business_registered", "NEG-02", id="business"),
        pytest.param("human_resources.public_payroll", "NEG-03", id="payroll"),
        pytest.param("natural_resources.commercial_housing", "NEG-04", id="commercial-housing"),
    ],
)
def test_negative_list_alerts_become_review_flags(alert_type: str, code: str) -> None:
    result = assess(household(), [alert(alert_type)])
    assert [f.code for f in result.review_flags] == [code]
    assert result.score == 0
    assert [f.code for f in review_flags(household(), [alert(alert_type)])] == [code]


def test_same_negative_list_item_from_two_sources_is_one_flag() -> None:
    h = household(negative_list=NegativeListFacts(vehicle=True))
    flags = review_flags(h, [alert("traffic_police.vehicle_registered")])
    assert len(flags) == 1
    assert "入户信息" in flags[0].evidence
    assert "交警" in flags[0].evidence


# ------------------------------------------------------------------ properties

_REFS = ("m1", "m2", "m3", "m4")
_money = st.decimals(
    min_value=0, max_value=200_000, places=2, allow_nan=False, allow_infinity=False
)
_signed_money = st.decimals(
    min_value=-20_000, max_value=50_000, places=2, allow_nan=False, allow_infinity=False
)
_months = st.builds(
    lambda y, m: date(y, m, 1), st.integers(min_value=2020, max_value=2022), st.integers(1, 12)
)
_dates = st.dates(min_value=date(2021, 1, 1), max_value=date(2022, 7, 31))

members_st = st.builds(
    MemberFacts,
    member_ref=st.sampled_from(_REFS),
    relation=st.sampled_from(
        ["head", "spouse", "child", "child_in_law", "grandchild", "parent", "grandparent", "other"]
    ),
    age=st.integers(min_value=0, max_value=95),
    labour_capacity=st.sampled_from(["full", "weak", "half", "none"]),
    is_main_labourer=st.booleans(),
    disability_grade=st.none() | st.integers(min_value=1, max_value=4),
    health=st.sampled_from(["healthy", "chronic", "serious_illness"]),
    schooling=st.sampled_from(
        ["none", "preschool", "compulsory", "high_school", "college", "vocational_college"]
    ),
    student_aided=st.booleans(),
    migrant_worker=st.booleans(),
    receives_basic_pension=st.booleans(),
    dropout_risk=st.booleans(),
    medical_insured=st.booleans(),
)
incomes_st = st.builds(
    IncomeRecord,
    month=_months,
    component=st.sampled_from(["wages", "operating", "property", "transfer"]),
    amount=_signed_money,
)
households_st = st.builds(
    HouseholdFacts,
    household_ref=st.just("H"),
    village_code=st.just("141122100001"),
    labels=st.frozensets(st.sampled_from(["tuopin", "monitored", "dibao", "tekun", "orphan"])),
    members=st.lists(members_st, max_size=5).map(tuple),
    incomes=st.lists(incomes_st, max_size=8).map(tuple),
    previous_year_income=st.none() | _signed_money,
    housing=st.builds(HousingFacts, mud_brick_only=st.booleans(), unsafe=st.booleans()),
    hazard_zone=st.booleans(),
    water_unsafe=st.booleans(),
    industry_covered=st.sampled_from([None, True, False]),
    negative_list=st.builds(NegativeListFacts, vehicle=st.booleans(), large_deposits=st.booleans()),
)
_alert_types = [*ALERT_RULES, "unknown.type"]


@st.composite
def signals_st(draw: st.DrawFn) -> Signal:
    channels: list[Channel] = ["declaration", "alert", "report"]
    channel = draw(st.sampled_from(channels))
    return Signal(
        signal_id=draw(st.text(min_size=1, max_size=6)),
        channel=channel,
        occurred_on=draw(_dates),
        alert_type=draw(st.sampled_from(_alert_types)) if channel == "alert" else None,
        difficulty_types=tuple(
            draw(st.lists(st.sampled_from(list(DIFFICULTY_RULES)), max_size=3, unique=True))
        )
        if channel != "alert"
        else (),
        amount=draw(st.none() | _money),
        count=draw(st.none() | st.integers(min_value=0, max_value=5)),
        grade=draw(st.none() | st.integers(min_value=1, max_value=4)),
        self_reported_income=draw(st.none() | _money),
        member_ref=draw(st.none() | st.sampled_from(_REFS)),
    )


_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(households_st, st.lists(signals_st(), max_size=6), _dates)
def test_score_is_bounded_and_explained(
    h: HouseholdFacts, signals: list[Signal], as_of: date
) -> None:
    result = score(h, signals, POLICY, as_of=as_of)
    assert 0 <= result.score <= 100
    assert result.uncapped_score == sum(r.contribution for r in result.reasons)
    assert result.score == min(100, result.uncapped_score)
    assert result.level == POLICY.level_cutoffs.level_of(result.score)
    assert all(f.contribution == 0 for f in result.review_flags)
    assert all(r.contribution == 0 for r in result.reasons if r.kind == "note")
    assert result.must_verify == any(s.channel != "alert" for s in signals)


@_settings
@given(households_st, st.lists(signals_st(), max_size=5), signals_st(), _dates)
def test_adding_a_signal_never_lowers_the_score(
    h: HouseholdFacts, signals: list[Signal], extra: Signal, as_of: date
) -> None:
    before = score(h, signals, POLICY, as_of=as_of)
    after = score(h, [*signals, extra], POLICY, as_of=as_of)
    assert after.uncapped_score >= before.uncapped_score
    assert after.score >= before.score
    assert after.opens_case or not before.opens_case


@_settings
@given(households_st, st.lists(signals_st(), max_size=5), _dates)
def test_score_is_deterministic(h: HouseholdFacts, signals: list[Signal], as_of: date) -> None:
    assert score(h, signals, POLICY, as_of=as_of) == score(h, signals, POLICY, as_of=as_of)

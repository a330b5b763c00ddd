"""The bridge between screening's tables and the pure scoring engine."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Final, cast

from services.screening import policy as policy_mod
from services.screening import scoring
from services.screening.models import Household, IncomeRecord, Member, PolicyRecord, Signal
from shared.contracts.screening import ReasonV1

# Income records as far back as the longest policy window plus the year before it.
INCOME_LOOKBACK: Final = timedelta(days=800)
_LABOUR = {"full", "weak", "half", "none"}
_RELATIONS = {
    "head",
    "spouse",
    "child",
    "child_in_law",
    "grandchild",
    "parent",
    "parent_in_law",
    "grandparent",
    "sibling",
    "other",
}
# Intake speaks of the applicant as "self"; in the registry the applicant heads the household.
_RELATION_ALIASES = {"self": "head"}
_HEALTH = {"healthy", "chronic", "serious_illness"}
_SCHOOLING = {"none", "preschool", "compulsory", "high_school", "college", "vocational_college"}


def policy_for(
    records: Sequence[PolicyRecord], region_code: str, on: date
) -> policy_mod.ScoringPolicy:
    """Return the active policy for a region on a day; the packaged default when none applies."""
    return choose_policy(
        [policy_mod.ScoringPolicy.model_validate(r.body) for r in records], region_code, on
    )


def choose_policy(
    active: Sequence[policy_mod.ScoringPolicy], region_code: str, on: date
) -> policy_mod.ScoringPolicy:
    """Pick among parsed active policies as `policy_for` does among stored ones."""
    default = policy_mod.load_default_policy()
    try:
        return policy_mod.select_policy([*active, default], region_code, on)
    except policy_mod.NoApplicablePolicyError:
        return default


def episode_window_days(policy: policy_mod.ScoringPolicy) -> int:
    """Return how long signals about one household keep joining the same episode."""
    return policy.thresholds.episode_window_days


def _age(member: Member, as_of: date) -> int:
    if member.birth_date is None:
        return 40  # unknown: an adult of working age, so no age-based factor fires on a guess
    b = member.birth_date
    return as_of.year - b.year - ((as_of.month, as_of.day) < (b.month, b.day))


def _relation(value: str | None) -> str:
    rel = _RELATION_ALIASES.get(value or "", value or "other")
    return rel if rel in _RELATIONS else "other"


def member_facts(member: Member, as_of: date) -> scoring.MemberFacts:
    """Return the scoring view of a registry member."""
    return scoring.MemberFacts(
        member_ref=member.person_ref,
        relation=cast(Any, _relation(member.relation)),
        age=_age(member, as_of),
        labour_capacity=cast(
            Any, member.labour_capacity if member.labour_capacity in _LABOUR else "full"
        ),
        is_main_labourer=member.is_main_labourer,
        disability_grade=member.disability_grade,
        health=cast(Any, member.health if member.health in _HEALTH else "healthy"),
        schooling=cast(Any, member.schooling if member.schooling in _SCHOOLING else "none"),
        student_aided=member.student_aided,
        migrant_worker=member.migrant_worker,
        receives_basic_pension=member.receives_basic_pension,
        dropout_risk=member.dropout_risk,
        medical_insured=member.medical_insured,
    )


def household_facts(
    household: Household, members: Sequence[Member], incomes: Sequence[IncomeRecord], as_of: date
) -> scoring.HouseholdFacts:
    """Return the scoring view of a registry household."""
    facts = household.facts or {}
    housing = facts.get("housing", {})
    negative = facts.get("negative_list", {})
    return scoring.HouseholdFacts(
        household_ref=str(household.id),
        village_code=household.village_code or household.region_code,
        labels=frozenset(household.labels or ()),
        members=tuple(member_facts(m, as_of) for m in members),
        incomes=tuple(
            scoring.IncomeRecord(month=i.month, component=cast(Any, i.component), amount=i.amount)
            for i in incomes
        ),
        previous_year_income=household.previous_year_income,
        housing=scoring.HousingFacts(
            mud_brick_only=bool(housing.get("mud_brick_only", False)),
            unsafe=bool(housing.get("unsafe", False)),
            disaster_damaged=bool(housing.get("disaster_damaged", False)),
        ),
        hazard_zone=bool(facts.get("hazard_zone", False)),
        water_unsafe=bool(facts.get("water_unsafe", False)),
        industry_covered=facts.get("industry_covered"),
        negative_list=scoring.NegativeListFacts(
            **{
                k: bool(v)
                for k, v in negative.items()
                if k in scoring.NegativeListFacts.__dataclass_fields__
            }
        ),
    )


def signal_facts(signal: Signal, member_refs: dict[Any, str]) -> scoring.Signal:
    """Return the scoring view of a stored signal."""
    return scoring.Signal(
        signal_id=str(signal.id),
        channel=cast(Any, signal.channel),
        occurred_on=signal.occurred_on,
        alert_type=signal.alert_type,
        difficulty_types=tuple(cast(Any, t) for t in signal.difficulty_types),
        department=signal.department,
        amount=signal.amount,
        count=signal.count,
        grade=signal.grade,
        self_reported_income=signal.self_reported_income,
        member_ref=member_refs.get(signal.member_id),
    )


def _reason(r: scoring.Reason) -> ReasonV1:
    return ReasonV1(
        code=r.code,
        title_zh=r.title_zh,
        title_en=r.title_en,
        evidence=r.evidence,
        contribution=r.contribution,
    )


class Result:
    """An assessment in the shape the handler stores and publishes."""

    def __init__(self, a: scoring.Assessment) -> None:
        self.score = a.score
        self.level = str(a.level)
        self.categories = tuple(str(c) for c in a.categories)
        self.reasons = tuple(_reason(r) for r in a.reasons)
        self.review_flags = tuple(_reason(r) for r in a.review_flags)
        self.must_verify = a.must_verify
        self.opens_case = a.opens_case
        self.policy_id = a.policy_id
        self.policy_version = a.policy_version
        self.per_capita_income: Decimal | None = a.per_capita_income


def assess(
    *,
    household: Household,
    members: Sequence[Member],
    incomes: Sequence[IncomeRecord],
    signals: Sequence[Signal],
    policy: policy_mod.ScoringPolicy,
    as_of: date,
) -> Result:
    """Score a household's episode under a policy."""
    refs = {m.id: m.person_ref for m in members}
    facts = household_facts(household, members, incomes, as_of)
    return Result(
        scoring.score(facts, [signal_facts(s, refs) for s in signals], policy, as_of=as_of)
    )

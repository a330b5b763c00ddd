"""Scoring policy: versioned, per-region, effective-dated thresholds and weights (pure data)."""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Annotated, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Level = Literal["none", "low", "medium", "high"]
OpeningLevel = Literal["low", "medium", "high"]
# Domain §9 A4: the documents use three income concepts; the policy names the one it applies.
IncomeConcept = Literal["per_capita_disposable", "household_annual_per_capita", "per_capita_net"]

LEVEL_RANK: Final[dict[Level, int]] = {"none": 0, "low": 1, "medium": 2, "high": 3}

_FACTOR_CODE: Final = re.compile(r"RF-\d{2}")
# "" is the national default; otherwise a province (2), prefecture (4) or county (6) prefix of
# the 12-digit statistical code.
_REGION_PREFIX: Final = re.compile(r"(\d{2}|\d{4}|\d{6})?")
_DEFAULT_RESOURCE: Final = "policies/default.json"

Ratio = Annotated[Decimal, Field(ge=0)]
Amount = Annotated[Decimal, Field(ge=0)]
FactorCode = Annotated[str, Field(pattern=r"^RF-\d{2}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Thresholds(_Frozen):
    """Numeric triggers the risk factors compare facts against."""

    transfer_income_share: Ratio  # RF-05: share strictly above this fires
    college_students_min: int = Field(ge=1)  # RF-16
    children_in_school_min: int = Field(ge=1)  # RF-16 (several children at school)
    large_out_of_pocket_medical: Amount  # RF-14, any member
    chronic_out_of_pocket_medical: Amount  # RF-14, household with a chronic patient
    sharp_income_fall_ratio: Ratio  # RF-03
    rigid_expenditure_ratio: Ratio  # RF-04: rigid spending / previous year's income
    near_line_ratio: Decimal = Field(ge=1)  # RF-02: "slightly above" = below line x ratio
    elderly_age: int = Field(ge=0)  # RF-28, RF-27 supporters
    adult_age: int = Field(ge=0)  # RF-26 minors, RF-27 supporters
    episode_window_days: int = Field(ge=1)  # signals older than this are not evidence
    unsafe_house_min_grade: int = Field(ge=1, le=4)  # RF-19: appraisal grade 1=A .. 4=D
    labour_loss_disability_max_grade: int = Field(ge=1, le=4)  # RF-11 (grade 1 = most severe)
    severe_disability_max_grade: int = Field(ge=1, le=4)  # RF-27
    disaster_loss_min_amount: Amount  # RF-22
    business_loss_min_amount: Amount  # RF-07


class LevelCutoffs(_Frozen):
    """Lowest score of each level; below `low` the level is none."""

    low: int = Field(ge=1, le=100)
    medium: int = Field(ge=1, le=100)
    high: int = Field(ge=1, le=100)

    @model_validator(mode="after")
    def _ascending(self) -> Self:
        if not self.low < self.medium < self.high:
            raise ValueError("level cut-offs must satisfy low < medium < high")
        return self

    def level_of(self, score: int) -> Level:
        """Return the level a score falls in."""
        if score >= self.high:
            return "high"
        if score >= self.medium:
            return "medium"
        if score >= self.low:
            return "low"
        return "none"


class ShockRule(_Frozen):
    """突发严重困难户 (domain §3.2 c): a shock whose rigid spending or income fall is severe."""

    shock_factors: tuple[FactorCode, ...]
    rigid_expenditure_ratio: Ratio  # rigid spending >= ratio x previous year's income
    income_fall_ratio: Ratio  # (previous - current) / previous >= ratio


class CategoryRule(_Frozen):
    """Risk causes of an income-tested category (domain §3.2 a, b)."""

    # Causes that count on their own once the income test holds.
    direct_causes: tuple[FactorCode, ...]
    # Causes that count only when they led to severe rigid spending or a sharp income fall,
    # judged with the shock rule's ratios (the documents use the same wording for both).
    severity_causes: tuple[FactorCode, ...] = ()


class CategoryRules(_Frozen):
    """The two income-tested categories."""

    unstable_escaped: CategoryRule
    marginal: CategoryRule


class ScoringPolicy(_Frozen):
    """One version of the screening rules for one region, in force from a date."""

    policy_id: str = Field(min_length=1)
    version: int = Field(ge=1)
    region_code: str = ""
    effective_from: date
    income_line: Decimal = Field(gt=0)
    income_concept: IncomeConcept = "per_capita_disposable"
    income_window_months: int = Field(default=12, ge=1, le=36)
    escaped_label: str = "tuopin"  # household label for 脱贫户
    dibao_label: str = "dibao"
    special_group_labels: tuple[str, ...] = ()  # RF-27 labels set by civil affairs
    factor_weights: dict[str, int]
    thresholds: Thresholds
    level_cutoffs: LevelCutoffs
    case_opening_level: OpeningLevel = "medium"
    shock_rule: ShockRule
    categories: CategoryRules
    # Where each value comes from: "<field or dotted path>" -> citation of domain.md.
    notes: dict[str, str] = Field(default_factory=dict)

    @field_validator("region_code")
    @classmethod
    def _region_prefix(cls, value: str) -> str:
        if not _REGION_PREFIX.fullmatch(value):
            raise ValueError("region_code must be '', or 2, 4 or 6 digits")
        return value

    @field_validator("factor_weights")
    @classmethod
    def _weights(cls, value: dict[str, int]) -> dict[str, int]:
        for code, weight in value.items():
            if not _FACTOR_CODE.fullmatch(code):
                raise ValueError(f"factor weight key {code!r} is not an RF-xx code")
            if not 0 <= weight <= 100:
                raise ValueError(f"weight of {code} must be within 0..100")
        return value

    def weight(self, code: str) -> int:
        """Return a factor's weight, 0 when the policy does not weigh it."""
        return self.factor_weights.get(code, 0)

    def enables(self, code: str) -> bool:
        """Return whether the factor is switched on (listed in factor_weights)."""
        return code in self.factor_weights


class NoApplicablePolicyError(LookupError):
    """No policy covers the region on the date."""


def parse_policy(text: str | bytes) -> ScoringPolicy:
    """Parse and validate one policy document (JSON)."""
    return ScoringPolicy.model_validate_json(text)


def load_default_policy() -> ScoringPolicy:
    """Load the national default policy shipped in policies/default.json."""
    resource = importlib.resources.files(__package__ or "services.screening") / _DEFAULT_RESOURCE
    return parse_policy(resource.read_bytes())


def select_policy(policies: Iterable[ScoringPolicy], region_code: str, on: date) -> ScoringPolicy:
    """Pick the policy of the most specific region prefix in force on the date, latest version."""
    in_force = [
        p for p in policies if region_code.startswith(p.region_code) and p.effective_from <= on
    ]
    if not in_force:
        raise NoApplicablePolicyError(f"no scoring policy for region {region_code!r} on {on}")
    # A longer prefix is a smaller area, so its rules override the wider ones; within a
    # region the highest version wins, the later effective date breaking a tie.
    return max(in_force, key=lambda p: (len(p.region_code), p.version, p.effective_from))

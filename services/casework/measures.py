"""The catalogue of assistance measures (domain.md §6.3) as versioned data, and plan routing.

A 一户一策 plan item names a measure from this catalogue.  Routing follows the documents'
one principle for choosing measures, labour capacity [001:38; 001:496; 003:83]: employment,
industry and public-welfare jobs where the household can work, the social-assistance floor
(应保尽保，应兜尽兜) where it cannot.  Measures that fix a 两不愁三保障 or drinking-water gap
found on the household's record are suggested whatever the labour capacity, because those
gaps are cleared every month (D13) regardless of who can work.  Medical, schooling, housing
and water measures are offered only for such a gap (`gap_only`); the social-assistance
floor is routed by labour and also offered for a food or clothing gap.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "GUARANTEE_DIMENSIONS",
    "PLAN_ITEM_STATUSES",
    "GuaranteeDimension",
    "LabourCapacity",
    "Measure",
    "MeasureCatalogue",
    "MeasureFamily",
    "PlanItemStatus",
    "Suggestion",
    "load_measure_catalogue",
    "suggest",
]

# full: at least one able-bodied working member; weak: only weak or half labour (priority
# for public-welfare jobs [002:38]); none: no labour capacity at all.
LabourCapacity = Literal["full", "weak", "none"]
# 两不愁 (food, clothing), 三保障 (education, medical care, housing) and drinking water (§3.5).
GuaranteeDimension = Literal[
    "food", "clothing", "compulsory_education", "basic_medical", "housing_safety", "drinking_water"
]
GUARANTEE_DIMENSIONS: tuple[GuaranteeDimension, ...] = (
    "food",
    "clothing",
    "compulsory_education",
    "basic_medical",
    "housing_safety",
    "drinking_water",
)
PlanItemStatus = Literal["planned", "in_progress", "delivered", "cancelled"]
PLAN_ITEM_STATUSES: tuple[PlanItemStatus, ...] = (
    "planned",
    "in_progress",
    "delivered",
    "cancelled",
)

_LABOUR_ZH = {"full": "有劳动能力", "weak": "弱劳动力或半劳动力", "none": "无劳动能力"}
_DIMENSION_ZH = {
    "food": "不愁吃",
    "clothing": "不愁穿",
    "compulsory_education": "义务教育",
    "basic_medical": "基本医疗",
    "housing_safety": "住房安全",
    "drinking_water": "饮水安全",
}


class MeasureFamily(BaseModel):
    """A family of measures (产业, 就业, 社会救助, ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[a-z_]+$")
    name_zh: str = Field(min_length=1)


class Measure(BaseModel):
    """One measure type a plan item can name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    family: str
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    for_labour: tuple[LabourCapacity, ...] = Field(min_length=1)
    # The 两不愁三保障 / water dimensions the measure secures.
    addresses: tuple[GuaranteeDimension, ...] = ()
    # Offered only to fix one of `addresses` (medical, schooling, housing, water), never as a
    # labour-routed default: every household is entitled to them when the gap exists.
    gap_only: bool = False
    # The unit usually responsible; a plan item may name another.
    default_unit: str = Field(min_length=1)
    citation: str = Field(min_length=1)


class MeasureCatalogue(BaseModel):
    """A versioned catalogue; plan items record the version they were chosen from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    source: str = ""
    families: tuple[MeasureFamily, ...]
    measures: tuple[Measure, ...]

    @model_validator(mode="after")
    def _check(self) -> MeasureCatalogue:
        """Keep codes unique and every measure inside a declared family."""
        family_codes = [f.code for f in self.families]
        if len(family_codes) != len(set(family_codes)):
            raise ValueError("family codes must be unique")
        codes = [m.code for m in self.measures]
        if len(codes) != len(set(codes)):
            raise ValueError("measure codes must be unique")
        for measure in self.measures:
            if measure.family not in family_codes:
                raise ValueError(f"{measure.code} names unknown family {measure.family!r}")
            if not measure.code.startswith(measure.family + "."):
                raise ValueError(f"{measure.code} must start with its family code")
            if measure.gap_only and not measure.addresses:
                raise ValueError(f"{measure.code} is gap-only but addresses no dimension")
        return self

    def get(self, code: str) -> Measure | None:
        """Return the measure with this code, if the catalogue has it."""
        for measure in self.measures:
            if measure.code == code:
                return measure
        return None


@functools.cache
def load_measure_catalogue() -> MeasureCatalogue:
    """Load the packaged catalogue (policies/measures.json); the result is immutable."""
    text = (
        resources.files("services.casework")
        .joinpath("policies/measures.json")
        .read_text(encoding="utf-8")
    )
    return MeasureCatalogue.model_validate(json.loads(text))


@dataclass(frozen=True)
class Suggestion:
    """A measure proposed for a household, with why."""

    measure: Measure
    why_zh: str
    why_en: str


def suggest(
    catalogue: MeasureCatalogue,
    *,
    labour: LabourCapacity | None,
    insecure: Iterable[GuaranteeDimension] = (),
) -> list[Suggestion]:
    """Return measures for a household: gap-fixing ones first, then those its labour suits."""
    gaps = [d for d in GUARANTEE_DIMENSIONS if d in set(insecure)]
    out: list[Suggestion] = []
    seen: set[str] = set()
    for dimension in gaps:
        for measure in catalogue.measures:
            if dimension in measure.addresses and measure.code not in seen:
                seen.add(measure.code)
                out.append(
                    Suggestion(
                        measure,
                        f"「{_DIMENSION_ZH[dimension]}」未保障，须当月清零",
                        f"{dimension} is not secure and must be cleared this month",
                    )
                )
    if labour is None:
        # Without a recorded verification nobody knows the labour capacity; guessing would
        # route a household away from the floor it may need.
        return out
    for measure in catalogue.measures:
        if measure.gap_only or measure.code in seen or labour not in measure.for_labour:
            continue
        seen.add(measure.code)
        out.append(
            Suggestion(
                measure,
                f"按劳动能力分类帮扶：{_LABOUR_ZH[labour]}",
                f"routed by labour capacity: {labour}",
            )
        )
    return out

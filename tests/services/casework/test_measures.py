"""Tests for the measures catalogue and labour-capacity routing."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.casework.measures import (
    GUARANTEE_DIMENSIONS,
    GuaranteeDimension,
    LabourCapacity,
    MeasureCatalogue,
    load_measure_catalogue,
    suggest,
)

CATALOGUE = load_measure_catalogue()


def families(codes: list[str]) -> set[str]:
    """Return the families of measure codes."""
    return {code.split(".")[0] for code in codes}


class TestLoadMeasureCatalogue:
    def test_is_versioned_and_cited(self) -> None:
        assert CATALOGUE.version
        assert all(m.citation.startswith("[") for m in CATALOGUE.measures)

    def test_covers_every_family_of_the_domain_catalogue(self) -> None:
        # domain.md §6.3 lists these families; each must offer at least one measure.
        expected = {
            "industry",
            "employment",
            "public_welfare_job",
            "finance",
            "social_assistance",
            "medical",
            "education",
            "housing",
            "drinking_water",
            "insurance",
            "pension_care",
            "consumption",
            "relocation",
        }
        assert families([m.code for m in CATALOGUE.measures]) == expected

    def test_every_guarantee_dimension_has_a_measure(self) -> None:
        for dimension in GUARANTEE_DIMENSIONS:
            assert any(dimension in m.addresses for m in CATALOGUE.measures), dimension

    def test_get(self) -> None:
        measure = CATALOGUE.get("social_assistance.dibao")
        assert measure is not None
        assert measure.name_zh == "最低生活保障（低保）"
        assert CATALOGUE.get("social_assistance.cash_handout") is None


class TestCatalogueValidation:
    @pytest.mark.parametrize(
        ("change", "match"),
        [
            pytest.param({"family": "nowhere"}, "unknown family", id="unknown-family"),
            pytest.param({"code": "employment.dibao"}, "start with its family", id="wrong-prefix"),
            pytest.param({"for_labour": []}, "at least 1", id="no-labour-route"),
            pytest.param({"gap_only": True, "addresses": []}, "gap-only", id="gap-only-no-gap"),
        ],
    )
    def test_invalid_measures_are_refused(self, change: dict[str, Any], match: str) -> None:
        data = CATALOGUE.model_dump(mode="json")
        data["measures"][11] = {**data["measures"][11], **change}
        with pytest.raises(ValidationError, match=match):
            MeasureCatalogue.model_validate(data)

    def test_duplicate_codes_are_refused(self) -> None:
        data = CATALOGUE.model_dump(mode="json")
        data["measures"].append(data["measures"][0])
        with pytest.raises(ValidationError, match="unique"):
            MeasureCatalogue.model_validate(data)


class TestSuggest:
    @pytest.mark.parametrize(
        ("labour", "present", "absent"),
        [
            pytest.param(
                "full",
                {"employment", "industry", "finance", "public_welfare_job"},
                {"social_assistance"},
                id="with-labour-works",
            ),
            pytest.param(
                "weak",
                {"public_welfare_job", "employment", "social_assistance"},
                set(),
                id="weak-labour-gets-both",
            ),
            pytest.param(
                "none",
                {"social_assistance", "pension_care"},
                {"employment", "finance", "public_welfare_job"},
                id="no-labour-gets-the-floor",
            ),
        ],
    )
    def test_routed_by_labour_capacity(
        self, labour: LabourCapacity, present: set[str], absent: set[str]
    ) -> None:
        routed = families([s.measure.code for s in suggest(CATALOGUE, labour=labour)])
        assert present <= routed
        assert not absent & routed

    @pytest.mark.parametrize(
        ("insecure", "first"),
        [
            pytest.param(["housing_safety"], "housing.dangerous_house_renovation", id="housing"),
            pytest.param(["drinking_water"], "drinking_water.supply", id="water"),
            pytest.param(["compulsory_education"], "education.student_aid", id="school"),
        ],
    )
    def test_gaps_come_first_whatever_the_labour(
        self, insecure: list[GuaranteeDimension], first: str
    ) -> None:
        found = suggest(CATALOGUE, labour="full", insecure=insecure)
        assert found[0].measure.code == first
        assert "须当月清零" in found[0].why_zh

    def test_food_gap_offers_the_floor_even_with_labour(self) -> None:
        codes = [s.measure.code for s in suggest(CATALOGUE, labour="full", insecure=["food"])]
        assert "social_assistance.dibao" in codes

    def test_unknown_labour_capacity_routes_nothing_but_gaps(self) -> None:
        assert suggest(CATALOGUE, labour=None) == []
        gaps = suggest(CATALOGUE, labour=None, insecure=["basic_medical"])
        assert {s.measure.family for s in gaps} == {"medical"}

    def test_gap_only_measures_need_a_gap(self) -> None:
        codes = [s.measure.code for s in suggest(CATALOGUE, labour="none")]
        assert "housing.dangerous_house_renovation" not in codes

    def test_no_measure_twice(self) -> None:
        found = suggest(CATALOGUE, labour="none", insecure=list(GUARANTEE_DIMENSIONS))
        codes = [s.measure.code for s in found]
        assert len(codes) == len(set(codes))

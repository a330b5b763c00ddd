"""Tests for the registry and assessment routes: households, linking, episodes, assessments."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.screening.models import RiskAssessment
from shared.auth import Role
from tests.services.screening.harness import (
    COUNTY,
    OTHER_VILLAGE,
    VILLAGE,
    Screening,
    Seeded,
    seed_household,
)


async def seed(screening: Screening, **kwargs: Any) -> Seeded:
    """Put a household straight into the registry."""
    async with screening.uow.transaction() as session:
        return await seed_household(session, screening.cipher, now=screening.clock.now(), **kwargs)


async def assess(screening: Screening, seeded: Seeded) -> uuid.UUID:
    """Store one assessment of the seeded household's episode."""
    assert seeded.episode_id is not None
    assessment = RiskAssessment(
        id=uuid.uuid4(),
        episode_id=seeded.episode_id,
        household_id=seeded.household_id,
        source_event_id=uuid.uuid4(),
        score=40,
        level="medium",
        categories=["sudden_difficulty"],
        reasons=[
            {
                "code": "RF-14",
                "title_zh": "大病",
                "title_en": "illness",
                "evidence": "…",
                "contribution": 40,
            }
        ],
        review_flags=[],
        must_verify=False,
        opens_case=True,
        policy_id="national-default",
        policy_version=1,
        assessed_at=datetime(2026, 11, 20, 2, tzinfo=UTC),
    )
    async with screening.uow.transaction() as session:
        session.add(assessment)
    return assessment.id


class TestListHouseholds:
    async def test_pages_through_the_caller_region_masked(
        self, screening: Screening, backend: str
    ) -> None:
        for n in range(3):
            await seed(
                screening, serials=[n * 10 + 1, n * 10 + 2], provisional=False, roster_no=f"A-{n}"
            )
        await seed(screening, serials=[99], region=OTHER_VILLAGE)
        response = await screening.http.get(
            "/v1/households?page=1&page_size=2", headers=screening.auth("village_officer", VILLAGE)
        )
        body = response.json()
        assert (body["total"], len(body["items"]), body["page"]) == (3, 2, 1)
        item = body["items"][0]
        assert item["members"] == 2
        assert "********" in item["head_id_masked"]
        provisional = await screening.http.get(
            "/v1/households?provisional=true", headers=screening.auth()
        )
        assert [i["region_code"] for i in provisional.json()["items"]] == [OTHER_VILLAGE]

    async def test_refuses_a_region_outside_the_caller(self, screening: Screening) -> None:
        response = await screening.http.get(
            f"/v1/households?region={COUNTY}", headers=screening.auth("village_officer", VILLAGE)
        )
        assert response.status_code == 403


class TestGetHousehold:
    async def test_shows_members_masked_and_where_a_merged_household_went(
        self, screening: Screening, backend: str
    ) -> None:
        target = await seed(screening, serials=[1], provisional=False, roster_no="A", signals=0)
        source = await seed(screening, serials=[2])
        await screening.http.post(
            f"/v1/households/{source.household_id}:link",
            json={"target_household_id": str(target.household_id)},
            headers=screening.auth(),
        )
        gone = await screening.http.get(
            f"/v1/households/{target.household_id}", headers=screening.auth()
        )
        assert gone.json()["merged_into"] == str(source.household_id)
        kept = (
            await screening.http.get(
                f"/v1/households/{source.household_id}", headers=screening.auth()
            )
        ).json()
        assert (kept["roster_no"], kept["provisional"], len(kept["members"])) == ("A", False, 2)
        assert all("********" in m["id_masked"] for m in kept["members"])


class TestLinkHousehold:
    async def test_links_and_answers_the_household_that_stands_for_the_family(
        self, screening: Screening, backend: str
    ) -> None:
        target = await seed(screening, serials=[1], provisional=False, roster_no="A")
        source = await seed(screening, serials=[2], signals=3)
        response = await screening.http.post(
            f"/v1/households/{source.household_id}:link",
            json={"target_household_id": str(target.household_id)},
            headers=screening.auth("village_officer", VILLAGE),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["household_id"], body["merged_household_id"]) == (
            str(target.household_id),
            str(source.household_id),
        )
        assert (body["members_moved"], body["signals_moved"]) == (1, 3)
        assert body["open_episode_id"] == str(target.episode_id)

    @pytest.mark.parametrize(
        ("role", "region", "payload", "status"),
        [
            pytest.param("department_officer", COUNTY, None, 403, id="department-officer"),
            pytest.param("village_officer", OTHER_VILLAGE, None, 404, id="other-village"),
            pytest.param("county_officer", COUNTY, {"target": "x"}, 422, id="bad-body"),
        ],
    )
    async def test_refuses(
        self,
        screening: Screening,
        role: Role,
        region: str,
        payload: dict[str, str] | None,
        status: int,
    ) -> None:
        target = await seed(screening, serials=[1], provisional=False, roster_no="A")
        source = await seed(screening, serials=[2])
        response = await screening.http.post(
            f"/v1/households/{source.household_id}:link",
            json=payload or {"target_household_id": str(target.household_id)},
            headers=screening.auth(role, region),
        )
        assert response.status_code == status


class TestListEpisodes:
    async def test_lists_open_episodes_with_their_latest_assessment(
        self, screening: Screening, backend: str
    ) -> None:
        seeded = await seed(screening, serials=[1], signals=2)
        assessment_id = await assess(screening, seeded)
        await seed(screening, serials=[2], region=OTHER_VILLAGE)
        response = await screening.http.get(
            "/v1/episodes", headers=screening.auth("village_officer", VILLAGE)
        )
        body = response.json()
        assert body["total"] == 1
        [item] = body["items"]
        assert (item["signals"], item["latest"]["assessment_id"]) == (2, str(assessment_id))


class TestGetEpisode:
    async def test_shows_signals_and_history_inside_the_region(
        self, screening: Screening, backend: str
    ) -> None:
        seeded = await seed(screening, serials=[1], signals=2)
        await assess(screening, seeded)
        ok = await screening.http.get(f"/v1/episodes/{seeded.episode_id}", headers=screening.auth())
        assert (len(ok.json()["signals"]), len(ok.json()["assessments"])) == (2, 1)
        hidden = await screening.http.get(
            f"/v1/episodes/{seeded.episode_id}",
            headers=screening.auth("village_officer", OTHER_VILLAGE),
        )
        assert hidden.status_code == 404


class TestGetAssessment:
    async def test_shows_every_reason_and_the_policy_version(
        self, screening: Screening, backend: str
    ) -> None:
        seeded = await seed(screening, serials=[1])
        assessment_id = await assess(screening, seeded)
        body = (
            await screening.http.get(f"/v1/assessments/{assessment_id}", headers=screening.auth())
        ).json()
        assert (body["policy_id"], body["policy_version"], body["reasons"][0]["code"]) == (
            "national-default",
            1,
            "RF-14",
        )
        missing = await screening.http.get(
            f"/v1/assessments/{uuid.uuid4()}", headers=screening.auth()
        )
        assert missing.status_code == 404

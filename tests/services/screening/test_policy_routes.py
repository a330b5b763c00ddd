"""Tests for the policy admin routes: propose, review, activate, list, simulate."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.screening.policy import load_default_policy
from shared.auth import Role
from tests.services.screening.harness import COUNTY, VILLAGE, Screening, seed_household
from tests.services.screening.test_service import candidate

BASE = "/v1/policies/jiaocheng/versions/1"


async def propose(screening: Screening, **changes: Any) -> Any:
    """Propose a version as admin a1."""
    return await screening.http.post(
        "/v1/policies", json=candidate(**changes), headers=screening.auth("admin", sub="a1")
    )


class TestPropose:
    async def test_stores_the_version_as_proposed(self, screening: Screening, backend: str) -> None:
        response = await propose(screening)
        assert response.status_code == 201, response.text
        assert (response.json()["status"], response.json()["proposed_by"]) == ("proposed", "a1")

    @pytest.mark.parametrize(
        ("role", "changes", "status"),
        [
            pytest.param("county_officer", {}, 403, id="not-admin"),
            pytest.param("admin", {"thresholds": {"elderly_age": 60}}, 422, id="invalid"),
            pytest.param("admin", {"region_code": "14"}, 403, id="wider-region"),
        ],
    )
    async def test_refuses(
        self, screening: Screening, role: Role, changes: dict[str, Any], status: int
    ) -> None:
        response = await screening.http.post(
            "/v1/policies", json=candidate(**changes), headers=screening.auth(role)
        )
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"


class TestReview:
    async def test_four_eyes(self, screening: Screening, backend: str) -> None:
        await propose(screening)
        same = await screening.http.post(
            f"{BASE}:review", headers=screening.auth("admin", sub="a1")
        )
        assert same.status_code == 403
        other = await screening.http.post(
            f"{BASE}:review", headers=screening.auth("admin", sub="a2")
        )
        assert (other.status_code, other.json()["reviewed_by"]) == (200, "a2")


class TestActivate:
    async def test_only_a_reviewed_version_and_it_retires_the_previous(
        self, screening: Screening, backend: str
    ) -> None:
        await propose(screening)
        assert (
            await screening.http.post(f"{BASE}:activate", headers=screening.auth("admin"))
        ).status_code == 409
        await screening.http.post(f"{BASE}:review", headers=screening.auth("admin", sub="a2"))
        first = await screening.http.post(f"{BASE}:activate", headers=screening.auth("admin"))
        assert first.json()["activated"]["status"] == "active"
        await propose(screening, version=2)
        await screening.http.post(
            "/v1/policies/jiaocheng/versions/2:review", headers=screening.auth("admin", sub="a2")
        )
        second = await screening.http.post(
            "/v1/policies/jiaocheng/versions/2:activate", headers=screening.auth("admin")
        )
        assert [(r["version"], r["status"]) for r in second.json()["retired"]] == [(1, "retired")]


class TestListVersions:
    async def test_lists_the_region_versions_and_the_packaged_default(
        self, screening: Screening, backend: str
    ) -> None:
        await propose(screening)
        listed = (await screening.http.get("/v1/policies", headers=screening.auth("admin"))).json()
        assert [(p["policy_id"], p["status"]) for p in listed] == [
            ("jiaocheng", "proposed"),
            ("national-default", "packaged"),
        ]
        proposed = (
            await screening.http.get(
                "/v1/policies?status=proposed", headers=screening.auth("admin")
            )
        ).json()
        assert [p["version"] for p in proposed] == [1]


class TestGetVersion:
    async def test_returns_the_document(self, screening: Screening) -> None:
        await propose(screening)
        found = await screening.http.get(BASE, headers=screening.auth("admin"))
        assert found.json()["body"]["policy_id"] == "jiaocheng"
        assert (
            await screening.http.get(BASE + "0", headers=screening.auth("admin"))
        ).status_code == 404


class TestSimulate:
    async def test_answers_both_policies_per_township(
        self, screening: Screening, backend: str
    ) -> None:
        async with screening.uow.transaction() as session:
            await seed_household(
                session, screening.cipher, serials=[1], now=screening.clock.now(), region=VILLAGE
            )
        body = {
            "candidate": candidate(
                factor_weights={**load_default_policy().factor_weights, "RF-14": 10}
            ),
            "from": "2026-01-01",
            "to": date(2026, 11, 30).isoformat(),
        }
        response = await screening.http.post(
            "/v1/policies/simulate", json=body, headers=screening.auth("admin")
        )
        assert response.status_code == 200, response.text
        result = response.json()
        assert (result["region"], result["episodes"], result["signals"]) == (COUNTY, 1, 1)
        assert result["townships"][0]["township_name"] == "天宁镇"
        assert result["active"]["by_level"]["medium"] == 1
        assert result["changes_total"] == 1
        assert result["changes"][0]["active"]["level"] == "medium"

    @pytest.mark.parametrize(
        ("body", "status"),
        [
            pytest.param(
                {"candidate": {"policy_id": "x"}, "from": "2026-01-01", "to": "2026-02-01"},
                422,
                id="bad-candidate",
            ),
            pytest.param(
                {"candidate": candidate(), "from": "2026-03-01", "to": "2026-02-01"},
                422,
                id="reversed",
            ),
            pytest.param({"candidate": candidate(), "from": "2026-01-01"}, 422, id="no-end"),
        ],
    )
    async def test_refuses(self, screening: Screening, body: dict[str, Any], status: int) -> None:
        response = await screening.http.post(
            "/v1/policies/simulate", json=body, headers=screening.auth("admin")
        )
        assert response.status_code == status, response.text

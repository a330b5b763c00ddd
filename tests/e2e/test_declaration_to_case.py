"""The event path in one process: declaration or alerts → screening → casework → progress."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from services.screening.models import RiskAssessment, RiskEpisode
from tests import factories
from tests.support import Stack

pytestmark = pytest.mark.e2e


async def _cases(stack: Stack) -> dict[str, object]:
    response = await stack.as_caseworker(
        "casework", "GET", "/v1/cases", stack.token("county_officer")
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


class TestDeclarationToCase:
    async def test_declaration_becomes_a_case_with_its_clock(
        self, stack: Stack, backend: str
    ) -> None:
        mp = stack.client("miniprogram")
        filed = await stack.signed("POST", "/v1/declarations", mp, factories.declaration())
        assert filed.status_code == 202, filed.text
        receipt = filed.json()["receipt_no"]

        await stack.pump()

        cases = await _cases(stack)
        assert cases["total"] == 1
        item = cases["items"][0]  # type: ignore[index]
        assert item["stage"] == "opened"
        assert item["sources"] == [
            {
                "kind": "declaration",
                "receipt_no": receipt,
                "department": None,
                "alert_id": None,
                "report_id": None,
            }
        ]
        assert [d["kind"] for d in item["deadlines"]] == ["identification"]
        # A declaration always goes to verification (应纳尽纳), whatever its score.
        progress = await stack.signed("GET", f"/v1/declarations/{receipt}", mp)
        assert progress.json()["stage"] == "under_verification"
        assert progress.json()["identification_due"] == item["deadlines"][0]["due"]

    async def test_three_departments_one_household_make_one_episode_and_one_case(
        self, stack: Stack, backend: str
    ) -> None:
        # Three members of one family, each known to a different department.
        head, spouse, child = (factories.resident_id(n) for n in (11, 12, 13))
        mp = stack.client("miniprogram")
        body = factories.declaration(
            applicant={"name": "李四", "id_number": head, "phone": "13900139000"},
            members=[
                {"name": "王芳", "id_number": spouse, "relation": "spouse"},
                {"name": "李小明", "id_number": child, "relation": "child"},
            ],
        )
        assert (await stack.signed("POST", "/v1/declarations", mp, body)).status_code == 202
        await stack.pump()
        pushes = [
            ("medical_insurance", factories.alert("YB-1", spouse)),
            (
                "education",
                factories.alert(
                    "JY-1", child, alert_type="education.college_students", amount=None, count=2
                ),
            ),
            (
                "disability",
                factories.alert(
                    "CL-1", head, alert_type="disability.certificate_issued", amount=None, grade=2
                ),
            ),
        ]
        for department, alert in pushes:
            response = await stack.signed(
                "POST", "/v1/alerts", stack.client("department", department), alert
            )
            assert response.status_code == 202, response.text
        await stack.pump()

        cases = await _cases(stack)
        assert cases["total"] == 1
        kinds = sorted(s["kind"] for s in cases["items"][0]["sources"])  # type: ignore[index]
        assert kinds == ["alert", "alert", "alert", "declaration"]
        async with stack.sessionmakers["screening"]() as session:
            episodes = (
                await session.execute(select(func.count()).select_from(RiskEpisode))
            ).scalar_one()
            assessments = (
                await session.execute(select(func.count()).select_from(RiskAssessment))
            ).scalar_one()
        assert episodes == 1
        assert assessments == 4  # one per signal: the history of the one episode

    async def test_redelivered_events_change_nothing(self, stack: Stack, backend: str) -> None:
        mp = stack.client("miniprogram")
        await stack.signed("POST", "/v1/declarations", mp, factories.declaration(serial=21))
        await stack.pump()
        # Rewind every consumer to the start of its topics, as after a crash before commit.
        for _, source in stack.runners:
            await source.start()
            for key in source._position:
                source._position[key] = 0
        await stack.pump()
        assert (await _cases(stack))["total"] == 1
        async with stack.sessionmakers["screening"]() as session:
            assessments = (
                await session.execute(select(func.count()).select_from(RiskAssessment))
            ).scalar_one()
        assert assessments == 1

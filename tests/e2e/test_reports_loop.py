"""Reports on the event path: an area alert from a spike, and inclusion fed back to screening."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from services.casework.models import Case
from services.screening.models import AreaAlert, Household, outbox_table
from shared.auth import Role, issue_token
from shared.clock import china_date
from shared.contracts.casework import CaseIncludedV1
from shared.contracts.registry import build_envelope, encode
from shared.contracts.topics import Topic
from shared.messaging.ports import OutgoingMessage
from tests import factories
from tests.support import Stack

pytestmark = pytest.mark.e2e


def token(stack: Stack, role: Role, region: str = "141122", department: str | None = None) -> str:
    return issue_token(
        stack.secrets.jwt_secret,
        sub=f"{role}-{department or 'x'}",
        role=role,
        region=region,
        now=stack.clock.now(),
        ttl=timedelta(hours=1),
        department=department,
    )


async def file_alerts(stack: Stack, serials: range, *, prefix: str) -> None:
    client = stack.client("department", "medical_insurance")
    today = china_date(stack.clock.now()).isoformat()
    for serial in serials:
        body = factories.alert(
            f"{prefix}-{serial}", factories.resident_id(serial), occurred_on=today
        )
        filed = await stack.signed("POST", "/v1/alerts", client, body)
        assert filed.status_code == 202, filed.text


class TestAreaAlert:
    async def test_a_spike_raises_one_alert_per_township_cause_and_week(
        self, stack: Stack, backend: str
    ) -> None:
        await file_alerts(stack, range(1, 5), prefix="A")
        await stack.pump()
        async with stack.sessionmakers["screening"]() as session:
            assert (
                await session.execute(select(func.count()).select_from(AreaAlert))
            ).scalar() == 0

        # The fifth household this week reaches the policy's floor on an empty baseline.
        await file_alerts(stack, range(5, 8), prefix="B")
        await stack.pump()
        async with stack.sessionmakers["screening"]() as session:
            alerts = (await session.execute(select(AreaAlert))).scalars().all()
            raised = (
                await session.execute(
                    select(func.count())
                    .select_from(outbox_table)
                    .where(outbox_table.c.event_type == "screening.area_alert_raised")
                )
            ).scalar()
        assert len(alerts) == 1
        assert raised == 1
        alert = alerts[0]
        assert (alert.township_code, alert.cause, alert.signal_count) == (
            "141122100000",
            "illness",
            5,
        )

        shown = await stack.as_caseworker(
            "screening", "GET", "/v1/reports/area-alerts", token(stack, "county_officer")
        )
        assert shown.status_code == 200, shown.text
        body = shown.json()
        assert [(a["township_name"], a["cause_zh"]) for a in body["items"]] == [("天宁镇", "因病")]
        this_week = [w for w in body["weeks"] if w["cause"] == "illness"][-1]
        assert this_week["signals"] == 7
        other = await stack.as_caseworker(
            "screening",
            "GET",
            "/v1/reports/area-alerts",
            token(stack, "township_officer", region="141122101"),
        )
        assert other.json()["items"] == []


class TestInclusionFeedback:
    async def test_inclusion_labels_the_household_and_closes_the_departments_loop(
        self, stack: Stack, backend: str
    ) -> None:
        await file_alerts(stack, range(1, 3), prefix="C")
        await stack.pump()
        cases = await stack.as_caseworker(
            "casework", "GET", "/v1/cases", token(stack, "county_officer")
        )
        items = cases.json()["items"]
        assert len(items) == 2
        case = items[0]
        async with stack.sessionmakers["casework"]() as session:
            stored = await session.get(Case, uuid.UUID(case["case_id"]))
        assert stored is not None
        household_id = stored.household_id
        # What casework publishes when the county includes a household (审批建档).
        now = stack.clock.now()
        included = CaseIncludedV1(
            case_id=uuid.UUID(case["case_id"]),
            household_id=household_id,
            categories=("marginal",),
            included_at=now,
        )
        envelope = build_envelope(
            included,
            producer="casework",
            subject_key=str(household_id),
            occurred_at=now,
            produced_at=now,
        )
        publisher = stack.bus.publisher()
        for _ in range(2):  # delivered twice: the second changes nothing
            await publisher.publish_batch(
                [
                    OutgoingMessage(
                        topic=Topic.CASEWORK_EVENTS,
                        key=str(household_id).encode(),
                        value=encode(envelope),
                        headers=(),
                    )
                ]
            )
        await stack.pump()

        async with stack.sessionmakers["screening"]() as session:
            household = await session.get(Household, household_id)
        assert household is not None
        assert {"marginal", "monitored"} <= set(household.labels)

        table = await stack.as_caseworker(
            "screening", "GET", "/v1/reports/township-distribution", token(stack, "county_officer")
        )
        assert table.json()["total"]["marginal_households"] == 1

        own = await stack.as_caseworker(
            "screening",
            "GET",
            "/v1/reports/departments/medical_insurance",
            token(stack, "department_officer", department="medical_insurance"),
        )
        assert own.status_code == 200, own.text
        score = own.json()
        assert (score["alerts"], score["included"], score["share_included"]) == (2, 1, 0.5)
        other = await stack.as_caseworker(
            "screening",
            "GET",
            "/v1/reports/departments/medical_insurance",
            token(stack, "department_officer", department="civil_affairs"),
        )
        assert other.status_code == 403
        listing = await stack.as_caseworker(
            "screening", "GET", "/v1/reports/departments", token(stack, "department_officer")
        )
        assert listing.status_code == 403

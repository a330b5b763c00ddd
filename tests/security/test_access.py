"""Who may call what, for every route of the three apps, taken from their route tables.

A route added later is covered without editing this file: it must refuse callers without
credentials, with a forged or expired token, with a stale or replayed signature, a
caseworker outside its region and a department liaison, unless it is listed as public or
as open to that role. POST routes need a valid body to get past validation to the access
rule, so each has one here; a new POST route fails until it gets one.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy import func, select

from deploy.demo import DEMO_COUNTY, DEMO_VILLAGES
from services.casework.models import Case
from services.casework.models import metadata as casework_metadata
from services.intake.models import metadata as intake_metadata
from services.screening.models import Household, RiskAssessment, RiskEpisode
from services.screening.models import metadata as screening_metadata
from shared.auth import SIGNATURE_WINDOW_SECONDS, issue_token
from tests import factories
from tests.figures import record
from tests.security.routes import (
    DEPARTMENT_OFFICER_ROUTES,
    PUBLIC,
    PUBLIC_MOUNTS,
    SERVICES,
    Operation,
    assert_problem,
    operations,
    sample_path,
    send_signed,
)
from tests.support import Stack

pytestmark = pytest.mark.e2e

HOME, ELSEWHERE = DEMO_VILLAGES  # the seeded household lives in HOME
assert factories.VILLAGE == HOME
POLICY = json.loads(
    (Path(__file__).parents[2] / "services/screening/policies/default.json").read_text("utf-8")
)

# Routes open to fewer roles than every caseworker who reads cases (village, township,
# county officers and the admin). The department liaison is handled on its own below.
LIMITED_ROLES: dict[tuple[str, str, str], set[str]] = {
    ("intake", "POST", "/v1/reports"): {"village_officer", "township_officer", "county_officer"},
    ("screening", "POST", "/v1/roster:import"): {"county_officer", "admin"},
    ("screening", "GET", "/v1/roster/imports/{import_id}"): {"county_officer", "admin"},
    ("screening", "GET", "/v1/roster/imports/{import_id}/rejections.csv"): {
        "county_officer",
        "admin",
    },
    ("screening", "POST", "/v1/policies"): {"admin"},
    ("screening", "POST", "/v1/policies/{policy_id}/versions/{version}:review"): {"admin"},
    ("screening", "POST", "/v1/policies/{policy_id}/versions/{version}:activate"): {"admin"},
    ("screening", "POST", "/v1/policies/simulate"): {"admin"},
    ("casework", "GET", "/v1/calendar/overrides"): {"admin"},
    ("casework", "POST", "/v1/calendar/overrides"): {"admin"},
}
READER_ROLES = ("village_officer", "township_officer", "county_officer", "admin")


class World:
    """A seeded stack: one declaration in HOME, carried through to a case."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.values: dict[str, str] = {}
        self.markers: list[str] = []

    async def seed(self) -> None:
        stack = self.stack
        mp = stack.client("miniprogram")
        body = factories.declaration(applicant={**factories.declaration()["applicant"]})
        filed = await stack.signed("POST", "/v1/declarations", mp, body)
        assert filed.status_code == 202, filed.text
        await stack.pump()
        async with stack.sessionmakers["screening"]() as session:
            household = (await session.execute(select(Household))).scalars().one()
            episode = (await session.execute(select(RiskEpisode))).scalars().one()
            assessment = (await session.execute(select(RiskAssessment))).scalars().first()
        async with stack.sessionmakers["casework"]() as session:
            case = (await session.execute(select(Case))).scalars().one()
        assert assessment is not None
        assert case.region_code == HOME
        self.values = {
            "receipt_no": filed.json()["receipt_no"],
            "case_id": str(case.id),
            "household_id": str(household.id),
            "episode_id": str(episode.id),
            "assessment_id": str(assessment.id),
            "department": "medical_insurance",
            # Unknown but fixed, so a request signed twice is the same request.
            "job_id": str(uuid.uuid4()),
            "import_id": str(uuid.uuid4()),
            "policy_id": POLICY["policy_id"],
            "version": str(POLICY["version"]),
        }
        # What must never reach a caller outside HOME: the ids and the applicant's name.
        self.markers = [
            self.values[k] for k in ("case_id", "household_id", "episode_id", "assessment_id")
        ] + [body["applicant"]["name"]]

    def token(self, role: str, region: str, department: str | None = None) -> str:
        return issue_token(
            self.stack.secrets.jwt_secret,
            sub=f"{role}-{region}",
            role=role,  # type: ignore[arg-type]
            region=region,
            now=self.stack.clock.now(),
            ttl=timedelta(hours=1),
            department=department,
        )

    def body_for(self, op: Operation) -> tuple[bytes | None, str | None]:
        """A valid body for the POST routes (and its media type); None for the others."""
        if op.method != "POST":
            return None, None
        given = _post_bodies(self).get((op.service, op.path))
        assert given is not None, f"{op}: add a valid body to _post_bodies"
        body, media = given
        if isinstance(body, bytes):
            return body, media
        return json.dumps(body).encode(), "application/json"

    async def call(
        self,
        op: Operation,
        *,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        signed_as: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> httpx.Response:
        client = self.stack.http[op.service]
        content, media = self.body_for(op)
        sent = dict(headers or {})
        if media:
            sent["Content-Type"] = media
        request = client.build_request(
            op.method,
            sample_path(op.path, self.values),
            params=query,
            content=content,
            headers=sent,
        )
        if signed_as is not None:
            return await send_signed(client, request, signed_as, at=at)
        return await client.send(request)

    async def row_counts(self) -> dict[str, int]:
        counts = {}
        for service, metadata in (
            ("intake", intake_metadata),
            ("screening", screening_metadata),
            ("casework", casework_metadata),
        ):
            async with self.stack.sessionmakers[service]() as session:
                for table in metadata.sorted_tables:
                    counts[f"{service}.{table.name}"] = (
                        await session.execute(select(func.count()).select_from(table))
                    ).scalar_one()
        return counts


def _xlsx_text(content: bytes) -> str:
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return "\n".join(
        str(cell)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for cell in row
        if cell is not None
    )


def _visible_text(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml"
    ):
        return _xlsx_text(response.content)
    return response.content.decode("utf-8", errors="replace")


def _post_bodies(w: World) -> dict[tuple[str, str], tuple[Any, str | None]]:
    """A valid body (and its media type, None for JSON) for every POST route."""
    today = w.stack.clock.now().date().isoformat()
    return {
        ("intake", "/v1/declarations"): (factories.declaration(9), None),
        ("intake", "/v1/alerts"): (factories.alert("ACC-1", factories.resident_id(8)), None),
        ("intake", "/v1/alerts:batch"): (
            {"alerts": [factories.alert("ACC-2", factories.resident_id(7))]},
            None,
        ),
        ("intake", "/v1/alerts:bulk"): (
            (json.dumps(factories.alert("ACC-3", factories.resident_id(6))) + "\n").encode(),
            "application/x-ndjson",
        ),
        ("intake", "/v1/reports"): (
            {
                "subject": {
                    "name": "李四",
                    "id_number": factories.resident_id(5),
                    "relation": "self",
                },
                "village_code": HOME,
                "difficulty_types": ["illness"],
                "visit_date": today,
            },
            None,
        ),
        ("screening", "/v1/households/{household_id}:link"): (
            {"target_household_id": str(uuid.uuid4())},
            None,
        ),
        ("screening", "/v1/roster:import"): (b"", "text/csv"),
        ("screening", "/v1/policies"): ({**POLICY, "version": POLICY["version"] + 1}, None),
        ("screening", "/v1/policies/{policy_id}/versions/{version}:review"): (b"", None),
        ("screening", "/v1/policies/{policy_id}/versions/{version}:activate"): (b"", None),
        ("screening", "/v1/policies/simulate"): (
            {"candidate": POLICY, "from": "2026-01-01", "to": "2026-02-01"},
            None,
        ),
        ("casework", "/v1/cases/{case_id}/actions"): (
            {"action": "start_verification", "reason": "核查"},
            None,
        ),
        ("casework", "/v1/cases/{case_id}/visits"): (
            {"visited_on": today, "visitor_name": "王五", "findings": "家中情况稳定"},
            None,
        ),
        ("casework", "/v1/calendar/overrides"): (
            {"reason": "国办发明电〔2030〕1号", "days": [{"day": "2030-01-01", "kind": "holiday"}]},
            None,
        ),
    }


@pytest.fixture
async def world(stack: Stack) -> World:
    """The stack with one household's declaration carried through to a case."""
    w = World(stack)
    await w.seed()
    return w


def _all_operations(stack: Stack) -> list[Operation]:
    return [op for s in SERVICES for op in operations(s, stack.apps[s])]


def _protected(stack: Stack, auth: str | None = None) -> list[Operation]:
    return [
        op
        for op in _all_operations(stack)
        if op.auth != "public" and (auth is None or op.auth == auth)
    ]


class TestPublicRoutes:
    async def test_only_the_listed_routes_are_open(self, stack: Stack) -> None:
        open_routes = {op.key for op in _all_operations(stack) if op.auth == "public"}
        open_routes -= {("GET", m) for m in PUBLIC_MOUNTS}

        # A route without credentials that is not listed (or listed but now protected)
        # is a decision to make here, with its reason.
        assert open_routes == set(PUBLIC)


class TestWithoutCredentials:
    async def test_every_protected_route_refuses_and_stores_nothing(self, world: World) -> None:
        before = await world.row_counts()
        ops = _protected(world.stack)
        tried = 0
        for op in ops:
            for headers in (
                {},
                {"Authorization": "Bearer not-a-jwt"},
                {"Authorization": "Basic YWRtaW46YWRtaW4="},
                {"X-Client-Id": "miniprogram", "X-Timestamp": str(int(time.time()))},
            ):
                response = await world.call(op, headers=headers)
                assert_problem(response, 401)
                tried += 1

        assert await world.row_counts() == before
        record(
            "access",
            {
                "check": "no or malformed credentials, every protected route",
                "inputs_tried": tried,
                "refused": tried,
                "server_errors": 0,
            },
        )

    async def test_forged_and_expired_tokens_are_refused(self, world: World) -> None:
        stack = world.stack
        forged = issue_token(
            "another-secret-" + uuid.uuid4().hex,
            sub="intruder",
            role="admin",
            region=DEMO_COUNTY,
            now=stack.clock.now(),
            ttl=timedelta(hours=1),
        )
        expired = issue_token(
            stack.secrets.jwt_secret,
            sub="county",
            role="county_officer",
            region=DEMO_COUNTY,
            now=stack.clock.now() - timedelta(days=2),
            ttl=timedelta(hours=1),
        )
        ops = _protected(stack, "caseworker")
        for op in ops:
            for token in (forged, expired):
                response = await world.call(op, headers={"Authorization": f"Bearer {token}"})
                assert_problem(response, 401)
        record(
            "access",
            {
                "check": "forged or expired caseworker JWT",
                "inputs_tried": 2 * len(ops),
                "refused": 2 * len(ops),
                "server_errors": 0,
            },
        )

    async def test_credentials_of_the_other_kind_are_refused(self, world: World) -> None:
        stack = world.stack
        county = {"Authorization": f"Bearer {stack.token('county_officer')}"}
        tried = 0
        for op in _protected(stack):
            if op.auth == "signed":
                response = await world.call(op, headers=county)
            else:
                response = await world.call(
                    op, signed_as=stack.client("department", "medical_insurance")
                )
            assert_problem(response, 401)
            tried += 1
        record(
            "access",
            {
                "check": "machine signature on caseworker route, JWT on signed route",
                "inputs_tried": tried,
                "refused": tried,
                "server_errors": 0,
            },
        )


class TestSignatures:
    async def test_stale_future_and_replayed_signatures_are_refused(self, world: World) -> None:
        stack = world.stack
        tried = 0
        for op in _protected(stack, "signed"):
            kind = op.client_kind or "department"
            client = stack.client(kind, "medical_insurance" if kind == "department" else None)
            now = time.time()
            for at in (now - SIGNATURE_WINDOW_SECONDS - 5, now + SIGNATURE_WINDOW_SECONDS + 5):
                stale = await world.call(op, signed_as=client, at=at)
                problem = assert_problem(stale, 401)
                assert "300" in problem["detail"], problem
                tried += 1
            first = await world.call(op, signed_as=client, at=now)
            again = await world.call(op, signed_as=client, at=now)
            assert first.status_code != 401, (str(op), first.text)
            problem = assert_problem(again, 401)
            assert "replayed" in problem["detail"], problem
            tried += 1
        record(
            "access",
            {
                "check": "stale, future and replayed signatures, every signed route",
                "inputs_tried": tried,
                "refused": tried - tried // 4,
                "server_errors": 0,
            },
        )


class TestRoles:
    async def test_a_department_liaison_reaches_only_its_feedback_and_blank_forms(
        self, world: World
    ) -> None:
        liaison = world.token("department_officer", DEMO_COUNTY, "medical_insurance")
        tried = 0
        for op in _protected(world.stack, "caseworker"):
            if op.key in DEPARTMENT_OFFICER_ROUTES:
                continue
            response = await world.call(op, headers={"Authorization": f"Bearer {liaison}"})
            assert_problem(response, 403)
            tried += 1
        record(
            "access",
            {
                "check": "department liaison on every other caseworker route",
                "inputs_tried": tried,
                "refused": tried,
                "server_errors": 0,
            },
        )

    async def test_routes_limited_to_some_roles_refuse_the_others(self, world: World) -> None:
        ops = {(op.service, op.method, op.path): op for op in _protected(world.stack)}
        assert set(LIMITED_ROLES) <= set(ops), set(LIMITED_ROLES) - set(ops)
        tried = 0
        for key, allowed in LIMITED_ROLES.items():
            for role in sorted(set(READER_ROLES) - allowed):
                token = world.token(role, DEMO_COUNTY)
                response = await world.call(ops[key], headers={"Authorization": f"Bearer {token}"})
                assert_problem(response, 403)
                tried += 1
        record(
            "access",
            {
                "check": "caseworker roles outside a route's allowed roles",
                "inputs_tried": tried,
                "refused": tried,
                "server_errors": 0,
            },
        )


class TestRegions:
    async def test_a_caseworker_elsewhere_sees_and_changes_nothing_of_another_village(
        self, world: World
    ) -> None:
        outsider = {"Authorization": f"Bearer {world.token('village_officer', ELSEWHERE)}"}
        before = await world.row_counts()
        tried = refused = 0
        for op in _protected(world.stack, "caseworker"):
            if op.key in DEPARTMENT_OFFICER_ROUTES:
                continue
            response = await world.call(op, headers=outsider)
            tried += 1
            if response.status_code >= 400:
                assert_problem(response, 403, 404)
                refused += 1
                continue
            assert op.method == "GET", (str(op), response.status_code)
            text = _visible_text(response)
            leaked = [m for m in world.markers if m in text]
            assert not leaked, (str(op), leaked)
            if op.route is not None and any(
                p.name == "region" for p in op.route.dependant.query_params
            ):
                asked = await world.call(op, headers=outsider, query={"region": HOME})
                assert_problem(asked, 403)
                tried += 1
                refused += 1

        assert await world.row_counts() == before
        record(
            "access",
            {
                "check": "village officer of another village, every caseworker route",
                "inputs_tried": tried,
                "refused": refused,
                "server_errors": 0,
            },
        )


class TestAuditTrail:
    async def test_no_route_can_rewrite_or_delete_history(self, world: World) -> None:
        for op in _all_operations(world.stack):
            assert op.method not in ("PUT", "PATCH", "DELETE"), str(op)
        history = [op for op in _all_operations(world.stack) if "history" in op.path]
        assert [op.key for op in history] == [("GET", "/v1/cases/{case_id}/history")]
        path = sample_path("/v1/cases/{case_id}/history", world.values)
        county = {"Authorization": f"Bearer {world.stack.token('county_officer')}"}
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = await world.stack.http["casework"].request(
                method, path, json=[], headers=county
            )
            assert_problem(response, 405)

    async def test_actions_only_append_to_history(self, world: World) -> None:
        stack = world.stack
        village = stack.token("village_officer", HOME)
        path = sample_path("/v1/cases/{case_id}/history", world.values)
        before = (await stack.as_caseworker("casework", "GET", path, village)).json()
        acted = await stack.as_caseworker(
            "casework",
            "POST",
            sample_path("/v1/cases/{case_id}/actions", world.values),
            village,
            {"action": "start_verification", "reason": "核查"},
        )
        assert acted.status_code == 200, acted.text
        after = (await stack.as_caseworker("casework", "GET", path, village)).json()

        assert after[: len(before)] == before
        assert len(after) == len(before) + 1

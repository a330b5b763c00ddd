"""Who may call what, for every route of the three apps, taken from their route tables.

A route added later is covered without editing this file: it must refuse callers without
credentials, with a forged or expired token, with a stale or replayed signature, a
caseworker outside its region and a department liaison, unless it is listed as public or
as open to that role. POST routes need a valid body to get past validation to the access
rule, so each has one here; a new POST route fails until it gets one.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest

from deploy.demo import DEMO_COUNTY
from shared.auth import SIGNATURE_WINDOW_SECONDS, issue_token
from tests.figures import record
from tests.security.routes import (
    DEPARTMENT_OFFICER_ROUTES,
    PUBLIC,
    PUBLIC_MOUNTS,
    assert_problem,
    sample_path,
)
from tests.security.world import (
    ELSEWHERE,
    HOME,
    LIMITED_ROLES,
    READER_ROLES,
    World,
    all_operations,
    protected,
    visible_text,
)
from tests.support import Stack

pytestmark = pytest.mark.e2e


class TestPublicRoutes:
    async def test_only_the_listed_routes_are_open(self, stack: Stack) -> None:
        open_routes = {op.key for op in all_operations(stack) if op.auth == "public"}
        open_routes -= {("GET", m) for m in PUBLIC_MOUNTS}

        # A route without credentials that is not listed (or listed but now protected)
        # is a decision to make here, with its reason.
        assert open_routes == set(PUBLIC)


class TestWithoutCredentials:
    async def test_every_protected_route_refuses_and_stores_nothing(self, world: World) -> None:
        before = await world.row_counts()
        ops = protected(world.stack)
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
        ops = protected(stack, "caseworker")
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
        for op in protected(stack):
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
        for op in protected(stack, "signed"):
            kind = op.client_kind or "department"
            client = stack.client(kind, "medical_insurance" if kind == "department" else None)
            now = time.time()
            for at in (now - SIGNATURE_WINDOW_SECONDS - 60, now + SIGNATURE_WINDOW_SECONDS + 60):
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
                "refused": tried,
                "server_errors": 0,
            },
        )


class TestRoles:
    async def test_a_department_liaison_reaches_only_its_feedback_and_blank_forms(
        self, world: World
    ) -> None:
        liaison = world.token("department_officer", DEMO_COUNTY, "medical_insurance")
        tried = 0
        for op in protected(world.stack, "caseworker"):
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
        ops = {(op.service, op.method, op.path): op for op in protected(world.stack)}
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
        for op in protected(world.stack, "caseworker"):
            if op.key in DEPARTMENT_OFFICER_ROUTES:
                continue
            response = await world.call(op, headers=outsider)
            tried += 1
            if response.status_code >= 400:
                assert_problem(response, 403, 404)
                refused += 1
                continue
            assert op.method == "GET", (str(op), response.status_code)
            text = visible_text(response)
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
        for op in all_operations(world.stack):
            assert op.method not in ("PUT", "PATCH", "DELETE"), str(op)
        history = [op for op in all_operations(world.stack) if "history" in op.path]
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

"""A seeded stack for the security suites: one household's declaration carried to a case.

It also knows, for every POST route, a body that passes validation, so a test can reach
the access rule behind it or mutate a valid body field by field.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy import func, select

from deploy.demo import DEMO_VILLAGES
from services.casework.models import Case
from services.casework.models import metadata as casework_metadata
from services.intake.models import metadata as intake_metadata
from services.screening.models import Household, RiskAssessment, RiskEpisode
from services.screening.models import metadata as screening_metadata
from shared.auth import issue_token
from tests import factories
from tests.security.routes import SERVICES, Operation, operations, sample_path, send_signed
from tests.support import Stack

HOME, ELSEWHERE = DEMO_VILLAGES  # the seeded household lives in HOME
assert factories.VILLAGE == HOME
POLICY = json.loads(
    (Path(__file__).parents[2] / "services/screening/policies/default.json").read_text("utf-8")
)

# Routes open to fewer roles than every caseworker who reads cases (village, township,
# county officers and the admin). The department liaison has its own list (routes.py).
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
        """File the declaration, run the workers, and note the ids it produced."""
        stack = self.stack
        mp = stack.client("miniprogram")
        body = factories.declaration()
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
        """A fresh caseworker JWT for any role and region (the demo has no liaison)."""
        return issue_token(
            self.stack.secrets.jwt_secret,
            sub=f"{role}-{region}",
            role=role,  # type: ignore[arg-type]
            region=region,
            now=self.stack.clock.now(),
            ttl=timedelta(hours=1),
            department=department,
        )

    def headers_for(self, op: Operation) -> dict[str, str]:
        """A caseworker token allowed on the route (signed routes are signed in `call`)."""
        if op.auth != "caseworker":
            return {}
        allowed = LIMITED_ROLES.get((op.service, op.method, op.path), set(READER_ROLES))
        role = "county_officer" if "county_officer" in allowed else "admin"
        return {"Authorization": f"Bearer {self.stack.token(role)}"}

    def client_for(self, op: Operation) -> dict[str, Any]:
        """The demo machine client a signed route is for."""
        kind = op.client_kind or "department"
        return self.stack.client(kind, "medical_insurance" if kind == "department" else None)

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
        body: tuple[bytes | None, str | None] | None = None,
    ) -> httpx.Response:
        """Send op with the seeded path values, its valid body (or `body`), as told."""
        client = self.stack.http[op.service]
        content, media = self.body_for(op) if body is None else body
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


def xlsx_text(content: bytes) -> str:
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return "\n".join(
        str(cell)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for cell in row
        if cell is not None
    )


def visible_text(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml"
    ):
        return xlsx_text(response.content)
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


def all_operations(stack: Stack) -> list[Operation]:
    """Every operation of the three apps."""
    return [op for s in SERVICES for op in operations(s, stack.apps[s])]


def protected(stack: Stack, auth: str | None = None) -> list[Operation]:
    """The operations that need credentials (of one kind, if given)."""
    return [
        op
        for op in all_operations(stack)
        if op.auth != "public" and (auth is None or op.auth == auth)
    ]

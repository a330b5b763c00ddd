"""The three apps' route tables, classified by who may call each route.

The security suites iterate these tables instead of listing endpoints, so an endpoint added
later is attacked and checked without anyone remembering to add it. Only the routes that
need no credentials are listed by hand, each with its reason.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from shared.auth import signed_headers

Auth = Literal["public", "signed", "caseworker"]

SERVICES = ("intake", "screening", "casework")

# Routes anyone may call, and why. Everything else must refuse a caller without credentials.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "liveness probe",
    ("GET", "/readyz"): "readiness probe; says only ok/unavailable per dependency",
    ("GET", "/metrics"): "Prometheus scrape; counters and latencies, no personal data",
    ("GET", "/openapi.json"): "the published API description",
    ("GET", "/docs"): "the published API description",
    ("GET", "/docs/oauth2-redirect"): "part of the documentation page",
    ("GET", "/redoc"): "the published API description",
    ("GET", "/dashboard"): "static page; its data comes from the authenticated APIs",
    ("GET", "/dashboard/"): "static page; its data comes from the authenticated APIs",
    ("GET", "/dashboard/config.json"): "the dashboard's API base URLs, no data",
    ("GET", "/v1/calendar/working-days"): "official calendar arithmetic, no personal data",
    ("GET", "/v1/measures"): "the published catalogue of assistance measures, no personal data",
}
# Mounted static files (the dashboard's script, styles and the ECharts copy).
PUBLIC_MOUNTS = ("/dashboard/assets",)

# Caseworker routes a department liaison (department_officer) may reach: their own
# department's feedback, and the blank roster forms (no data in them). Every other
# caseworker route must refuse that role.
DEPARTMENT_OFFICER_ROUTES = {
    ("GET", "/v1/reports/departments/{department}"),
    ("GET", "/v1/roster/template.xlsx"),
    ("GET", "/v1/roster/template.csv"),
}


@dataclass(frozen=True)
class Operation:
    """One method on one path of one service, with how it authenticates."""

    service: str
    method: str
    path: str
    auth: Auth
    # For signed routes, the kind of machine client the route is for.
    client_kind: str | None
    route: APIRoute | None

    @property
    def key(self) -> tuple[str, str]:
        """(METHOD, path template)."""
        return (self.method, self.path)

    def __str__(self) -> str:
        return f"{self.service} {self.method} {self.path}"


def _calls(dependant: Dependant) -> Iterator[str]:
    for dep in dependant.dependencies:
        yield getattr(dep.call, "__name__", "")
        yield from _calls(dep)


def _auth_of(route: APIRoute) -> tuple[Auth, str | None]:
    calls = set(_calls(route.dependant))
    if "miniprogram_client" in calls:
        return "signed", "miniprogram"
    if "department_client" in calls or "signed_bulk_upload" in calls:
        return "signed", "department"
    if "signed_client" in calls:
        return "signed", None
    if "current_caseworker" in calls:
        return "caseworker", None
    return "public", None


def operations(service: str, app: FastAPI) -> list[Operation]:
    """Every (method, path) the app serves, HEAD aside, with its authentication."""
    out: list[Operation] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path
        if path is None:
            continue
        if isinstance(route, APIRoute):
            auth, kind = _auth_of(route)
            for method in sorted(context.methods or ()):
                out.append(Operation(service, method, path, auth, kind, route))
        elif getattr(route, "methods", None):
            for method in sorted(set(route.methods or ()) - {"HEAD"}):  # type: ignore[attr-defined]
                out.append(Operation(service, method, path, "public", None, None))
        else:
            # A mount serves whatever lies under it.
            out.append(Operation(service, "GET", path, "public", None, None))
    return out


def sample_path(path: str, values: dict[str, str] | None = None) -> str:
    """Fill a path template: the given values, else a fresh UUID (a well-formed unknown id)."""
    given = values or {}
    out = path
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        name = out[start + 1 : end]
        out = out[:start] + given.get(name, str(uuid.uuid4())) + out[end + 1 :]
    return out


def signing_path(request: httpx.Request) -> str:
    """The path with query the server will rebuild from the ASGI scope (what gets signed)."""
    from urllib.parse import unquote

    query = request.url.query.decode("latin-1")
    rebuilt = urlsplit("http://h" + unquote(request.url.path) + (f"?{query}" if query else ""))
    return rebuilt.path + (f"?{rebuilt.query}" if rebuilt.query else "")


async def send_signed(
    client: httpx.AsyncClient,
    request: httpx.Request,
    credentials: dict[str, Any],
    *,
    at: float | None = None,
) -> httpx.Response:
    """Sign a built request as `credentials` (a demo client) and send it."""
    body = request.content
    headers = signed_headers(
        credentials["client_id"],
        credentials["secret"],
        request.method,
        signing_path(request),
        body,
        time.time() if at is None else at,
    )
    request.headers.update(headers)
    return await client.send(request)


def assert_problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """Assert an RFC 9457 problem with one of the statuses; return its body."""
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json"), (
        response.headers.get("content-type"),
        response.text[:200],
    )
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == response.status_code
    assert body["title_zh"]
    assert body["detail_zh"]
    return body

"""Schemathesis over every operation of the three OpenAPI documents, in-process.

Each service's own /openapi.json is loaded, and every operation in it is fed generated
requests, valid ones and deliberately invalid ones, with real credentials: an HMAC signature
over the exact bytes sent for machine-client routes, a caseworker JWT for the others. Every
answer must not be a server error, and must match what the document declares: the status
code, the content type and the body's schema.

Hypothesis drives generation in a worker thread; each request is sent on the test's event
loop, where the apps, their lifespans and their databases live.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories
from tests.figures import record
from tests.security.routes import SERVICES, Operation, operations, send_signed
from tests.support import Stack

pytestmark = pytest.mark.e2e

Case = schemathesis.Case[Any]

# Examples per operation and generation mode; ~60 operations x 2 modes keeps the whole
# module near a minute on one core. FANGPIN_SCHEMATHESIS_EXAMPLES raises it for a deeper run.
MAX_EXAMPLES = int(os.environ.get("FANGPIN_SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Caseworker routes that only an admin may use; the rest run as the county officer, who
# may read and act anywhere in the demo county.
ADMIN_PREFIXES = ("/v1/policies", "/v1/calendar/overrides")


def _role_for(path: str) -> str:
    return "admin" if path.startswith(ADMIN_PREFIXES) else "county_officer"


def _build(client: httpx.AsyncClient, case: Case) -> httpx.Request:
    """Serialise the case exactly as schemathesis would, then hand the bytes to httpx."""
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url).rstrip("/"))
    prepared = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        data=kwargs.get("data"),
        json=kwargs.get("json"),
        files=kwargs.get("files"),
        cookies=kwargs.get("cookies"),
    ).prepare()
    body = prepared.body
    content = body.encode() if isinstance(body, str) else body
    assert content is None or isinstance(content, bytes), type(content)
    assert prepared.url is not None
    assert prepared.method is not None
    headers = {k: v if isinstance(v, str) else v.decode() for k, v in prepared.headers.items()}
    return client.build_request(prepared.method, prepared.url, headers=headers, content=content)


class _Sender:
    """Sends a case with the credentials its operation needs, on the stack's loop."""

    def __init__(self, stack: Stack, service: str) -> None:
        self.stack = stack
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=stack.apps[service], raise_app_exceptions=False),
            base_url=f"http://{service}.test",
        )

    async def send(self, op: Operation, case: Case) -> httpx.Response:
        request = _build(self.client, case)
        if op.auth == "signed":
            kind = op.client_kind or "department"
            credentials = self.stack.client(
                kind, "medical_insurance" if kind == "department" else None
            )
            return await send_signed(self.client, request, credentials)
        if op.auth == "caseworker":
            request.headers["Authorization"] = f"Bearer {self.stack.token(_role_for(op.path))}"
        return await self.client.send(request)


def _fuzz(
    schema: Any,
    op: Operation,
    mode: GenerationMode,
    submit: Callable[[Case], httpx.Response],
    tally: dict[str, int],
) -> None:
    operation = schema[op.path][op.method.lower()]

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Case) -> None:
        response = submit(case)
        tally["requests"] += 1
        if response.status_code >= 500:
            tally["server_errors"] += 1
        elif response.status_code >= 400:
            tally["refused"] += 1
        case.validate_response(response, checks=CHECKS)

    check()


async def _seed(stack: Stack) -> None:
    """One declaration through to a case, so lists and reports answer with real rows."""
    filed = await stack.signed(
        "POST", "/v1/declarations", stack.client("miniprogram"), factories.declaration()
    )
    assert filed.status_code == 202, filed.text
    await stack.pump()


class TestOpenApiConformance:
    @pytest.mark.parametrize("service", SERVICES)
    async def test_every_operation_answers_as_documented_and_never_with_a_5xx(
        self, stack: Stack, service: str
    ) -> None:
        await _seed(stack)
        document = (await stack.http[service].get("/openapi.json")).json()
        schema = schemathesis.openapi.from_dict(document)
        documented = {
            (method.upper(), path)
            for path, item in document["paths"].items()
            for method in item
            if method in ("get", "post", "put", "patch", "delete")
        }
        ops = [
            op
            for op in operations(service, stack.apps[service])
            if op.key in documented and op.route is not None
        ]
        # Every operation the document declares is served by a route and fuzzed here.
        assert {op.key for op in ops} == documented
        loop = asyncio.get_running_loop()
        sender = _Sender(stack, service)
        tally = {"requests": 0, "refused": 0, "server_errors": 0}
        failures: list[str] = []
        started = time.perf_counter()
        async with sender.client:
            for op in ops:

                def submit(case: Case, op: Operation = op) -> httpx.Response:
                    future = asyncio.run_coroutine_threadsafe(sender.send(op, case), loop)
                    return future.result(timeout=120)

                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    try:
                        await asyncio.to_thread(_fuzz, schema, op, mode, submit, tally)
                    except Unsatisfiable:
                        # Nothing to make invalid (no parameters, or only a free-text one).
                        assert mode is GenerationMode.NEGATIVE, str(op)
                    except (Exception, BaseExceptionGroup) as exc:  # collect all, then fail
                        failures.append(f"{op} [{mode.value}]: {exc}")
        record(
            "hostile",
            {
                "check": f"schemathesis: {service}, {len(ops)} operations, positive and negative",
                "inputs_tried": tally["requests"],
                "refused": tally["refused"],
                "server_errors": tally["server_errors"],
            },
        )
        print(  # noqa: T201 - the run's figures, seen with -s
            f"{service}: {len(ops)} operations, {tally} in {time.perf_counter() - started:.1f}s"
        )
        assert not failures, "\n\n".join(failures)

"""Who may call intake: signed machine clients (whole and streamed bodies) and rate limits."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from shared.auth import SIGNATURE_WINDOW_SECONDS, signed_headers
from tests import factories
from tests.services.intake.harness import SLOW_CLIENT, Intake, assert_problem

BAD_SIGNATURES = [
    pytest.param("unsigned", id="unsigned"),
    pytest.param("wrong-secret", id="wrong-signature"),
    pytest.param("stale", id="stale-timestamp"),
    pytest.param("future", id="future-timestamp"),
    pytest.param("unknown-client", id="unknown-client"),
    pytest.param("tampered-body", id="body-changed-after-signing"),
]


def _bad_headers(how: str, client: dict[str, Any], path: str, body: bytes) -> dict[str, str]:
    """Return signature headers that are wrong in one way."""
    if how == "unsigned":
        return {}
    client_id, secret, now, signed_body = client["client_id"], client["secret"], time.time(), body
    if how == "wrong-secret":
        secret = "not-the-secret"
    elif how == "unknown-client":
        client_id = "nobody"
    # A minute past the window either way: a loaded machine may take a second or more
    # between signing and the server's check, which must not bring it back inside.
    elif how == "stale":
        now -= SIGNATURE_WINDOW_SECONDS + 60
    elif how == "future":
        now += SIGNATURE_WINDOW_SECONDS + 60
    elif how == "tampered-body":
        signed_body = body + b" "
    return signed_headers(client_id, secret, "POST", path, signed_body, now)


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


class TestSignedClient:
    @pytest.mark.parametrize("how", BAD_SIGNATURES)
    async def test_a_bad_signature_is_a_401_and_stores_nothing(
        self, intake: Intake, how: str
    ) -> None:
        body = json.dumps(factories.declaration(1)).encode()
        headers = _bad_headers(how, intake.client("miniprogram"), "/v1/declarations", body)

        response = await intake.http.post(
            "/v1/declarations",
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )

        assert_problem(response, 401, "unauthorized")
        assert await intake.counts("declaration", "outbox_message") == {
            "declaration": 0,
            "outbox_message": 0,
        }

    async def test_a_replayed_request_is_refused(self, intake: Intake) -> None:
        mp = intake.client("miniprogram")
        body = json.dumps(factories.declaration(2)).encode()
        headers = {
            **signed_headers(
                mp["client_id"], mp["secret"], "POST", "/v1/declarations", body, time.time()
            ),
            "Content-Type": "application/json",
        }

        first = await intake.http.post("/v1/declarations", content=body, headers=headers)
        replay = await intake.http.post("/v1/declarations", content=body, headers=headers)

        assert first.status_code == 202, first.text
        problem = assert_problem(replay, 401, "unauthorized")
        assert problem["detail"] == "replayed request refused"
        assert await intake.count("declaration") == 1

    async def test_a_client_over_its_rate_is_told_to_slow_down(self, intake: Intake) -> None:
        subject = factories.resident_id(3)
        responses = [
            await intake.signed(
                "POST",
                "/v1/alerts",
                SLOW_CLIENT,
                factories.alert(f"WJ-{n}", subject, alert_type="health.serious_illness_diagnosis"),
            )
            for n in range(3)
        ]

        assert [r.status_code for r in responses[:2]] == [202, 202]
        assert_problem(responses[2], 429, "rate-limited")
        assert responses[2].headers["retry-after"] == "1"
        assert await intake.count("alert") == 2


class TestSignedBulkUpload:
    @pytest.mark.parametrize("how", BAD_SIGNATURES)
    async def test_a_bad_signature_is_a_401_and_leaves_nothing(
        self, intake: Intake, how: str
    ) -> None:
        body = (json.dumps(factories.alert("YB-1", factories.resident_id(4))) + "\n").encode()
        yb = intake.client("department", "medical_insurance")
        headers = _bad_headers(how, yb, "/v1/alerts:bulk", body)

        response = await intake.http.post(
            "/v1/alerts:bulk",
            content=body,
            headers={**headers, "Content-Type": "application/x-ndjson"},
        )

        assert_problem(response, 401, "unauthorized")
        assert _files(intake.settings.bulk_dir) == []
        assert await intake.count("bulk_job") == 0

    async def test_a_replayed_upload_is_refused(self, intake: Intake) -> None:
        yb = intake.client("department", "medical_insurance")
        body = (json.dumps(factories.alert("YB-2", factories.resident_id(5))) + "\n").encode()
        headers = {
            **signed_headers(
                yb["client_id"], yb["secret"], "POST", "/v1/alerts:bulk", body, time.time()
            ),
            "Content-Type": "application/x-ndjson",
        }

        first = await intake.http.post("/v1/alerts:bulk", content=body, headers=headers)
        replay = await intake.http.post("/v1/alerts:bulk", content=body, headers=headers)

        assert first.status_code == 202, first.text
        assert_problem(replay, 401, "unauthorized")
        assert await intake.count("bulk_job") == 1

    async def test_only_department_clients_push_files(self, intake: Intake) -> None:
        body = (json.dumps(factories.alert("YB-3", factories.resident_id(6))) + "\n").encode()

        response = await intake.signed(
            "POST",
            "/v1/alerts:bulk",
            intake.client("miniprogram"),
            raw=body,
            content_type="application/x-ndjson",
        )

        assert_problem(response, 403, "forbidden")
        assert _files(intake.settings.bulk_dir) == []
        assert await intake.count("bulk_job") == 0

"""What every service app shares: health, readiness, metrics, correlation ids, limits, problems."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from shared.logs import JsonFormatter, correlation_id, mask_resident_ids
from tests import factories
from tests.support import Stack

SERVICES = ("intake", "screening", "casework")


class TestHealth:
    @pytest.mark.parametrize("service", SERVICES)
    async def test_healthz_and_readyz_answer(self, stack: Stack, service: str) -> None:
        assert (await stack.http[service].get("/healthz")).json()["status"] == "ok"
        ready = await stack.http[service].get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "bus": "ok"}


class TestMetrics:
    async def test_metrics_expose_request_latency_and_outbox_backlog(self, stack: Stack) -> None:
        await stack.http["intake"].get("/healthz")
        for relay in stack.relays:
            await relay.measure()
        text = (await stack.http["intake"].get("/metrics")).text
        assert 'fangpin_http_request_duration_seconds_count{method="GET",route="/healthz"' in text
        assert 'fangpin_outbox_backlog{service="intake"}' in text
        assert "fangpin_dead_letters_total" in text or "fangpin_consumer_lag" in text


class TestCorrelation:
    async def test_a_given_correlation_id_is_echoed(self, stack: Stack) -> None:
        cid = str(uuid.uuid4())
        r = await stack.http["casework"].get("/healthz", headers={"X-Correlation-Id": cid})
        assert r.headers["x-correlation-id"] == cid

    async def test_a_missing_or_bad_one_is_replaced(self, stack: Stack) -> None:
        r = await stack.http["casework"].get("/healthz", headers={"X-Correlation-Id": "bad"})
        assert uuid.UUID(r.headers["x-correlation-id"])

    async def test_the_declaration_carries_it_to_the_case_event(self, stack: Stack) -> None:
        cid = str(uuid.uuid4())
        mp = stack.client("miniprogram")
        r = await stack.signed(
            "POST",
            "/v1/declarations",
            mp,
            factories.declaration(serial=3),
            headers={"X-Correlation-Id": cid},
        )
        assert r.status_code == 202
        await stack.pump()
        opened = [json.loads(m.value) for m in stack.bus.records("casework.events")]
        assert [e["correlation_id"] for e in opened] == [cid]


class TestLimitsAndProblems:
    async def test_an_oversized_body_is_a_413_problem(self, stack: Stack) -> None:
        r = await stack.http["casework"].post("/v1/cases", content=b"x" * 2_000_000)
        assert r.status_code == 413
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["title_zh"] == "请求体过大"

    async def test_an_unknown_path_is_a_404_problem(self, stack: Stack) -> None:
        r = await stack.http["screening"].get("/nowhere")
        assert r.status_code == 404
        assert r.json()["status"] == 404
        assert r.headers["content-type"] == "application/problem+json"


class TestLogs:
    def test_json_lines_carry_the_correlation_id_and_mask_resident_ids(self) -> None:
        number = factories.resident_id(9)
        token = correlation_id.set("c-1")
        try:
            record = logging.LogRecord("x", logging.INFO, __file__, 1, "id %s", (number,), None)
            line = json.loads(JsonFormatter("intake").format(record))
        finally:
            correlation_id.reset(token)
        assert line["correlation_id"] == "c-1"
        assert number not in line["msg"]
        assert line["msg"] == "id " + number[:6] + "********" + number[14:]

    def test_masking_leaves_other_numbers_alone(self) -> None:
        assert (
            mask_resident_ids("order 12345, phone 13800138000") == "order 12345, phone 13800138000"
        )

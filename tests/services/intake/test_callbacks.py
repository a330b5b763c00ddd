"""Progress callbacks: recorded with each change, POSTed signed, retried until a 2xx, in order."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.intake.callbacks import CallbackDispatcher
from services.intake.handlers import ProgressHandlers
from services.intake.models import CallbackDelivery, Declaration
from services.intake.service import advance_progress
from services.intake.worker import worker_spec
from shared.auth import SIGNATURE_WINDOW_SECONDS, ClientRegistry, sign
from shared.contracts.casework import CaseOpenedV1, DeadlineV1, StageChangedV1
from shared.contracts.common import SourceRefV1
from shared.contracts.registry import build_envelope
from tests import factories
from tests.services.intake.harness import Intake

CALLBACK = "https://mp.example/fangpin/progress?tenant=jc"


class Receiver:
    """A stand-in for the mini-program backend: verifies signatures, answers as told."""

    def __init__(self, secret: str, answers: list[Any] | None = None) -> None:
        self.secret = secret
        self.answers = list(answers or [])
        self.received: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        path = request.url.raw_path.decode()
        expected = sign(self.secret, "POST", path, request.headers["x-timestamp"], body)
        self.received.append(
            {
                "path": path,
                "client_id": request.headers["x-client-id"],
                "signature_ok": request.headers["x-signature"] == expected,
                "callback_id": request.headers["x-callback-id"],
                "content_type": request.headers["content-type"],
                "body": json.loads(body),
            }
        )
        answer = self.answers.pop(0) if self.answers else 204
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, headers={"Location": "https://elsewhere.example/"})


def _dispatcher(intake: Intake, receiver: Callable[[httpx.Request], httpx.Response]) -> Any:
    return CallbackDispatcher(
        sessionmaker=intake.sessionmaker,
        clients=intake.state.clients,
        clock=intake.clock,
        settings=intake.settings,
        transport=httpx.MockTransport(receiver),
    )


async def _file(intake: Intake, serial: int = 1, url: str | None = CALLBACK) -> str:
    body = factories.declaration(serial, **({"callback_url": url} if url else {}))
    response = await intake.signed("POST", "/v1/declarations", intake.client("miniprogram"), body)
    assert response.status_code == 202, response.text
    return str(response.json()["receipt_no"])


async def _deliveries(intake: Intake) -> list[CallbackDelivery]:
    async with intake.sessionmaker() as session:
        stmt = select(CallbackDelivery).order_by(CallbackDelivery.id)
        return list((await session.execute(stmt)).scalars())


async def _open_case(intake: Intake, receipt: str) -> uuid.UUID:
    """Apply casework's case_opened to intake as its consumer would."""
    case_id = uuid.uuid4()
    opened = CaseOpenedV1(
        case_id=case_id,
        episode_id=uuid.uuid4(),
        household_id=uuid.uuid4(),
        village_code=factories.VILLAGE,
        opened_at=intake.clock.now(),
        sources=(SourceRefV1(kind="declaration", receipt_no=receipt),),
        deadlines=(DeadlineV1(kind="identification", due=intake.clock.now().date()),),
    )
    await _apply(intake, "on_case_opened", opened)
    return case_id


async def _apply(intake: Intake, handler: str, payload: Any) -> None:
    envelope = build_envelope(
        payload,
        producer="casework",
        subject_key="k",
        occurred_at=intake.clock.now(),
        produced_at=intake.clock.now(),
    )
    async with intake.sessionmaker() as session, session.begin():
        await getattr(ProgressHandlers(intake.clock), handler)(session, envelope)


class TestRecordStep:
    async def test_filing_records_the_first_change_with_the_declaration(
        self, intake: Intake, backend: str
    ) -> None:
        receipt = await _file(intake)

        [delivery] = await _deliveries(intake)

        assert delivery.url == CALLBACK
        assert delivery.client_id == intake.client("miniprogram")["client_id"]
        assert delivery.delivered_at is None
        assert delivery.payload["receipt_no"] == receipt
        assert delivery.payload["stage"] == "received"
        assert delivery.payload["sequence"] == 1
        assert delivery.payload["delivery_id"] == str(delivery.delivery_id)

    async def test_no_callback_url_means_no_deliveries(self, intake: Intake) -> None:
        await _file(intake, url=None)

        assert await _deliveries(intake) == []

    async def test_every_change_from_casework_is_recorded_once_in_order(
        self, intake: Intake, backend: str
    ) -> None:
        receipt = await _file(intake)
        case_id = await _open_case(intake, receipt)
        for to_stage, reason in [
            ("home_verification", None),  # still under verification: no change to tell
            ("village_publicity", None),
            ("not_included", "家庭人均纯收入高于监测标准"),
        ]:
            await _apply(
                intake,
                "on_stage_changed",
                StageChangedV1(
                    case_id=case_id,
                    household_id=uuid.uuid4(),
                    from_stage="x",
                    to_stage=to_stage,
                    changed_at=intake.clock.now(),
                    reason=reason,
                ),
            )

        deliveries = await _deliveries(intake)

        assert [(d.payload["sequence"], d.payload["stage"]) for d in deliveries] == [
            (1, "received"),
            (2, "under_verification"),
            (3, "in_publicity"),
            (4, "not_included"),
        ]
        assert deliveries[1].payload["identification_due"] == intake.clock.now().date().isoformat()
        assert deliveries[3].payload["outcome_reason"] == "家庭人均纯收入高于监测标准"
        assert deliveries[3].payload["stage_label_zh"] == "未纳入监测"

    async def test_a_failed_change_leaves_no_delivery_behind(self, intake: Intake) -> None:
        receipt = await _file(intake)
        before = await _deliveries(intake)

        with pytest.raises(RuntimeError):
            await self._change_then_fail(intake, receipt)

        assert len(await _deliveries(intake)) == len(before)

    @staticmethod
    async def _change_then_fail(intake: Intake, receipt: str) -> None:
        async with intake.sessionmaker() as session, session.begin():
            stmt = select(Declaration).where(Declaration.receipt_no == receipt)
            declaration = (await session.execute(stmt)).scalar_one()
            now = intake.clock.now()
            await advance_progress(session, declaration, "in_publicity", at=now, note=None, now=now)
            raise RuntimeError("the consumer's transaction fails after the change")


class TestCallbackDispatcher:
    async def test_a_change_is_posted_signed_with_the_clients_secret(
        self, intake: Intake, backend: str
    ) -> None:
        mp = intake.client("miniprogram")
        receipt = await _file(intake)
        receiver = Receiver(mp["secret"])
        dispatcher = _dispatcher(intake, receiver)

        try:
            attempted = await dispatcher.deliver_once()
        finally:
            await dispatcher.aclose()

        assert attempted == 1
        [got] = receiver.received
        assert got["path"] == "/fangpin/progress?tenant=jc"
        assert got["client_id"] == mp["client_id"]
        assert got["signature_ok"]
        assert got["content_type"] == "application/json"
        assert got["body"]["receipt_no"] == receipt
        assert got["body"]["stage"] == "received"
        assert got["callback_id"] == got["body"]["delivery_id"]
        [delivery] = await _deliveries(intake)
        assert delivery.delivered_at == intake.clock.now()
        assert (delivery.attempts, delivery.last_status, delivery.last_error) == (1, 204, None)

    async def test_the_signature_timestamp_is_inside_the_window(self, intake: Intake) -> None:
        await _file(intake)
        stamps: list[int] = []

        def receiver(request: httpx.Request) -> httpx.Response:
            stamps.append(int(request.headers["x-timestamp"]))
            return httpx.Response(200)

        dispatcher = _dispatcher(intake, receiver)
        try:
            await dispatcher.deliver_once()
        finally:
            await dispatcher.aclose()

        assert abs(stamps[0] - intake.clock.now().timestamp()) < SIGNATURE_WINDOW_SECONDS

    @pytest.mark.parametrize(
        ("answer", "error"),
        [
            pytest.param(500, "HTTP 500", id="server-error"),
            pytest.param(302, "HTTP 302", id="redirect-not-followed"),
            pytest.param(404, "HTTP 404", id="not-found"),
            pytest.param(httpx.ConnectError("refused"), "ConnectError", id="unreachable"),
            pytest.param(httpx.ReadTimeout("slow"), "ReadTimeout", id="timeout"),
        ],
    )
    async def test_a_refused_delivery_is_retried_with_backoff_until_acknowledged(
        self, intake: Intake, answer: Any, error: str
    ) -> None:
        await _file(intake)
        receiver = Receiver(intake.client("miniprogram")["secret"], [answer, 200])
        dispatcher = _dispatcher(intake, receiver)
        try:
            first = await dispatcher.deliver_once()
            [failed] = await _deliveries(intake)
            too_soon = await dispatcher.deliver_once()
            intake.clock.advance(
                timedelta(seconds=intake.settings.callback_initial_backoff_seconds)
            )
            second = await dispatcher.deliver_once()
        finally:
            await dispatcher.aclose()

        assert (first, too_soon, second) == (1, 0, 1)
        assert failed.delivered_at is None
        assert failed.attempts == 1
        assert error in (failed.last_error or "")
        assert failed.next_attempt_at > failed.created_at  # backed off, not hammered
        [done] = await _deliveries(intake)
        assert done.delivered_at is not None
        assert done.attempts == 2
        assert receiver.received[0]["body"] == receiver.received[1]["body"]  # same delivery

    async def test_a_later_change_waits_for_the_earlier_one(self, intake: Intake) -> None:
        receipt = await _file(intake)
        await _open_case(intake, receipt)
        receiver = Receiver(intake.client("miniprogram")["secret"], [503, 200, 200])
        dispatcher = _dispatcher(intake, receiver)
        try:
            await dispatcher.deliver_once()
            intake.clock.advance(timedelta(hours=2))
            await dispatcher.deliver_once()
            await dispatcher.deliver_once()
        finally:
            await dispatcher.aclose()

        assert [r["body"]["stage"] for r in receiver.received] == [
            "received",
            "received",
            "under_verification",
        ]
        assert all(d.delivered_at is not None for d in await _deliveries(intake))

    async def test_deliveries_of_different_declarations_do_not_wait_for_each_other(
        self, intake: Intake
    ) -> None:
        await _file(intake, serial=1, url="https://down.example/cb")
        await _file(intake, serial=2)

        def receiver(request: httpx.Request) -> httpx.Response:
            return httpx.Response(500 if request.url.host == "down.example" else 200)

        dispatcher = _dispatcher(intake, receiver)
        try:
            assert await dispatcher.deliver_once() == 2
        finally:
            await dispatcher.aclose()

        delivered = {d.url: d.delivered_at is not None for d in await _deliveries(intake)}
        assert delivered == {"https://down.example/cb": False, CALLBACK: True}

    async def test_a_client_no_longer_registered_keeps_its_delivery_pending(
        self, intake: Intake
    ) -> None:
        await _file(intake)
        dispatcher = CallbackDispatcher(
            sessionmaker=intake.sessionmaker,
            clients=ClientRegistry([]),
            clock=intake.clock,
            settings=intake.settings,
            transport=httpx.MockTransport(lambda _r: httpx.Response(200)),
        )
        try:
            await dispatcher.deliver_once()
        finally:
            await dispatcher.aclose()

        [delivery] = await _deliveries(intake)
        assert delivery.delivered_at is None
        assert "unknown client" in (delivery.last_error or "")

    async def test_the_worker_runs_the_dispatcher_as_a_loop(self, intake: Intake) -> None:
        await _file(intake)
        receiver = Receiver(intake.client("miniprogram")["secret"])
        spec = worker_spec(
            intake.clock,
            settings=intake.settings,
            clients=intake.state.clients,
            transport=httpx.MockTransport(receiver),
        )
        [make_loop] = spec.loops
        stop = asyncio.Event()
        loop = asyncio.ensure_future(make_loop(intake.sessionmaker)(stop))

        for _ in range(100):
            if receiver.received:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(loop, timeout=10)

        assert len(receiver.received) == 1
        assert receiver.received[0]["signature_ok"]

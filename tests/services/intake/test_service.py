"""Intake's use cases against a real session: alert judging and many-row writes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from services.intake import schemas, service
from services.intake.models import outbox_table
from services.intake.repository import OutboxRepository
from shared.auth import ClientRecord
from shared.contracts.registry import decode
from shared.problems import FieldError
from tests import factories
from tests.services.intake.harness import Intake

YB = ClientRecord("dept-medical_insurance", "s", "department", "medical_insurance")
MINI = ClientRecord("miniprogram", "s", "miniprogram")


def _alert(alert_id: str, serial: int, **overrides: Any) -> dict[str, Any]:
    return factories.alert(alert_id, factories.resident_id(serial), **overrides)


class TestOutboxRow:
    async def test_the_row_is_the_one_outbox_add_writes(self, intake: Intake, backend: str) -> None:
        ctx = intake.state.ctx
        body = schemas.AlertCreate.model_validate(_alert("O-1", 1))
        now, correlation = intake.clock.now(), uuid.uuid4()
        prepared = service.prepare_alert(ctx, YB, body, now=now, correlation=correlation)
        event = decode(prepared.outbox_row["value"].encode()).payload

        async with intake.sessionmaker() as session, session.begin():
            await ctx.outbox.add(
                session,
                event,
                subject_key=prepared.outbox_row["message_key"],
                occurred_at=now,
                now=now,
                correlation_id=correlation,
            )
            await OutboxRepository(session, outbox_table).insert_many([prepared.outbox_row])
        async with intake.sessionmaker() as session:
            by_add, by_row = (await session.execute(select(outbox_table))).mappings().all()

        def comparable(row: Any) -> dict[str, Any]:
            out = {k: v for k, v in row.items() if k not in ("id", "event_id", "value", "headers")}
            out["headers"] = {k: v for k, v in row["headers"].items() if k != "event_id"}
            envelope = decode(row["value"].encode())
            out["envelope"] = envelope.model_dump(mode="json", exclude={"event_id"})
            return out

        assert comparable(by_row) == comparable(by_add)

    async def test_a_declaration_writes_the_row_outbox_add_writes(
        self, intake: Intake, backend: str
    ) -> None:
        ctx = intake.state.ctx
        body = schemas.DeclarationCreate.model_validate(factories.declaration(3))
        async with intake.sessionmaker() as session, session.begin():
            await service.receive_declaration(
                session, ctx, client=MINI, body=body, idempotency_key=None
            )
        async with intake.sessionmaker() as session:
            (written,) = (await session.execute(select(outbox_table))).mappings().all()
        envelope = decode(written["value"].encode())
        async with intake.sessionmaker() as session, session.begin():
            await ctx.outbox.add(
                session,
                envelope.payload,
                subject_key=envelope.subject_key,
                occurred_at=envelope.occurred_at,
                now=envelope.produced_at,
                correlation_id=envelope.correlation_id,
            )
        async with intake.sessionmaker() as session:
            rows = (await session.execute(select(outbox_table))).mappings().all()
        by_add = next(r for r in rows if r["id"] != written["id"])

        def comparable(row: Any) -> dict[str, Any]:
            out = {k: v for k, v in row.items() if k not in ("id", "event_id", "value", "headers")}
            out["headers"] = {k: v for k, v in row["headers"].items() if k != "event_id"}
            out["envelope"] = decode(row["value"].encode()).model_dump(
                mode="json", exclude={"event_id"}
            )
            return out

        assert comparable(written) == comparable(by_add)

    def test_the_event_carries_no_clear_resident_id(self, intake: Intake) -> None:
        number = factories.resident_id(2)
        body = schemas.AlertCreate.model_validate(factories.alert("O-2", number))

        prepared = service.prepare_alert(
            intake.state.ctx, YB, body, now=intake.clock.now(), correlation=uuid.uuid4()
        )

        assert number not in prepared.outbox_row["value"]
        assert number not in str(prepared.row)
        assert prepared.row["subject_id_masked"] == number[:6] + "********" + number[14:]


class TestJudgeAlertRows:
    @pytest.mark.parametrize(
        ("raw", "read_errors", "expected"),
        [
            pytest.param(_alert("J-1", 1), [], ("prepared", []), id="valid"),
            pytest.param("text", [], ("rejected", ["row.not_object"]), id="not-an-object"),
            pytest.param(
                _alert("J-2", 2, alert_type="health.serious_illness_diagnosis"),
                [],
                ("rejected", ["alert_type.not_allowed"]),
                id="other-department",
            ),
            pytest.param(
                _alert("J-3", 3, amount=None, subject_id_number="1"),
                [],
                ("rejected", ["amount.required", "resident_id.length"]),
                id="every-problem-listed",
            ),
            pytest.param(
                {"alert_id": "J-4"},
                [FieldError("body", "row.json_invalid", "zh", "en")],
                ("rejected", ["row.json_invalid"]),
                id="unreadable-row-not-validated",
            ),
            pytest.param(
                {k: v for k, v in _alert("J-5", 5, amount="x").items() if k != "details"},
                [FieldError("details", "details.json_invalid", "zh", "en")],
                ("rejected", ["decimal_parsing", "details.json_invalid"]),
                id="bad-cell-and-bad-field",
            ),
        ],
    )
    def test_a_row_is_judged(
        self,
        intake: Intake,
        raw: Any,
        read_errors: list[FieldError],
        expected: tuple[str, list[str]],
    ) -> None:
        [row] = service.judge_alert_rows(
            intake.state.ctx, YB, [(7, raw, read_errors)], now=intake.clock.now()
        )

        kind = "prepared" if row.prepared is not None else "rejected"
        assert (kind, sorted(e.code for e in row.errors)) == expected
        assert row.position == 7

    def test_a_repeat_inside_the_chunk_is_marked_and_not_prepared(self, intake: Intake) -> None:
        rows = service.judge_alert_rows(
            intake.state.ctx,
            YB,
            [(1, _alert("J-6", 6), []), (2, _alert("J-6", 6), [])],
            now=intake.clock.now(),
        )

        assert [(r.prepared is not None, r.repeated) for r in rows] == [
            (True, False),
            (False, True),
        ]

    def test_a_resident_id_shaped_alert_id_is_masked_in_results(self, intake: Intake) -> None:
        number = factories.resident_id(8)

        [row] = service.judge_alert_rows(
            intake.state.ctx, YB, [(1, _alert(number + "!", 8), [])], now=intake.clock.now()
        )

        assert row.alert_id is not None
        assert number not in row.alert_id


class TestStoreAlertRows:
    async def test_an_alert_stored_meanwhile_is_a_duplicate_with_no_second_event(
        self, intake: Intake, backend: str
    ) -> None:
        ctx = intake.state.ctx
        judged = service.judge_alert_rows(
            ctx, YB, [(1, _alert("W-1", 1), []), (2, _alert("W-2", 2), [])], now=intake.clock.now()
        )
        # Another request stores W-1 between this chunk's judging and its writing.
        async with intake.sessionmaker() as session, session.begin():
            await service.receive_alert(
                session, ctx, client=YB, body=schemas.AlertCreate.model_validate(_alert("W-1", 1))
            )

        async with intake.sessionmaker() as session, session.begin():
            statuses = await service.store_alert_rows(session, ctx, judged)

        assert statuses == ["duplicate", "accepted"]
        assert await intake.counts("alert", "outbox_message") == {"alert": 2, "outbox_message": 2}

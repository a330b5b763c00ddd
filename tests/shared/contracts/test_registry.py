"""Event contracts: round trips, poison detection, and committed JSON Schemas kept current."""

from __future__ import annotations

import gc
import json
import weakref
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest

from shared.contracts import registry
from shared.contracts.casework import DeadlineBreachedV1
from shared.contracts.common import PersonV1
from shared.contracts.intake import AlertReceivedV1

NOW = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
SCHEMA_DIR = Path(registry.__file__).parent / "schemas"


def _alert() -> AlertReceivedV1:
    return AlertReceivedV1(
        department="medical_insurance",
        alert_id="YB-1",
        alert_type="medical_insurance.large_out_of_pocket",
        subject=PersonV1(person_ref="ref", id_cipher="v1.x", id_masked="141122********0012"),
        amount=Decimal("52000.00"),
        occurred_on=date(2026, 11, 1),
        received_at=NOW,
    )


class TestEncodeDecode:
    def test_round_trip_keeps_every_payload_field(self) -> None:
        env = registry.build_envelope(
            _alert(), producer="intake", subject_key="ref", occurred_at=NOW, produced_at=NOW
        )
        back = registry.decode(registry.encode(env))
        assert back.payload == env.payload
        assert back.event_type == "intake.alert_received"
        assert back.schema_version == 1

    def test_an_envelope_class_outlives_its_events(self) -> None:
        # Rebuilding the parametrised class costs milliseconds per event (a sweep publishes
        # a thousand): the class must survive a collection with no envelope alive.
        def breach() -> type:
            payload = DeadlineBreachedV1(
                case_id=uuid4(),
                deadline_id=uuid4(),
                kind="identification",
                due=date(2026, 11, 1),
                breached_at=NOW,
                escalation_level="village",
                village_code="141122100201",
            )
            env = registry.build_envelope(
                payload, producer="casework", subject_key="h", occurred_at=NOW, produced_at=NOW
            )
            return type(env)

        built = weakref.ref(breach())
        gc.collect()
        assert built() is not None
        assert breach() is built()

    def test_unknown_fields_from_newer_producers_are_ignored(self) -> None:
        env = registry.build_envelope(
            _alert(), producer="intake", subject_key="ref", occurred_at=NOW, produced_at=NOW
        )
        data = json.loads(registry.encode(env))
        data["payload"]["added_later"] = 1
        assert registry.decode(json.dumps(data).encode()).payload == env.payload

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (b"not json", "not an event envelope"),
            (b"{}", "not an event envelope"),
            (
                json.dumps({"event_type": "intake.alert_received", "schema_version": 9}).encode(),
                "unknown version",
            ),
            (
                json.dumps(
                    {"event_type": "intake.alert_received", "schema_version": 1, "payload": {}}
                ).encode(),
                "intake.alert_received v1",
            ),
        ],
        ids=["garbage", "empty", "unknown-version", "bad-payload"],
    )
    def test_poison_is_recognised(self, raw: bytes, reason: str) -> None:
        with pytest.raises(registry.PoisonMessage, match=reason):
            registry.decode(raw)

    def test_unknown_event_type_is_not_poison(self) -> None:
        raw = json.dumps({"event_type": "other.thing", "schema_version": 1}).encode()
        with pytest.raises(registry.UnknownEventType):
            registry.decode(raw)

    def test_envelope_carries_correlation_and_causation(self) -> None:
        cause, corr = uuid4(), uuid4()
        env = registry.build_envelope(
            _alert(),
            producer="intake",
            subject_key="k",
            occurred_at=NOW,
            produced_at=NOW,
            correlation_id=corr,
            causation_id=cause,
        )
        back = registry.decode(registry.encode(env))
        assert (back.correlation_id, back.causation_id) == (corr, cause)


class TestJsonSchemas:
    def test_committed_schemas_match_the_models(self) -> None:
        current = registry.json_schemas()
        committed = {p.name for p in SCHEMA_DIR.glob("*.json")}
        assert committed == set(current), "run `make schemas` and review the diff"
        for name, schema in current.items():
            text = (SCHEMA_DIR / name).read_text(encoding="utf-8")
            assert json.loads(text) == schema, f"{name} is stale: run `make schemas`"

    def test_every_catalogue_event_has_a_schema(self) -> None:
        names = {f"{t}.v{v}.json" for t, v in registry.CATALOGUE}
        assert names == set(registry.json_schemas())

"""The catalogue of events: (event_type, version) ↔ payload model, with encode and decode."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.contracts import casework, intake, screening
from shared.contracts.envelope import EventEnvelope, Payload

CATALOGUE: dict[tuple[str, int], type[Payload]] = {
    ("intake.declaration_received", 1): intake.DeclarationReceivedV1,
    ("intake.alert_received", 1): intake.AlertReceivedV1,
    ("intake.report_received", 1): intake.ReportReceivedV1,
    ("screening.risk_assessed", 1): screening.RiskAssessedV1,
    ("screening.area_alert_raised", 1): screening.AreaAlertRaisedV1,
    ("casework.case_opened", 1): casework.CaseOpenedV1,
    ("casework.stage_changed", 1): casework.StageChangedV1,
    ("casework.included", 1): casework.CaseIncludedV1,
    ("casework.helper_assigned", 1): casework.HelperAssignedV1,
    ("casework.deadline_breached", 1): casework.DeadlineBreachedV1,
    ("casework.risk_eliminated", 1): casework.RiskEliminatedV1,
}
_NAME_OF: dict[type[Payload], tuple[str, int]] = {cls: key for key, cls in CATALOGUE.items()}
# pydantic keeps parametrised generics only weakly, so `EventEnvelope[cls]` rebuilt the class
# (about 3 ms) after most garbage collections; held here, each is built once per process.
_ENVELOPE_OF: dict[type[Payload], type[EventEnvelope[Any]]] = {
    cls: EventEnvelope[cls]  # type: ignore[valid-type]
    for cls in CATALOGUE.values()
}


class PoisonMessage(Exception):
    """A message that can never be processed as it is: bad JSON, bad schema, unknown version."""


class UnknownEventType(Exception):
    """An event type this catalogue does not know; consumers that do not handle it skip it."""


class _RawEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_type: str
    schema_version: int


def type_of(payload: Payload) -> tuple[str, int]:
    """Return the (event_type, version) of a payload instance."""
    try:
        return _NAME_OF[type(payload)]
    except KeyError:
        raise KeyError(f"{type(payload).__name__} is not in the event catalogue") from None


def build_envelope(
    payload: Payload,
    *,
    producer: str,
    subject_key: str,
    occurred_at: datetime,
    produced_at: datetime,
    correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
    event_id: UUID | None = None,
) -> EventEnvelope[Payload]:
    """Wrap a payload in an envelope with its catalogue name and version."""
    event_type, version = type_of(payload)
    # Parametrised with the concrete payload class so serialisation sees its fields.
    return _ENVELOPE_OF[type(payload)](
        event_id=event_id or uuid4(),
        event_type=event_type,
        schema_version=version,
        occurred_at=occurred_at,
        produced_at=produced_at,
        producer=producer,
        subject_key=subject_key,
        correlation_id=correlation_id or uuid4(),
        causation_id=causation_id,
        payload=payload,
    )


def encode(envelope: EventEnvelope[Any]) -> bytes:
    """Serialise an envelope to the JSON bytes that go on a topic."""
    # serialize_as_any: an envelope typed EventEnvelope[Payload] must still write every
    # field of the concrete payload it carries.
    return envelope.model_dump_json(serialize_as_any=True).encode()


def decode(raw: bytes) -> EventEnvelope[Payload]:
    """Parse topic bytes into an envelope with its typed payload."""
    try:
        data = json.loads(raw)
        head = _RawEnvelope.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise PoisonMessage(f"not an event envelope: {exc}") from exc
    cls = CATALOGUE.get((head.event_type, head.schema_version))
    if cls is None:
        if any(t == head.event_type for t, _ in CATALOGUE):
            raise PoisonMessage(f"unknown version {head.schema_version} of {head.event_type}")
        raise UnknownEventType(head.event_type)
    try:
        return _ENVELOPE_OF[cls].model_validate(data)
    except ValidationError as exc:
        raise PoisonMessage(f"{head.event_type} v{head.schema_version}: {exc}") from exc


def json_schemas() -> dict[str, dict[str, Any]]:
    """Return the JSON Schema of every event envelope, keyed by file name."""
    out: dict[str, dict[str, Any]] = {}
    for (event_type, version), cls in sorted(CATALOGUE.items()):
        schema = EventEnvelope[cls].model_json_schema()  # type: ignore[valid-type]
        schema["title"] = f"{event_type} v{version}"
        schema["$id"] = f"https://fangpin.example/schemas/{event_type}.v{version}.json"
        out[f"{event_type}.v{version}.json"] = schema
    return out

"""The event envelope every message on every topic travels in."""

from __future__ import annotations

from typing import Generic, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict

P = TypeVar("P", bound=BaseModel)


class Payload(BaseModel):
    """Base of every event payload: frozen, tolerant of fields added by newer producers."""

    # Consumers ignore unknown fields so producers can add optional ones without a version
    # bump; producers cannot invent fields because the pydantic mypy plugin forbids extras
    # at construction (init_forbid_extra).
    model_config = ConfigDict(frozen=True, extra="ignore")


class EventEnvelope(BaseModel, Generic[P]):
    """Metadata plus a typed payload; event_id is every consumer's dedupe key."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID
    event_type: str
    schema_version: int
    occurred_at: AwareDatetime
    produced_at: AwareDatetime
    producer: str
    subject_key: str
    correlation_id: UUID
    causation_id: UUID | None = None
    payload: P

"""Payload parts several events share."""

from __future__ import annotations

from typing import Literal

from shared.contracts.envelope import Payload


class PersonV1(Payload):
    """A person as events carry them: never the resident ID in clear text."""

    person_ref: str  # keyed hash of the resident ID: matches a person across services
    id_cipher: str  # the resident ID encrypted with the shared PII key
    id_masked: str  # 110105********002X, safe to show
    name: str | None = None
    relation: str | None = None


class SourceRefV1(Payload):
    """A signal that led to an episode or case."""

    kind: Literal["declaration", "alert", "report"]
    receipt_no: str | None = None
    department: str | None = None
    alert_id: str | None = None
    report_id: str | None = None

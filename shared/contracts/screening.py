"""Events screening publishes on screening.events."""

from __future__ import annotations

from uuid import UUID

from pydantic import AwareDatetime

from shared.contracts.common import PersonV1, SourceRefV1
from shared.contracts.envelope import Payload


class ReasonV1(Payload):
    """One explained contribution to a risk score."""

    code: str
    title_zh: str
    title_en: str = ""
    evidence: str = ""
    contribution: int = 0


class RiskAssessedV1(Payload):
    """A household's open risk episode was (re)scored."""

    assessment_id: UUID
    household_id: UUID
    episode_id: UUID
    village_code: str
    head: PersonV1 | None = None
    score: int
    level: str
    categories: tuple[str, ...] = ()
    reasons: tuple[ReasonV1, ...] = ()
    review_flags: tuple[ReasonV1, ...] = ()
    must_verify: bool
    opens_case: bool
    policy_id: str
    policy_version: int
    source_event_id: UUID
    sources: tuple[SourceRefV1, ...] = ()
    assessed_at: AwareDatetime

"""Events screening publishes on screening.events."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
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


class AreaAlertRaisedV1(Payload):
    """Same-cause signals in a township spiked above the township's baseline this week.

    Early warning of 规模性返贫 (large-scale return to poverty): raised once per township,
    cause and week, with the numbers that tripped it so a reader can judge it.
    """

    alert_id: UUID
    township_code: str
    cause: str
    cause_zh: str
    week_start: date
    signal_count: int
    household_count: int
    baseline_weeks: int
    baseline_mean: Decimal
    baseline_sd: Decimal
    threshold: Decimal
    policy_version: str
    raised_at: AwareDatetime

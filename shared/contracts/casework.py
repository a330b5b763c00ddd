"""Events casework publishes on casework.events."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import AwareDatetime

from shared.contracts.common import SourceRefV1
from shared.contracts.envelope import Payload


class DeadlineV1(Payload):
    """A statutory clock of a case."""

    kind: str
    due: date


class CaseOpenedV1(Payload):
    """A case was opened for a household's risk episode."""

    case_id: UUID
    episode_id: UUID
    household_id: UUID
    village_code: str
    opened_at: AwareDatetime
    sources: tuple[SourceRefV1, ...] = ()
    deadlines: tuple[DeadlineV1, ...] = ()


class StageChangedV1(Payload):
    """A case moved from one procedure stage to another."""

    case_id: UUID
    household_id: UUID
    from_stage: str
    to_stage: str
    changed_at: AwareDatetime
    actor: str | None = None
    reason: str | None = None
    sources: tuple[SourceRefV1, ...] = ()


class CaseIncludedV1(Payload):
    """The county included the household under monitoring (审批建档)."""

    case_id: UUID
    household_id: UUID
    categories: tuple[str, ...] = ()
    included_at: AwareDatetime


class HelperAssignedV1(Payload):
    """A responsible helper (帮扶责任人) was assigned to a case."""

    case_id: UUID
    helper_id: str
    helper_name: str
    assigned_at: AwareDatetime


class DeadlineBreachedV1(Payload):
    """A statutory clock passed its due date unmet; emitted once per deadline."""

    case_id: UUID
    deadline_id: UUID
    kind: str
    due: date
    breached_at: AwareDatetime
    escalation_level: str
    village_code: str


class RiskEliminatedV1(Payload):
    """The household's risk was confirmed eliminated (风险消除)."""

    case_id: UUID
    household_id: UUID
    eliminated_at: AwareDatetime

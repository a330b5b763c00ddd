"""Casework's response bodies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class DeadlineRead(BaseModel):
    """A statutory clock as caseworkers see it."""

    kind: str
    due: date = Field(description="截止日期（北京时间本地日期）")
    met_at: datetime | None = None
    breached: bool
    escalation_level: str | None = None
    citation: str


class SourceRead(BaseModel):
    """A signal that led to the case."""

    kind: str
    receipt_no: str | None = None
    department: str | None = None
    alert_id: str | None = None
    report_id: str | None = None


class CaseSummary(BaseModel):
    """A case in a list."""

    case_id: str
    stage: str
    stage_label_zh: str
    village_code: str
    opened_at: datetime
    head_name: str | None
    head_id_masked: str | None
    score: int
    level: str
    categories: list[str]
    deadlines: list[DeadlineRead]
    sources: list[SourceRead]


class CaseList(BaseModel):
    """A page of cases."""

    items: list[CaseSummary]
    total: int
    page: int


class HistoryEntry(BaseModel):
    """One recorded transition or action."""

    at: datetime
    actor: str
    actor_role: str
    action: str
    from_stage: str | None
    to_stage: str
    reason: str | None
    data: dict[str, Any]


class CaseDetail(CaseSummary):
    """A case with its reasons, history and plan."""

    reasons: list[dict[str, Any]]
    review_flags: list[dict[str, Any]]
    history: list[HistoryEntry]
    plan: list[dict[str, Any]] = Field(default_factory=list)
    as_of: date | None = None


class WorkingDaysAnswer(BaseModel):
    """The working-day arithmetic of the official Chinese calendar."""

    start: date
    days: int
    due: date

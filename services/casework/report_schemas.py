"""Response bodies of casework's reports."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class MetricRead(BaseModel):
    """A compliance figure and the rule it measures."""

    key: str
    title_zh: str
    rule: str
    kinds: list[str]


class ComplianceCell(BaseModel):
    """One metric in one township (or all of them) and month."""

    township_code: str | None
    township_name: str
    month: str
    metric: str
    on_time: int
    late: int
    pending: int
    share: float | None


class OverdueItem(BaseModel):
    """A clock past its due date and still owed."""

    case_id: str
    village_code: str
    township_name: str
    stage: str
    stage_label_zh: str
    head_name: str | None
    kind: str
    due: date
    days_overdue: int
    escalation_level: str | None


class SlaReport(BaseModel):
    """Time-limit compliance per township and month, and the overdue list."""

    scope: str
    as_of: datetime
    months: list[str]
    metrics: list[MetricRead]
    townships: list[ComplianceCell]
    totals: list[ComplianceCell]
    overdue_total: int
    overdue: list[OverdueItem]


class CountRead(BaseModel):
    """A labelled count."""

    key: str
    label_zh: str
    count: int


class PipelineReport(BaseModel):
    """Cases by stage, discovery channel, risk factor and category."""

    scope: str
    cases: int
    by_stage: list[CountRead]
    by_first_channel: list[CountRead]
    signals_by_channel: list[CountRead]
    by_risk_factor: list[CountRead]
    by_category: list[CountRead]

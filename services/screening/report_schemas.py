"""Response bodies of screening's reports."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel


class ColumnRead(BaseModel):
    """A numeric column of 表七/1 and its three header levels."""

    key: str
    group: str
    title: str
    unit: str


class TownshipRowRead(BaseModel):
    """One township (or the unplaced households, or the total)."""

    township_code: str | None
    name: str
    historical: bool
    escaped_households: int
    escaped_persons: int
    escaped_population_households: int
    escaped_population_persons: int
    unstable_households: int
    unstable_persons: int
    marginal_households: int
    marginal_persons: int
    sudden_households: int
    sudden_persons: int
    escaped_villages: int


class TownshipDistribution(BaseModel):
    """表七/1 for the caller's region."""

    title: str
    scope: str
    columns: list[ColumnRead]
    rows: list[TownshipRowRead]
    total: TownshipRowRead
    generated_at: datetime
    region_version: str
    notes: list[str]


class AlertTypeScore(BaseModel):
    """One alert type's outcome counts."""

    alert_type: str | None
    alerts: int
    included: int
    share_included: float | None


class DepartmentScore(BaseModel):
    """How many of a department's alerts ended in inclusion."""

    department: str
    alerts: int
    included: int
    share_included: float | None
    by_alert_type: list[AlertTypeScore]


class DepartmentReport(BaseModel):
    """Every department's scorecard in the caller's region."""

    scope: str
    since: date | None
    departments: list[DepartmentScore]


class AreaAlertRead(BaseModel):
    """A raised area alert (规模性返贫 early warning)."""

    alert_id: str
    township_code: str
    township_name: str
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
    raised_at: datetime


class CauseWeek(BaseModel):
    """Signals of one cause in one week across the caller's region."""

    week_start: date
    cause: str
    cause_zh: str
    signals: int


class AreaAlertList(BaseModel):
    """Area alerts in scope, and the weekly cause counts they stand out from."""

    scope: str
    policy_version: str
    items: list[AreaAlertRead]
    weeks: list[CauseWeek]

"""Screening's response bodies (resident IDs masked)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class MemberRead(BaseModel):
    """A member, masked."""

    member_id: str
    name: str | None
    id_masked: str
    relation: str | None
    birth_date: date | None
    labour_capacity: str | None
    disability_grade: int | None
    health: str | None


class HouseholdRead(BaseModel):
    """A household of the registry."""

    household_id: str
    village_code: str | None
    region_code: str
    provisional: bool
    labels: list[str]
    members: list[MemberRead]


class AssessmentRead(BaseModel):
    """One scoring with its reasons."""

    assessment_id: str
    episode_id: str
    score: int
    level: str
    categories: list[str]
    reasons: list[dict[str, Any]]
    review_flags: list[dict[str, Any]]
    must_verify: bool
    opens_case: bool
    policy_id: str
    policy_version: int
    assessed_at: datetime


class EpisodeRead(BaseModel):
    """A risk episode with its assessment history."""

    episode_id: str
    household_id: str
    opened_at: datetime
    last_signal_at: datetime
    closed_at: datetime | None
    signals: list[dict[str, Any]]
    assessments: list[AssessmentRead]


class MemberDetail(MemberRead):
    """A member with the roster's attributes, masked."""

    is_main_labourer: bool
    schooling: str | None
    student_aided: bool
    dropout_risk: bool
    migrant_worker: bool
    receives_basic_pension: bool
    medical_insured: bool
    in_roster: bool


class HouseholdDetail(BaseModel):
    """A household of the registry with its members (masked) and roster facts."""

    household_id: str
    roster_no: str | None
    village_code: str | None
    region_code: str
    address: str | None
    provisional: bool
    # Set when this (provisional) household was linked: follow it to the household now.
    merged_into: str | None
    labels: list[str]
    facts: dict[str, Any]
    previous_year_income: Decimal | None
    members: list[MemberDetail]
    updated_at: datetime


class HouseholdSummary(BaseModel):
    """One line of a household list."""

    household_id: str
    roster_no: str | None
    village_code: str | None
    region_code: str
    provisional: bool
    labels: list[str]
    head_name: str | None
    head_id_masked: str | None
    members: int
    updated_at: datetime


class HouseholdList(BaseModel):
    """A page of households."""

    items: list[HouseholdSummary]
    total: int
    page: int
    page_size: int


class LinkRequest(BaseModel):
    """Which roster household a provisional household belongs to."""

    model_config = ConfigDict(extra="forbid")

    target_household_id: uuid.UUID


class LinkRead(BaseModel):
    """The outcome of a link: the household that now stands for the family."""

    household_id: str
    merged_household_id: str
    members_moved: int
    signals_moved: int
    open_episode_id: str | None


class EpisodeSummary(BaseModel):
    """One line of an episode list, with its latest assessment."""

    episode_id: str
    household_id: str
    region_code: str
    opened_at: datetime
    last_signal_at: datetime
    closed_at: datetime | None
    signals: int
    latest: AssessmentRead | None


class EpisodeList(BaseModel):
    """A page of episodes."""

    items: list[EpisodeSummary]
    total: int
    page: int
    page_size: int


class RosterImportRead(BaseModel):
    """What a roster import did (or, dry, would do), with the rows it refused."""

    import_id: str | None
    dry_run: bool
    format: str
    income_layout: str
    rows: int
    counts: dict[str, int]
    rejected_rows: int
    rejections_total: int
    # The first rejections; the full list is the report at report_url.
    rejections: list[dict[str, Any]]
    report_url: str | None
    ignored_columns: list[str]


class PolicyVersionRead(BaseModel):
    """One version of a scoring policy and where it stands."""

    policy_id: str
    version: int
    region_code: str
    effective_from: date
    status: str
    proposed_by: str | None
    reviewed_by: str | None
    created_at: datetime | None
    activated_at: datetime | None
    body: dict[str, Any]


class ActivationRead(BaseModel):
    """The activated version and the versions it retired."""

    activated: PolicyVersionRead
    retired: list[PolicyVersionRead]


class SimulationRequestBody(BaseModel):
    """A candidate policy to replay over the stored signals of a period."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    candidate: dict[str, Any]
    period_from: date = Field(alias="from")
    period_to: date = Field(alias="to")
    # Defaults to the caller's region.
    region: str | None = None
    changes_limit: int = Field(default=1000, ge=0, le=20000)


class TallyRead(BaseModel):
    """Households by level and category under one policy."""

    households: int
    flagged: int
    opens_case: int
    by_level: dict[str, int]
    by_category: dict[str, int]


class TownshipRead(BaseModel):
    """One township under both policies."""

    township_code: str
    township_name: str | None
    active: TallyRead
    candidate: TallyRead


class OutcomeRead(BaseModel):
    """What one policy made of a household."""

    score: int
    level: str
    categories: list[str]
    opens_case: bool
    policy_id: str
    policy_version: int


class ChangeRead(BaseModel):
    """A household the candidate treats differently."""

    household_id: str
    region_code: str
    township_code: str
    active: OutcomeRead
    candidate: OutcomeRead


class SimulationRead(BaseModel):
    """Candidate against the active policy over a period."""

    region: str
    period_from: date
    period_to: date
    candidate_policy: str
    episodes: int
    signals: int
    active: TallyRead
    candidate: TallyRead
    townships: list[TownshipRead]
    transitions: dict[str, int]
    changes_total: int
    changes: list[ChangeRead]

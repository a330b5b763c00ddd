"""Screening's response bodies (resident IDs masked)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel


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

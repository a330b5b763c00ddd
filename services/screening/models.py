"""Screening's tables: the household registry, signals, risk episodes, assessments, policies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import JSONType, UTCDateTime, make_metadata
from shared.messaging.inbox import make_inbox_table
from shared.messaging.outbox import make_outbox_table

metadata = make_metadata()


class Base(DeclarativeBase):
    """Declarative base bound to screening's own metadata."""

    metadata = metadata


class Household(Base):
    """A rural household (the unit of monitoring, domain.md §3.1)."""

    __tablename__ = "household"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    roster_no: Mapped[str | None] = mapped_column(String(40), unique=True)
    village_code: Mapped[str | None] = mapped_column(String(12), index=True)
    # Where the household sits for access control: its village, or while unknown the county
    # its head's resident ID was issued in.
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    address: Mapped[str | None] = mapped_column(String(200))
    # Created from a signal about someone not in the roster; linked later (roster or caseworker).
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    labels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    facts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    previous_year_income: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # Fingerprint of the roster rows last written for this household. An import whose rows
    # hash the same skips the household entirely, which is what makes a re-import change
    # nothing. Any other change to the household's members clears it, so the next import
    # rewrites the household instead of trusting a stale fingerprint.
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # A provisional household linked to a roster household keeps its row (its id may already
    # be known to casework and to API callers) and points at the household that absorbed it.
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("household.id"))
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Member(Base):
    """A household member; the resident ID only as cipher, mask and keyed hash."""

    __tablename__ = "member"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("household.id"), index=True)
    person_ref: Mapped[str] = mapped_column(String(64), unique=True)
    id_cipher: Mapped[str] = mapped_column(Text)
    id_masked: Mapped[str] = mapped_column(String(18))
    name: Mapped[str | None] = mapped_column(String(50))
    relation: Mapped[str | None] = mapped_column(String(32))
    birth_date: Mapped[date | None] = mapped_column(Date)
    labour_capacity: Mapped[str | None] = mapped_column(String(16))
    is_main_labourer: Mapped[bool] = mapped_column(Boolean, default=False)
    disability_grade: Mapped[int | None] = mapped_column(Integer)
    health: Mapped[str | None] = mapped_column(String(24))
    schooling: Mapped[str | None] = mapped_column(String(24))
    student_aided: Mapped[bool] = mapped_column(Boolean, default=False)
    migrant_worker: Mapped[bool] = mapped_column(Boolean, default=False)
    receives_basic_pension: Mapped[bool] = mapped_column(Boolean, default=False)
    medical_insured: Mapped[bool] = mapped_column(Boolean, default=True)
    dropout_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    # Written by a roster import. Only such members are removed when a later roster no longer
    # lists them: people a caseworker linked from a signal stay until someone decides.
    in_roster: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Left the household according to the roster; kept because signals may reference them.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IncomeRecord(Base):
    """One month's income of one component for a household."""

    __tablename__ = "income_record"
    # The unique index leads with household_id, so it also serves every lookup by household;
    # a separate index on household_id would only slow down the roster's bulk writes.
    __table_args__ = (UniqueConstraint("household_id", "month", "component"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("household.id"))
    month: Mapped[date] = mapped_column(Date)
    component: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))


class RiskEpisode(Base):
    """All signals about one household inside the window: one episode, one case."""

    __tablename__ = "risk_episode"
    __table_args__ = (
        # At most one open episode per household, enforced by the database so two workers
        # racing on signals of one family cannot open two.
        Index(
            "uq_risk_episode_open_household",
            "household_id",
            unique=True,
            postgresql_where=text("closed_at IS NULL"),
            sqlite_where=text("closed_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("household.id"), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_signal_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Signal(Base):
    """A declaration, alert or report as screening stored it, matched to a household."""

    __tablename__ = "signal"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("household.id"), index=True)
    episode_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("risk_episode.id"), index=True)
    member_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("member.id"))
    channel: Mapped[str] = mapped_column(String(16))
    receipt_no: Mapped[str | None] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(40))
    alert_id: Mapped[str | None] = mapped_column(String(100))
    report_id: Mapped[str | None] = mapped_column(String(32))
    alert_type: Mapped[str | None] = mapped_column(String(80))
    difficulty_types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    count: Mapped[int | None] = mapped_column(Integer)
    grade: Mapped[int | None] = mapped_column(Integer)
    self_reported_income: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    occurred_on: Mapped[date] = mapped_column(Date, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RiskAssessment(Base):
    """One scoring of an episode, with every reason and the policy version used."""

    __tablename__ = "risk_assessment"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    episode_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("risk_episode.id"), index=True)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("household.id"), index=True)
    source_event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    score: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(8))
    categories: Mapped[list[str]] = mapped_column(JSONType)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    review_flags: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    must_verify: Mapped[bool] = mapped_column(Boolean)
    opens_case: Mapped[bool] = mapped_column(Boolean)
    policy_id: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[int] = mapped_column(Integer)
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PolicyRecord(Base):
    """A regional scoring policy version: proposed → reviewed → active (→ retired)."""

    __tablename__ = "scoring_policy"
    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    policy_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    region_code: Mapped[str] = mapped_column(String(12))
    effective_from: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    proposed_by: Mapped[str] = mapped_column(String(100))
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RosterImport(Base):
    """One roster import: who sent which file, what it changed and which rows it refused."""

    __tablename__ = "roster_import"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_name: Mapped[str | None] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(8))
    imported_by: Mapped[str] = mapped_column(String(100))
    region_code: Mapped[str] = mapped_column(String(12))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Row errors without clear resident IDs (masked), capped so one bad file stays small.
    rejections: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    rejections_truncated: Mapped[bool] = mapped_column(Boolean, default=False)


class VillageProfile(Base):
    """A village as the registry knows it: whether it is a 脱贫村 (a poor village that exited).

    表七/1 counts 其中脱贫村数 per township; that is a fact about villages, not households, and
    the region table only carries names and codes, so the registry keeps it here.
    """

    __tablename__ = "village_profile"

    village_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    labels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Inclusion(Base):
    """The county included a household under monitoring (from casework.included).

    Kept so screening can label the household with its monitoring categories and tell each
    department which of its alerts ended in inclusion, without reading casework's database.
    """

    __tablename__ = "inclusion"

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    household_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    # The household's episode when the inclusion arrived: the signals that led to it.
    episode_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    included_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AreaAlert(Base):
    """A spike of same-cause signals in a township in one week (规模性返贫 early warning)."""

    __tablename__ = "area_alert"
    # Raised once per township, cause and week, whichever worker sees the spike first.
    __table_args__ = (UniqueConstraint("township_code", "cause", "week_start"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    township_code: Mapped[str] = mapped_column(String(12), index=True)
    cause: Mapped[str] = mapped_column(String(32))
    week_start: Mapped[date] = mapped_column(Date, index=True)
    signal_count: Mapped[int] = mapped_column(Integer)
    household_count: Mapped[int] = mapped_column(Integer)
    baseline_weeks: Mapped[int] = mapped_column(Integer)
    baseline_mean: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    baseline_sd: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    threshold: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    policy_version: Mapped[str] = mapped_column(String(32))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)


outbox_table = make_outbox_table(metadata)
inbox_table = make_inbox_table(metadata)

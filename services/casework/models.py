"""Casework's tables: cases, clocks, history, helpers, plans, visits and the calendar."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import BigIntPK, JSONType, UTCDateTime, make_metadata
from shared.messaging.inbox import make_inbox_table
from shared.messaging.outbox import make_outbox_table

metadata = make_metadata()

# A clock the sweep still has to watch.  The partial index below and the sweep query both use
# this exact text, so the planner can always prove the query stays inside the index.
LIVE_CLOCK = (
    "met_at IS NULL AND breached_at IS NULL AND paused_at IS NULL AND closed_at IS NULL "
    "AND bound <> 'minimum'"
)
# Breached and still owed: the overdue list reads only these.  The text is unqualified (as an
# index predicate must be); inside a join with "case", whose closed_at it would clash with,
# use repository.overdue_clock() instead.
OVERDUE_CLOCK = "breached_at IS NOT NULL AND met_at IS NULL AND closed_at IS NULL"


class Base(DeclarativeBase):
    """Declarative base bound to casework's own metadata."""

    metadata = metadata


class Case(Base):
    """One household's passage through the statutory procedure."""

    __tablename__ = "case"
    __table_args__ = (
        # One live case per household: a new risk joins it instead of opening a second one.
        Index(
            "uq_case_open_household",
            "household_id",
            unique=True,
            postgresql_where=text("closed_at IS NULL"),
            sqlite_where=text("closed_at IS NULL"),
        ),
        Index("ix_case_region_stage", "region_code", "stage"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    household_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # Not unique: screening keeps one episode open across signals, so a new risk inside the
    # same episode after a case closed (not included, exited) opens a second case for it.
    episode_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    # The 12-digit village code (or a county code while the household's village is unknown).
    region_code: Mapped[str] = mapped_column(String(12))
    stage: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    head_name: Mapped[str | None] = mapped_column(String(50))
    head_id_masked: Mapped[str | None] = mapped_column(String(18))
    score: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(8))
    categories: Mapped[list[str]] = mapped_column(JSONType)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    review_flags: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    # The deadline policy in force when the case opened, kept whole: later policy changes
    # never silently move this case's clocks.
    deadline_policy: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # The region's procedure template when the case opened (procedure.ProcedureTemplate);
    # NULL on cases opened before templates were stored: they follow their region's template.
    workflow: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    facts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class CaseDeadline(Base):
    """One statutory clock of a case, computed when its start event happened."""

    __tablename__ = "case_deadline"
    __table_args__ = (
        # One running clock per kind and due date: starting the same clock twice is a bug.
        # Closed clocks are left out so that a repeated step (a publicity restarted after a
        # township return on the same day) can start a fresh one.
        Index(
            "uq_case_deadline_live_kind_due",
            "case_id",
            "kind",
            "due_date",
            unique=True,
            postgresql_where=text("closed_at IS NULL"),
            sqlite_where=text("closed_at IS NULL"),
        ),
        # The sweep reads only live clocks in due order; this partial index is all it scans.
        Index(
            "ix_case_deadline_live_due",
            "due_at",
            postgresql_where=text(LIVE_CLOCK),
            sqlite_where=text(LIVE_CLOCK),
        ),
        Index(
            "ix_case_deadline_overdue",
            "breached_at",
            postgresql_where=text(OVERDUE_CLOCK),
            sqlite_where=text(OVERDUE_CLOCK),
        ),
        Index(
            "ix_case_deadline_escalate",
            "escalate_at",
            postgresql_where=text("escalate_at IS NOT NULL"),
            sqlite_where=text("escalate_at IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("case.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    bound: Mapped[str] = mapped_column(String(12))
    due_date: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_level: Mapped[str | None] = mapped_column(String(12))
    # When a breached, unmet clock moves to the next escalation level (NULL at the top).
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set while the clock is stopped (a pause with a reason); the sweep skips it.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The obligation lapsed without being met or breached (case closed, risk eliminated).
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    citation: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)


class CaseEvent(Base):
    """The append-only history of a case: who did what, when, from which stage to which."""

    __tablename__ = "case_event"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("case.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(40))
    from_stage: Mapped[str | None] = mapped_column(String(32))
    to_stage: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Helper(Base):
    """A responsible helper (帮扶责任人): a cadre who may be assigned to several households."""

    __tablename__ = "helper"

    helper_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(String(20))
    unit: Mapped[str] = mapped_column(String(100))
    # The region the helper serves in (the first case's village unless given).
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HelperAssignment(Base):
    """Which helper answers for a case, and since when; a reassignment ends the old row."""

    __tablename__ = "helper_assignment"
    __table_args__ = (
        # The workload count reads current assignments by helper.
        Index(
            "ix_helper_assignment_current",
            "helper_id",
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("case.id"), index=True)
    helper_id: Mapped[str] = mapped_column(ForeignKey("helper.helper_id"))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assigned_by: Mapped[str] = mapped_column(String(100))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PlanItem(Base):
    """One measure of a household's 一户一策 plan, with the unit that delivers it."""

    __tablename__ = "plan_item"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("case.id"), index=True)
    measure_code: Mapped[str] = mapped_column(String(60))
    family: Mapped[str] = mapped_column(String(40))
    name_zh: Mapped[str] = mapped_column(String(100))
    catalogue_version: Mapped[str] = mapped_column(String(20))
    responsible_unit: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseVisit(Base):
    """A home visit (入户走访) as recorded: who, when, what was found, income if updated."""

    __tablename__ = "case_visit"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("case.id"), index=True)
    visited_on: Mapped[date] = mapped_column(Date)
    visitor_name: Mapped[str] = mapped_column(String(50))
    visitor_role: Mapped[str] = mapped_column(String(24))
    helper_id: Mapped[str | None] = mapped_column(String(40))
    findings: Mapped[str] = mapped_column(Text)
    income_per_capita: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    guarantees: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(100))


class CalendarOverrideRow(Base):
    """An admin's correction to the working-day calendar (e.g. next year's 调休)."""

    __tablename__ = "calendar_override"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CalendarYearDeclaration(Base):
    """An admin's declaration that a year's official arrangement is entered in full.

    A year the `holidays` package does not carry counts as official only once declared:
    from then on its working days are Monday to Friday plus the year's overrides.
    """

    __tablename__ = "calendar_year_declaration"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    reason: Mapped[str] = mapped_column(Text)
    declared_by: Mapped[str] = mapped_column(String(100))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime)


outbox_table = make_outbox_table(metadata)
inbox_table = make_inbox_table(metadata)

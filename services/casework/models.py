"""Casework's tables: cases, their deadline clocks, the append-only history, calendar overrides."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import BigIntPK, JSONType, UTCDateTime, make_metadata
from shared.messaging.inbox import make_inbox_table
from shared.messaging.outbox import make_outbox_table

metadata = make_metadata()


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
    episode_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
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
    facts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class CaseDeadline(Base):
    """One statutory clock of a case, computed when its start event happened."""

    __tablename__ = "case_deadline"
    __table_args__ = (
        UniqueConstraint("case_id", "kind", "due_date"),
        # The sweep reads only live clocks in due order; this partial index is all it scans.
        Index(
            "ix_case_deadline_live_due",
            "due_at",
            postgresql_where=text("met_at IS NULL AND breached_at IS NULL AND bound = 'deadline'"),
            sqlite_where=text("met_at IS NULL AND breached_at IS NULL AND bound = 'deadline'"),
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


class CalendarOverrideRow(Base):
    """An admin's correction to the working-day calendar (e.g. next year's 调休)."""

    __tablename__ = "calendar_override"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


outbox_table = make_outbox_table(metadata)
inbox_table = make_inbox_table(metadata)

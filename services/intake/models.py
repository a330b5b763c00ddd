"""Intake's tables: declarations, alerts, reports, their progress, and the outbox/inbox."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import BigIntPK, JSONType, UTCDateTime, make_metadata
from shared.messaging.inbox import make_inbox_table
from shared.messaging.outbox import make_outbox_table

metadata = make_metadata()


class Base(DeclarativeBase):
    """Declarative base bound to intake's own metadata."""

    metadata = metadata


class Declaration(Base):
    """A household's self-declaration (农户自主申报); resident IDs only as cipher and mask."""

    __tablename__ = "declaration"
    __table_args__ = (UniqueConstraint("client_id", "idempotency_key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    receipt_no: Mapped[str] = mapped_column(String(32), unique=True)
    client_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    applicant_name: Mapped[str] = mapped_column(String(50))
    applicant_ref: Mapped[str] = mapped_column(String(64), index=True)
    applicant_id_cipher: Mapped[str] = mapped_column(Text)
    applicant_id_masked: Mapped[str] = mapped_column(String(18))
    applicant_phone_cipher: Mapped[str] = mapped_column(Text)
    village_code: Mapped[str] = mapped_column(String(12), index=True)
    difficulty_types: Mapped[list[str]] = mapped_column(JSONType)
    description: Mapped[str] = mapped_column(Text)
    income_last_12_months: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    members: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    proxy: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    correlation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stage: Mapped[str] = mapped_column(String(32))
    stage_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    identification_due: Mapped[date | None] = mapped_column(Date)
    callback_url: Mapped[str | None] = mapped_column(String(500))


class DeclarationProgress(Base):
    """One step of a declaration's progress as the applicant sees it (append-only)."""

    __tablename__ = "declaration_progress"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    declaration_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("declaration.id"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)


class Alert(Base):
    """A department's data-comparison alert; (department, alert_id) is unique."""

    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("department", "alert_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    department: Mapped[str] = mapped_column(String(40))
    alert_id: Mapped[str] = mapped_column(String(100))
    alert_type: Mapped[str] = mapped_column(String(80))
    client_id: Mapped[str] = mapped_column(String(64))
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    subject_id_cipher: Mapped[str] = mapped_column(Text)
    subject_id_masked: Mapped[str] = mapped_column(String(18))
    village_code: Mapped[str | None] = mapped_column(String(12))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    count: Mapped[int | None] = mapped_column(Integer)
    grade: Mapped[int | None] = mapped_column(Integer)
    occurred_on: Mapped[date] = mapped_column(Date)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)
    correlation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class Report(Base):
    """A cadre's visit report (干部走访排查)."""

    __tablename__ = "report"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    report_id: Mapped[str] = mapped_column(String(32), unique=True)
    reporter: Mapped[str] = mapped_column(String(100))
    reporter_role: Mapped[str] = mapped_column(String(32))
    reporter_region: Mapped[str] = mapped_column(String(12))
    village_code: Mapped[str] = mapped_column(String(12), index=True)
    subject_name: Mapped[str] = mapped_column(String(50))
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    subject_id_cipher: Mapped[str] = mapped_column(Text)
    subject_id_masked: Mapped[str] = mapped_column(String(18))
    difficulty_types: Mapped[list[str]] = mapped_column(JSONType)
    description: Mapped[str] = mapped_column(Text)
    income_last_12_months: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    members: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    visit_date: Mapped[date] = mapped_column(Date)
    correlation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


outbox_table = make_outbox_table(metadata)
inbox_table = make_inbox_table(metadata)

"""Intake's tables: declarations, alerts, reports, progress, bulk jobs, callbacks, outbox/inbox."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
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


class BulkJob(Base):
    """A department's bulk push (NDJSON, CSV or XLSX), processed in chunks; survives restarts."""

    __tablename__ = "bulk_job"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    department: Mapped[str] = mapped_column(String(40), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    file_format: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    body_sha256: Mapped[str] = mapped_column(String(64))
    rows_total: Mapped[int | None] = mapped_column(Integer)
    rows_processed: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    duplicate: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_zh: Mapped[str | None] = mapped_column(Text)
    error_en: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Which API process works the job, and until when; an expired lease means its owner died.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BulkRejection(Base):
    """One reason one row of a bulk push was rejected (a row may have several)."""

    __tablename__ = "bulk_rejection"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bulk_job.id"), index=True)
    row_number: Mapped[int] = mapped_column(Integer)
    alert_id: Mapped[str | None] = mapped_column(String(100))
    field: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(64))
    message_zh: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)


class CallbackDelivery(Base):
    """One progress change to POST to a declaration's callback URL, retried until a 2xx."""

    __tablename__ = "callback_delivery"
    __table_args__ = (
        # The delivery loop only scans what is still pending; keep that scan as small as the
        # backlog however many delivered rows accumulate.
        Index(
            "ix_callback_delivery_pending",
            "next_attempt_at",
            postgresql_where=text("delivered_at IS NULL"),
            sqlite_where=text("delivered_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    declaration_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("declaration.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)


outbox_table = make_outbox_table(metadata)
inbox_table = make_inbox_table(metadata)

"""Intake's use cases: receive declarations, alerts and reports; track applicant progress."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import errors, schemas
from services.intake.catalogue import Catalogue
from services.intake.models import (
    Alert,
    BulkJob,
    CallbackDelivery,
    Declaration,
    DeclarationProgress,
    Report,
    outbox_table,
)
from services.intake.repository import (
    AlertRepository,
    BulkJobRepository,
    DeclarationRepository,
    OutboxRepository,
)
from shared.auth import ClientRecord, Principal
from shared.clock import Clock, china_date
from shared.contracts.common import PersonV1
from shared.contracts.envelope import EventEnvelope
from shared.contracts.intake import AlertReceivedV1, DeclarationReceivedV1, ReportReceivedV1
from shared.contracts.topics import Topic
from shared.logs import correlation_id, mask_resident_ids
from shared.messaging.outbox import Outbox
from shared.pii import PiiCipher
from shared.problems import FieldError, ValidationFailed, field_errors_from_pydantic
from shared.regions import in_scope
from shared.resident_id import mask_resident_id

# Crockford-style alphabet: no I, L, O, U, so a receipt read aloud on the phone is unambiguous.
_RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# pydantic keeps parametrised generic classes in a weak cache: without a strong reference the
# envelope class of an event is rebuilt (about 10 ms) whenever the collector has dropped it,
# which turned a bulk push's thousand events per chunk into hundreds of rebuilds.
_ENVELOPE_CLASSES = tuple(
    EventEnvelope[payload]  # type: ignore[valid-type]
    for payload in (AlertReceivedV1, DeclarationReceivedV1, ReportReceivedV1)
)

STAGE_LABELS_ZH = {
    "received": "已受理",
    "under_verification": "核查中",
    "in_publicity": "公示中",
    "included": "已纳入监测",
    "not_included": "未纳入监测",
    "risk_eliminated": "风险已消除",
}


@dataclass(frozen=True)
class IntakeContext:
    """What intake's use cases need besides the session."""

    outbox: Outbox
    cipher: PiiCipher
    clock: Clock
    catalogue: Catalogue


def intake_outbox() -> Outbox:
    """Return intake's outbox writer."""
    return Outbox(outbox_table, topic=Topic.INTAKE_EVENTS, producer="intake")


def _code(prefix: str, ctx: IntakeContext) -> str:
    day = china_date(ctx.clock.now()).strftime("%Y%m%d")
    tail = "".join(secrets.choice(_RECEIPT_ALPHABET) for _ in range(8))
    return f"{prefix}{day}{tail}"


def person(ctx: IntakeContext, id_number: str, name: str | None, relation: str | None) -> PersonV1:
    """Return the event form of a person: keyed hash, cipher and mask, never the clear ID."""
    return PersonV1(
        person_ref=ctx.cipher.keyed_hash(id_number),
        id_cipher=ctx.cipher.encrypt(id_number),
        id_masked=mask_resident_id(id_number),
        name=name,
        relation=relation,
    )


def _current_correlation() -> uuid.UUID:
    cid = correlation_id.get()
    try:
        return uuid.UUID(cid) if cid else uuid.uuid4()
    except ValueError:
        return uuid.uuid4()


async def receive_declaration(
    session: AsyncSession,
    ctx: IntakeContext,
    *,
    client: ClientRecord,
    body: schemas.DeclarationCreate,
    idempotency_key: str | None,
) -> tuple[Declaration, bool]:
    """Store a declaration and its event; return it and whether it was new."""
    request_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    repo = DeclarationRepository(session)
    if idempotency_key:
        existing = await repo.by_idempotency_key(client.client_id, idempotency_key)
        if existing is not None:
            return _same_request(existing, request_hash), False
    now = ctx.clock.now()
    applicant = person(ctx, body.applicant.id_number, body.applicant.name, "self")
    members = [person(ctx, m.id_number, m.name, m.relation) for m in body.members]
    cid = _current_correlation()
    declaration = Declaration(
        id=uuid.uuid4(),
        receipt_no=_code("SB", ctx),
        client_id=client.client_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        applicant_name=body.applicant.name,
        applicant_ref=applicant.person_ref,
        applicant_id_cipher=applicant.id_cipher,
        applicant_id_masked=applicant.id_masked,
        applicant_phone_cipher=ctx.cipher.encrypt(body.applicant.phone),
        village_code=body.village_code,
        difficulty_types=list(body.difficulty_types),
        description=body.description,
        income_last_12_months=body.income_last_12_months,
        members=[m.model_dump() for m in members],
        proxy=None
        if body.proxy is None
        else {
            "name": body.proxy.name,
            "id_cipher": ctx.cipher.encrypt(body.proxy.id_number),
            "id_masked": mask_resident_id(body.proxy.id_number),
            "phone_cipher": ctx.cipher.encrypt(body.proxy.phone),
            "relation": body.proxy.relation,
        },
        correlation_id=cid,
        received_at=now,
        stage="received",
        stage_changed_at=now,
        callback_url=body.callback_url,
    )
    if idempotency_key:
        try:
            # A savepoint, so a concurrent retry with the same key loses cleanly to the winner.
            async with session.begin_nested():
                session.add(declaration)
                await session.flush()
        except IntegrityError:
            existing = await repo.by_idempotency_key(client.client_id, idempotency_key)
            if existing is None:
                raise
            return _same_request(existing, request_hash), False
    else:
        # Without a key no retry can collide with this row, and any IntegrityError fails the
        # whole request anyway: the savepoint (two more round trips) and an early flush of its
        # own would buy nothing, so the row goes out with the next flush below.
        session.add(declaration)
    await record_step(session, declaration, "received", at=now, note=None, now=now)
    event = DeclarationReceivedV1(
        receipt_no=declaration.receipt_no,
        village_code=body.village_code,
        applicant=applicant,
        members=tuple(members),
        difficulty_types=tuple(body.difficulty_types),
        description=body.description,
        income_last_12_months=body.income_last_12_months,
        proxy_relation=body.proxy.relation if body.proxy else None,
        received_at=now,
    )
    # Outbox.add's row, written through one fixed INSERT: Outbox.add builds a new
    # insert().values(...) construct per event, whose building and cache key cost about as
    # much Python time as the INSERT itself on this path (see outbox_row).
    await OutboxRepository(session, ctx.outbox.table).insert_many(
        [outbox_row(ctx, event, subject_key=applicant.person_ref, now=now, correlation=cid)]
    )
    return declaration, True


def _same_request(existing: Declaration, request_hash: str) -> Declaration:
    if existing.request_hash != request_hash:
        raise errors.IdempotencyKeyReused(
            "this Idempotency-Key was used for a different declaration",
            detail_zh="该幂等键已用于内容不同的另一份申报，请更换幂等键",
        )
    return existing


def check_alert_type(ctx: IntakeContext, client: ClientRecord, body: schemas.AlertCreate) -> None:
    """Refuse unknown types (422) and other departments' types (403)."""
    alert_type = ctx.catalogue.alert_type(body.alert_type)
    if alert_type is None:
        # The schema already refuses unknown types; this guards a catalogue swapped at runtime.
        raise ValidationFailed(
            [
                FieldError(
                    "alert_type",
                    "alert_type.unknown",
                    "预警类型不在部门目录中",
                    "alert type is not in the department catalogue",
                )
            ]
        )
    if alert_type.department != client.department:
        raise errors.AlertTypeNotAllowed(
            f"{body.alert_type} belongs to {alert_type.department}, not to {client.department}",
            detail_zh=f"预警类型 {body.alert_type} 不属于本部门",
        )


@dataclass(frozen=True)
class PreparedAlert:
    """An accepted alert ready to write: its table row and its outbox row."""

    row: dict[str, Any]
    outbox_row: dict[str, Any]

    @property
    def alert_id(self) -> str:
        """Return the department's id of the alert."""
        return str(self.row["alert_id"])


def prepare_alert(
    ctx: IntakeContext,
    client: ClientRecord,
    body: schemas.AlertCreate,
    *,
    now: datetime,
    correlation: uuid.UUID,
    job_id: uuid.UUID | None = None,
) -> PreparedAlert:
    """Encrypt, hash and mask the subject and build the alert's row and event (no I/O)."""
    department = client.department or ""
    subject = person(ctx, body.subject_id_number, None, None)
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "department": department,
        "alert_id": body.alert_id,
        "alert_type": body.alert_type,
        "client_id": client.client_id,
        "subject_ref": subject.person_ref,
        "subject_id_cipher": subject.id_cipher,
        "subject_id_masked": subject.id_masked,
        "village_code": body.village_code,
        "amount": body.amount,
        "count": body.count,
        "grade": body.grade,
        "occurred_on": body.occurred_on,
        "details": body.details,
        "correlation_id": correlation,
        "received_at": now,
        "job_id": job_id,
    }
    event = AlertReceivedV1(
        department=department,
        alert_id=body.alert_id,
        alert_type=body.alert_type,
        subject=subject,
        village_code=body.village_code,
        amount=body.amount,
        count=body.count,
        grade=body.grade,
        occurred_on=body.occurred_on,
        details=body.details,
        received_at=now,
    )
    return PreparedAlert(
        row=row,
        outbox_row=outbox_row(
            ctx, event, subject_key=subject.person_ref, now=now, correlation=correlation
        ),
    )


def outbox_row(
    ctx: IntakeContext,
    payload: AlertReceivedV1 | DeclarationReceivedV1,
    *,
    subject_key: str,
    now: datetime,
    correlation: uuid.UUID,
) -> dict[str, Any]:
    """Return the outbox_message row of an intake event, for a many-row INSERT.

    Bulk pushes write a thousand events per transaction; one INSERT per event cost most of
    the time, so the rows are built here and written together (single alerts and
    declarations use the same row, so every event of a kind has one shape).
    """
    _, row = ctx.outbox.row(
        payload, subject_key=subject_key, occurred_at=now, now=now, correlation_id=correlation
    )
    return row


async def receive_alert(
    session: AsyncSession,
    ctx: IntakeContext,
    *,
    client: ClientRecord,
    body: schemas.AlertCreate,
) -> Literal["accepted", "duplicate"]:
    """Store an alert and its event unless the department sent this alert id before."""
    check_alert_type(ctx, client, body)
    department = client.department or ""
    if await AlertRepository(session).exists(department, body.alert_id):
        return "duplicate"
    now = ctx.clock.now()
    prepared = prepare_alert(ctx, client, body, now=now, correlation=_current_correlation())
    try:
        async with session.begin_nested():
            session.add(Alert(**prepared.row))
            await session.flush()
    except IntegrityError:
        return "duplicate"
    # The same outbox row a batch or bulk push writes for an alert (see outbox_row).
    await OutboxRepository(session, ctx.outbox.table).insert_many([prepared.outbox_row])
    return "accepted"


RowStatus = Literal["accepted", "duplicate", "rejected"]


@dataclass
class JudgedRow:
    """One item of a batch or one row of a bulk file, validated and (if valid) prepared."""

    position: int
    alert_id: str | None
    prepared: PreparedAlert | None = None
    errors: list[FieldError] = field(default_factory=list)
    # A second row with an alert id already seen earlier in the same chunk.
    repeated: bool = False


def judge_alert_rows(
    ctx: IntakeContext,
    client: ClientRecord,
    items: Sequence[tuple[int, Any, list[FieldError]]],
    *,
    now: datetime,
    job_id: uuid.UUID | None = None,
) -> list[JudgedRow]:
    """Validate raw items (position, data, errors found while reading) and prepare the good ones.

    Pure CPU work with no session: batches run it in a thread and bulk jobs in a child
    process (bulk.ChunkJudge), off the event loop.
    """
    judged: list[JudgedRow] = []
    seen: set[str] = set()
    for position, raw, read_errors in items:
        alert_id = raw.get("alert_id") if isinstance(raw, dict) else None
        row = JudgedRow(position, _printable_id(alert_id), errors=list(read_errors))
        judged.append(row)
        # A row that could not be read at all (bad JSON, wrong width) has nothing to validate;
        # one with a bad cell still has its other fields checked, so every problem is listed.
        if any(e.field in ("body", "row") for e in row.errors):
            continue
        found: list[FieldError] = []
        body = _validate_item(ctx, client, raw, found)
        bad_cells = {e.field for e in row.errors}
        row.errors.extend(e for e in found if e.field not in bad_cells)
        if body is None or row.errors:
            continue
        if body.alert_id in seen:
            row.repeated = True
            continue
        seen.add(body.alert_id)
        # Each alert of a batch is its own story end to end, so it gets its own correlation id.
        row.prepared = prepare_alert(
            ctx, client, body, now=now, correlation=uuid.uuid4(), job_id=job_id
        )
    return judged


def _validate_item(
    ctx: IntakeContext, client: ClientRecord, raw: Any, out: list[FieldError]
) -> schemas.AlertCreate | None:
    """Return the valid alert, or None with every problem appended to out."""
    if not isinstance(raw, dict):
        out.append(
            FieldError(
                "body", "row.not_object", "该条目应为 JSON 对象", "the item is not an object"
            )
        )
        return None
    body: schemas.AlertCreate | None = None
    try:
        body = schemas.AlertCreate.model_validate(raw)
    except ValidationError as exc:
        out.extend(field_errors_from_pydantic(exc.errors()))
    code = raw.get("alert_type")
    alert_type = ctx.catalogue.alert_type(code.strip()) if isinstance(code, str) else None
    if alert_type is not None and alert_type.department != client.department:
        out.append(
            FieldError(
                "alert_type",
                "alert_type.not_allowed",
                f"预警类型 {alert_type.code} 不属于本部门",
                f"{alert_type.code} belongs to {alert_type.department}, not to {client.department}",
            )
        )
    return body if not out else None


def _printable_id(value: Any) -> str | None:
    """Return an alert id fit for results and reports: text, bounded, never a clear resident ID."""
    if value is None:
        return None
    return mask_resident_ids(str(value))[:100]


async def store_alert_rows(
    session: AsyncSession, ctx: IntakeContext, rows: Sequence[JudgedRow]
) -> list[RowStatus]:
    """Write the prepared rows not seen before, with their events; return each row's status."""
    candidates = [r.prepared for r in rows if r.prepared is not None]
    inserted = await AlertRepository(session).insert_new([p.row for p in candidates])
    await OutboxRepository(session, ctx.outbox.table).insert_many(
        [p.outbox_row for p in candidates if p.alert_id in inserted]
    )
    statuses: list[RowStatus] = []
    for r in rows:
        if r.errors:
            statuses.append("rejected")
        elif r.prepared is not None and r.prepared.alert_id in inserted:
            statuses.append("accepted")
        else:
            statuses.append("duplicate")
    return statuses


async def receive_alert_batch(
    session: AsyncSession,
    ctx: IntakeContext,
    *,
    client: ClientRecord,
    items: list[Any],
) -> schemas.BatchResult:
    """Judge each item on its own and store the good ones: one bad item never sinks the others."""
    # Validation and encryption of a thousand items is CPU work; a thread keeps the event loop
    # answering other requests meanwhile (no statement has run, so no lock is held yet).
    judged = await asyncio.to_thread(
        judge_alert_rows,
        ctx,
        client,
        [(index, raw, []) for index, raw in enumerate(items)],
        now=ctx.clock.now(),
    )
    statuses = await store_alert_rows(session, ctx, judged)
    results = [
        schemas.BatchItemResult(
            index=r.position,
            alert_id=r.alert_id,
            status=status,
            errors=[schemas.ItemError(**e.as_dict()) for e in r.errors],
        )
        for r, status in zip(judged, statuses, strict=True)
    ]
    return schemas.BatchResult(
        results=results,
        accepted=statuses.count("accepted"),
        duplicate=statuses.count("duplicate"),
        rejected=statuses.count("rejected"),
    )


async def receive_report(
    session: AsyncSession,
    ctx: IntakeContext,
    *,
    principal: Principal,
    body: schemas.ReportCreate,
) -> Report:
    """Store a cadre's report and its event; only inside the reporter's region."""
    if not in_scope(principal.region, body.village_code):
        raise errors.OutsideRegion(
            "the village is outside your region", detail_zh="该村不在您的辖区内"
        )
    now = ctx.clock.now()
    subject = person(ctx, body.subject.id_number, body.subject.name, body.subject.relation)
    members = [person(ctx, m.id_number, m.name, m.relation) for m in body.members]
    cid = _current_correlation()
    report = Report(
        id=uuid.uuid4(),
        report_id=_code("BG", ctx),
        reporter=principal.sub,
        reporter_role=principal.role,
        reporter_region=principal.region,
        village_code=body.village_code,
        subject_name=body.subject.name,
        subject_ref=subject.person_ref,
        subject_id_cipher=subject.id_cipher,
        subject_id_masked=subject.id_masked,
        difficulty_types=list(body.difficulty_types),
        description=body.description,
        income_last_12_months=body.income_last_12_months,
        members=[m.model_dump() for m in members],
        visit_date=body.visit_date,
        correlation_id=cid,
        received_at=now,
    )
    session.add(report)
    await session.flush()
    await ctx.outbox.add(
        session,
        ReportReceivedV1(
            report_id=report.report_id,
            reporter=principal.sub,
            reporter_role=principal.role,
            village_code=body.village_code,
            subject=subject,
            members=tuple(members),
            difficulty_types=tuple(body.difficulty_types),
            description=body.description,
            income_last_12_months=body.income_last_12_months,
            visit_date=body.visit_date,
            received_at=now,
        ),
        subject_key=subject.person_ref,
        occurred_at=now,
        now=now,
        correlation_id=cid,
    )
    return report


async def declaration_progress(
    session: AsyncSession, ctx: IntakeContext, *, client: ClientRecord, receipt_no: str
) -> schemas.DeclarationProgressRead:
    """Return the applicant-facing progress of a declaration filed by this client."""
    repo = DeclarationRepository(session)
    declaration = await repo.by_receipt(receipt_no)
    # Another client's receipt reads as not found: a receipt number is not a password.
    if declaration is None or declaration.client_id != client.client_id:
        raise errors.DeclarationNotFound(
            f"no declaration {receipt_no}", detail_zh=f"未找到回执编号为 {receipt_no} 的申报"
        )
    history = await repo.history(declaration.id)
    today = china_date(ctx.clock.now())
    due = declaration.identification_due
    return schemas.DeclarationProgressRead(
        receipt_no=declaration.receipt_no,
        stage=declaration.stage,  # type: ignore[arg-type]
        stage_label_zh=STAGE_LABELS_ZH.get(declaration.stage, declaration.stage),
        received_at=declaration.received_at,
        stage_changed_at=declaration.stage_changed_at,
        identification_due=due,
        days_remaining=(due - today).days
        if due is not None
        and declaration.stage in ("received", "under_verification", "in_publicity")
        else None,
        outcome_reason=declaration.outcome_reason,
        applicant_id_masked=declaration.applicant_id_masked,
        history=[schemas.ProgressStep(stage=h.stage, at=h.at, note=h.note) for h in history],
    )


async def record_step(
    session: AsyncSession,
    declaration: Declaration,
    stage: str,
    *,
    at: datetime,
    note: str | None,
    now: datetime,
) -> None:
    """Append a progress step and, when the client gave a callback URL, its signed delivery."""
    session.add(DeclarationProgress(declaration_id=declaration.id, stage=stage, at=at, note=note))
    if not declaration.callback_url:
        return
    # Written in the same transaction as the step, so a change is never lost or told twice
    # over; the worker's CallbackDispatcher sends it.
    sequence = await DeclarationRepository(session).count_steps(declaration.id)
    delivery_id = uuid.uuid4()
    payload = schemas.ProgressCallback(
        delivery_id=delivery_id,
        receipt_no=declaration.receipt_no,
        sequence=sequence,
        stage=stage,  # type: ignore[arg-type]
        stage_label_zh=STAGE_LABELS_ZH.get(stage, stage),
        changed_at=at,
        identification_due=declaration.identification_due,
        outcome_reason=declaration.outcome_reason if stage == "not_included" else None,
    )
    session.add(
        CallbackDelivery(
            delivery_id=delivery_id,
            declaration_id=declaration.id,
            client_id=declaration.client_id,
            url=declaration.callback_url,
            payload=payload.model_dump(mode="json"),
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )


async def advance_progress(
    session: AsyncSession,
    declaration: Declaration,
    stage: str,
    *,
    at: datetime,
    note: str | None,
    now: datetime,
) -> None:
    """Move a declaration to the stage the applicant should see, if that is a change."""
    if declaration.stage == stage and note is None:
        return
    declaration.stage = stage
    declaration.stage_changed_at = at
    if stage == "not_included":
        declaration.outcome_reason = note
    await record_step(session, declaration, stage, at=at, note=note, now=now)


async def create_bulk_job(
    session: AsyncSession,
    ctx: IntakeContext,
    *,
    job_id: uuid.UUID,
    client: ClientRecord,
    file_format: str,
    size_bytes: int,
    body_sha256: str,
    rows_total: int | None,
    owner: str,
    lease_seconds: float,
) -> BulkJob:
    """Record a queued bulk job, leased to the API process that holds its file."""
    now = ctx.clock.now()
    job = BulkJob(
        id=job_id,
        department=client.department or "",
        client_id=client.client_id,
        file_format=file_format,
        status="queued",
        size_bytes=size_bytes,
        body_sha256=body_sha256,
        rows_total=rows_total,
        rows_processed=0,
        accepted=0,
        duplicate=0,
        rejected=0,
        correlation_id=_current_correlation(),
        created_at=now,
        updated_at=now,
        lease_owner=owner,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
    )
    session.add(job)
    await session.flush()
    return job


async def find_job(session: AsyncSession, *, client: ClientRecord, job_id: uuid.UUID) -> BulkJob:
    """Return a job of the caller's department; any other job reads as not found."""
    job = await BulkJobRepository(session).get(job_id)
    if job is None or job.department != client.department:
        raise errors.JobNotFound(f"no bulk job {job_id}", detail_zh=f"未找到批量任务 {job_id}")
    return job


def job_read(job: BulkJob) -> schemas.BulkJobRead:
    """Return the API view of a job."""
    total = job.rows_total
    percent = None
    if job.status == "done":
        percent = 100.0
    elif total:
        percent = round(min(100.0, 100.0 * job.rows_processed / total), 1)
    error = None
    if job.error_code:
        error = schemas.JobError(
            code=job.error_code, message_zh=job.error_zh or "", message_en=job.error_en or ""
        )
    return schemas.BulkJobRead(
        job_id=job.id,
        status=job.status,  # type: ignore[arg-type]
        format=job.file_format,  # type: ignore[arg-type]
        department=job.department,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        counts=schemas.JobCounts(
            rows=job.rows_processed,
            accepted=job.accepted,
            duplicate=job.duplicate,
            rejected=job.rejected,
        ),
        progress=schemas.JobProgress(processed=job.rows_processed, total=total, percent=percent),
        error=error,
        rejections_url=f"/v1/jobs/{job.id}/rejections",
    )


def storable(text: str, limit: int) -> str:
    """Cut a file's own text (a rejected row's alert id or key) to what its column holds.

    A rejection report repeats what the row said; a NUL, half a surrogate pair or an
    over-long id there must not fail the chunk's insert (and with it the whole job).
    """
    clean = text.replace("\x00", "").encode("utf-8", errors="replace").decode("utf-8")
    return clean[:limit]


async def store_bulk_chunk(
    session: AsyncSession,
    ctx: IntakeContext,
    *,
    job_id: uuid.UUID,
    owner: str,
    judged: Sequence[JudgedRow],
    lease_seconds: float,
) -> bool:
    """Write one chunk and advance the job's counters, if this process still holds its lease.

    The counters move in the chunk's own transaction, so after a crash the job resumes
    exactly after the last committed row: nothing counted twice, nothing skipped.
    """
    repo = BulkJobRepository(session)
    job = await repo.lock(job_id)
    if job is None or job.lease_owner != owner or job.status != "running":
        return False
    statuses = await store_alert_rows(session, ctx, judged)
    await repo.add_rejections(
        [
            {
                "job_id": job_id,
                "row_number": row.position,
                "alert_id": None if row.alert_id is None else storable(row.alert_id, 100),
                "field": storable(err.field, 100),
                "code": storable(err.code, 64),
                "message_zh": err.message_zh,
                "message_en": err.message_en,
            }
            for row in judged
            for err in row.errors
        ]
    )
    now = ctx.clock.now()
    job.rows_processed += len(judged)
    job.accepted += statuses.count("accepted")
    job.duplicate += statuses.count("duplicate")
    job.rejected += statuses.count("rejected")
    job.updated_at = now
    job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    return True

"""Intake's use cases: receive declarations, alerts and reports; track applicant progress."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import errors, schemas
from services.intake.catalogue import Catalogue
from services.intake.models import Alert, Declaration, DeclarationProgress, Report
from services.intake.repository import AlertRepository, DeclarationRepository
from shared.auth import ClientRecord, Principal
from shared.clock import Clock, china_date
from shared.contracts.common import PersonV1
from shared.contracts.intake import AlertReceivedV1, DeclarationReceivedV1, ReportReceivedV1
from shared.logs import correlation_id
from shared.messaging.outbox import Outbox
from shared.pii import PiiCipher
from shared.problems import FieldError, ValidationFailed, field_errors_from_pydantic
from shared.regions import in_scope
from shared.resident_id import mask_resident_id

# Crockford-style alphabet: no I, L, O, U, so a receipt read aloud on the phone is unambiguous.
_RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

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
    try:
        # A savepoint, so a concurrent retry with the same key loses cleanly to the winner.
        async with session.begin_nested():
            session.add(declaration)
            await session.flush()
    except IntegrityError:
        if not idempotency_key:
            raise
        existing = await repo.by_idempotency_key(client.client_id, idempotency_key)
        if existing is None:
            raise
        return _same_request(existing, request_hash), False
    session.add(
        DeclarationProgress(declaration_id=declaration.id, stage="received", at=now, note=None)
    )
    await ctx.outbox.add(
        session,
        DeclarationReceivedV1(
            receipt_no=declaration.receipt_no,
            village_code=body.village_code,
            applicant=applicant,
            members=tuple(members),
            difficulty_types=tuple(body.difficulty_types),
            description=body.description,
            income_last_12_months=body.income_last_12_months,
            proxy_relation=body.proxy.relation if body.proxy else None,
            received_at=now,
        ),
        subject_key=applicant.person_ref,
        occurred_at=now,
        now=now,
        correlation_id=cid,
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
    """Refuse unknown types (422), other departments' types (403) and missing typed fields."""
    alert_type = ctx.catalogue.alert_type(body.alert_type)
    if alert_type is None:
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
    missing = [
        FieldError(
            name, f"{name}.required", "该预警类型必须填写此字段", "required for this alert type"
        )
        for name, rule in alert_type.fields.items()
        if rule == "required" and getattr(body, name) is None
    ]
    if missing:
        raise ValidationFailed(missing)


async def receive_alert(
    session: AsyncSession,
    ctx: IntakeContext,
    *,
    client: ClientRecord,
    body: schemas.AlertCreate,
    fresh_correlation: bool = False,
) -> Literal["accepted", "duplicate"]:
    """Store an alert and its event unless the department sent this alert id before."""
    check_alert_type(ctx, client, body)
    department = client.department or ""
    if await AlertRepository(session).exists(department, body.alert_id):
        return "duplicate"
    now = ctx.clock.now()
    subject = person(ctx, body.subject_id_number, None, None)
    # Each alert of a batch is its own story end to end, so it gets its own correlation id.
    cid = uuid.uuid4() if fresh_correlation else _current_correlation()
    alert = Alert(
        id=uuid.uuid4(),
        department=department,
        alert_id=body.alert_id,
        alert_type=body.alert_type,
        client_id=client.client_id,
        subject_ref=subject.person_ref,
        subject_id_cipher=subject.id_cipher,
        subject_id_masked=subject.id_masked,
        village_code=body.village_code,
        amount=body.amount,
        count=body.count,
        grade=body.grade,
        occurred_on=body.occurred_on,
        details=body.details,
        correlation_id=cid,
        received_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(alert)
            await session.flush()
    except IntegrityError:
        return "duplicate"
    await ctx.outbox.add(
        session,
        AlertReceivedV1(
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
        ),
        subject_key=subject.person_ref,
        occurred_at=now,
        now=now,
        correlation_id=cid,
    )
    return "accepted"


async def receive_alert_batch(
    session: AsyncSession,
    ctx: IntakeContext,
    *,
    client: ClientRecord,
    items: list[dict[str, Any]],
) -> schemas.BatchResult:
    """Judge each item on its own: one bad item never sinks the others."""
    results: list[schemas.BatchItemResult] = []
    for index, raw in enumerate(items):
        alert_id = raw.get("alert_id") if isinstance(raw, dict) else None
        alert_id = alert_id if isinstance(alert_id, str) else None
        try:
            body = schemas.AlertCreate.model_validate(raw)
            status = await receive_alert(
                session, ctx, client=client, body=body, fresh_correlation=True
            )
            results.append(schemas.BatchItemResult(index=index, alert_id=alert_id, status=status))
        except ValidationError as exc:
            results.append(_rejected(index, alert_id, field_errors_from_pydantic(exc.errors())))
        except ValidationFailed as exc:
            results.append(_rejected(index, alert_id, exc.errors))
        except errors.AlertTypeNotAllowed as exc:
            results.append(
                _rejected(
                    index,
                    alert_id,
                    [FieldError("alert_type", "alert_type.not_allowed", exc.detail_zh, exc.detail)],
                )
            )
    return schemas.BatchResult(
        results=results,
        accepted=sum(r.status == "accepted" for r in results),
        duplicate=sum(r.status == "duplicate" for r in results),
        rejected=sum(r.status == "rejected" for r in results),
    )


def _rejected(index: int, alert_id: str | None, errs: list[FieldError]) -> schemas.BatchItemResult:
    return schemas.BatchItemResult(
        index=index,
        alert_id=alert_id,
        status="rejected",
        errors=[schemas.ItemError(**e.as_dict()) for e in errs],
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

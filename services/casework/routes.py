"""Casework's HTTP routes."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.casework import schemas, service
from services.casework.models import Case, CaseDeadline
from services.casework.repository import CaseRepository
from services.casework.workdays import CalendarUnavailable
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.problems import (
    FieldError,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from shared.regions import in_scope
from shared.web import Caseworker

router = APIRouter(prefix="/v1")

STAGE_LABELS_ZH = {
    "opened": "待核查",
    "home_verification": "入户核查",
    "department_crosscheck": "部门协查",
    "democratic_appraisal": "民主评议",
    "village_publicity": "村内公示",
    "township_review": "乡镇审核",
    "county_approval": "县级审批",
    "not_included": "未纳入",
    "monitoring": "监测中",
    "assistance": "帮扶中",
    "risk_elimination": "风险消除核实中",
    "risk_eliminated": "风险已消除",
    "exited": "已退出",
}
CASE_READERS = ("village_officer", "township_officer", "county_officer", "admin")


def _uow(request: Request) -> UnitOfWork:
    uow: UnitOfWork = request.app.state.uow
    return uow


def _deadline(d: CaseDeadline) -> schemas.DeadlineRead:
    return schemas.DeadlineRead(
        kind=d.kind,
        due=d.due_date,
        met_at=d.met_at,
        breached=d.breached_at is not None,
        escalation_level=d.escalation_level,
        citation=d.citation,
    )


def _summary(case: Case, clocks: list[CaseDeadline]) -> schemas.CaseSummary:
    return schemas.CaseSummary(
        case_id=str(case.id),
        stage=case.stage,
        stage_label_zh=STAGE_LABELS_ZH.get(case.stage, case.stage),
        village_code=case.region_code,
        opened_at=case.opened_at,
        head_name=case.head_name,
        head_id_masked=case.head_id_masked,
        score=case.score,
        level=case.level,
        categories=list(case.categories),
        deadlines=[_deadline(d) for d in clocks],
        sources=[schemas.SourceRead.model_validate(s) for s in case.sources],
    )


def _require_reader(principal: Principal) -> None:
    if principal.role not in CASE_READERS:
        raise Forbidden("your role cannot read cases", detail_zh="您的角色无权查看案件")


@router.get(
    "/cases",
    tags=["cases 监测案件"],
    summary="辖区内案件列表 / cases in the caller's region",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_cases(
    request: Request,
    principal: Caseworker,
    region: Annotated[
        str | None, Query(pattern=r"^\d{2,12}$", description="区划代码，默认为本人辖区")
    ] = None,
    stage: Annotated[str | None, Query(max_length=32)] = None,
    overdue: bool = False,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.CaseList:
    _require_reader(principal)
    scope = region or principal.region
    if not in_scope(principal.region, scope):
        raise Forbidden("that region is outside yours", detail_zh="所查区划不在您的辖区内")
    async with _uow(request).read() as session:
        repo = CaseRepository(session)
        cases, total = await repo.page(
            region=scope, stage=stage, overdue=overdue, page=page, size=size
        )
        clocks = await repo.deadlines_of([c.id for c in cases])
    return schemas.CaseList(
        items=[_summary(c, clocks[c.id]) for c in cases], total=total, page=page
    )


@router.get(
    "/cases/{case_id}",
    tags=["cases 监测案件"],
    summary="案件详情、历史与帮扶计划 / a case with its history and plan",
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def get_case(
    request: Request,
    principal: Caseworker,
    case_id: uuid.UUID,
) -> schemas.CaseDetail:
    _require_reader(principal)
    async with _uow(request).read() as session:
        repo = CaseRepository(session)
        case = await repo.get(case_id)
        # Outside the caller's region reads as absent: existence is not leaked.
        if case is None or not in_scope(principal.region, case.region_code):
            raise NotFound("no such case in your region", detail_zh="您的辖区内没有该案件")
        clocks = (await repo.deadlines_of([case.id]))[case.id]
        history = await repo.history(case.id)
    summary = _summary(case, clocks)
    return schemas.CaseDetail(
        **summary.model_dump(),
        reasons=list(case.reasons),
        review_flags=list(case.review_flags),
        history=[
            schemas.HistoryEntry(
                at=h.at,
                actor=h.actor,
                actor_role=h.actor_role,
                action=h.action,
                from_stage=h.from_stage,
                to_stage=h.to_stage,
                reason=h.reason,
                data=dict(h.data),
            )
            for h in history
        ],
    )


@router.get(
    "/calendar/working-days",
    tags=["calendar 工作日"],
    summary="按国务院公布的节假日与调休计算工作日 / official working-day arithmetic",
    description="返回 start 之后第 days 个工作日（含调休上班日）；尚无官方安排的年份返回 422，不做推测。",
    responses=problem_responses(ValidationFailed),
)
async def working_days(
    request: Request,
    start: date,
    days: Annotated[int, Query(ge=0, le=3660)],
) -> schemas.WorkingDaysAnswer:
    async with _uow(request).read() as session:
        calendar = await service.load_calendar(session)
    try:
        due = calendar.add_working_days(start, days)
    except CalendarUnavailable as exc:
        raise ValidationFailed(
            [
                FieldError(
                    "start",
                    "calendar.unavailable",
                    f"{exc.year} 年尚无国务院公布的节假日安排，无法计算工作日",
                    f"no official holiday arrangement for {exc.year} yet",
                )
            ]
        ) from None
    return schemas.WorkingDaysAnswer(start=start, days=days, due=due)

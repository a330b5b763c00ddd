"""Intake's HTTP routes: thin — parse, open the transaction, call the service, shape the reply."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from services.intake import schemas, service
from services.intake.dependencies import DepartmentClient, MiniProgram, StateDep
from shared.problems import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from shared.web import Caseworker

router = APIRouter(prefix="/v1")

_AUTH_PROBLEMS = (Unauthorized, Forbidden, TooManyRequests, PayloadTooLarge, ValidationFailed)


@router.post(
    "/declarations",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["declarations 农户自主申报"],
    summary="提交农户自主申报 / file a household self-declaration",
    description=(
        "小程序后端代农户提交申报（可代申报）。请求须以 HMAC 签名；`Idempotency-Key` 相同的重试"
        "返回同一回执、不重复创建。校验失败返回 422，列出全部不合格字段（中英文说明）。"
    ),
    responses=problem_responses(*_AUTH_PROBLEMS, Conflict),
)
async def create_declaration(
    body: schemas.DeclarationCreate,
    client: MiniProgram,
    state: StateDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> schemas.DeclarationReceipt:
    async with state.uow.transaction() as session:
        declaration, created = await service.receive_declaration(
            session, state.ctx, client=client, body=body, idempotency_key=idempotency_key
        )
    url = f"/v1/declarations/{declaration.receipt_no}"
    response.headers["Location"] = url
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return schemas.DeclarationReceipt(
        receipt_no=declaration.receipt_no, status_url=url, stage=declaration.stage
    )


@router.get(
    "/declarations/{receipt_no}",
    tags=["declarations 农户自主申报"],
    summary="查询申报进度 / applicant-facing progress",
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def get_declaration(
    receipt_no: str, client: MiniProgram, state: StateDep
) -> schemas.DeclarationProgressRead:
    async with state.uow.read() as session:
        return await service.declaration_progress(
            session, state.ctx, client=client, receipt_no=receipt_no
        )


@router.post(
    "/alerts",
    tags=["alerts 部门筛查预警"],
    summary="推送一条部门预警 / push one department alert",
    description="部门只能推送本部门目录内的预警类型；同一部门的 alert_id 重复推送视为重复，不会重复入库。",
    responses=problem_responses(*_AUTH_PROBLEMS),
)
async def create_alert(
    body: schemas.AlertCreate, client: DepartmentClient, state: StateDep, response: Response
) -> schemas.AlertAccepted:
    async with state.uow.transaction() as session:
        result = await service.receive_alert(session, state.ctx, client=client, body=body)
    response.status_code = status.HTTP_202_ACCEPTED if result == "accepted" else status.HTTP_200_OK
    return schemas.AlertAccepted(alert_id=body.alert_id, status=result)


@router.post(
    "/alerts:batch",
    tags=["alerts 部门筛查预警"],
    summary="批量推送预警（≤1000条）/ push up to 1,000 alerts",
    description="逐条判定：accepted（已受理）、duplicate（重复）、rejected（不合格，附原因）；一条不合格不影响其他条目。",
    responses=problem_responses(*_AUTH_PROBLEMS),
)
async def create_alert_batch(
    body: schemas.AlertBatch, client: DepartmentClient, state: StateDep
) -> schemas.BatchResult:
    async with state.uow.transaction() as session:
        return await service.receive_alert_batch(
            session, state.ctx, client=client, items=body.alerts
        )


@router.post(
    "/reports",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["reports 干部走访排查"],
    summary="提交干部走访排查报告 / file a cadre's screening report",
    responses=problem_responses(Unauthorized, Forbidden, ValidationFailed),
)
async def create_report(
    body: schemas.ReportCreate, principal: Caseworker, state: StateDep
) -> schemas.ReportReceipt:
    if principal.role not in ("village_officer", "township_officer", "county_officer"):
        raise Forbidden(
            "only caseworkers file reports", detail_zh="仅村、乡、县工作人员可提交走访报告"
        )
    async with state.uow.transaction() as session:
        report = await service.receive_report(session, state.ctx, principal=principal, body=body)
    return schemas.ReportReceipt(report_id=report.report_id)

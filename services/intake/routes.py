"""Intake's HTTP routes: thin — parse, open the transaction, call the service, shape the reply."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Response, status
from fastapi.responses import StreamingResponse

from services.intake import schemas, service
from services.intake.bulk_files import COLUMNS, REQUIRED_COLUMNS, XLSX_MEDIA_TYPE
from services.intake.dependencies import (
    DepartmentClient,
    IntakeState,
    MiniProgram,
    SignedBulkUpload,
    StateDep,
)
from services.intake.repository import BulkJobRepository
from shared.problems import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from shared.web import Caseworker

router = APIRouter(prefix="/v1")

_AUTH_PROBLEMS = (Unauthorized, Forbidden, TooManyRequests, PayloadTooLarge, ValidationFailed)
_SIGNING_ZH = (
    "调用方须以 HMAC-SHA256 签名（X-Client-Id、X-Timestamp、X-Signature，签名串为"
    "方法、路径含查询串、时间戳、请求体 SHA-256 十六进制，以换行分隔）；时间戳与服务器"
    "相差超过 300 秒、签名错误或重放的请求返回 401。"
)
_CALLBACK_DOC = APIRouter()


@_CALLBACK_DOC.post(
    "{$request.body#/callback_url}",
    summary="申报进度回调 / progress callback to the client",
    description=(
        "申报进度每变化一次（已受理、核查中、公示中、已纳入监测、未纳入监测、风险已消除），"
        "服务端即向申报时登记的 callback_url 发送 POST，签名方式与调用方请求本服务相同"
        "（X-Client-Id、X-Timestamp、X-Signature，使用该调用方的密钥）。返回 2xx 视为确认；"
        "否则按指数退避重试直至确认。至少送达一次：请按 delivery_id 去重；同一申报的进度按顺序送达。"
    ),
)
def _progress_callback(body: schemas.ProgressCallback) -> None:
    """Document the callback request (never served)."""


@router.post(
    "/declarations",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["declarations 农户自主申报"],
    summary="提交农户自主申报 / file a household self-declaration",
    description=(
        "小程序后端代农户提交申报（可代申报）。`Idempotency-Key` 相同的重试返回同一回执、"
        "不重复创建；同一键配不同内容返回 409。校验失败返回 422，列出全部不合格字段（中英文"
        "说明），且不保存任何数据。可填 `callback_url` 接收进度回调（见 callbacks）。"
        "身份证号码加密存储，响应中一律脱敏。" + _SIGNING_ZH
    ),
    responses=problem_responses(*_AUTH_PROBLEMS, Conflict),
    callbacks=_CALLBACK_DOC.routes,
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
    description=(
        "按回执编号查询申报进度：阶段（已受理、核查中、公示中、已纳入监测、未纳入监测及原因、"
        "风险已消除）、各节点时间与认定期限倒计时。仅能查询本调用方提交的申报，其他回执返回 404。"
        + _SIGNING_ZH
    ),
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
    status_code=status.HTTP_202_ACCEPTED,
    tags=["alerts 部门筛查预警"],
    summary="推送一条部门预警 / push one department alert",
    description=(
        "部门只能推送本部门目录内的预警类型（否则 403）；类型须在目录中，且须带该类型要求的"
        "字段（如医保大额自付须有 amount），否则 422。同一部门的 alert_id 重复推送返回 200 "
        "duplicate，不会重复入库；新预警返回 202 accepted。" + _SIGNING_ZH
    ),
    responses={
        200: {"model": schemas.AlertAccepted, "description": "重复推送 / a duplicate, not stored"},
        **problem_responses(*_AUTH_PROBLEMS),
    },
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
    description=(
        "逐条判定：accepted（已受理）、duplicate（重复）、rejected（不合格，附全部原因）；"
        "一条不合格不影响其他条目，只有合格且未推送过的条目入库。" + _SIGNING_ZH
    ),
    responses=problem_responses(*_AUTH_PROBLEMS),
)
async def create_alert_batch(
    body: schemas.AlertBatch, client: DepartmentClient, state: StateDep
) -> schemas.BatchResult:
    async with state.uow.transaction() as session:
        return await service.receive_alert_batch(
            session, state.ctx, client=client, items=body.alerts
        )


_NDJSON_EXAMPLE = (
    '{"alert_id":"YB-2026-000123","alert_type":"medical_insurance.large_out_of_pocket",'
    '"subject_id_number":"11010519491231002X","village_code":"141122100201",'
    '"amount":52000.0,"occurred_on":"2026-11-01","details":{}}\n'
)
_CSV_EXAMPLE = (
    ",".join(COLUMNS) + "\n"
    "YB-2026-000123,medical_insurance.large_out_of_pocket,11010519491231002X,141122100201,"
    '52000.00,,,2026-11-01,"{""医院"": ""县医院""}"\n'
)
_BULK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "NDJSON（每行一条 JSON 预警）、CSV（UTF-8，首行为表头，列名即预警字段："
            + "、".join(COLUMNS)
            + "；必需列："
            + "、".join(REQUIRED_COLUMNS)
            + "；details 列为 JSON 对象文本）或 XLSX（第一个工作表，首行为表头，列同 CSV；"
            "身份证号码单元格须为文本格式）。最多 1,000,000 行。"
        ),
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string"},
                "example": _NDJSON_EXAMPLE,
            },
            "text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE},
            XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/alerts:bulk",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["alerts 部门筛查预警"],
    summary="大批量推送预警（NDJSON/CSV/XLSX，≤100万行）/ bulk push as a file",
    description=(
        "部门按月推送的大批量比对结果。请求体以流式写入临时文件并同时计算 SHA-256，签名覆盖"
        "该摘要，整个文件不驻留内存。受理后返回 202 与任务编号，后台按每 1000 行一个事务处理："
        "合格行入库，重复行计数，不合格行写入拒收报告（可下载 CSV）。文件整体不可读（非 UTF-8、"
        "CSV 引号不匹配、XLSX 损坏、缺少必需列、行数超限）返回 422，不支持的内容类型返回 415，"
        "均不创建任务。服务重启时，未完成的任务从最后提交的行继续处理。" + _SIGNING_ZH
    ),
    responses=problem_responses(*_AUTH_PROBLEMS, UnsupportedMediaType),
    openapi_extra=_BULK_BODY,
)
async def create_alert_bulk(
    upload: SignedBulkUpload, state: StateDep, response: Response
) -> schemas.BulkJobAccepted:
    job = await state.bulk.accept(
        job_id=upload.job_id,
        client=upload.client,
        content_type=upload.content_type,
        size_bytes=upload.size_bytes,
        body_sha256=upload.body_sha256,
    )
    url = f"/v1/jobs/{job.id}"
    response.headers["Location"] = url
    return schemas.BulkJobAccepted(
        job_id=job.id, status_url=url, status="queued", rows_total=job.rows_total
    )


JobId = Annotated[uuid.UUID, Path(description="批量任务编号")]


@router.get(
    "/jobs/{job_id}",
    tags=["alerts 部门筛查预警"],
    summary="查询批量任务进度 / bulk job progress and counts",
    description=(
        "返回任务状态（queued 排队、running 处理中、done 完成、failed 失败及原因）、已处理行数、"
        "受理/重复/不合格计数与进度百分比。仅推送该任务的部门可查询，其他部门返回 404。"
        + _SIGNING_ZH
    ),
    responses=problem_responses(Unauthorized, Forbidden, NotFound, TooManyRequests),
)
async def get_job(job_id: JobId, client: DepartmentClient, state: StateDep) -> schemas.BulkJobRead:
    async with state.uow.read() as session:
        return service.job_read(await service.find_job(session, client=client, job_id=job_id))


@router.get(
    "/jobs/{job_id}/rejections",
    tags=["alerts 部门筛查预警"],
    summary="下载拒收报告（CSV）/ download the rejection report",
    description=(
        "UTF-8（带 BOM，Excel 可直接打开）CSV，每个不合格原因一行：row（文件中的行号："
        "NDJSON 为行号，CSV/XLSX 以表头为第 1 行）、alert_id、field、code、message_zh、"
        "message_en。任务进行中也可下载，内容为截至当时的拒收记录。仅推送该任务的部门可下载。"
        + _SIGNING_ZH
    ),
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "拒收报告 / rejection report",
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": (
                        "row,alert_id,field,code,message_zh,message_en\r\n"
                        "7,YB-7,subject_id_number,resident_id.checksum,"
                        "身份证号码校验位不正确，请核对,the check character does not match\r\n"
                    ),
                }
            },
        },
        **problem_responses(Unauthorized, Forbidden, NotFound, TooManyRequests),
    },
)
async def get_job_rejections(
    job_id: JobId, client: DepartmentClient, state: StateDep
) -> StreamingResponse:
    async with state.uow.read() as session:
        job = await service.find_job(session, client=client, job_id=job_id)
    return StreamingResponse(
        _rejection_csv(state, job.id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="rejections-{job.id}.csv"'},
    )


async def _rejection_csv(state: IntakeState, job_id: uuid.UUID) -> AsyncIterator[bytes]:
    """Yield the report page by page, so a million rejections never sit in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "alert_id", "field", "code", "message_zh", "message_en"])
    yield ("\ufeff" + buffer.getvalue()).encode()
    after = 0
    while True:
        async with state.uow.read() as session:
            page = await BulkJobRepository(session).rejections_page(
                job_id, after_id=after, limit=1000
            )
        if not page:
            return
        buffer.seek(0)
        buffer.truncate()
        for r in page:
            writer.writerow(
                [r.row_number, r.alert_id or "", r.field, r.code, r.message_zh, r.message_en]
            )
        after = page[-1].id
        yield buffer.getvalue().encode()


@router.post(
    "/reports",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["reports 干部走访排查"],
    summary="提交干部走访排查报告 / file a cadre's screening report",
    description=(
        "村、乡、县工作人员以 `Authorization: Bearer <JWT>` 提交走访排查报告，只能报告本人辖区内"
        "的村（否则 403）；机器调用方签名不适用于此接口（401）。校验规则与申报相同，"
        "失败返回 422 并列出全部不合格字段。"
    ),
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

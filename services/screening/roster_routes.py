"""Roster routes: the template, import (streamed), the rejection report and export."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote

import anyio
import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from services.screening import roster, schemas, service
from services.screening.dependencies import ScreeningState, StateDep
from services.screening.repository import RosterRepository
from shared.problems import (
    FieldError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from shared.regions import in_scope
from shared.web import Caseworker

router = APIRouter(prefix="/v1", tags=["roster 农户台账导入导出"])

IMPORT_PATH: Final = "/v1/roster:import"
# Rejections returned inline; the report download has them all.
INLINE_REJECTIONS: Final = 1000
_ACCEPTED: Final = ("spreadsheetml", "text/csv", "application/csv", "octet-stream", "ms-excel")


def _attachment(filename: str) -> dict[str, str]:
    # RFC 6266 with an ASCII fallback, so browsers show the Chinese file name.
    ascii_name = filename.encode("ascii", "ignore").decode() or "roster"
    return {
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    }


def _file(media_type: str, what: str) -> dict[int | str, dict[str, Any]]:
    """Declare a route's 200 as a file of that media type (not the default JSON)."""
    return {
        200: {
            "description": what,
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
        }
    }


@router.get(
    "/roster/template.xlsx",
    summary="下载台账模板（XLSX，含填写说明和下拉选项）/ the roster template as XLSX",
    response_class=Response,
    responses={
        **_file(roster.XLSX_MEDIA_TYPE, "台账模板 / the template"),
        **problem_responses(Unauthorized),
    },
)
async def template_xlsx(principal: Caseworker) -> Response:
    del principal
    return Response(
        roster.template_xlsx(),
        media_type=roster.XLSX_MEDIA_TYPE,
        headers=_attachment("农户台账模板.xlsx"),
    )


@router.get(
    "/roster/template.csv",
    summary="下载台账模板（CSV，UTF-8）/ the roster template as CSV",
    response_class=Response,
    responses={
        **_file(roster.CSV_MEDIA_TYPE, "台账模板 / the template"),
        **problem_responses(Unauthorized),
    },
)
async def template_csv(principal: Caseworker) -> Response:
    del principal
    return Response(
        roster.template_csv(),
        media_type=roster.CSV_MEDIA_TYPE,
        headers=_attachment("农户台账模板.csv"),
    )


async def _spool(request: Request, state: ScreeningState) -> tuple[Path, roster.Format]:
    """Stream the request body into a temporary file; return it and its format."""
    limit = state.settings.roster_max_bytes
    handle, name = tempfile.mkstemp(prefix="roster-", suffix=".upload")
    os.close(handle)
    path = Path(name)
    size = 0
    head = b""
    try:
        async with await anyio.open_file(path, "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        f"the roster is larger than {limit} bytes",
                        detail_zh=f"台账文件超过 {limit} 字节的上限",
                    )
                if len(head) < 8:
                    head += chunk[:8]
                await fh.write(chunk)
    except BaseException:
        await anyio.Path(path).unlink(missing_ok=True)
        raise
    if size == 0:
        await anyio.Path(path).unlink(missing_ok=True)
        raise ValidationFailed(
            [FieldError("body", "empty", "上传的文件为空", "the uploaded file is empty")]
        )
    fmt = roster.detect_format(
        head,
        content_type=request.headers.get("content-type"),
        name=request.query_params.get("file_name"),
    )
    return path, fmt


def _import_read(summary: service.ImportSummary) -> schemas.RosterImportRead:
    return schemas.RosterImportRead(
        import_id=str(summary.import_id) if summary.import_id else None,
        dry_run=summary.dry_run,
        format=summary.format,
        income_layout=summary.layout,
        rows=summary.rows,
        counts=summary.counts,
        rejected_rows=summary.rejected_rows,
        rejections_total=summary.rejections_total,
        rejections=summary.rejections[:INLINE_REJECTIONS],
        report_url=(
            f"/v1/roster/imports/{summary.import_id}/rejections.csv"
            if summary.import_id and summary.rejections_total
            else None
        ),
        ignored_columns=summary.ignored_columns,
    )


@router.post(
    "/roster:import",
    summary="导入县级台账（XLSX或CSV，一行一名成员；可重复导入）/ import the county roster",
    description=(
        "The request body is the file itself (`Content-Type` "
        "`application/vnd.openxmlformats-officedocument.spreadsheetml.sheet` or `text/csv`), "
        "streamed to a temporary file. County officers and admins import households of "
        "their county; rows are validated one by one and a household with any bad row is "
        "refused whole (listed in the rejection report). Re-importing the same file changes "
        "nothing. `dry_run=true` validates and counts without writing. Columns: docs/roster.md."
    ),
    responses=problem_responses(
        Unauthorized, Forbidden, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                roster.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def import_roster(
    request: Request,
    principal: Caseworker,
    state: StateDep,
    dry_run: bool = False,
    income_end_month: Annotated[
        str | None, Query(description="收入截止月份 for rows that leave it blank (YYYY-MM)")
    ] = None,
    file_name: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.RosterImportRead:
    if principal.role not in service.IMPORT_ROLES:
        raise Forbidden(
            "only county officers and admins import the roster",
            detail_zh="只有县级工作人员和管理员可以导入台账",
        )
    content_type = (request.headers.get("content-type") or "").lower()
    if content_type and not any(kind in content_type for kind in _ACCEPTED):
        raise UnsupportedMediaType(
            "send the roster as XLSX or CSV", detail_zh="请以XLSX或CSV格式上传台账"
        )
    default_month: date | None = None
    if income_end_month:
        try:
            default_month = roster.parse_month(income_end_month)
        except roster.CellError as exc:
            raise ValidationFailed(
                [FieldError("income_end_month", exc.code, exc.message_zh, exc.message_en)]
            ) from None
    path, fmt = await _spool(request, state)
    try:
        summary = await service.import_roster(
            state.uow,
            path=path,
            fmt=fmt,
            cipher=state.cipher,
            clock=state.clock,
            actor=principal.sub,
            scope=principal.region,
            regions=state.regions,
            options=service.ImportOptions(
                dry_run=dry_run, file_name=file_name, default_end_month=default_month
            ),
        )
    except roster.RosterFileError as exc:
        raise ValidationFailed(
            [FieldError("file", exc.code, exc.message_zh, exc.message_en)]
        ) from None
    finally:
        await anyio.Path(path).unlink(missing_ok=True)
    return _import_read(summary)


async def _import_record(
    state: ScreeningState, principal: Any, import_id: uuid.UUID
) -> tuple[Any, list[dict[str, Any]]]:
    if principal.role not in service.IMPORT_ROLES:
        raise Forbidden(
            "only county officers and admins see imports", detail_zh="无权查看台账导入记录"
        )
    async with state.uow.read() as session:
        record = await RosterRepository(session).get_import(import_id)
    if record is None or not in_scope(principal.region, record.region_code):
        raise NotFound("no such import in your region", detail_zh="您的辖区内没有该导入记录")
    return record, list(record.rejections)


@router.get(
    "/roster/imports/{import_id}",
    summary="台账导入结果 / the outcome of an import",
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def get_import(
    principal: Caseworker, state: StateDep, import_id: uuid.UUID
) -> schemas.RosterImportRead:
    record, rejections = await _import_record(state, principal, import_id)
    summary: dict[str, Any] = dict(record.summary)
    return schemas.RosterImportRead(
        import_id=str(record.id),
        dry_run=False,
        format=record.format,
        income_layout=str(summary.get("layout", "none")),
        rows=int(summary.get("rows", 0)),
        counts={k: int(summary.get(k, 0)) for k in service.COUNT_KEYS},
        rejected_rows=int(summary.get("rejected_rows", 0)),
        rejections_total=int(summary.get("rejections_total", len(rejections))),
        rejections=rejections[:INLINE_REJECTIONS],
        report_url=f"/v1/roster/imports/{record.id}/rejections.csv" if rejections else None,
        ignored_columns=list(summary.get("ignored_columns", [])),
    )


@router.get(
    "/roster/imports/{import_id}/rejections.csv",
    summary="拒绝报告（CSV）：未导入的行及原因 / the rejection report",
    response_class=Response,
    responses={
        **_file(roster.CSV_MEDIA_TYPE, "拒绝报告 / the rejection report"),
        **problem_responses(Unauthorized, Forbidden, NotFound),
    },
)
async def rejection_report(
    principal: Caseworker, state: StateDep, import_id: uuid.UUID
) -> Response:
    _record, rejections = await _import_record(state, principal, import_id)
    return Response(
        roster.rejection_csv(rejections),
        media_type=roster.CSV_MEDIA_TYPE,
        headers=_attachment(f"台账导入拒绝报告-{import_id}.csv"),
    )


def _write_export(
    households: list[roster.ExportHousehold], fmt: roster.Format, layout: str
) -> Path:
    months: list[date] | None = None
    if layout == "monthly":
        latest = max((i.month for h in households for i in h.incomes), default=None)
        if latest is not None:
            months = roster.months_ending(latest, 12)
    headers = roster.export_headers(months)
    rows = (row for h in households for row in roster.export_rows(h, months))
    handle, name = tempfile.mkstemp(prefix="roster-export-", suffix=f".{fmt}")
    os.close(handle)
    path = Path(name)
    try:
        if fmt == "xlsx":
            roster.write_xlsx(path, headers, rows)
        else:
            with path.open("w", encoding="utf-8-sig", newline="") as fh:
                roster.write_csv(fh, headers, rows)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def _export(
    principal: Any,
    state: ScreeningState,
    *,
    fmt: roster.Format,
    region: str | None,
    unmask: bool,
    include_provisional: bool,
    layout: str,
) -> FileResponse:
    target = region or principal.region
    async with state.uow.read() as session:
        households = await service.export_roster(
            session,
            principal=principal,
            region=target,
            unmask=unmask,
            cipher=state.cipher,
            include_provisional=include_provisional,
        )
    path = await anyio.to_thread.run_sync(_write_export, households, fmt, layout)
    stamp = state.clock.now().strftime("%Y%m%d")
    return FileResponse(
        path,
        media_type=roster.XLSX_MEDIA_TYPE if fmt == "xlsx" else roster.CSV_MEDIA_TYPE,
        headers=_attachment(f"农户台账-{target}-{stamp}.{fmt}"),
        background=BackgroundTask(_remove, path),
    )


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


_EXPORT_DESCRIPTION: Final = (
    "The roster of a region (default: the caller's), in the import template's columns, one "
    "row per member. Resident IDs are masked (`141122********1239`); an admin may ask for "
    "`unmask=true` to get a file that can be edited and imported again (logged). "
    "`layout=monthly` writes monthly income columns for the last 12 months instead of "
    "annual totals. Provisional households (not yet in the roster) only with "
    "`include_provisional=true`."
)
Layout = Literal["annual", "monthly"]


@router.get(
    "/roster/export.xlsx",
    summary="导出台账（XLSX）/ export the roster as XLSX",
    description=_EXPORT_DESCRIPTION,
    response_class=Response,
    responses={
        **_file(roster.XLSX_MEDIA_TYPE, "台账 / the roster"),
        **problem_responses(Unauthorized, Forbidden),
    },
)
async def export_xlsx(
    principal: Caseworker,
    state: StateDep,
    region: str | None = None,
    unmask: bool = False,
    include_provisional: bool = False,
    layout: Layout = "annual",
) -> FileResponse:
    return await _export(
        principal,
        state,
        fmt="xlsx",
        region=region,
        unmask=unmask,
        include_provisional=include_provisional,
        layout=layout,
    )


@router.get(
    "/roster/export.csv",
    summary="导出台账（CSV，UTF-8）/ export the roster as CSV",
    description=_EXPORT_DESCRIPTION,
    response_class=Response,
    responses={
        **_file(roster.CSV_MEDIA_TYPE, "台账 / the roster"),
        **problem_responses(Unauthorized, Forbidden),
    },
)
async def export_csv(
    principal: Caseworker,
    state: StateDep,
    region: str | None = None,
    unmask: bool = False,
    include_provisional: bool = False,
    layout: Layout = "annual",
) -> FileResponse:
    return await _export(
        principal,
        state,
        fmt="csv",
        region=region,
        unmask=unmask,
        include_provisional=include_provisional,
        layout=layout,
    )

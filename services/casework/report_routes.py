"""Casework's report routes: time-limit compliance and the pipeline, region-scoped."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.casework import pipeline, report_schemas, sla
from services.casework.deadlines import local_date
from services.casework.report_repository import ReportRepository
from services.casework.service import CaseworkContext
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.problems import Forbidden, Unauthorized, problem_responses
from shared.regions import default_region_table, in_scope
from shared.web import Caseworker

router = APIRouter(prefix="/v1/reports", tags=["reports 统计报表"])

READERS = ("village_officer", "township_officer", "county_officer", "admin")
RegionParam = Annotated[
    str | None, Query(pattern=r"^\d{2,12}$", description="区划代码，默认为本人辖区")
]
OVERDUE_LIMIT = 200


def _uow(request: Request) -> UnitOfWork:
    uow: UnitOfWork = request.app.state.uow
    return uow


def _ctx(request: Request) -> CaseworkContext:
    ctx: CaseworkContext = request.app.state.ctx
    return ctx


def _scope(principal: Principal, region: str | None) -> str:
    if principal.role not in READERS:
        raise Forbidden("your role cannot read reports", detail_zh="您的角色无权查看统计报表")
    scope = region or principal.region
    if not in_scope(principal.region, scope):
        raise Forbidden("that region is outside yours", detail_zh="所查区划不在您的辖区内")
    return scope


def _township_name(code: str | None) -> str:
    if code is None:
        return "未落实到乡镇"
    region = default_region_table().get(code)
    return region.name if region is not None else code


def _first_day(month: str) -> date:
    year, number = month.split("-")
    return date(int(year), int(number), 1)


@router.get(
    "/sla",
    summary="法定时限执行情况（按乡镇、按月）与超期清单 / time-limit compliance and overdue list",
    description=(
        "15天认定、公示不少于5天、10个工作日内明确帮扶责任人和一户一策、每月走访；"
        "按时限到期月份统计，share = 按时 / (按时 + 超期)，未到期的计入 pending。"
    ),
    responses=problem_responses(Unauthorized, Forbidden),
)
async def sla_report(
    request: Request,
    principal: Caseworker,
    region: RegionParam = None,
    months: Annotated[int, Query(ge=1, le=36, description="最近 N 个月（含本月）")] = 6,
) -> report_schemas.SlaReport:
    scope = _scope(principal, region)
    now = _ctx(request).clock.now()
    today = local_date(now)
    wanted = sla.last_months(today, months)
    kinds = tuple(kind for metric in sla.METRICS for kind in metric.kinds)
    async with _uow(request).read() as session:
        repo = ReportRepository(session)
        clocks = await repo.clock_facts(scope, kinds=kinds, due_from=_first_day(wanted[0]))
        overdue, overdue_total = await repo.overdue(scope, limit=OVERDUE_LIMIT)
    result = sla.compliance(clocks, now=now, months=wanted)
    order = {m.key: i for i, m in enumerate(sla.METRICS)}

    def cell(
        township: str | None, month: str, metric: str, tally: sla.Tally, name: str
    ) -> report_schemas.ComplianceCell:
        return report_schemas.ComplianceCell(
            township_code=township,
            township_name=name,
            month=month,
            metric=metric,
            on_time=tally.on_time,
            late=tally.late,
            pending=tally.pending,
            share=tally.share,
        )

    return report_schemas.SlaReport(
        scope=scope,
        as_of=now,
        months=wanted,
        metrics=[
            report_schemas.MetricRead(
                key=m.key, title_zh=m.title_zh, rule=m.rule, kinds=list(m.kinds)
            )
            for m in sla.METRICS
        ],
        townships=[
            cell(t, month, metric, tally, _township_name(t))
            for (t, month, metric), tally in sorted(
                result.cells.items(), key=lambda kv: (kv[0][0] or "~", kv[0][1], order[kv[0][2]])
            )
        ],
        totals=[
            cell(None, month, metric, tally, "合计")
            for (month, metric), tally in sorted(
                result.totals.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])
            )
        ],
        overdue_total=overdue_total,
        overdue=[
            report_schemas.OverdueItem(
                case_id=o.case_id,
                village_code=o.region_code,
                township_name=_township_name(sla.township_code(o.region_code)),
                stage=o.stage,
                stage_label_zh=pipeline.stage_label(o.stage),
                head_name=o.head_name,
                kind=o.kind,
                due=o.due_date,
                days_overdue=(today - o.due_date).days,
                escalation_level=o.escalation_level,
            )
            for o in overdue
        ],
    )


@router.get(
    "/pipeline",
    summary="案件流程与来源：各环节案件数、发现渠道、风险因素、监测类别 / pipeline and sources",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def pipeline_report(
    request: Request, principal: Caseworker, region: RegionParam = None
) -> report_schemas.PipelineReport:
    scope = _scope(principal, region)
    async with _uow(request).read() as session:
        cases = await ReportRepository(session).case_facts(scope)
    result = pipeline.pipeline(cases)

    def counts(items: list[pipeline.Count]) -> list[report_schemas.CountRead]:
        return [report_schemas.CountRead(**asdict(c)) for c in items]

    return report_schemas.PipelineReport(
        scope=scope,
        cases=result.cases,
        by_stage=counts(result.by_stage),
        by_first_channel=counts(result.by_first_channel),
        signals_by_channel=counts(result.signals_by_channel),
        by_risk_factor=counts(result.by_risk_factor),
        by_category=counts(result.by_category),
    )

"""Screening's report routes: 表七/1, department scorecards, area alerts; region-scoped."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response

from services.screening import area_watch, report_schemas, township_table
from services.screening.report_repository import AlertOutcome, ReportRepository
from shared.auth import Principal
from shared.clock import china_date, utc_now
from shared.db import UnitOfWork
from shared.problems import Forbidden, Unauthorized, problem_responses
from shared.regions import default_region_table, in_scope, scope_prefix
from shared.web import Caseworker

router = APIRouter(prefix="/v1/reports", tags=["reports 统计报表"])

READERS = ("village_officer", "township_officer", "county_officer", "admin")
RegionParam = Annotated[
    str | None, Query(pattern=r"^\d{2,12}$", description="区划代码，默认为本人辖区")
]
_DEPARTMENT = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def _uow(request: Request) -> UnitOfWork:
    uow: UnitOfWork = request.app.state.uow
    return uow


def _scope(principal: Principal, region: str | None) -> tuple[str, str]:
    """Return the scope code and its SQL prefix, refusing regions outside the caller's."""
    scope = region or principal.region
    prefix = scope_prefix(scope)
    if prefix is None or not in_scope(principal.region, scope):
        raise Forbidden("that region is outside yours", detail_zh="所查区划不在您的辖区内")
    return scope, prefix


def _require_reader(principal: Principal) -> None:
    if principal.role not in READERS:
        raise Forbidden("your role cannot read reports", detail_zh="您的角色无权查看统计报表")


async def _table(
    request: Request, principal: Caseworker, region: str | None
) -> township_table.TownshipTable:
    _require_reader(principal)
    scope, prefix = _scope(principal, region)
    async with _uow(request).read() as session:
        repo = ReportRepository(session)
        households = await repo.household_facts(prefix)
        villages = await repo.escaped_villages(prefix)
    return township_table.build_table(
        households=households,
        escaped_villages=villages,
        regions=default_region_table(),
        scope=scope,
        generated_at=utc_now(),
    )


def _row(row: township_table.TownshipRow) -> report_schemas.TownshipRowRead:
    return report_schemas.TownshipRowRead(
        township_code=row.township_code,
        name=row.name,
        historical=row.historical,
        **{key: getattr(row, key) for key in township_table.column_keys()},
    )


def _attachment(name: str) -> str:
    # RFC 6266: an ASCII fallback plus the UTF-8 name, so spreadsheets keep the Chinese title.
    return f"attachment; filename=\"table7-1.{name.rsplit('.', 1)[1]}\"; filename*=UTF-8''{quote(name)}"


@router.get(
    "/township-distribution",
    summary="表七/1 乡镇脱贫户与监测对象分布 / households and persons per township",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def township_distribution(
    request: Request, principal: Caseworker, region: RegionParam = None
) -> report_schemas.TownshipDistribution:
    table = await _table(request, principal, region)
    return report_schemas.TownshipDistribution(
        title=table.title,
        scope=table.scope,
        columns=[
            report_schemas.ColumnRead(key=c.key, group=c.group, title=c.title, unit=c.unit)
            for c in township_table.COLUMNS
        ],
        rows=[_row(r) for r in table.rows],
        total=_row(table.total),
        generated_at=table.generated_at,
        region_version=table.region_version,
        notes=table.notes,
    )


@router.get(
    "/township-distribution.csv",
    summary="表七/1（CSV，UTF-8 带 BOM）",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **problem_responses(Unauthorized, Forbidden)},
)
async def township_distribution_csv(
    request: Request, principal: Caseworker, region: RegionParam = None
) -> Response:
    table = await _table(request, principal, region)
    # The BOM makes spreadsheet programs on Chinese Windows read the file as UTF-8.
    body = "\ufeff" + township_table.to_csv(table)
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": _attachment(f"{table.title}.csv")},
    )


@router.get(
    "/township-distribution.xlsx",
    summary="表七/1（Excel）",
    response_class=Response,
    responses={
        200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
        **problem_responses(Unauthorized, Forbidden),
    },
)
async def township_distribution_xlsx(
    request: Request, principal: Caseworker, region: RegionParam = None
) -> Response:
    table = await _table(request, principal, region)
    return Response(
        township_table.to_xlsx(table),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": _attachment(f"{table.title}.xlsx")},
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _scores(outcomes: list[AlertOutcome]) -> list[report_schemas.DepartmentScore]:
    by_department: dict[str, list[AlertOutcome]] = defaultdict(list)
    for outcome in outcomes:
        by_department[outcome.department].append(outcome)
    scores = []
    for department in sorted(by_department):
        items = by_department[department]
        by_type: dict[str | None, list[AlertOutcome]] = defaultdict(list)
        for item in items:
            by_type[item.alert_type].append(item)
        included = sum(1 for i in items if i.included)
        scores.append(
            report_schemas.DepartmentScore(
                department=department,
                alerts=len(items),
                included=included,
                share_included=_share(included, len(items)),
                by_alert_type=[
                    report_schemas.AlertTypeScore(
                        alert_type=kind,
                        alerts=len(group),
                        included=sum(1 for g in group if g.included),
                        share_included=_share(sum(1 for g in group if g.included), len(group)),
                    )
                    for kind, group in sorted(by_type.items(), key=lambda kv: kv[0] or "")
                ],
            )
        )
    return scores


def _since(days: int | None) -> datetime | None:
    return None if days is None else utc_now() - timedelta(days=days)


@router.get(
    "/departments",
    summary="各部门预警的纳入率 / share of each department's alerts that led to inclusion",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def departments(
    request: Request,
    principal: Caseworker,
    region: RegionParam = None,
    days: Annotated[int | None, Query(ge=1, le=3660, description="只看最近 N 天收到的预警")] = None,
) -> report_schemas.DepartmentReport:
    _require_reader(principal)
    scope, prefix = _scope(principal, region)
    since = _since(days)
    async with _uow(request).read() as session:
        outcomes = await ReportRepository(session).alert_outcomes(prefix, since=since)
    return report_schemas.DepartmentReport(
        scope=scope, since=since.date() if since else None, departments=_scores(outcomes)
    )


@router.get(
    "/departments/{department}",
    summary="本部门预警的处理结果反馈 / a department's own feedback: alerts that led to inclusion",
    description=(
        "部门工作人员（department_officer，令牌带 department）只能查看本部门；"
        "县、乡、村工作人员可查看辖区内任一部门。"
    ),
    responses=problem_responses(Unauthorized, Forbidden),
)
async def department(
    request: Request,
    principal: Caseworker,
    department: str,
    region: RegionParam = None,
    days: Annotated[int | None, Query(ge=1, le=3660)] = None,
) -> report_schemas.DepartmentScore:
    if principal.role == "department_officer":
        if principal.department != department:
            raise Forbidden(
                "department officers read only their own department",
                detail_zh="部门工作人员只能查看本部门的反馈",
            )
    else:
        _require_reader(principal)
    if not _DEPARTMENT.fullmatch(department):
        raise Forbidden("unknown department", detail_zh="未知的部门代码")
    _, prefix = _scope(principal, region)
    async with _uow(request).read() as session:
        outcomes = await ReportRepository(session).alert_outcomes(prefix, since=_since(days))
    scores = _scores([o for o in outcomes if o.department == department])
    if scores:
        return scores[0]
    return report_schemas.DepartmentScore(
        department=department, alerts=0, included=0, share_included=None, by_alert_type=[]
    )


@router.get(
    "/area-alerts",
    summary="规模性返贫预警：乡镇同因信号周激增 / clustered-risk alerts per township and week",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def area_alerts(
    request: Request,
    principal: Caseworker,
    region: RegionParam = None,
    weeks: Annotated[int, Query(ge=1, le=104, description="最近 N 周")] = 12,
) -> report_schemas.AreaAlertList:
    _require_reader(principal)
    scope, prefix = _scope(principal, region)
    policy = area_watch.load_area_alert_policy()
    mondays = area_watch.recent_weeks(china_date(utc_now()), weeks)
    first, last = mondays[0], mondays[-1] + timedelta(days=6)
    async with _uow(request).read() as session:
        repo = ReportRepository(session)
        alerts = await repo.area_alerts(prefix, since=first)
        signals = await repo.cause_signals(prefix, start=first, end=last)
    counts: dict[tuple[date, str], int] = defaultdict(int)
    for signal in signals:
        for cause in policy.causes_of(
            alert_type=signal.alert_type, difficulty_types=signal.difficulty_types
        ):
            counts[(area_watch.week_start(signal.occurred_on), cause)] += 1
    regions = default_region_table()

    def township_name(code: str) -> str:
        found = regions.get(code)
        return found.name if found is not None else code

    return report_schemas.AreaAlertList(
        scope=scope,
        policy_version=policy.version,
        items=[
            report_schemas.AreaAlertRead(
                alert_id=str(a.id),
                township_code=a.township_code,
                township_name=township_name(a.township_code),
                cause=a.cause,
                cause_zh=policy.causes[a.cause].name_zh if a.cause in policy.causes else a.cause,
                week_start=a.week_start,
                signal_count=a.signal_count,
                household_count=a.household_count,
                baseline_weeks=a.baseline_weeks,
                baseline_mean=a.baseline_mean,
                baseline_sd=a.baseline_sd,
                threshold=a.threshold,
                policy_version=a.policy_version,
                raised_at=a.raised_at,
            )
            for a in alerts
        ],
        weeks=[
            report_schemas.CauseWeek(
                week_start=monday,
                cause=cause,
                cause_zh=policy.causes[cause].name_zh,
                signals=counts.get((monday, cause), 0),
            )
            for monday in mondays
            for cause in policy.causes
        ],
    )

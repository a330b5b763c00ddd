"""Casework's HTTP routes: thin — authorise, open the transaction, call the service, shape the reply."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from services.casework import history, schemas, service
from services.casework.deadlines import local_date
from services.casework.errors import calendar_unavailable
from services.casework.measures import GUARANTEE_DIMENSIONS, Measure, suggest
from services.casework.models import (
    CalendarOverrideRow,
    CalendarYearDeclaration,
    Case,
    CaseEvent,
)
from services.casework.repository import CalendarRepository, CaseRepository, HelperRepository
from services.casework.service import CaseworkContext
from services.casework.workdays import CalendarUnavailable
from services.casework.workflow import STAGE_LABELS_ZH, Stage
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.problems import (
    Conflict,
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

CASE_READERS = ("village_officer", "township_officer", "county_officer", "admin")
CASES = "cases 监测案件"
HELPERS = "helpers 帮扶责任人"
DEADLINES = "deadlines 时限"
CALENDAR = "calendar 工作日"
RegionQuery = Annotated[
    str | None, Query(pattern=r"^\d{2,12}$", description="区划代码，默认为本人辖区")
]


def _uow(request: Request) -> UnitOfWork:
    uow: UnitOfWork = request.app.state.uow
    return uow


def _ctx(request: Request) -> CaseworkContext:
    ctx: CaseworkContext = request.app.state.ctx
    return ctx


def _require_reader(principal: Principal) -> None:
    if principal.role not in CASE_READERS:
        raise Forbidden("your role cannot read cases", detail_zh="您的角色无权查看案件")


def _require_admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise Forbidden("only an admin maintains the calendar", detail_zh="仅管理员可维护工作日历")


def _scope(principal: Principal, region: str | None) -> str:
    scope = region or principal.region
    if not in_scope(principal.region, scope):
        raise Forbidden("that region is outside yours", detail_zh="所查区划不在您的辖区内")
    return scope


async def _case_in_scope(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> Case:
    case = await CaseRepository(session).get(case_id)
    # Outside the caller's region reads as absent: existence is not leaked.
    if case is None or not in_scope(principal.region, case.region_code):
        raise NotFound("no such case in your region", detail_zh="您的辖区内没有该案件")
    return case


# ------------------------------------------------------------------ shaping


def _deadline(view: history.ClockView) -> schemas.DeadlineRead:
    return schemas.DeadlineRead(
        deadline_id=view.id,
        kind=view.kind,
        bound=view.bound,
        due=view.due_date,
        started_at=view.started_at,
        met_at=view.met_at,
        breached=view.breached_at is not None,
        breached_at=view.breached_at,
        escalation_level=view.escalation_level,
        paused=view.paused_at is not None,
        closed=view.closed_at is not None,
        citation=view.citation,
    )


def _deadlines(clocks: Sequence[history.ClockView]) -> list[schemas.DeadlineRead]:
    ordered = sorted(clocks, key=lambda c: (c.due_date, c.kind, c.started_at, c.id))
    return [_deadline(c) for c in ordered]


def _summary(case: Case, view: history.CaseView) -> schemas.CaseSummary:
    return schemas.CaseSummary(
        case_id=str(case.id),
        stage=view.stage,
        stage_label_zh=STAGE_LABELS_ZH[Stage(view.stage)],
        village_code=case.region_code,
        opened_at=case.opened_at,
        head_name=case.head_name,
        head_id_masked=case.head_id_masked,
        score=case.score if view.score is None else view.score,
        level=case.level if view.level is None else view.level,
        categories=list(view.categories),
        deadlines=_deadlines(list(view.clocks.values())),
        sources=[schemas.SourceRead.model_validate(s) for s in view.sources],
    )


def _record(facts: dict[str, Any]) -> schemas.CaseRecord:
    procedure = facts.get("procedure") or {}
    return schemas.CaseRecord.model_validate(
        {
            **{k: v for k, v in facts.items() if k != "procedure"},
            "publicity_started_on": procedure.get("publicity_started_on"),
            "elimination_publicity_started_on": procedure.get("elimination_publicity_started_on"),
        }
    )


def _history(rows: Sequence[history.Entry]) -> list[schemas.HistoryEntry]:
    return [
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
        for h in rows
    ]


def _detail(
    ctx: CaseworkContext,
    case: Case,
    view: history.CaseView,
    entries: Sequence[history.Entry],
    *,
    allowed: Sequence[tuple[str, str]] = (),
    as_of: date | None = None,
) -> schemas.CaseDetail:
    template = service.template_of(case, ctx.templates)
    summary = _summary(case, view)
    return schemas.CaseDetail(
        **summary.model_dump(),
        version=None if as_of is not None else case.version,
        closed_at=view.closed_at,
        record=_record(view.facts),
        helper=None if view.helper is None else schemas.HelperRead.model_validate(view.helper),
        plan=[
            schemas.PlanItemRead.model_validate({**item, "item_id": item["id"]})
            for item in view.plan.values()
        ],
        reasons=list(case.reasons),
        review_flags=list(case.review_flags),
        history=_history(entries),
        allowed_actions=[schemas.AllowedAction(action=a, label_zh=label) for a, label in allowed],
        procedure=f"{template.name}@{template.version}",
        as_of=as_of,
    )


async def _live_detail(
    session: AsyncSession, ctx: CaseworkContext, case: Case, principal: Principal
) -> schemas.CaseDetail:
    repo = CaseRepository(session)
    # The view and the allowed actions both need the clocks: one read serves them.
    clocks = (await repo.deadlines_of([case.id]))[case.id]
    view = await service.live_view(session, case, clocks)
    entries = service.entries_of(await repo.history(case.id))
    allowed = await service.allowed(session, ctx, case, principal, clocks)
    return _detail(ctx, case, view, entries, allowed=allowed)


# ------------------------------------------------------------------ cases


@router.get(
    "/cases",
    tags=[CASES],
    summary="辖区内案件列表 / cases in the caller's region",
    description="overdue=true 只列出有已超期且尚未完成时限的案件。",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_cases(
    request: Request,
    principal: Caseworker,
    region: RegionQuery = None,
    stage: Annotated[str | None, Query(max_length=32)] = None,
    overdue: bool = False,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.CaseList:
    _require_reader(principal)
    scope = _scope(principal, region)
    async with _uow(request).read() as session:
        repo = CaseRepository(session)
        cases, total = await repo.page(
            region=scope, stage=stage, overdue=overdue, page=page, size=size
        )
        clocks = await repo.deadlines_of([c.id for c in cases])
    items = []
    for case in cases:
        view = history.CaseView(
            stage=case.stage,
            opened_at=case.opened_at,
            categories=list(case.categories),
            score=case.score,
            level=case.level,
            clocks={str(c.id): service.clock_view(c) for c in clocks[case.id]},
            sources=list(case.sources),
        )
        items.append(_summary(case, view))
    return schemas.CaseList(items=items, total=total, page=page)


@router.get(
    "/cases/{case_id}",
    tags=[CASES],
    summary="案件详情、历史与帮扶计划 / a case with its record, history and plan",
    description=(
        "as_of=YYYY-MM-DD 按历史记录重建该日（北京时间）结束时案件的阶段、时限、记录、帮扶责任人、"
        "帮扶措施与历史（筛查理由 reasons/review_flags 为当前值）；"
        "allowed_actions 列出调用者当前可办理的事项。"
    ),
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def get_case(
    request: Request,
    principal: Caseworker,
    case_id: uuid.UUID,
    as_of: Annotated[date | None, Query(description="重建该日结束时的案件")] = None,
) -> schemas.CaseDetail:
    _require_reader(principal)
    ctx = _ctx(request)
    async with _uow(request).read() as session:
        case = await _case_in_scope(session, principal, case_id)
        if as_of is None:
            return await _live_detail(session, ctx, case, principal)
        rows = await CaseRepository(session).history(case.id)
    until = service.end_of_day(as_of)
    entries = [e for e in service.entries_of(rows) if e.at < until]
    view = history.replay(entries)
    if view is None:
        raise NotFound(
            f"the case was not open yet on {as_of.isoformat()}",
            detail_zh=f"{as_of.isoformat()}时该案件尚未受理",
        )
    return _detail(ctx, case, view, entries, as_of=as_of)


@router.get(
    "/cases/{case_id}/history",
    tags=[CASES],
    summary="案件留痕（只读、只增不改）/ the case's append-only history",
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def get_history(
    request: Request, principal: Caseworker, case_id: uuid.UUID
) -> list[schemas.HistoryEntry]:
    _require_reader(principal)
    async with _uow(request).read() as session:
        case = await _case_in_scope(session, principal, case_id)
        rows: list[CaseEvent] = await CaseRepository(session).history(case.id)
    return _history(service.entries_of(rows))


@router.post(
    "/cases/{case_id}/actions",
    tags=[CASES],
    summary="办理程序事项 / perform a procedure action",
    description=(
        "按本地区流程模板办理：入户核查、部门协查、公示（开始、异议、办结、结束）、乡镇审核、"
        "县级审批（纳入或不予纳入）、帮扶责任人、一户一策、走访、风险消除、退出、时限暂停/恢复/延长。"
        "不合法的流转返回 409（含 code、中文与英文原因）；角色无权返回 403；"
        "每次办理都写入只增不改的案件历史，并经发件箱发布事件。"
    ),
    responses=problem_responses(Unauthorized, Forbidden, NotFound, Conflict, ValidationFailed),
)
async def post_action(
    request: Request,
    principal: Caseworker,
    case_id: uuid.UUID,
    command: Annotated[schemas.ActionRequest, Body()],
) -> schemas.CaseDetail:
    _require_reader(principal)
    ctx = _ctx(request)
    try:
        async with _uow(request).transaction() as session:
            case = await service.act(
                session, ctx, case_id=case_id, principal=principal, command=command
            )
            return await _live_detail(session, ctx, case, principal)
    except StaleDataError:
        raise Conflict(
            "the case changed meanwhile; reload and retry",
            detail_zh="案件已被他人同时更新，请刷新后重试",
        ) from None


@router.get(
    "/cases/{case_id}/visits",
    tags=[CASES],
    summary="走访记录 / the case's home visits",
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def list_visits(
    request: Request, principal: Caseworker, case_id: uuid.UUID
) -> schemas.VisitList:
    _require_reader(principal)
    async with _uow(request).read() as session:
        case = await _case_in_scope(session, principal, case_id)
        visits = await CaseRepository(session).visits(case.id)
    return schemas.VisitList(
        items=[
            schemas.VisitRead(
                visit_id=str(v.id),
                visited_on=v.visited_on,
                visitor_name=v.visitor_name,
                visitor_role=v.visitor_role,
                helper_id=v.helper_id,
                findings=v.findings,
                income_per_capita=v.income_per_capita,
                guarantees=v.guarantees,
                recorded_at=v.recorded_at,
                recorded_by=v.recorded_by,
            )
            for v in visits
        ]
    )


@router.post(
    "/cases/{case_id}/visits",
    tags=[CASES],
    summary="录入走访记录 / record a home visit",
    description="与 POST /actions 的 record_visit 相同：满足当期走访时限并生成下一期。",
    responses=problem_responses(Unauthorized, Forbidden, NotFound, Conflict, ValidationFailed),
)
async def post_visit(
    request: Request,
    principal: Caseworker,
    case_id: uuid.UUID,
    visit: schemas.VisitIn,
) -> schemas.CaseDetail:
    command = schemas.RecordVisit(action="record_visit", visit=visit)
    return await post_action(request, principal, case_id, command)


@router.get(
    "/cases/{case_id}/plan/suggestions",
    tags=[CASES],
    summary="按劳动能力与“三保障”缺口推荐帮扶措施 / measures suggested for the household",
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def get_suggestions(
    request: Request, principal: Caseworker, case_id: uuid.UUID
) -> schemas.SuggestionList:
    _require_reader(principal)
    ctx = _ctx(request)
    async with _uow(request).read() as session:
        case = await _case_in_scope(session, principal, case_id)
    labour = case.facts.get("labour_capacity")
    guarantees = case.facts.get("guarantees", {})
    insecure = [d for d in GUARANTEE_DIMENSIONS if guarantees.get(d) == "at_risk"]
    capacity: Literal["full", "weak", "none"] | None = (
        labour if labour in ("full", "weak", "none") else None
    )
    found = suggest(ctx.measures, labour=capacity, insecure=insecure)
    return schemas.SuggestionList(
        catalogue_version=ctx.measures.version,
        labour_capacity=capacity,
        insecure=list(insecure),
        items=[
            schemas.SuggestionRead(measure=_measure(s.measure), why_zh=s.why_zh, why_en=s.why_en)
            for s in found
        ],
    )


def _measure(measure: Measure) -> schemas.MeasureRead:
    return schemas.MeasureRead(
        code=measure.code,
        family=measure.family,
        name_zh=measure.name_zh,
        name_en=measure.name_en,
        for_labour=list(measure.for_labour),
        addresses=list(measure.addresses),
        gap_only=measure.gap_only,
        default_unit=measure.default_unit,
        citation=measure.citation,
    )


@router.get(
    "/measures",
    tags=[CASES],
    summary="帮扶措施目录 / the versioned catalogue of assistance measures",
)
async def get_measures(request: Request) -> schemas.MeasureCatalogueRead:
    catalogue = _ctx(request).measures
    return schemas.MeasureCatalogueRead(
        version=catalogue.version,
        source=catalogue.source,
        measures=[_measure(m) for m in catalogue.measures],
    )


# ------------------------------------------------------------------ helpers and deadlines


@router.get(
    "/helpers",
    tags=[HELPERS],
    summary="帮扶责任人及在办户数 / helpers and their workload",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_helpers(
    request: Request, principal: Caseworker, region: RegionQuery = None
) -> schemas.HelperList:
    _require_reader(principal)
    scope = _scope(principal, region)
    async with _uow(request).read() as session:
        rows = await HelperRepository(session).workload(scope)
    return schemas.HelperList(
        items=[
            schemas.HelperWorkload(
                helper_id=h.helper_id,
                name=h.name,
                phone=h.phone,
                unit=h.unit,
                region_code=h.region_code,
                active_cases=total,
                active_cases_in_region=inside,
            )
            for h, total, inside in rows
        ]
    )


@router.get(
    "/deadlines/overdue",
    tags=[DEADLINES],
    summary="辖区内已超期未完成的时限 / overdue deadlines in the caller's region",
    description="按超期时间排序；level 可筛选已升级到某一层级（village/township/county）的时限。",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_overdue(
    request: Request,
    principal: Caseworker,
    region: RegionQuery = None,
    level: Annotated[str | None, Query(pattern=r"^[a-z_]{1,12}$")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.OverdueList:
    _require_reader(principal)
    scope = _scope(principal, region)
    today = local_date(_ctx(request).clock.now())
    async with _uow(request).read() as session:
        rows, total = await CaseRepository(session).overdue_page(
            region=scope, level=level, page=page, size=size
        )
    return schemas.OverdueList(
        items=[
            schemas.OverdueDeadline(
                deadline_id=str(d.id),
                case_id=str(c.id),
                village_code=c.region_code,
                stage=c.stage,
                head_name=c.head_name,
                kind=d.kind,
                due=d.due_date,
                breached_at=d.breached_at,
                escalation_level=d.escalation_level,
                days_overdue=(today - d.due_date).days,
            )
            for d, c in rows
            if d.breached_at is not None
        ],
        total=total,
        page=page,
    )


# ------------------------------------------------------------------ calendar


@router.get(
    "/calendar/working-days",
    tags=[CALENDAR],
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
        raise calendar_unavailable(exc, "start") from None
    return schemas.WorkingDaysAnswer(start=start, days=days, due=due)


async def _override_list(session: AsyncSession, year: int | None) -> schemas.CalendarOverrideList:
    repo = CalendarRepository(session)
    overrides = await repo.overrides(year)
    declared = await repo.declarations()
    calendar = await service.load_calendar(session)
    return schemas.CalendarOverrideList(
        items=[
            schemas.CalendarOverrideRead(
                day=o.day,
                kind=o.kind,
                reason=o.reason,
                created_by=o.created_by,
                created_at=o.created_at,
            )
            for o in overrides
        ],
        declared_years=[
            schemas.CalendarYearRead(
                year=d.year, reason=d.reason, declared_by=d.declared_by, declared_at=d.declared_at
            )
            for d in declared
            if year is None or d.year == year
        ],
        official_years=sorted(calendar.official_years),
    )


@router.get(
    "/calendar/overrides",
    tags=[CALENDAR],
    summary="工作日历调整与已声明年度（管理员）/ calendar overrides and declared years (admin)",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_overrides(
    request: Request,
    principal: Caseworker,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> schemas.CalendarOverrideList:
    _require_admin(principal)
    async with _uow(request).read() as session:
        return await _override_list(session, year)


@router.post(
    "/calendar/overrides",
    tags=[CALENDAR],
    status_code=201,
    summary="录入节假日或调休调整（管理员）/ enter calendar overrides (admin)",
    description=(
        "逐日录入放假（holiday）或调休上班（workday）。`holidays` 库未收录的年份，"
        "须在录入该年全部放假与调休日的同时给出 declares_year，声明该年安排已完整录入，"
        "此后该年才可计算工作日（周一至周五加本表调整）；未声明的年份仍返回 422，不做推测。"
        "已录入的日期不能重复录入（409）；已计算的时限不会因此被静默改动。"
    ),
    responses=problem_responses(Unauthorized, Forbidden, Conflict, ValidationFailed),
)
async def create_overrides(
    request: Request, principal: Caseworker, body: schemas.CalendarOverridesCreate
) -> schemas.CalendarOverrideList:
    _require_admin(principal)
    days = [d.day for d in body.days]
    errors = []
    if len(set(days)) != len(days):
        errors.append(
            FieldError(
                "days", "override.duplicate_day", "同一日期只能录入一次", "a day is listed twice"
            )
        )
    if body.declares_year is not None:
        outside = sorted({d.year for d in days} - {body.declares_year})
        if outside:
            errors.append(
                FieldError(
                    "days",
                    "override.outside_year",
                    f"声明{body.declares_year}年时只能录入该年的日期",
                    f"a declaration of {body.declares_year} may only list days of that year",
                )
            )
        if not any(d.kind == "holiday" for d in body.days):
            # Every State Council notice gives days off; a declaration without any is a slip.
            errors.append(
                FieldError(
                    "days",
                    "override.no_holiday",
                    "声明年度安排须包含放假日期",
                    "a year's arrangement has days off",
                )
            )
    if errors:
        raise ValidationFailed(errors)
    now = _ctx(request).clock.now()
    async with _uow(request).transaction() as session:
        repo = CalendarRepository(session)
        taken = await repo.override_days(days)
        if taken:
            listed = ", ".join(sorted(o.day.isoformat() for o in taken))
            raise Conflict(
                f"overrides already exist for {listed}",
                detail_zh=f"以下日期已有调整记录：{listed}",
            )
        if body.declares_year is not None and await repo.declaration(body.declares_year):
            raise Conflict(
                f"{body.declares_year} is already declared",
                detail_zh=f"{body.declares_year}年已声明",
            )
        for given in body.days:
            session.add(
                CalendarOverrideRow(
                    day=given.day,
                    kind=given.kind,
                    reason=body.reason,
                    created_by=principal.sub,
                    created_at=now,
                )
            )
        if body.declares_year is not None:
            session.add(
                CalendarYearDeclaration(
                    year=body.declares_year,
                    reason=body.reason,
                    declared_by=principal.sub,
                    declared_at=now,
                )
            )
        await session.flush()
        return await _override_list(session, body.declares_year)

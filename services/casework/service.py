"""Casework's use cases: open cases, run the procedure, keep the clocks, sweep breaches.

Every change to a case goes through `_commit`: the entry's data (procedure facts, records,
clock operations) is applied to the case with the pure functions of `history.py` and then
appended to `case_event`.  The tables are the current state; the history can rebuild any
earlier one (`view_as_of`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import deadlines, elimination, history, schemas, workflow
from services.casework.deadlines import DeadlineKind, DeadlineRule, local_date
from services.casework.errors import ActionRefused, calendar_unavailable, invalid, refusal
from services.casework.history import ClockView
from services.casework.measures import (
    GUARANTEE_DIMENSIONS,
    GuaranteeDimension,
    MeasureCatalogue,
    load_measure_catalogue,
)
from services.casework.models import (
    Case,
    CaseDeadline,
    CaseEvent,
    CaseVisit,
    Helper,
    HelperAssignment,
    PlanItem,
)
from services.casework.procedure import (
    SYSTEM_ROLE,
    Operation,
    ProcedureTemplate,
    ProcedureTemplates,
    allowed_operations,
    check_operation,
    load_procedure_templates,
)
from services.casework.repository import CalendarRepository, CaseRepository, HelperRepository
from services.casework.visits import VISITOR_ROLES, kinds_met_by, quota_met
from services.casework.visits import last_period_met as visits_last_period_met
from services.casework.workdays import CalendarOverride, CalendarUnavailable, WorkingCalendar
from services.casework.workflow import Action, IllegalTransition, Stage
from shared.auth import Principal
from shared.clock import Clock
from shared.contracts.casework import (
    CaseIncludedV1,
    CaseOpenedV1,
    DeadlineBreachedV1,
    DeadlineV1,
    HelperAssignedV1,
    RiskEliminatedV1,
    StageChangedV1,
)
from shared.contracts.common import SourceRefV1
from shared.contracts.envelope import Payload
from shared.contracts.screening import RiskAssessedV1
from shared.logs import correlation_id as current_correlation_id
from shared.messaging.outbox import Outbox, Staged
from shared.problems import NotFound
from shared.regions import in_scope

SYSTEM = SYSTEM_ROLE
_OPERATIONS = frozenset(op.value for op in Operation)
# The statutory minimum publicity [002:42], for a policy that carries no publicity rule.
_STATUTORY_PUBLICITY_DAYS = 5
# Bounds the catch-up of recurring clocks (e.g. a year of weekly visits recorded late).
_MAX_CATCH_UP_PERIODS = 120


@dataclass(frozen=True)
class CaseworkContext:
    """What casework's use cases need besides the session."""

    outbox: Outbox
    clock: Clock
    templates: ProcedureTemplates = field(default_factory=load_procedure_templates)
    measures: MeasureCatalogue = field(default_factory=load_measure_catalogue)


# ------------------------------------------------------------------ calendar and policies


async def load_calendar(session: AsyncSession) -> WorkingCalendar:
    """Return the official working-day calendar with the admin's overrides and declarations.

    A year the `holidays` package does not carry becomes official only when an admin has
    declared it complete (`CalendarYearDeclaration`, posted with the year's days): nothing
    short of an explicit "this year is fully entered" turns weekends-only into law.
    """
    repo = CalendarRepository(session)
    overrides = [
        CalendarOverride(
            day=r.day, kind="workday" if r.kind == "workday" else "holiday", reason=r.reason
        )
        for r in await repo.overrides()
    ]
    declared = [d.year for d in await repo.declarations()]
    return WorkingCalendar(overrides=overrides, extra_official_years=declared)


def policy_of(case: Case) -> deadlines.DeadlinePolicy:
    """Return the deadline policy bound to a case when it opened."""
    return deadlines.DeadlinePolicy.model_validate(case.deadline_policy)


def template_of(case: Case, templates: ProcedureTemplates) -> ProcedureTemplate:
    """Return the procedure template bound to a case (its region's, for older cases)."""
    if case.workflow is None:
        return templates.for_region(case.region_code)
    return ProcedureTemplate.model_validate(case.workflow)


def _period(rule: DeadlineRule, day: date) -> tuple[date, date]:
    unit = rule.unit
    if unit == "calendar_days" or unit == "working_days":
        raise ValueError(f"{rule.kind} is not a calendar-period rule")
    return deadlines.period_of(day, unit)


def _qualifying_dates(kind: str, visits: Iterable[CaseVisit]) -> list[date]:
    """Return the dates of visits made by a role that counts towards a visit clock."""
    roles = {role for role in VISITOR_ROLES if kind in kinds_met_by(role)}
    return [v.visited_on for v in visits if v.visitor_role in roles]


# ------------------------------------------------------------------ clocks


class ClockBook:
    """A case's clocks during one change: operations are applied as they are decided."""

    def __init__(self, rows: Iterable[CaseDeadline], at: datetime) -> None:
        self.rows = {str(r.id): r for r in rows}
        self.views = {key: clock_view(row) for key, row in self.rows.items()}
        self.ops: list[dict[str, Any]] = []
        self.at = at

    def do(self, op: dict[str, Any]) -> None:
        """Apply one operation to the views and keep it for the history entry."""
        history.apply_clock_ops(self.views, [op], self.at)
        self.ops.append(op)

    def owed(self, kind: str | None = None) -> list[ClockView]:
        """Return clocks still owed (running, paused or breached), optionally of one kind."""
        return [v for v in self.views.values() if v.owed and (kind is None or v.kind == kind)]

    def has_running(self, kind: str, due: date) -> bool:
        """Return whether a not-closed clock of this kind and due date exists."""
        return any(
            v.kind == kind and v.due_date == due and v.closed_at is None
            for v in self.views.values()
        )

    def write(self, session: AsyncSession, case_id: uuid.UUID) -> None:
        """Bring the rows in line with the views, adding the clocks started meanwhile."""
        for key, view in self.views.items():
            row = self.rows.get(key)
            if row is None:
                row = CaseDeadline(
                    id=uuid.UUID(key),
                    case_id=case_id,
                    kind=view.kind,
                    bound=view.bound,
                    started_at=view.started_at,
                    citation=view.citation,
                    due_date=view.due_date,
                    due_at=deadlines.due_instant(view.due_date),
                )
                session.add(row)
                self.rows[key] = row
            _sync_row(row, view)


def clock_view(row: CaseDeadline) -> ClockView:
    """Return a stored clock in the shape the history fold uses."""
    return ClockView(
        id=str(row.id),
        kind=row.kind,
        bound=row.bound,
        due_date=row.due_date,
        started_at=row.started_at,
        citation=row.citation,
        met_at=row.met_at,
        breached_at=row.breached_at,
        escalation_level=row.escalation_level,
        escalate_at=row.escalate_at,
        paused_at=row.paused_at,
        closed_at=row.closed_at,
    )


def _sync_row(row: CaseDeadline, view: ClockView) -> None:
    # Assign only what changed, so an untouched clock is not rewritten.
    updates: dict[str, Any] = {
        "due_date": view.due_date,
        "due_at": deadlines.due_instant(view.due_date),
        "met_at": view.met_at,
        "breached_at": view.breached_at,
        "escalation_level": view.escalation_level,
        "escalate_at": view.escalate_at,
        "paused_at": view.paused_at,
        "closed_at": view.closed_at,
    }
    for name, value in updates.items():
        if getattr(row, name) != value:
            setattr(row, name, value)


def start_clocks(
    case: Case,
    book: ClockBook,
    *,
    event: deadlines.StartEvent,
    calendar: WorkingCalendar,
    labels: Sequence[str] | None = None,
    visits: Sequence[CaseVisit] = (),
) -> list[ClockView]:
    """Start the clocks this event starts under the case's own policy; return them."""
    at = book.at
    chosen = list(case.facts.get("labels", [])) if labels is None else list(labels)
    started = []
    for rule in policy_of(case).rules_starting_on(event):
        if rule.applies_to is not None and rule.applies_to not in chosen:
            continue
        if rule.bound == "recurring":
            # Visits already made (e.g. before a reopening) count towards the first period.
            met = visits_last_period_met(rule, _qualifying_dates(rule.kind, visits))
            due = deadlines.next_recurring_due(rule, last_met=met, started=local_date(at))
        else:
            due = deadlines.due_date(rule, at, calendar)
        if book.has_running(rule.kind, due):
            continue
        clock_id = str(uuid.uuid4())
        book.do(
            history.op_start(
                clock_id=clock_id,
                kind=rule.kind.value,
                bound=rule.bound,
                due=due,
                citation=rule.citation,
            )
        )
        started.append(book.views[clock_id])
    return started


def _next_recurring(
    book: ClockBook, rule: DeadlineRule, *, after: date, visits: Sequence[CaseVisit]
) -> None:
    """Start the clock of the period after `after`, catching up periods already visited."""
    qualifying = _qualifying_dates(rule.kind, visits)
    today = local_date(book.at)
    last = after
    for _ in range(_MAX_CATCH_UP_PERIODS):
        due = deadlines.next_recurring_due(rule, last_met=last, started=last)
        if book.has_running(rule.kind, due):
            return
        clock_id = str(uuid.uuid4())
        book.do(
            history.op_start(
                clock_id=clock_id,
                kind=rule.kind.value,
                bound=rule.bound,
                due=due,
                citation=rule.citation,
            )
        )
        first, _ = _period(rule, due)
        if first > today or not quota_met(rule, qualifying, due):
            return
        book.do(history.op_meet(clock_id))
        last = due


def _meet(book: ClockBook, kind: DeadlineKind) -> None:
    """Mark every owed clock of a kind met (a late step still meets a breached clock)."""
    for view in book.owed(kind.value):
        book.do(history.op_meet(view.id))


def _close_owed(book: ClockBook) -> None:
    """End every owed clock: minimums that ran their course are met, the rest lapse."""
    for view in book.owed():
        if view.bound == "minimum":
            book.do(history.op_meet(view.id))
        else:
            book.do(history.op_close(view.id))


# ------------------------------------------------------------------ history


def record(
    session: AsyncSession,
    case: Case,
    *,
    at: datetime,
    actor: str,
    actor_role: str,
    action: str,
    to_stage: str,
    from_stage: str | None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> CaseEvent:
    """Append one entry to the case history."""
    entry = CaseEvent(
        case_id=case.id,
        at=at,
        actor=actor,
        actor_role=actor_role,
        action=action,
        from_stage=from_stage,
        to_stage=to_stage,
        reason=reason,
        data=data or {},
    )
    session.add(entry)
    return entry


def _commit(
    session: AsyncSession,
    case: Case,
    book: ClockBook,
    *,
    actor: str,
    actor_role: str,
    action: str,
    to_stage: str,
    reason: str | None,
    data: dict[str, Any],
) -> CaseEvent:
    """Apply an entry to the case and its clocks, then append it to the history."""
    at = book.at
    from_stage = case.stage
    if book.ops:
        data = {**data, "clocks": list(book.ops)}
    if action in history.CLOCK_ONLY_ACTIONS:
        # The sweeper touches clocks only; leaving the case row alone keeps its version, so
        # a caseworker's concurrent action is never refused because of a sweep.
        to_stage = case.stage
    else:
        case.facts = history.apply_facts(case.facts, action, data)
        case.stage = to_stage
        if data.get("closes_case"):
            case.closed_at = at
        case.updated_at = at
    book.write(session, case.id)
    return record(
        session,
        case,
        at=at,
        actor=actor,
        actor_role=actor_role,
        action=action,
        from_stage=from_stage,
        to_stage=to_stage,
        reason=reason,
        data=data,
    )


def _correlation() -> uuid.UUID | None:
    value = current_correlation_id.get()
    try:
        return None if value is None else uuid.UUID(value)
    except ValueError:
        return None


async def _publish(
    session: AsyncSession,
    ctx: CaseworkContext,
    case: Case,
    payload: Payload,
    *,
    at: datetime,
    correlation_id: uuid.UUID | None = None,
    causation_id: uuid.UUID | None = None,
) -> None:
    await ctx.outbox.add(
        session,
        payload,
        subject_key=str(case.household_id),
        occurred_at=at,
        now=at,
        correlation_id=correlation_id or _correlation(),
        causation_id=causation_id,
    )


async def _publish_all(
    session: AsyncSession,
    ctx: CaseworkContext,
    events: Sequence[tuple[Case, Payload]],
    *,
    at: datetime,
) -> None:
    """Stage several events in one statement, relayed in the order given."""
    correlation = _correlation()
    await ctx.outbox.add_many(
        session,
        [
            Staged(
                payload=payload,
                subject_key=str(case.household_id),
                occurred_at=at,
                correlation_id=correlation,
            )
            for case, payload in events
        ],
        now=at,
    )


# ------------------------------------------------------------------ opening and new risks


def _merge_sources(
    existing: list[dict[str, Any]], new: tuple[SourceRefV1, ...]
) -> list[dict[str, Any]]:
    merged = list(existing)
    seen = {tuple(sorted(s.items())) for s in existing}
    for src in new:
        item = src.model_dump(exclude_none=True)
        key = tuple(sorted(item.items()))
        if key not in seen:
            seen.add(key)
            merged.append(item)
    return merged


def _stage_changed(case: Case, *, from_stage: str, at: datetime, actor: str) -> StageChangedV1:
    return StageChangedV1(
        case_id=case.id,
        household_id=case.household_id,
        from_stage=from_stage,
        to_stage=case.stage,
        changed_at=at,
        actor=actor,
        sources=tuple(SourceRefV1.model_validate(s) for s in case.sources),
    )


@dataclass(frozen=True, slots=True)
class Assessed:
    """A risk assessment to apply, with the ids of the event that carried it."""

    assessed: RiskAssessedV1
    correlation_id: uuid.UUID
    causation_id: uuid.UUID


@dataclass(slots=True)
class _Opening:
    """A case opened by the batch, whose rows are written when the batch next touches the DB."""

    case: Case
    book: ClockBook
    data: dict[str, Any]
    event: Staged


class _Openings:
    """New cases of a batch, held back so the cases go in by one statement, then their rows.

    Cases carry no relationship() to their clocks and history, so the unit of work would not
    order their INSERTs: the case rows are flushed first, on their own, then the rest.
    """

    def __init__(self, session: AsyncSession, ctx: CaseworkContext) -> None:
        self.session = session
        self.ctx = ctx
        self.held: list[_Opening] = []
        self._calendar: WorkingCalendar | None = None
        self._dumps: dict[int, dict[str, Any]] = {}

    async def calendar(self) -> WorkingCalendar:
        if self._calendar is None:
            self._calendar = await load_calendar(self.session)
        return self._calendar

    def dump(self, model: Any) -> dict[str, Any]:
        """The JSON of a policy or template, built once per batch (cases only read it)."""
        found = self._dumps.get(id(model))
        if found is None:
            found = self._dumps[id(model)] = model.model_dump(mode="json")
        return found

    async def write(self) -> None:
        """Write the held cases, then their clocks, history and events, in arrival order."""
        if not self.held:
            return
        held, self.held = self.held, []
        self.session.add_all(o.case for o in held)
        await self.session.flush()
        for o in held:
            o.book.write(self.session, o.case.id)
            record(
                self.session,
                o.case,
                at=o.case.opened_at,
                actor=SYSTEM,
                actor_role=SYSTEM,
                action="open",
                from_stage=None,
                to_stage=Stage.OPENED.value,
                data=o.data,
            )
        await self.ctx.outbox.add_many(
            self.session, [o.event for o in held], now=held[-1].case.opened_at
        )


async def on_risk_assessed(
    session: AsyncSession,
    ctx: CaseworkContext,
    assessed: RiskAssessedV1,
    *,
    correlation_id: uuid.UUID,
    causation_id: uuid.UUID,
) -> Case | None:
    """Open a case for an assessment that calls for one, or add the evidence to the live case.

    A household whose risk was eliminated still has its (open) case; a new risk reopens its
    monitoring there.  Cases that were closed (not included, exited) stay closed and a new
    case opens, because their procedure ended.
    """
    (case,) = await on_risk_assessed_many(
        session, ctx, [Assessed(assessed, correlation_id, causation_id)]
    )
    return case


async def on_risk_assessed_many(
    session: AsyncSession, ctx: CaseworkContext, items: Sequence[Assessed]
) -> list[Case | None]:
    """Apply assessments in order, as `on_risk_assessed` one after another would.

    The live cases of the batch's households are read (and locked) by one statement, the
    calendar once, and the cases opened go in together.
    """
    repo = CaseRepository(session)
    live = await repo.open_for_households([i.assessed.household_id for i in items])
    openings = _Openings(session, ctx)
    out: list[Case | None] = []
    for item in items:
        assessed = item.assessed
        case = live.get(assessed.household_id)
        if case is not None:
            # Evidence reads the case's clocks: cases opened earlier in the batch go in first.
            await openings.write()
            await _add_evidence(session, ctx, case, item)
        elif assessed.opens_case:
            case = live[assessed.household_id] = await _open_case(openings, item)
        out.append(case)
    await openings.write()
    return out


async def _add_evidence(
    session: AsyncSession, ctx: CaseworkContext, case: Case, item: Assessed
) -> None:
    assessed = item.assessed
    now = ctx.clock.now()
    new_sources = _merge_sources(case.sources, assessed.sources)
    added = new_sources[len(case.sources) :]
    case.sources = new_sources
    case.score, case.level = assessed.score, assessed.level
    case.reasons = [r.model_dump() for r in assessed.reasons]
    case.review_flags = [r.model_dump() for r in assessed.review_flags]
    data: dict[str, Any] = {
        "assessment_id": str(assessed.assessment_id),
        "score": assessed.score,
        "level": assessed.level,
        "sources": added,
    }
    if case.stage not in _INCLUDED_STAGES:
        # Until the county decides, the categories follow screening; afterwards they
        # are the county's decision and only a new inclusion changes them.
        case.categories = list(assessed.categories)
        data["categories"] = list(assessed.categories)
    book = ClockBook(await CaseRepository(session).clocks_for_update(case.id), now)
    _commit(
        session,
        case,
        book,
        actor=SYSTEM,
        actor_role=SYSTEM,
        action="evidence_added",
        to_stage=case.stage,
        reason=None,
        data=data,
    )
    if case.stage == Stage.RISK_ELIMINATED and assessed.opens_case:
        await _reopen_for_new_risk(
            session,
            ctx,
            case,
            assessed,
            correlation_id=item.correlation_id,
            causation_id=item.causation_id,
        )


_INCLUDED_STAGES = frozenset(
    {
        Stage.MONITORING,
        Stage.ASSISTANCE,
        Stage.RISK_ELIMINATION,
        Stage.RISK_ELIMINATED,
        Stage.EXITED,
    }
)


async def _open_case(openings: _Openings, item: Assessed) -> Case:
    assessed = item.assessed
    now = openings.ctx.clock.now()
    calendar = await openings.calendar()
    policy = deadlines.load_default_deadline_policy()
    template = openings.ctx.templates.for_region(assessed.village_code)
    sources = _merge_sources([], assessed.sources)
    case = Case(
        id=uuid.uuid4(),
        household_id=assessed.household_id,
        episode_id=assessed.episode_id,
        region_code=assessed.village_code,
        stage=Stage.OPENED.value,
        opened_at=now,
        head_name=assessed.head.name if assessed.head else None,
        head_id_masked=assessed.head.id_masked if assessed.head else None,
        score=assessed.score,
        level=assessed.level,
        categories=list(assessed.categories),
        reasons=[r.model_dump() for r in assessed.reasons],
        review_flags=[r.model_dump() for r in assessed.review_flags],
        sources=sources,
        deadline_policy=openings.dump(policy),
        workflow=openings.dump(template),
        facts={},
        updated_at=now,
        closed_at=None,
    )
    book = ClockBook([], now)
    clocks = start_clocks(case, book, event="case_opened", calendar=calendar, labels=[])
    data: dict[str, Any] = {
        "assessment_id": str(assessed.assessment_id),
        "score": assessed.score,
        "level": assessed.level,
        "categories": list(assessed.categories),
        "sources": sources,
        "must_verify": assessed.must_verify,
        "procedure": history.procedure_record(workflow.CaseFacts(stage=Stage.OPENED)),
        "clocks": list(book.ops),
        "procedure_template": f"{template.name}@{template.version}",
    }
    case.facts = history.apply_facts({}, "open", data)
    event = Staged(
        payload=CaseOpenedV1(
            case_id=case.id,
            episode_id=case.episode_id,
            household_id=case.household_id,
            village_code=case.region_code,
            opened_at=now,
            sources=tuple(SourceRefV1.model_validate(s) for s in case.sources),
            deadlines=tuple(DeadlineV1(kind=c.kind, due=c.due_date) for c in clocks),
        ),
        subject_key=str(case.household_id),
        occurred_at=now,
        correlation_id=item.correlation_id,
        causation_id=item.causation_id,
    )
    openings.held.append(_Opening(case, book, data, event))
    return case


async def _reopen_for_new_risk(
    session: AsyncSession,
    ctx: CaseworkContext,
    case: Case,
    assessed: RiskAssessedV1,
    *,
    correlation_id: uuid.UUID,
    causation_id: uuid.UUID,
) -> None:
    repo = CaseRepository(session)
    now = ctx.clock.now()
    template = template_of(case, ctx.templates)
    facts = history.procedure_facts(case.facts, case.stage)
    try:
        after = workflow.advance(
            template.workflow(),
            facts,
            Action.REOPEN,
            actor_role=SYSTEM,
            today=local_date(now),
            publicity_min_days=_STATUTORY_PUBLICITY_DAYS,
        )
    except IllegalTransition:
        # The region's template does not let the system reopen: a caseworker decides.
        return
    book = ClockBook(await repo.clocks_for_update(case.id), now)
    await _start_monitoring(session, case, book, labels=None)
    from_stage = case.stage
    _commit(
        session,
        case,
        book,
        actor=SYSTEM,
        actor_role=SYSTEM,
        action=Action.REOPEN.value,
        to_stage=after.stage.value,
        reason=f"新的风险评估（{assessed.score}分，{assessed.level}）/ new risk assessed",
        data={
            "procedure": history.procedure_record(after),
            "assessment_id": str(assessed.assessment_id),
        },
    )
    await _publish(
        session,
        ctx,
        case,
        _stage_changed(case, from_stage=from_stage, at=now, actor=SYSTEM),
        at=now,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )


async def _start_monitoring(
    session: AsyncSession,
    case: Case,
    book: ClockBook,
    *,
    labels: Sequence[str] | None,
    calendar: WorkingCalendar | None = None,
) -> None:
    """Start the visit clocks a monitored household is owed (§6.2 D4-D7, D10, D11)."""
    if calendar is None:
        calendar = await load_calendar(session)
    visits = await CaseRepository(session).visits(case.id)
    for event in ("monitoring_started", "care_started"):
        start_clocks(case, book, event=event, calendar=calendar, labels=labels, visits=visits)


# ------------------------------------------------------------------ the procedure


@dataclass
class _Change:
    """What one action decided, before it is committed."""

    to_stage: str
    data: dict[str, Any]
    events: list[Payload] = field(default_factory=list)
    # The applicant-visible reason carried on stage_changed (not-included decisions only).
    public_reason: str | None = None


async def act(
    session: AsyncSession,
    ctx: CaseworkContext,
    *,
    case_id: uuid.UUID,
    principal: Principal,
    command: schemas.ActionRequest,
) -> Case:
    """Perform one procedure action or case-keeping operation for a caseworker."""
    repo = CaseRepository(session)
    case = await repo.get_for_update(case_id)
    # Outside the caller's region reads as absent: existence is not leaked.
    if case is None or not in_scope(principal.region, case.region_code):
        raise NotFound("no such case in your region", detail_zh="您的辖区内没有该案件")
    if command.expected_version is not None and command.expected_version != case.version:
        raise ActionRefused(
            "version_conflict",
            f"案件已被他人更新（当前版本{case.version}），请刷新后重试。",
            f"The case changed meanwhile (now version {case.version}); reload and retry.",
        )
    if case.closed_at is not None:
        raise ActionRefused(
            "case_closed",
            "案件已结案，不能再办理；新的风险将新建案件。",
            "The case is closed; a new risk opens a new case.",
        )
    now = ctx.clock.now()
    book = ClockBook(await repo.clocks_for_update(case.id), now)
    from_stage = case.stage
    try:
        if command.action in _OPERATIONS:
            template = template_of(case, ctx.templates)
            check_operation(template, Stage(case.stage), Operation(command.action), principal.role)
            change = await _operate(session, ctx, case, book, principal, command)
        else:
            change = await _advance(session, ctx, case, book, principal, command)
    except IllegalTransition as error:
        raise refusal(error) from None
    except CalendarUnavailable as error:
        raise calendar_unavailable(error) from None
    _commit(
        session,
        case,
        book,
        actor=principal.sub,
        actor_role=principal.role,
        action=command.action,
        to_stage=change.to_stage,
        reason=command.reason,
        data=change.data,
    )
    if case.stage != from_stage:
        changed = _stage_changed(case, from_stage=from_stage, at=now, actor=principal.sub)
        if change.public_reason is not None:
            changed = changed.model_copy(update={"reason": change.public_reason})
        await _publish(session, ctx, case, changed, at=now)
    for payload in change.events:
        await _publish(session, ctx, case, payload, at=now)
    await session.flush()
    return case


def _publicity_min_days(case: Case, book: ClockBook) -> int:
    """Return the publicity minimum in calendar days, as the state machine counts it."""
    try:
        rule = policy_of(case).rule(DeadlineKind.PUBLICITY_MIN)
    except KeyError:
        return _STATUTORY_PUBLICITY_DAYS
    if rule.unit == "calendar_days":
        return rule.length
    # A working-day minimum: the running publicity's clock knows its first allowed day.
    clocks = [v for v in book.views.values() if v.kind == DeadlineKind.PUBLICITY_MIN.value]
    if not clocks:
        return rule.length
    latest = max(clocks, key=lambda v: v.started_at)
    return (latest.due_date - local_date(latest.started_at)).days


async def shortfalls(
    session: AsyncSession, case: Case, template: ProcedureTemplate, today: date
) -> tuple[workflow.Shortfall, ...]:
    """Return the risk-elimination criteria the case does not meet today."""
    repo = CaseRepository(session)
    incomes = [
        elimination.IncomeReading(v.visited_on, v.income_per_capita)
        for v in await repo.visits(case.id)
        if v.income_per_capita is not None
    ]
    verification = case.facts.get("verification")
    if verification:
        incomes.append(
            elimination.IncomeReading(
                date.fromisoformat(verification["visited_on"]),
                Decimal(str(verification["verified_income_per_capita"])),
            )
        )
    return elimination.evaluate(
        template.elimination,
        today=today,
        incomes=incomes,
        guarantees=dict(case.facts.get("guarantees", {})),
        plan_statuses=[item.status for item in await repo.plan_items(case.id)],
    )


async def _advance(
    session: AsyncSession,
    ctx: CaseworkContext,
    case: Case,
    book: ClockBook,
    principal: Principal,
    command: schemas.ActionRequest,
) -> _Change:
    """Run one procedure action through the state machine and record what it brings."""
    action = Action(command.action)
    template = template_of(case, ctx.templates)
    today = local_date(book.at)
    facts = history.procedure_facts(case.facts, case.stage)
    if isinstance(command, schemas.RecordCrosscheck):
        pending = sum(1 for r in command.results if r.result == "pending")
        facts = replace(facts, crosscheck_departments_pending=pending)
    if action in (Action.PROPOSE_ELIMINATION, Action.CONFIRM_ELIMINATION):
        found = await shortfalls(session, case, template, today)
        facts = replace(facts, elimination_shortfalls=found)
    after = workflow.advance(
        template.workflow(),
        facts,
        action,
        actor_role=principal.role,
        today=today,
        publicity_min_days=_publicity_min_days(case, book),
    )
    change = _Change(after.stage.value, {"procedure": history.procedure_record(after)})
    data = change.data
    # The calendar is two queries: only the actions that start clocks load it.
    match command:
        case schemas.RecordVerification():
            data["verification"] = command.verification.model_dump(mode="json")
        case schemas.RecordCrosscheck():
            data["crosscheck"] = [r.model_dump(mode="json") for r in command.results]
        case schemas.RecordAppraisal():
            data["appraisal"] = command.appraisal.model_dump(mode="json")
        case schemas.StartPublicity():
            data["publicity"] = {
                "started_on": today.isoformat(),
                "stage": case.stage,
                "location": command.location,
            }
            calendar = await load_calendar(session)
            start_clocks(case, book, event="publicity_started", calendar=calendar)
        case schemas.FileObjection():
            number = len(case.facts.get("objections", [])) + 1
            data["objection"] = {
                "no": number,
                **command.objection.model_dump(mode="json"),
                "filed_on": today.isoformat(),
            }
        case schemas.ResolveObjection():
            _require_open_objection(case, command.objection_no)
            data["resolution"] = {
                "no": command.objection_no,
                "resolution": command.resolution,
                "upheld": command.upheld,
                "resolved_on": today.isoformat(),
            }
        case schemas.EndPublicity():
            _meet(book, DeadlineKind.PUBLICITY_MIN)
        case schemas.CountyInclude():
            await _include(session, ctx, case, book, command, change, await load_calendar(session))
        case schemas.CountyReject():
            _meet(book, DeadlineKind.IDENTIFICATION)
            _close_owed(book)
            data["closes_case"] = True
            data["applicant_reason"] = command.applicant_reason
            change.public_reason = command.applicant_reason
        case schemas.AssignHelper():
            await _assign_helper(session, case, book, principal, command, change)
        case schemas.RecordPlan():
            _record_plan(session, ctx, case, book, principal, command, change)
        case schemas.ConfirmElimination():
            _close_owed(book)
            change.events.append(
                RiskEliminatedV1(
                    case_id=case.id, household_id=case.household_id, eliminated_at=book.at
                )
            )
        case schemas.ExitMonitoring():
            _close_owed(book)
            data["closes_case"] = True
            await _end_assignment(session, case, book.at)
        case schemas.Reopen():
            await _start_monitoring(session, case, book, labels=None)
        case _:
            pass
    return change


def _require_open_objection(case: Case, number: int) -> None:
    for objection in case.facts.get("objections", []):
        if objection.get("no") == number and objection.get("open"):
            return
    raise ActionRefused(
        "objection_not_open",
        f"第{number}号异议不存在或已办结。",
        f"Objection no. {number} does not exist or is already resolved.",
    )


async def _include(
    session: AsyncSession,
    ctx: CaseworkContext,
    case: Case,
    book: ClockBook,
    command: schemas.CountyInclude,
    change: _Change,
    calendar: WorkingCalendar,
) -> None:
    """Approve inclusion: meet identification, start the inclusion and monitoring clocks."""
    del ctx
    labels = list(command.labels)
    change.data["categories"] = list(command.categories)
    change.data["labels"] = labels
    _meet(book, DeadlineKind.IDENTIFICATION)
    start_clocks(case, book, event="included", calendar=calendar, labels=labels)
    await _start_monitoring(session, case, book, labels=labels, calendar=calendar)
    if _insecure(case.facts.get("guarantees", {})):
        # A gap verification found becomes a monitored household's problem to clear (D13).
        start_clocks(case, book, event="problem_found", calendar=calendar, labels=labels)
    change.events.append(
        CaseIncludedV1(
            case_id=case.id,
            household_id=case.household_id,
            categories=tuple(command.categories),
            included_at=book.at,
        )
    )
    case.categories = list(command.categories)


def _insecure(guarantees: dict[str, str]) -> list[GuaranteeDimension]:
    return [d for d in GUARANTEE_DIMENSIONS if guarantees.get(d) == "at_risk"]


async def _end_assignment(session: AsyncSession, case: Case, at: datetime) -> None:
    current = await CaseRepository(session).current_assignment(case.id)
    if current is not None:
        current[0].ended_at = at


async def _assign_helper(
    session: AsyncSession,
    case: Case,
    book: ClockBook,
    principal: Principal,
    command: schemas.AssignHelper,
    change: _Change,
) -> None:
    """Name the responsible helper (a reassignment ends the previous one)."""
    given = command.helper
    now = book.at
    helper = await HelperRepository(session).get(given.helper_id)
    if helper is None:
        helper = Helper(
            helper_id=given.helper_id,
            region_code=given.region_code or case.region_code,
            created_at=now,
            name=given.name,
            phone=given.phone,
            unit=given.unit,
            updated_at=now,
        )
        session.add(helper)
    else:
        helper.name, helper.phone, helper.unit = given.name, given.phone, given.unit
        if given.region_code:
            helper.region_code = given.region_code
        helper.updated_at = now
    await _end_assignment(session, case, now)
    await session.flush()
    session.add(
        HelperAssignment(
            id=uuid.uuid4(),
            case_id=case.id,
            helper_id=given.helper_id,
            assigned_at=now,
            assigned_by=principal.sub,
        )
    )
    change.data["helper"] = {
        "helper_id": given.helper_id,
        "name": given.name,
        "phone": given.phone,
        "unit": given.unit,
        "assigned_at": now.isoformat(),
    }
    _meet(book, DeadlineKind.HELPER_ASSIGNMENT)
    change.events.append(
        HelperAssignedV1(
            case_id=case.id, helper_id=given.helper_id, helper_name=given.name, assigned_at=now
        )
    )


def _record_plan(
    session: AsyncSession,
    ctx: CaseworkContext,
    case: Case,
    book: ClockBook,
    principal: Principal,
    command: schemas.RecordPlan,
    change: _Change,
) -> None:
    """Add 一户一策 measures from the catalogue; the first plan meets its clock (D3)."""
    catalogue = ctx.measures
    items = []
    for index, given in enumerate(command.items):
        measure = catalogue.get(given.measure_code)
        if measure is None:
            raise invalid(
                f"items.{index}.measure_code",
                "measure.unknown",
                f"帮扶措施目录（{catalogue.version}版）中没有「{given.measure_code}」",
                f"{given.measure_code!r} is not in measure catalogue {catalogue.version}",
            )
        item = PlanItem(
            id=uuid.uuid4(),
            case_id=case.id,
            measure_code=measure.code,
            family=measure.family,
            name_zh=measure.name_zh,
            catalogue_version=catalogue.version,
            responsible_unit=given.responsible_unit or measure.default_unit,
            status="planned",
            note=given.note,
            created_at=book.at,
            created_by=principal.sub,
            updated_at=book.at,
        )
        session.add(item)
        items.append(_plan_item_record(item))
    change.data["plan_items"] = items
    _meet(book, DeadlineKind.ASSISTANCE_PLAN)


def _plan_item_record(item: PlanItem) -> dict[str, Any]:
    return {
        "id": str(item.id),
        "measure_code": item.measure_code,
        "family": item.family,
        "name_zh": item.name_zh,
        "catalogue_version": item.catalogue_version,
        "responsible_unit": item.responsible_unit,
        "status": item.status,
        "note": item.note,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }


# ------------------------------------------------------------------ case-keeping operations


async def _operate(
    session: AsyncSession,
    ctx: CaseworkContext,
    case: Case,
    book: ClockBook,
    principal: Principal,
    command: schemas.ActionRequest,
) -> _Change:
    """Perform a case-keeping operation; the stage never moves."""
    del ctx
    change = _Change(case.stage, {})
    match command:
        case schemas.RecordVisit():
            await _record_visit(session, case, book, principal, command, change)
        case schemas.UpdatePlanItem():
            item = await CaseRepository(session).plan_item(case.id, command.item_id)
            if item is None:
                raise invalid(
                    "item_id",
                    "plan_item.unknown",
                    "该案件没有这项帮扶措施",
                    "the case has no such plan item",
                )
            change.data["plan_update"] = {
                "id": str(item.id),
                "from": item.status,
                "status": command.status,
                "note": command.note,
            }
            item.status, item.note, item.updated_at = command.status, command.note, book.at
        case schemas.PauseDeadline() | schemas.ResumeDeadline() | schemas.ExtendDeadline():
            await _adjust_deadline(session, case, book, command, change)
        case _:
            raise AssertionError(f"not an operation: {command.action}")
    return change


async def _record_visit(
    session: AsyncSession,
    case: Case,
    book: ClockBook,
    principal: Principal,
    command: schemas.RecordVisit,
    change: _Change,
) -> None:
    """Store a visit; it meets the visit clocks of its period and may start or clear D13."""
    given = command.visit
    today = local_date(book.at)
    if given.visited_on > today:
        raise invalid(
            "visit.visited_on",
            "visit.future",
            "走访日期不能晚于今天",
            "a visit cannot be dated ahead",
        )
    if given.visited_on < local_date(case.opened_at):
        raise invalid(
            "visit.visited_on",
            "visit.before_case",
            "走访日期早于案件受理日期",
            "the visit predates the case",
        )
    visit = CaseVisit(
        id=uuid.uuid4(),
        case_id=case.id,
        visited_on=given.visited_on,
        visitor_name=given.visitor_name,
        visitor_role=given.visitor_role,
        helper_id=given.helper_id,
        findings=given.findings,
        income_per_capita=given.income_per_capita,
        guarantees=None if given.guarantees is None else given.guarantees.model_dump(),
        recorded_at=book.at,
        recorded_by=principal.sub,
    )
    session.add(visit)
    change.data["visit"] = {"id": str(visit.id), **given.model_dump(mode="json")}
    visits = [*await CaseRepository(session).visits(case.id), visit]
    policy = policy_of(case)
    for view in list(book.owed()):
        if view.bound != "recurring" or view.kind not in kinds_met_by(given.visitor_role):
            continue
        rule = policy.rule(DeadlineKind(view.kind))
        first, last = _period(rule, view.due_date)
        if first <= given.visited_on <= last and quota_met(
            rule, _qualifying_dates(view.kind, visits), given.visited_on
        ):
            book.do(history.op_meet(view.id))
            _next_recurring(book, rule, after=view.due_date, visits=visits)
    if given.guarantees is not None:
        gaps = _insecure(given.guarantees.model_dump())
        problems = book.owed(DeadlineKind.GUARANTEE_PROBLEM_CLEARANCE.value)
        if gaps and not problems:
            start_clocks(case, book, event="problem_found", calendar=await load_calendar(session))
        elif not gaps:
            _meet(book, DeadlineKind.GUARANTEE_PROBLEM_CLEARANCE)


async def _adjust_deadline(
    session: AsyncSession,
    case: Case,
    book: ClockBook,
    command: schemas.PauseDeadline | schemas.ResumeDeadline | schemas.ExtendDeadline,
    change: _Change,
) -> None:
    """Pause, resume or extend one statutory clock; each carries its reason in the history."""
    view = book.views.get(str(command.deadline_id))
    if view is None:
        raise invalid(
            "deadline_id", "deadline.unknown", "该案件没有这项时限", "the case has no such deadline"
        )
    if view.bound != "deadline" or not view.owed:
        raise ActionRefused(
            "deadline_not_adjustable",
            "只有尚未完成的期限类时限可以暂停、恢复或延长（最短公示期与周期性走访不可调整）。",
            "Only an unmet deadline can be paused, resumed or extended "
            "(minimum durations and recurring visits cannot).",
        )
    if view.breached_at is not None:
        raise ActionRefused(
            "deadline_breached",
            f"该时限已于{local_date(view.breached_at).isoformat()}超期，超期记录不能事后调整。",
            "The deadline is already breached; a breach cannot be adjusted afterwards.",
        )
    try:
        rule = policy_of(case).rule(DeadlineKind(view.kind))
    except KeyError:
        rule = None
    unit = rule.unit if rule is not None else "calendar_days"
    if unit != "calendar_days" and unit != "working_days":
        raise ActionRefused(
            "deadline_not_adjustable",
            "按自然月、周或年计的时限不能暂停或延长。",
            "A deadline counted in calendar periods cannot be paused or extended.",
        )
    calendar = await load_calendar(session)
    today = local_date(book.at)
    match command:
        case schemas.PauseDeadline():
            if view.paused_at is not None:
                raise ActionRefused(
                    "deadline_paused", "该时限已暂停。", "The deadline is already paused."
                )
            book.do(history.op_pause(view.id))
        case schemas.ResumeDeadline():
            if view.paused_at is None:
                raise ActionRefused(
                    "deadline_not_paused", "该时限未暂停。", "The deadline is not paused."
                )
            paused_on = local_date(view.paused_at)
            due = view.due_date
            # The clock stood still from the pause day to the day before the resume.
            if today > paused_on:
                due = deadlines.apply_pauses(
                    due, [(paused_on, today - timedelta(days=1))], unit, calendar
                )
            book.do(history.op_resume(view.id, due, view.due_date))
        case schemas.ExtendDeadline():
            due = deadlines.extend(
                view.due_date, days=command.days, unit=command.unit, calendar=calendar
            )
            book.do(
                history.op_extend(view.id, due, view.due_date, days=command.days, unit=command.unit)
            )
    change.data["deadline"] = {"id": view.id, "kind": view.kind}


# ------------------------------------------------------------------ reading


async def allowed(
    session: AsyncSession,
    ctx: CaseworkContext,
    case: Case,
    principal: Principal,
    clocks: Sequence[CaseDeadline],
) -> list[tuple[str, str]]:
    """Return (action, Chinese label) the caller may take on the case now, given its clocks."""
    if case.closed_at is not None or not in_scope(principal.region, case.region_code):
        return []
    template = template_of(case, ctx.templates)
    today = local_date(ctx.clock.now())
    stage = Stage(case.stage)
    facts = history.procedure_facts(case.facts, case.stage)
    if stage in (Stage.ASSISTANCE, Stage.RISK_ELIMINATION):
        facts = replace(
            facts, elimination_shortfalls=await shortfalls(session, case, template, today)
        )
    book = ClockBook(clocks, ctx.clock.now())
    actions = workflow.allowed_actions(
        template.workflow(), facts, principal.role, today, _publicity_min_days(case, book)
    )
    operations = allowed_operations(template, stage, principal.role)
    return [(a.value, a.label_zh) for a in actions] + [(o.value, o.label_zh) for o in operations]


async def live_view(
    session: AsyncSession, case: Case, clocks: Sequence[CaseDeadline]
) -> history.CaseView:
    """Return the case as its tables and its clocks hold it, in the shape the history rebuilds."""
    repo = CaseRepository(session)
    current = await repo.current_assignment(case.id)
    helper = None
    if current is not None:
        assignment, person = current
        helper = {
            "helper_id": person.helper_id,
            "name": person.name,
            "phone": person.phone,
            "unit": person.unit,
            "assigned_at": assignment.assigned_at.isoformat(),
        }
    return history.CaseView(
        stage=case.stage,
        opened_at=case.opened_at,
        facts=dict(case.facts),
        categories=list(case.categories),
        score=case.score,
        level=case.level,
        clocks={str(c.id): clock_view(c) for c in clocks},
        helper=helper,
        plan={str(i.id): _plan_item_record(i) for i in await repo.plan_items(case.id)},
        closed_at=case.closed_at,
        sources=list(case.sources),
    )


def entries_of(rows: Iterable[CaseEvent]) -> list[history.Entry]:
    """Return stored history rows as entries the fold reads."""
    return [
        history.Entry(
            at=r.at,
            actor=r.actor,
            actor_role=r.actor_role,
            action=r.action,
            from_stage=r.from_stage,
            to_stage=r.to_stage,
            reason=r.reason,
            data=dict(r.data),
        )
        for r in rows
    ]


def end_of_day(day: date) -> datetime:
    """Return the first instant after a local date (Asia/Shanghai), in UTC."""
    return deadlines.due_instant(day)


# ------------------------------------------------------------------ the sweep


def _next_escalation(
    ladder: deadlines.EscalationRule, level: str, now: datetime
) -> datetime | None:
    """Return when a clock at `level` moves up, or None at the top of the ladder."""
    position = ladder.levels.index(level) if level in ladder.levels else 0
    if position + 1 >= len(ladder.levels):
        return None
    return now + timedelta(days=ladder.after_days)


def _breach(
    book: ClockBook,
    clock: CaseDeadline,
    policy: deadlines.DeadlinePolicy,
    visits: Sequence[CaseVisit],
) -> str:
    """Breach a clock at the ladder's first level; return that level.

    A missed recurring period is over, but the next one is owed all the same: it starts
    here, catching up periods the visits already met.
    """
    level = policy.escalation.levels[0]
    book.do(
        history.op_breach(str(clock.id), level, _next_escalation(policy.escalation, level, book.at))
    )
    if clock.bound == "recurring":
        try:
            rule = policy.rule(DeadlineKind(clock.kind))
        except (KeyError, ValueError):
            rule = None
        if rule is not None:
            _next_recurring(book, rule, after=clock.due_date, visits=visits)
    return level


def _escalate(book: ClockBook, clock: CaseDeadline, ladder: deadlines.EscalationRule) -> str:
    """Move a breached clock one level up its ladder; return the level it left."""
    current = clock.escalation_level or ladder.levels[0]
    position = ladder.levels.index(current) if current in ladder.levels else 0
    level = ladder.levels[min(position + 1, len(ladder.levels) - 1)]
    book.do(history.op_escalate(str(clock.id), level, _next_escalation(ladder, level, book.at)))
    return current


async def sweep(session: AsyncSession, ctx: CaseworkContext, *, limit: int) -> int:
    """Breach overdue clocks once each, escalate those left unmet; return how many moved.

    A breach is published as `casework.deadline_breached` exactly once: the row leaves the
    sweep's partial index in the same transaction.  Escalations are recorded in the case
    history and shown in the overdue list; they publish nothing, since the breach did.

    Each half reads what its batch needs in one query per table (cases, clocks, visits)
    and lets the session write the history and clock rows together: a batch is a few
    round trips, not a few per clock.
    """
    now = ctx.clock.now()
    repo = CaseRepository(session)
    # A batch's cases carry a handful of stored policies: one equal to a policy already
    # parsed is not validated again (comparing is a tenth of the cost).
    parsed: dict[tuple[Any, Any], tuple[dict[str, Any], deadlines.DeadlinePolicy]] = {}

    def policy_for(case: Case) -> deadlines.DeadlinePolicy:
        stored = case.deadline_policy
        key = (stored.get("version"), stored.get("region_code"))
        known = parsed.get(key)
        if known is None or known[0] != stored:
            known = parsed[key] = (stored, policy_of(case))
        return known[1]

    due = await repo.due_for_sweep(now, limit)
    cases = await repo.for_clock_entries(clock.case_id for clock in due)
    recurring = list(dict.fromkeys(c.case_id for c in due if c.bound == "recurring"))
    clocks = await repo.deadlines_of(recurring)
    visits = await repo.visits_of(recurring)
    breaches: list[tuple[Case, Payload]] = []
    for clock in due:
        case = cases[clock.case_id]
        policy = policy_for(case)
        book = ClockBook(clocks[case.id] if clock.bound == "recurring" else [clock], now)
        level = _breach(book, clock, policy, visits.get(case.id, []))
        _commit(
            session,
            case,
            book,
            actor=SYSTEM,
            actor_role=SYSTEM,
            action="deadline_breached",
            to_stage=case.stage,
            reason=None,
            data={
                "deadline": {
                    "id": str(clock.id),
                    "kind": clock.kind,
                    "due": clock.due_date.isoformat(),
                }
            },
        )
        if clock.bound == "recurring":
            # A later clock of the same case in this batch must see the clocks started here.
            clocks[case.id] = list(book.rows.values())
        breaches.append(
            (
                case,
                DeadlineBreachedV1(
                    case_id=clock.case_id,
                    deadline_id=clock.id,
                    kind=clock.kind,
                    due=clock.due_date,
                    breached_at=now,
                    escalation_level=level,
                    village_code=case.region_code,
                ),
            )
        )
    await _publish_all(session, ctx, breaches, at=now)

    escalating = await repo.due_for_escalation(now, limit)
    cases.update(
        await repo.for_clock_entries(c.case_id for c in escalating if c.case_id not in cases)
    )
    for clock in escalating:
        case = cases[clock.case_id]
        book = ClockBook([clock], now)
        current = _escalate(book, clock, policy_for(case).escalation)
        _commit(
            session,
            case,
            book,
            actor=SYSTEM,
            actor_role=SYSTEM,
            action="deadline_escalated",
            to_stage=case.stage,
            reason=None,
            data={"deadline": {"id": str(clock.id), "kind": clock.kind, "from_level": current}},
        )
    return len(due) + len(escalating)

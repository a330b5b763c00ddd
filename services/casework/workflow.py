"""The statutory casework procedure as a pure, per-region configurable state machine.

The default template follows domain.md §6.1 and §6.4:

* Identification: 入户核查 → 部门协查 → 公示公告 → 审批建档, organised and approved by the
  county agency [000:678; 001:496], with village publicity of at least 5 days [002:42].
* 乡镇审核 is not named in §6.1; it is enabled by default because 002 makes every township
  (各乡镇（街道）) a co-executor of the identification rules [002:389-395].  A region that
  follows Jiaocheng's four steps literally switches it off.
* 民主评议 appears in no document (§10.1), so it exists as an optional step, off by default
  (§9 A8).
* After inclusion: 帮扶责任人 and 一户一策 [002:42], then assistance, then 风险消除 kept
  separate from 退出 (§6.4 design note).  Publicity at risk elimination and the exit
  approver are not stated (§6.4 SILENT): publicity is off by default, the county confirms.
* A new risk reopens monitoring from 风险消除 or 退出 (§6.5 side loop).

The module decides only whether an action is legal and where it leads; the caller stores
the facts.  `advance` also returns the facts an action records, for callers and tests that
keep them in memory.  `today` is always the Asia/Shanghai local date
(`deadlines.local_date(clock.now())`), the date publicity is counted in.  The 15-day
identification limit is "原则上" and is flagged by the deadline sweep, never enforced
here (§9 A2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum

from services.casework.deadlines import publicity_end, publicity_satisfied

__all__ = [
    "ACTION_LABELS_ZH",
    "STAGE_LABELS_ZH",
    "Action",
    "CaseFacts",
    "IllegalTransition",
    "Role",
    "Shortfall",
    "Stage",
    "WorkflowTemplate",
    "advance",
    "allowed_actions",
    "default_workflow_template",
    "transition",
]


class Stage(StrEnum):
    """Where a case stands in the procedure."""

    OPENED = "opened"
    HOME_VERIFICATION = "home_verification"
    DEPARTMENT_CROSSCHECK = "department_crosscheck"
    DEMOCRATIC_APPRAISAL = "democratic_appraisal"
    VILLAGE_PUBLICITY = "village_publicity"
    TOWNSHIP_REVIEW = "township_review"
    COUNTY_APPROVAL = "county_approval"
    NOT_INCLUDED = "not_included"
    MONITORING = "monitoring"
    ASSISTANCE = "assistance"
    RISK_ELIMINATION = "risk_elimination"
    RISK_ELIMINATED = "risk_eliminated"
    EXITED = "exited"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the stage."""
        return STAGE_LABELS_ZH[self]


STAGE_LABELS_ZH: Mapping[Stage, str] = {
    Stage.OPENED: "已受理（待核查）",
    Stage.HOME_VERIFICATION: "入户核查",
    Stage.DEPARTMENT_CROSSCHECK: "部门协查",
    Stage.DEMOCRATIC_APPRAISAL: "民主评议",
    Stage.VILLAGE_PUBLICITY: "村内公示",
    Stage.TOWNSHIP_REVIEW: "乡镇审核",
    Stage.COUNTY_APPROVAL: "县级审批建档",
    Stage.NOT_INCLUDED: "不予纳入（已结案）",
    Stage.MONITORING: "监测中",
    Stage.ASSISTANCE: "帮扶中",
    Stage.RISK_ELIMINATION: "风险消除审核中",
    Stage.RISK_ELIMINATED: "风险已消除",
    Stage.EXITED: "已退出",
}


class Action(StrEnum):
    """What a user may ask the procedure to do."""

    START_VERIFICATION = "start_verification"
    RECORD_VERIFICATION = "record_verification"
    RECORD_CROSSCHECK = "record_crosscheck"
    RECORD_APPRAISAL = "record_appraisal"
    START_PUBLICITY = "start_publicity"
    FILE_OBJECTION = "file_objection"
    RESOLVE_OBJECTION = "resolve_objection"
    END_PUBLICITY = "end_publicity"
    TOWNSHIP_APPROVE = "township_approve"
    TOWNSHIP_RETURN = "township_return"
    COUNTY_INCLUDE = "county_include"
    COUNTY_REJECT = "county_reject"
    ASSIGN_HELPER = "assign_helper"
    RECORD_PLAN = "record_plan"
    START_ASSISTANCE = "start_assistance"
    PROPOSE_ELIMINATION = "propose_elimination"
    REJECT_ELIMINATION = "reject_elimination"
    CONFIRM_ELIMINATION = "confirm_elimination"
    EXIT = "exit"
    REOPEN = "reopen"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the action."""
        return ACTION_LABELS_ZH[self]


ACTION_LABELS_ZH: Mapping[Action, str] = {
    Action.START_VERIFICATION: "启动入户核查",
    Action.RECORD_VERIFICATION: "录入核查结果",
    Action.RECORD_CROSSCHECK: "录入部门协查结果",
    Action.RECORD_APPRAISAL: "录入民主评议结果",
    Action.START_PUBLICITY: "开始公示",
    Action.FILE_OBJECTION: "登记异议",
    Action.RESOLVE_OBJECTION: "办结异议",
    Action.END_PUBLICITY: "结束公示",
    Action.TOWNSHIP_APPROVE: "乡镇审核通过",
    Action.TOWNSHIP_RETURN: "乡镇退回重新核查",
    Action.COUNTY_INCLUDE: "县级审批纳入",
    Action.COUNTY_REJECT: "县级不予纳入",
    Action.ASSIGN_HELPER: "明确帮扶责任人",
    Action.RECORD_PLAN: "录入“一户一策”帮扶措施",
    Action.START_ASSISTANCE: "开始帮扶",
    Action.PROPOSE_ELIMINATION: "提出风险消除",
    Action.REJECT_ELIMINATION: "退回继续帮扶",
    Action.CONFIRM_ELIMINATION: "确认风险消除",
    Action.EXIT: "退出监测",
    Action.REOPEN: "因新风险重新监测",
}


class Role(StrEnum):
    """Roles of the default template; regions may use their own names."""

    VILLAGE_OFFICER = "village_officer"
    TOWNSHIP_OFFICER = "township_officer"
    COUNTY_OFFICER = "county_officer"
    ADMIN = "admin"


# The identification steps in the only order the documents give [000:678], with the
# optional ones slotted where local practice puts them (appraisal before publicity,
# township review before county approval).
_CANONICAL_STEPS: tuple[Stage, ...] = (
    Stage.HOME_VERIFICATION,
    Stage.DEPARTMENT_CROSSCHECK,
    Stage.DEMOCRATIC_APPRAISAL,
    Stage.VILLAGE_PUBLICITY,
    Stage.TOWNSHIP_REVIEW,
    Stage.COUNTY_APPROVAL,
)
# Verification, publicity and county approval are named by the documents themselves
# [000:678; 002:42; 001:496]; only the others may be switched off.
_REQUIRED_STEPS: frozenset[Stage] = frozenset(
    {Stage.HOME_VERIFICATION, Stage.VILLAGE_PUBLICITY, Stage.COUNTY_APPROVAL}
)
# The action that completes each identification step and moves to the next one.
_COMPLETING_ACTION: Mapping[Stage, Action] = {
    Stage.HOME_VERIFICATION: Action.RECORD_VERIFICATION,
    Stage.DEPARTMENT_CROSSCHECK: Action.RECORD_CROSSCHECK,
    Stage.DEMOCRATIC_APPRAISAL: Action.RECORD_APPRAISAL,
    Stage.VILLAGE_PUBLICITY: Action.END_PUBLICITY,
    Stage.TOWNSHIP_REVIEW: Action.TOWNSHIP_APPROVE,
    Stage.COUNTY_APPROVAL: Action.COUNTY_INCLUDE,
}
_STEP_OF_ACTION: Mapping[Action, Stage] = {
    action: stage for stage, action in _COMPLETING_ACTION.items()
}
_PRE_INCLUSION: frozenset[Stage] = frozenset({Stage.OPENED, *_CANONICAL_STEPS})
_INCLUDED: frozenset[Stage] = frozenset(
    {
        Stage.MONITORING,
        Stage.ASSISTANCE,
        Stage.RISK_ELIMINATION,
        Stage.RISK_ELIMINATED,
        Stage.EXITED,
    }
)

_VILLAGE = frozenset({Role.VILLAGE_OFFICER.value})
_TOWNSHIP = frozenset({Role.TOWNSHIP_OFFICER.value})
_COUNTY = frozenset({Role.COUNTY_OFFICER.value})


def _default_permissions() -> dict[Action, frozenset[str]]:
    """Return who may do what in the default template."""
    # The admin role maintains templates and policies and takes no case decision by
    # default: who may approve is policy, and a region grants it explicitly.
    return {
        Action.START_VERIFICATION: _VILLAGE | _TOWNSHIP | _COUNTY,
        Action.RECORD_VERIFICATION: _VILLAGE | _TOWNSHIP,
        # The county agency organises 部门协查 [000:678].
        Action.RECORD_CROSSCHECK: _COUNTY,
        Action.RECORD_APPRAISAL: _VILLAGE,
        # The village holds 村内公示 [002:42].
        Action.START_PUBLICITY: _VILLAGE,
        Action.FILE_OBJECTION: _VILLAGE | _TOWNSHIP,
        Action.RESOLVE_OBJECTION: _VILLAGE | _TOWNSHIP,
        Action.END_PUBLICITY: _VILLAGE,
        Action.TOWNSHIP_APPROVE: _TOWNSHIP,
        Action.TOWNSHIP_RETURN: _TOWNSHIP,
        # 县级扶贫部门确定监测对象 [001:496]; 县脱贫机构…审批建档 [000:678].
        Action.COUNTY_INCLUDE: _COUNTY,
        Action.COUNTY_REJECT: _COUNTY,
        # D3 is led by the county agency with the townships as co-executors [002:393].
        Action.ASSIGN_HELPER: _TOWNSHIP | _COUNTY,
        Action.RECORD_PLAN: _VILLAGE | _TOWNSHIP,
        Action.START_ASSISTANCE: _VILLAGE | _TOWNSHIP,
        Action.PROPOSE_ELIMINATION: _VILLAGE | _TOWNSHIP,
        # The exit approver is not stated (§6.4); the county mirrors its inclusion role.
        Action.REJECT_ELIMINATION: _COUNTY,
        Action.CONFIRM_ELIMINATION: _COUNTY,
        Action.EXIT: _COUNTY,
        Action.REOPEN: _VILLAGE | _TOWNSHIP | _COUNTY,
    }


@dataclass(frozen=True)
class WorkflowTemplate:
    """A region's procedure: enabled identification steps, options and permissions."""

    name: str
    identification_steps: tuple[Stage, ...]
    permissions: Mapping[Action, frozenset[str]] = field(
        default_factory=_default_permissions, hash=False
    )
    elimination_publicity: bool = False
    township_return_to: Stage = Stage.HOME_VERIFICATION

    def __post_init__(self) -> None:
        steps = self.identification_steps
        missing = _REQUIRED_STEPS - set(steps)
        if missing:
            raise ValueError(f"identification steps lack {sorted(missing)}")
        if len(set(steps)) != len(steps) or any(s not in _CANONICAL_STEPS for s in steps):
            raise ValueError("identification steps must be distinct identification stages")
        if list(steps) != sorted(steps, key=_CANONICAL_STEPS.index):
            raise ValueError("identification steps must keep the statutory order")
        if self.township_return_to not in steps:
            raise ValueError("a township return must go back to an enabled step")
        if steps.index(self.township_return_to) >= steps.index(Stage.VILLAGE_PUBLICITY):
            # Returning must repeat the publicity, or inclusion could skip it.
            raise ValueError("a township return must go back before the publicity")

    @property
    def stages(self) -> frozenset[Stage]:
        """Return every stage a case can be in under this template."""
        return frozenset({Stage.OPENED, Stage.NOT_INCLUDED, *self.identification_steps}) | (
            _INCLUDED
        )

    def enables(self, step: Stage) -> bool:
        """Return whether an identification step is part of this template."""
        return step in self.identification_steps

    def step_after(self, step: Stage) -> Stage:
        """Return the stage that follows a completed identification step."""
        position = self.identification_steps.index(step)
        if position + 1 < len(self.identification_steps):
            return self.identification_steps[position + 1]
        return Stage.MONITORING

    def may(self, action: Action, role: str) -> bool:
        """Return whether role may perform action."""
        return role in self.permissions.get(action, frozenset())


def default_workflow_template() -> WorkflowTemplate:
    """Return the procedure of domain.md §6.1/§6.4 with the defaults explained above."""
    return WorkflowTemplate(
        name="default",
        identification_steps=(
            Stage.HOME_VERIFICATION,
            Stage.DEPARTMENT_CROSSCHECK,
            Stage.VILLAGE_PUBLICITY,
            Stage.TOWNSHIP_REVIEW,
            Stage.COUNTY_APPROVAL,
        ),
    )


@dataclass(frozen=True)
class Shortfall:
    """One unmet risk-elimination criterion, explained in Chinese and English."""

    code: str
    message_zh: str
    message_en: str


@dataclass(frozen=True)
class CaseFacts:
    """What the guards need to know about a case."""

    stage: Stage
    publicity_started_on: date | None = None
    open_objections: int = 0
    crosscheck_departments_pending: int = 0
    verification_recorded: bool = False
    helper_assigned: bool = False
    plan_recorded: bool = False
    elimination_publicity_started_on: date | None = None
    # Evaluated by the caller from visits, findings and the plan (elimination.evaluate); the
    # state machine only refuses to propose or confirm while any remains.
    elimination_shortfalls: tuple[Shortfall, ...] = ()

    def __post_init__(self) -> None:
        if self.open_objections < 0 or self.crosscheck_departments_pending < 0:
            raise ValueError("counts cannot be negative")


class IllegalTransition(Exception):
    """An action refused, with a stable code and the reason in Chinese and English."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        super().__init__(f"[{code}] {message_zh} / {message_en}")


def _refuse_stage(action: Action, facts: CaseFacts, expected: frozenset[Stage]) -> None:
    """Raise wrong_stage unless the case is at one of the expected stages."""
    if facts.stage in expected:
        return
    order = list(Stage)
    names = sorted(expected, key=order.index)
    raise IllegalTransition(
        "wrong_stage",
        f"案件当前处于「{facts.stage.label_zh}」阶段，不能办理「{action.label_zh}」"
        f"（须处于：{'、'.join(s.label_zh for s in names)}）。",
        f"The case is at stage {facts.stage.value}; {action.value} is only possible at: "
        f"{', '.join(s.value for s in names)}.",
    )


def _require_verification(facts: CaseFacts) -> None:
    """Raise unless the household verification result is on file."""
    if not facts.verification_recorded:
        raise IllegalTransition(
            "verification_missing",
            "尚未录入入户核查结果。",
            "The household verification result has not been recorded.",
        )


def _require_no_objection(facts: CaseFacts) -> None:
    """Raise while an objection raised during publicity is still open."""
    if facts.open_objections:
        raise IllegalTransition(
            "open_objection",
            f"公示期间提出的{facts.open_objections}件异议尚未办结。",
            f"{facts.open_objections} objection(s) raised during publicity are still open.",
        )


def _require_publicity(started: date | None, today: date, min_days: int) -> None:
    """Raise unless a publicity was started and has run its minimum length."""
    if started is None:
        raise IllegalTransition(
            "publicity_not_started", "尚未开始公示。", "The publicity has not been started."
        )
    if not publicity_satisfied(started, today, min_days):
        last = publicity_end(started, min_days)
        earliest = last + timedelta(days=1)
        raise IllegalTransition(
            "publicity_too_short",
            f"公示不少于{min_days}天：{started.isoformat()}开始的公示期至"
            f"{last.isoformat()}，最早{earliest.isoformat()}方可办理（今天为{today.isoformat()}）。",
            f"Publicity lasts at least {min_days} days: started {started.isoformat()}, it runs "
            f"to {last.isoformat()} and may close from {earliest.isoformat()} "
            f"(today is {today.isoformat()}).",
        )


def _require_elimination_criteria(facts: CaseFacts) -> None:
    """Raise while a configured risk-elimination criterion is not met."""
    if facts.elimination_shortfalls:
        raise IllegalTransition(
            "elimination_criteria_unmet",
            "尚未达到风险消除条件："
            + "；".join(s.message_zh for s in facts.elimination_shortfalls),
            "Risk-elimination criteria are not met: "
            + "; ".join(s.message_en for s in facts.elimination_shortfalls),
        )


def _publicity_stage_started(template: WorkflowTemplate, facts: CaseFacts) -> date | None:
    """Return the start of the publicity running at the case's stage."""
    if facts.stage == Stage.RISK_ELIMINATION and template.elimination_publicity:
        return facts.elimination_publicity_started_on
    return facts.publicity_started_on


def _publicity_stages(template: WorkflowTemplate) -> frozenset[Stage]:
    """Return the stages at which a publicity can run under template."""
    if template.elimination_publicity:
        return frozenset({Stage.VILLAGE_PUBLICITY, Stage.RISK_ELIMINATION})
    return frozenset({Stage.VILLAGE_PUBLICITY})


def transition(
    template: WorkflowTemplate,
    facts: CaseFacts,
    action: Action,
    *,
    actor_role: str,
    today: date,
    publicity_min_days: int,
) -> Stage:
    """Return the stage the action leads to, or raise IllegalTransition saying why not."""
    if facts.stage not in template.stages:
        raise IllegalTransition(
            "stage_not_in_template",
            f"当前阶段「{facts.stage.label_zh}」未在本地区流程「{template.name}」中启用。",
            f"Stage {facts.stage.value} is not part of the workflow {template.name!r}.",
        )
    if facts.stage == Stage.NOT_INCLUDED:
        raise IllegalTransition(
            "case_closed",
            f"案件已不予纳入并结案，不能办理「{action.label_zh}」；新的风险请新建案件。",
            f"The case was closed as not included; {action.value} is not possible. "
            "A new risk opens a new case.",
        )
    step = _STEP_OF_ACTION.get(action)
    if step is not None and not template.enables(step):
        raise IllegalTransition(
            "step_disabled",
            f"本地区流程未设置「{step.label_zh}」环节。",
            f"The workflow {template.name!r} has no {step.value} step.",
        )
    target = _target(template, facts, action)
    if not template.may(action, actor_role):
        raise IllegalTransition(
            "role_not_allowed",
            f"角色「{actor_role}」无权办理「{action.label_zh}」。",
            f"Role {actor_role!r} may not perform {action.value}.",
        )
    _check_guards(template, facts, action, today=today, publicity_min_days=publicity_min_days)
    return target


def _target(template: WorkflowTemplate, facts: CaseFacts, action: Action) -> Stage:
    """Check the stage an action needs and return where it leads."""
    step = _STEP_OF_ACTION.get(action)
    if step is not None:
        # Completing a step is only possible at that step, so no step can be skipped.
        _refuse_stage(action, facts, frozenset({step}))
        return template.step_after(step)
    publicity_stages = _publicity_stages(template)
    stay = facts.stage
    match action:
        case Action.START_VERIFICATION:
            _refuse_stage(action, facts, frozenset({Stage.OPENED}))
            return template.identification_steps[0]
        case Action.START_PUBLICITY | Action.FILE_OBJECTION | Action.RESOLVE_OBJECTION:
            if not template.elimination_publicity and facts.stage == Stage.RISK_ELIMINATION:
                raise IllegalTransition(
                    "step_disabled",
                    "本地区流程未设置风险消除公示。",
                    f"The workflow {template.name!r} has no publicity at risk elimination.",
                )
            _refuse_stage(action, facts, publicity_stages)
            return stay
        case Action.TOWNSHIP_RETURN:
            _refuse_stage(action, facts, frozenset({Stage.TOWNSHIP_REVIEW}))
            return template.township_return_to
        case Action.COUNTY_REJECT:
            # The county may close a case as not included at any identification stage,
            # e.g. after verification or an upheld objection [001:496].
            _refuse_stage(action, facts, _PRE_INCLUSION)
            return Stage.NOT_INCLUDED
        case Action.ASSIGN_HELPER | Action.RECORD_PLAN:
            _refuse_stage(action, facts, frozenset({Stage.MONITORING, Stage.ASSISTANCE}))
            return stay
        case Action.START_ASSISTANCE:
            _refuse_stage(action, facts, frozenset({Stage.MONITORING}))
            return Stage.ASSISTANCE
        case Action.PROPOSE_ELIMINATION:
            _refuse_stage(action, facts, frozenset({Stage.ASSISTANCE}))
            return Stage.RISK_ELIMINATION
        case Action.REJECT_ELIMINATION:
            _refuse_stage(action, facts, frozenset({Stage.RISK_ELIMINATION}))
            return Stage.ASSISTANCE
        case Action.CONFIRM_ELIMINATION:
            _refuse_stage(action, facts, frozenset({Stage.RISK_ELIMINATION}))
            return Stage.RISK_ELIMINATED
        case Action.EXIT:
            # 风险消除户及时退出 [001:270]: exit follows a confirmed elimination.
            _refuse_stage(action, facts, frozenset({Stage.RISK_ELIMINATED}))
            return Stage.EXITED
        case Action.REOPEN:
            _refuse_stage(action, facts, frozenset({Stage.RISK_ELIMINATED, Stage.EXITED}))
            return Stage.MONITORING
    raise AssertionError(f"unhandled action {action}")  # pragma: no cover


def _check_guards(
    template: WorkflowTemplate,
    facts: CaseFacts,
    action: Action,
    *,
    today: date,
    publicity_min_days: int,
) -> None:
    """Raise when the facts do not allow an action that is legal at this stage."""
    match action:
        case Action.RECORD_CROSSCHECK:
            _require_verification(facts)
            if facts.crosscheck_departments_pending:
                raise IllegalTransition(
                    "crosscheck_pending",
                    f"仍有{facts.crosscheck_departments_pending}个部门未反馈协查结果。",
                    f"{facts.crosscheck_departments_pending} department(s) have not "
                    "answered the cross-check.",
                )
        case Action.RECORD_APPRAISAL | Action.TOWNSHIP_APPROVE:
            _require_verification(facts)
        case Action.START_PUBLICITY:
            if facts.stage == Stage.VILLAGE_PUBLICITY:
                _require_verification(facts)
            started = _publicity_stage_started(template, facts)
            if started is not None:
                raise IllegalTransition(
                    "publicity_already_started",
                    f"公示已于{started.isoformat()}开始，不能重复开始。",
                    f"The publicity already started on {started.isoformat()}.",
                )
        case Action.FILE_OBJECTION:
            if _publicity_stage_started(template, facts) is None:
                raise IllegalTransition(
                    "publicity_not_started",
                    "尚未开始公示，无法登记异议。",
                    "No publicity is running, so no objection can be filed.",
                )
        case Action.RESOLVE_OBJECTION:
            if not facts.open_objections:
                raise IllegalTransition(
                    "no_open_objection", "没有待办结的异议。", "There is no open objection."
                )
        case Action.END_PUBLICITY:
            _require_publicity(facts.publicity_started_on, today, publicity_min_days)
            _require_no_objection(facts)
        case Action.COUNTY_INCLUDE:
            # Re-checked here so that inclusion can never happen without a full,
            # objection-free publicity (D2 [002:42]) whatever the stored stage says.
            _require_verification(facts)
            _require_publicity(facts.publicity_started_on, today, publicity_min_days)
            _require_no_objection(facts)
        case Action.START_ASSISTANCE:
            if not facts.helper_assigned:
                raise IllegalTransition(
                    "helper_missing",
                    "尚未明确帮扶责任人。",
                    "No responsible helper has been assigned.",
                )
            if not facts.plan_recorded:
                raise IllegalTransition(
                    "plan_missing",
                    "尚未录入“一户一策”帮扶措施。",
                    "No one-household-one-plan measures have been recorded.",
                )
        case Action.PROPOSE_ELIMINATION:
            _require_elimination_criteria(facts)
        case Action.CONFIRM_ELIMINATION:
            _require_elimination_criteria(facts)
            if template.elimination_publicity:
                _require_publicity(
                    facts.elimination_publicity_started_on, today, publicity_min_days
                )
                _require_no_objection(facts)
        case _:
            pass


def allowed_actions(
    template: WorkflowTemplate,
    facts: CaseFacts,
    actor_role: str,
    today: date,
    publicity_min_days: int,
) -> list[Action]:
    """Return the actions actor_role may perform on the case today, in declaration order."""
    allowed: list[Action] = []
    for action in Action:
        try:
            transition(
                template,
                facts,
                action,
                actor_role=actor_role,
                today=today,
                publicity_min_days=publicity_min_days,
            )
        except IllegalTransition:
            continue
        allowed.append(action)
    return allowed


def advance(
    template: WorkflowTemplate,
    facts: CaseFacts,
    action: Action,
    *,
    actor_role: str,
    today: date,
    publicity_min_days: int,
) -> CaseFacts:
    """Return the facts after a legal action: its new stage and what it records."""
    stage = transition(
        template,
        facts,
        action,
        actor_role=actor_role,
        today=today,
        publicity_min_days=publicity_min_days,
    )
    moved = replace(facts, stage=stage)
    match action:
        case Action.RECORD_VERIFICATION:
            return replace(moved, verification_recorded=True)
        case Action.START_PUBLICITY if facts.stage == Stage.RISK_ELIMINATION:
            return replace(moved, elimination_publicity_started_on=today)
        case Action.START_PUBLICITY:
            return replace(moved, publicity_started_on=today)
        case Action.FILE_OBJECTION:
            return replace(moved, open_objections=facts.open_objections + 1)
        case Action.RESOLVE_OBJECTION:
            return replace(moved, open_objections=facts.open_objections - 1)
        case Action.TOWNSHIP_RETURN:
            # The returned case is verified and published again from scratch.
            return replace(moved, verification_recorded=False, publicity_started_on=None)
        case Action.ASSIGN_HELPER:
            return replace(moved, helper_assigned=True)
        case Action.RECORD_PLAN:
            return replace(moved, plan_recorded=True)
        case Action.COUNTY_REJECT | Action.REJECT_ELIMINATION:
            # Open objections are disposed of by the decision itself.
            return replace(moved, open_objections=0, elimination_publicity_started_on=None)
        case Action.PROPOSE_ELIMINATION | Action.REOPEN:
            return replace(moved, elimination_publicity_started_on=None)
        case _:
            return moved

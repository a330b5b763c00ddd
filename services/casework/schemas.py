"""Casework's request and response bodies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.casework.measures import LabourCapacity, PlanItemStatus
from services.casework.visits import VisitorRole
from shared.logs import mask_resident_ids_in
from shared.problems import FieldValueError

# ------------------------------------------------------------------ shared parts

GuaranteeStatus = Literal["secure", "at_risk", "not_applicable"]
# The three core categories of domain §3.2 (a, b, c), as screening names them.
Category = Literal["unstable_escaped", "marginal", "sudden_difficulty"]
# Household labels that switch on the visit rules of §6.2 D5, D10 and D11.
Label = Literal[
    "escaped_poverty",
    "relocated_escaped_poverty",
    "special_care_ordinary",
    "special_care_especially_difficult",
]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_resident_id_in_text(cls, v: Any) -> Any:
        # Caseworkers type reasons, findings and notes; a resident ID typed there is masked
        # before it reaches the history, the events or any answer (requests carry none).
        return mask_resident_ids_in(v)


class Guarantees(_Strict):
    """两不愁三保障 plus drinking water, each secure, at risk, or not applicable."""

    food: GuaranteeStatus
    clothing: GuaranteeStatus
    compulsory_education: GuaranteeStatus
    basic_medical: GuaranteeStatus
    housing_safety: GuaranteeStatus
    drinking_water: GuaranteeStatus


class VerificationFindings(_Strict):
    """What the home verification (入户核查) found."""

    visited_on: date = Field(description="核查日期（北京时间）")
    household_size: int = Field(ge=1, le=30)
    verified_income_per_capita: Decimal = Field(
        ge=0, le=10_000_000, decimal_places=2, description="核实的家庭年人均收入（元）"
    )
    labour_capacity: LabourCapacity = Field(
        description="full 有劳动能力 / weak 弱劳动力或半劳动力 / none 无劳动能力"
    )
    guarantees: Guarantees
    findings: Text


class CrosscheckResult(_Strict):
    """One department's answer to the cross-check (部门协查)."""

    department: str = Field(pattern=r"^[a-z_]{2,40}$")
    result: Literal["consistent", "discrepancy", "no_record", "pending"]
    finding: str = Field(default="", max_length=2000)


class Appraisal(_Strict):
    """A democratic appraisal, where a region's template has one."""

    held_on: date
    outcome: Literal["agreed", "not_agreed"]
    notes: str = Field(default="", max_length=2000)


class Objection(_Strict):
    """An objection raised during publicity."""

    text: Text
    objector: str | None = Field(default=None, max_length=50)


class HelperIn(_Strict):
    """A responsible helper (帮扶责任人)."""

    helper_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="工号或身份标识")
    name: str = Field(min_length=1, max_length=50)
    phone: str = Field(pattern=r"^[0-9+-]{5,20}$")
    unit: str = Field(min_length=1, max_length=100, description="所在单位")
    region_code: str | None = Field(
        default=None, pattern=r"^\d{6}(\d{3}){0,2}$", description="服务区划，默认为案件所在村"
    )


class PlanItemIn(_Strict):
    """One measure of the 一户一策 plan."""

    measure_code: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    responsible_unit: str | None = Field(
        default=None, min_length=1, max_length=100, description="责任单位，默认取目录中的单位"
    )
    note: str | None = Field(default=None, max_length=2000)


class VisitIn(_Strict):
    """A home visit (入户走访)."""

    visited_on: date
    visitor_name: str = Field(min_length=1, max_length=50)
    visitor_role: VisitorRole = "helper"
    helper_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    findings: Text
    income_per_capita: Decimal | None = Field(
        default=None,
        ge=0,
        le=10_000_000,
        decimal_places=2,
        description="更新的家庭年人均收入（元）",
    )
    guarantees: Guarantees | None = None


# ------------------------------------------------------------------ action bodies


class _Action(_Strict):
    reason: str | None = Field(default=None, max_length=2000, description="办理意见或理由")
    expected_version: int | None = Field(
        default=None, ge=1, description="案件版本号；不一致时返回 409，防止覆盖他人的办理"
    )


class StartVerification(_Action):
    action: Literal["start_verification"]


class RecordVerification(_Action):
    action: Literal["record_verification"]
    verification: VerificationFindings


class RecordCrosscheck(_Action):
    action: Literal["record_crosscheck"]
    results: list[CrosscheckResult] = Field(min_length=1, max_length=30)

    @field_validator("results")
    @classmethod
    def _one_per_department(cls, results: list[CrosscheckResult]) -> list[CrosscheckResult]:
        departments = [r.department for r in results]
        if len(departments) != len(set(departments)):
            raise FieldValueError(
                "crosscheck.duplicate_department",
                "每个部门只能有一条协查结果",
                "each department answers once",
            )
        return results


class RecordAppraisal(_Action):
    action: Literal["record_appraisal"]
    appraisal: Appraisal


class StartPublicity(_Action):
    action: Literal["start_publicity"]
    location: str | None = Field(default=None, max_length=200, description="公示地点")


class FileObjection(_Action):
    action: Literal["file_objection"]
    objection: Objection


class ResolveObjection(_Action):
    action: Literal["resolve_objection"]
    objection_no: int = Field(ge=1)
    resolution: Text
    upheld: bool = Field(description="异议是否成立")


class EndPublicity(_Action):
    action: Literal["end_publicity"]


class TownshipApprove(_Action):
    action: Literal["township_approve"]


class TownshipReturn(_Action):
    action: Literal["township_return"]
    reason: Reason


class CountyInclude(_Action):
    action: Literal["county_include"]
    categories: list[Category] = Field(min_length=1, max_length=3)
    labels: list[Label] = Field(default_factory=list, max_length=4)


class CountyReject(_Action):
    action: Literal["county_reject"]
    applicant_reason: str = Field(
        min_length=1, max_length=500, description="向申请人说明的不予纳入理由（申请人可见）"
    )


class AssignHelper(_Action):
    action: Literal["assign_helper"]
    helper: HelperIn


class RecordPlan(_Action):
    action: Literal["record_plan"]
    items: list[PlanItemIn] = Field(min_length=1, max_length=50)


class UpdatePlanItem(_Action):
    action: Literal["update_plan_item"]
    item_id: uuid.UUID
    status: PlanItemStatus
    note: str | None = Field(default=None, max_length=2000)


class StartAssistance(_Action):
    action: Literal["start_assistance"]


class ProposeElimination(_Action):
    action: Literal["propose_elimination"]


class RejectElimination(_Action):
    action: Literal["reject_elimination"]
    reason: Reason


class ConfirmElimination(_Action):
    action: Literal["confirm_elimination"]


class ExitMonitoring(_Action):
    action: Literal["exit"]


class Reopen(_Action):
    action: Literal["reopen"]
    reason: Reason


class RecordVisit(_Action):
    action: Literal["record_visit"]
    visit: VisitIn


class PauseDeadline(_Action):
    action: Literal["pause_deadline"]
    deadline_id: uuid.UUID
    reason: Reason


class ResumeDeadline(_Action):
    action: Literal["resume_deadline"]
    deadline_id: uuid.UUID


class ExtendDeadline(_Action):
    action: Literal["extend_deadline"]
    deadline_id: uuid.UUID
    days: int = Field(ge=1, le=90)
    unit: Literal["calendar_days", "working_days"] = "calendar_days"
    reason: Reason


ActionRequest = Annotated[
    StartVerification
    | RecordVerification
    | RecordCrosscheck
    | RecordAppraisal
    | StartPublicity
    | FileObjection
    | ResolveObjection
    | EndPublicity
    | TownshipApprove
    | TownshipReturn
    | CountyInclude
    | CountyReject
    | AssignHelper
    | RecordPlan
    | UpdatePlanItem
    | StartAssistance
    | ProposeElimination
    | RejectElimination
    | ConfirmElimination
    | ExitMonitoring
    | Reopen
    | RecordVisit
    | PauseDeadline
    | ResumeDeadline
    | ExtendDeadline,
    Field(discriminator="action"),
]


# ------------------------------------------------------------------ responses


class DeadlineRead(BaseModel):
    """A statutory clock as caseworkers see it."""

    deadline_id: str
    kind: str
    bound: str = Field(description="deadline 期限 / minimum 最短期间 / recurring 周期性走访")
    due: date = Field(description="截止日期（北京时间本地日期）")
    started_at: datetime
    met_at: datetime | None = None
    breached: bool
    breached_at: datetime | None = None
    escalation_level: str | None = None
    paused: bool = False
    closed: bool = False
    citation: str


class SourceRead(BaseModel):
    """A signal that led to the case."""

    kind: str
    receipt_no: str | None = None
    department: str | None = None
    alert_id: str | None = None
    report_id: str | None = None


class CaseSummary(BaseModel):
    """A case in a list."""

    case_id: str
    stage: str
    stage_label_zh: str
    village_code: str
    opened_at: datetime
    head_name: str | None
    head_id_masked: str | None
    score: int
    level: str
    categories: list[str]
    deadlines: list[DeadlineRead]
    sources: list[SourceRead]


class CaseList(BaseModel):
    """A page of cases."""

    items: list[CaseSummary]
    total: int
    page: int


class HistoryEntry(BaseModel):
    """One recorded transition or action."""

    at: datetime
    actor: str
    actor_role: str
    action: str
    from_stage: str | None
    to_stage: str
    reason: str | None
    data: dict[str, Any]


class AllowedAction(BaseModel):
    """An action the caller may take on the case now."""

    action: str
    label_zh: str


class HelperRead(BaseModel):
    """The case's responsible helper."""

    helper_id: str
    name: str
    phone: str
    unit: str
    assigned_at: datetime


class PlanItemRead(BaseModel):
    """One measure of the plan with its delivery status."""

    item_id: str
    measure_code: str
    family: str
    name_zh: str
    catalogue_version: str
    responsible_unit: str
    status: str
    note: str | None = None
    created_at: datetime
    updated_at: datetime


class ObjectionRead(BaseModel):
    """An objection and how it was resolved."""

    model_config = ConfigDict(extra="ignore")

    no: int
    text: str
    objector: str | None = None
    filed_on: date
    open: bool
    resolution: str | None = None
    upheld: bool | None = None
    resolved_on: date | None = None


class CaseRecord(BaseModel):
    """What the procedure has recorded about the household so far."""

    model_config = ConfigDict(extra="ignore")

    publicity_started_on: date | None = None
    elimination_publicity_started_on: date | None = None
    verification: dict[str, Any] | None = None
    labour_capacity: str | None = None
    guarantees: dict[str, str] = Field(default_factory=dict)
    crosscheck: list[dict[str, Any]] = Field(default_factory=list)
    appraisal: dict[str, Any] | None = None
    objections: list[ObjectionRead] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)


class CaseDetail(CaseSummary):
    """A case with its record, helper, plan, history and what the caller may do next."""

    version: int | None = Field(description="乐观锁版本号；as_of 视图为 null")
    closed_at: datetime | None = None
    record: CaseRecord
    helper: HelperRead | None = None
    plan: list[PlanItemRead] = Field(default_factory=list)
    reasons: list[dict[str, Any]]
    review_flags: list[dict[str, Any]]
    history: list[HistoryEntry]
    allowed_actions: list[AllowedAction] = Field(default_factory=list)
    procedure: str = Field(description="适用的流程模板名称与版本")
    as_of: date | None = None


class VisitRead(BaseModel):
    """A recorded home visit."""

    visit_id: str
    visited_on: date
    visitor_name: str
    visitor_role: str
    helper_id: str | None
    findings: str
    income_per_capita: Decimal | None
    guarantees: dict[str, str] | None
    recorded_at: datetime
    recorded_by: str


class VisitList(BaseModel):
    """A case's visits, newest first."""

    items: list[VisitRead]


class MeasureRead(BaseModel):
    """A measure of the catalogue."""

    code: str
    family: str
    name_zh: str
    name_en: str
    for_labour: list[str]
    addresses: list[str]
    gap_only: bool
    default_unit: str
    citation: str


class MeasureCatalogueRead(BaseModel):
    """The versioned catalogue of measures."""

    version: str
    source: str
    measures: list[MeasureRead]


class SuggestionRead(BaseModel):
    """A measure suggested for a household."""

    measure: MeasureRead
    why_zh: str
    why_en: str


class SuggestionList(BaseModel):
    """Measures suggested for a case, with the facts they were routed by."""

    catalogue_version: str
    labour_capacity: str | None
    insecure: list[str]
    items: list[SuggestionRead]


class HelperWorkload(BaseModel):
    """A helper and how many live cases they answer for."""

    helper_id: str
    name: str
    phone: str
    unit: str
    region_code: str
    active_cases: int = Field(description="在办（未结案）的帮扶户数")
    active_cases_in_region: int = Field(description="其中位于所查区划内的户数")


class HelperList(BaseModel):
    """Helpers serving in or assigned inside a region."""

    items: list[HelperWorkload]


class OverdueDeadline(BaseModel):
    """A breached clock that is still owed."""

    deadline_id: str
    case_id: str
    village_code: str
    stage: str
    head_name: str | None
    kind: str
    due: date
    breached_at: datetime
    escalation_level: str | None
    days_overdue: int


class OverdueList(BaseModel):
    """A page of overdue clocks, oldest breach first."""

    items: list[OverdueDeadline]
    total: int
    page: int


class OverrideDay(_Strict):
    """One day's status as the official notice sets it."""

    day: date
    kind: Literal["workday", "holiday"]


class CalendarOverridesCreate(_Strict):
    """Days an admin enters from a State Council notice (or a correction)."""

    reason: str = Field(min_length=1, max_length=500, description="依据，如国务院办公厅通知文号")
    days: list[OverrideDay] = Field(min_length=1, max_length=400)
    declares_year: int | None = Field(
        default=None,
        ge=2000,
        le=2100,
        description="声明该年度安排已完整录入；此后该年按周一至周五加本表的调整计算工作日",
    )

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        # The calendar refuses an override without its authority (workdays.py); a blank
        # reason stored here would make every later calendar read fail.
        if not v.strip():
            raise FieldValueError(
                "override.reason_blank", "须填写依据", "the reason must not be blank"
            )
        return v


class CalendarOverrideRead(BaseModel):
    """An override in force."""

    day: date
    kind: str
    reason: str
    created_by: str
    created_at: datetime


class CalendarYearRead(BaseModel):
    """A year an admin declared complete."""

    year: int
    reason: str
    declared_by: str
    declared_at: datetime


class CalendarOverrideList(BaseModel):
    """The overrides, the declared years and every year working days can be computed for."""

    items: list[CalendarOverrideRead]
    declared_years: list[CalendarYearRead]
    official_years: list[int]


class WorkingDaysAnswer(BaseModel):
    """The working-day arithmetic of the official Chinese calendar."""

    start: date
    days: int
    due: date

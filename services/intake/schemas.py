"""Intake's request and response bodies (never ORM objects)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from services.intake import validation
from services.intake.catalogue import default_catalogue
from shared.logs import mask_resident_ids, mask_resident_ids_in
from shared.problems import FieldValueError

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
# Text people type: a resident ID typed into it is masked before anything stores or sends
# it (the ID fields themselves are validated, encrypted and hashed instead).
FreeText = Annotated[str, AfterValidator(mask_resident_ids)]
Money = Decimal


class PersonIn(BaseModel):
    """A household member as the applicant lists them."""

    model_config = _STRICT

    name: FreeText = Field(min_length=1, max_length=50, description="姓名")
    id_number: str = Field(max_length=40, description="居民身份证号码（18位）")
    relation: str = Field(default="other", description="与申请人关系")

    _id = field_validator("id_number")(validation.resident_id)

    @field_validator("relation")
    @classmethod
    def _relation(cls, v: str) -> str:
        return validation.enum_value(v, validation.RELATIONS, "relation")


class ApplicantIn(BaseModel):
    """The person declaring for the household."""

    model_config = _STRICT

    name: FreeText = Field(min_length=1, max_length=50, description="申请人姓名")
    id_number: str = Field(max_length=40, description="居民身份证号码（18位）")
    phone: str = Field(max_length=20, description="联系电话")

    _id = field_validator("id_number")(validation.resident_id)
    _phone = field_validator("phone")(validation.phone)


class ProxyIn(BaseModel):
    """Who filed on the household's behalf (代申报)."""

    model_config = _STRICT

    name: FreeText = Field(min_length=1, max_length=50, description="代申报人姓名")
    id_number: str = Field(max_length=40, description="代申报人身份证号码")
    phone: str = Field(max_length=20, description="代申报人电话")
    relation: str = Field(description="代申报人与申请人的关系，如 village_cadre（村干部）")

    _id = field_validator("id_number")(validation.resident_id)
    _phone = field_validator("phone")(validation.phone)

    @field_validator("relation")
    @classmethod
    def _relation(cls, v: str) -> str:
        return validation.enum_value(v, validation.PROXY_RELATIONS, "proxy.relation")


class DeclarationCreate(BaseModel):
    """农户自主申报: a household's self-declaration of difficulty."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "applicant": {
                        "name": "张三",
                        "id_number": "11010519491231002X",
                        "phone": "13800138000",
                    },
                    "village_code": "141122100201",
                    "difficulty_types": ["illness"],
                    "description": "家中主要劳动力患大病，医疗支出大",
                    "income_last_12_months": 5200.0,
                    "members": [],
                    "consent": True,
                }
            ]
        },
    )

    applicant: ApplicantIn
    village_code: str = Field(description="户籍所在村12位统计用区划代码")
    difficulty_types: list[str] = Field(
        min_length=1,
        max_length=10,
        description="困难类型："
        + "、".join(f"{k}（{v}）" for k, v in validation.DIFFICULTY_TYPES.items()),
    )
    description: FreeText = Field(default="", max_length=2000, description="困难情况说明")
    income_last_12_months: Money | None = Field(
        default=None,
        ge=0,
        le=100_000_000,
        max_digits=14,
        decimal_places=2,
        description="近12个月家庭收入（元，自报）",
    )
    members: list[PersonIn] = Field(default_factory=list, max_length=30, description="家庭成员")
    proxy: ProxyIn | None = Field(default=None, description="代申报人（如有）")
    consent: bool = Field(description="同意授权核查家庭经济状况（必须为 true）")
    callback_url: str | None = Field(
        default=None, max_length=500, description="进度回调地址（可选，签名推送）"
    )

    _village = field_validator("village_code")(validation.village_code)

    @field_validator("difficulty_types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        for item in v:
            validation.enum_value(item, validation.DIFFICULTY_TYPES, "difficulty_types")
        return list(dict.fromkeys(v))

    @field_validator("consent")
    @classmethod
    def _consent(cls, v: bool) -> bool:
        if v is not True:
            raise FieldValueError(
                "consent.required",
                "须同意授权核查家庭经济状况后方可申报",
                "consent must be true to file a declaration",
            )
        return v

    @field_validator("callback_url")
    @classmethod
    def _callback(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://")):
            raise FieldValueError(
                "callback_url.format", "回调地址应为 http(s) URL", "not an http(s) URL"
            )
        return v


class DeclarationReceipt(BaseModel):
    """What a filed declaration returns."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "receipt_no": "SB20261122K7M2Q9XA",
                    "status_url": "/v1/declarations/SB20261122K7M2Q9XA",
                    "stage": "received",
                }
            ]
        }
    )

    receipt_no: str = Field(description="受理回执编号")
    status_url: str = Field(description="进度查询地址")
    stage: str = Field(description="当前阶段（新申报为 received 已受理）")


Stage = Literal[
    "received",
    "under_verification",
    "in_publicity",
    "included",
    "not_included",
    "risk_eliminated",
]


class ProgressStep(BaseModel):
    """One step the applicant can see."""

    stage: str
    at: datetime
    note: str | None = None


class DeclarationProgressRead(BaseModel):
    """The applicant-facing progress of a declaration."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "receipt_no": "SB20261122K7M2Q9XA",
                    "stage": "under_verification",
                    "stage_label_zh": "核查中",
                    "received_at": "2026-11-22T02:15:00Z",
                    "stage_changed_at": "2026-11-22T02:16:10Z",
                    "identification_due": "2026-12-07",
                    "days_remaining": 15,
                    "outcome_reason": None,
                    "applicant_id_masked": "110105********002X",
                    "history": [
                        {"stage": "received", "at": "2026-11-22T02:15:00Z", "note": None},
                        {
                            "stage": "under_verification",
                            "at": "2026-11-22T02:16:10Z",
                            "note": None,
                        },
                    ],
                }
            ]
        }
    )

    receipt_no: str
    stage: Stage
    stage_label_zh: str
    received_at: datetime
    stage_changed_at: datetime
    identification_due: date | None = Field(description="认定截止日期（开案起15日）")
    days_remaining: int | None = Field(description="距认定截止的天数（负数为已超期）")
    outcome_reason: str | None = None
    applicant_id_masked: str
    history: list[ProgressStep]


class AlertCreate(BaseModel):
    """部门筛查预警: one data-comparison alert from a department system."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "alert_id": "YB-2026-000123",
                    "alert_type": "medical_insurance.large_out_of_pocket",
                    "subject_id_number": "11010519491231002X",
                    "village_code": "141122100201",
                    "amount": 52000.0,
                    "occurred_on": "2026-11-01",
                    "details": {},
                }
            ]
        },
    )

    alert_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:\-]+$")
    alert_type: str = Field(max_length=80, description="预警类型（见部门目录）")
    subject_id_number: str = Field(max_length=40, description="预警对象身份证号码")
    village_code: str | None = Field(default=None, description="村级区划代码（可选）")
    amount: Money | None = Field(
        default=None, ge=0, le=100_000_000, max_digits=14, decimal_places=2
    )
    count: int | None = Field(default=None, ge=0, le=100)
    grade: int | None = Field(default=None, ge=1, le=4)
    occurred_on: date = Field(description="发生日期（北京时间）")
    details: dict[str, Any] = Field(default_factory=dict, description="部门附加信息")

    _id = field_validator("subject_id_number")(validation.resident_id)
    _occurred = field_validator("occurred_on")(validation.not_future)

    @field_validator("village_code")
    @classmethod
    def _village(cls, v: str | None) -> str | None:
        return None if v is None else validation.village_code(v)

    @field_validator("details")
    @classmethod
    def _details(cls, v: dict[str, Any]) -> dict[str, Any]:
        validation.bounded_details(v)
        masked: dict[str, Any] = mask_resident_ids_in(v)  # type: ignore[assignment]
        return masked

    @model_validator(mode="wrap")
    @classmethod
    def _catalogue(cls, data: Any, handler: ModelWrapValidatorHandler[AlertCreate]) -> AlertCreate:
        # The catalogue rules (known type, its required typed fields) are checked beside the
        # field rules, not after them, so one 422 lists every bad field at once.
        extra = _catalogue_errors(data)
        try:
            alert = handler(data)
        except ValidationError as exc:
            if not extra:
                raise
            raise ValidationError.from_exception_data(
                cls.__name__, [*_reraisable(exc), *extra]
            ) from None
        if extra:
            raise ValidationError.from_exception_data(cls.__name__, extra)
        return alert


def _catalogue_errors(data: Any) -> list[InitErrorDetails]:
    """Return the catalogue errors of raw alert data (unknown type, missing typed fields)."""
    if not isinstance(data, dict) or not isinstance(data.get("alert_type"), str):
        return []  # field validation reports the missing or mistyped alert_type
    code = data["alert_type"].strip()
    alert_type = default_catalogue().alert_type(code)
    if alert_type is None:
        return [
            _init_error(
                "alert_type",
                FieldValueError(
                    "alert_type.unknown",
                    "预警类型不在部门目录中",
                    "alert type is not in the department catalogue",
                ),
                code,
            )
        ]
    return [
        _init_error(
            name,
            FieldValueError(
                f"{name}.required", "该预警类型必须填写此字段", "required for this alert type"
            ),
            None,
        )
        for name, rule in alert_type.fields.items()
        if rule == "required" and data.get(name) in (None, "")
    ]


def _init_error(field: str, error: FieldValueError, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type="value_error", loc=(field,), input=value, ctx={"error": error})


def _reraisable(exc: ValidationError) -> list[InitErrorDetails]:
    """Turn a ValidationError's errors back into details that can be raised again."""
    out: list[InitErrorDetails] = []
    for err in exc.errors():
        detail = InitErrorDetails(type=err["type"], loc=err["loc"], input=err["input"])
        if "ctx" in err:
            detail["ctx"] = err["ctx"]
        out.append(detail)
    return out


class AlertAccepted(BaseModel):
    """The result of one alert."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"alert_id": "YB-2026-000123", "status": "accepted"}]}
    )

    alert_id: str
    status: Literal["accepted", "duplicate"]


class AlertBatch(BaseModel):
    """Up to 1,000 alerts in one call; each is judged on its own."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "alerts": [
                        {
                            "alert_id": "YB-2026-000123",
                            "alert_type": "medical_insurance.large_out_of_pocket",
                            "subject_id_number": "11010519491231002X",
                            "village_code": "141122100201",
                            "amount": 52000.0,
                            "occurred_on": "2026-11-01",
                            "details": {},
                        }
                    ]
                }
            ]
        },
    )

    alerts: list[Any] = Field(
        min_length=1, max_length=1000, description="预警条目（格式同单条推送），最多1000条"
    )


class ItemError(BaseModel):
    """One problem of a batch item."""

    field: str
    code: str
    message_zh: str
    message_en: str


class BatchItemResult(BaseModel):
    """The outcome of one batch item."""

    index: int
    alert_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    errors: list[ItemError] = Field(default_factory=list)


class BatchResult(BaseModel):
    """Per-item outcomes of a batch."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {"index": 0, "alert_id": "YB-1", "status": "accepted", "errors": []},
                        {"index": 1, "alert_id": "YB-0", "status": "duplicate", "errors": []},
                        {
                            "index": 2,
                            "alert_id": "YB-2",
                            "status": "rejected",
                            "errors": [
                                {
                                    "field": "subject_id_number",
                                    "code": "resident_id.checksum",
                                    "message_zh": "身份证号码校验位不正确，请核对",
                                    "message_en": "the check character does not match",
                                }
                            ],
                        },
                    ],
                    "accepted": 1,
                    "duplicate": 1,
                    "rejected": 1,
                }
            ]
        }
    )

    results: list[BatchItemResult]
    accepted: int
    duplicate: int
    rejected: int


class ReportCreate(BaseModel):
    """干部走访排查: a cadre's or information officer's screening report."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "subject": {
                        "name": "李四",
                        "id_number": "11010519491231002X",
                        "relation": "self",
                    },
                    "village_code": "141122100201",
                    "difficulty_types": ["unsafe_housing"],
                    "description": "走访发现住房墙体开裂，疑似危房",
                    "income_last_12_months": 8600.0,
                    "members": [],
                    "visit_date": "2026-11-20",
                }
            ]
        },
    )

    subject: PersonIn = Field(description="被排查户的户主或当事人")
    village_code: str
    difficulty_types: list[str] = Field(min_length=1, max_length=10)
    description: FreeText = Field(default="", max_length=2000)
    income_last_12_months: Money | None = Field(
        default=None, ge=0, le=100_000_000, max_digits=14, decimal_places=2
    )
    members: list[PersonIn] = Field(default_factory=list, max_length=30)
    visit_date: date = Field(description="走访日期（北京时间）")

    _village = field_validator("village_code")(validation.village_code)
    _visit = field_validator("visit_date")(validation.not_future)

    @field_validator("difficulty_types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        for item in v:
            validation.enum_value(item, validation.DIFFICULTY_TYPES, "difficulty_types")
        return list(dict.fromkeys(v))


class ReportReceipt(BaseModel):
    """What a filed report returns."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"report_id": "BG20261122P4X8N2RT"}]})

    report_id: str = Field(description="走访报告编号")


JobStatus = Literal["queued", "running", "done", "failed"]
BulkFormat = Literal["ndjson", "csv", "xlsx"]

_JOB_EXAMPLE_ID = "6f1c2a4e-8d3b-4f0a-9a51-2b7c0e9d4f11"


class BulkJobAccepted(BaseModel):
    """What a bulk push returns: the job to poll."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": _JOB_EXAMPLE_ID,
                    "status_url": f"/v1/jobs/{_JOB_EXAMPLE_ID}",
                    "status": "queued",
                    "rows_total": 250000,
                }
            ]
        }
    )

    job_id: uuid.UUID = Field(description="批量任务编号")
    status_url: str = Field(description="任务进度查询地址")
    status: JobStatus
    rows_total: int | None = Field(description="文件中的数据行数（XLSX 为工作表声明的估计值）")


class JobCounts(BaseModel):
    """How the rows processed so far were judged."""

    rows: int = Field(description="已处理行数")
    accepted: int = Field(description="已受理")
    duplicate: int = Field(description="重复（该部门已推送过同一 alert_id）")
    rejected: int = Field(description="不合格（原因见拒收报告）")


class JobProgress(BaseModel):
    """How far a job has got."""

    processed: int
    total: int | None
    percent: float | None


class JobError(BaseModel):
    """Why a job failed as a whole (row problems are rejections, not job errors)."""

    code: str
    message_zh: str
    message_en: str


class BulkJobRead(BaseModel):
    """A bulk job's state, counts and progress."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": _JOB_EXAMPLE_ID,
                    "status": "running",
                    "format": "ndjson",
                    "department": "medical_insurance",
                    "created_at": "2026-11-22T02:00:00Z",
                    "started_at": "2026-11-22T02:00:01Z",
                    "finished_at": None,
                    "counts": {"rows": 42000, "accepted": 41800, "duplicate": 150, "rejected": 50},
                    "progress": {"processed": 42000, "total": 250000, "percent": 16.8},
                    "error": None,
                    "rejections_url": f"/v1/jobs/{_JOB_EXAMPLE_ID}/rejections",
                }
            ]
        }
    )

    job_id: uuid.UUID
    status: JobStatus = Field(
        description="queued（排队）、running（处理中）、done（完成）、failed（失败）"
    )
    format: BulkFormat
    department: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: JobCounts
    progress: JobProgress
    error: JobError | None = None
    rejections_url: str = Field(description="拒收报告（CSV）下载地址")


class ProgressCallback(BaseModel):
    """The body POSTed to a declaration's callback URL on every change of its progress."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "delivery_id": "0b6f7d1e-3c2a-4e59-8f0d-5a9b1c2d3e4f",
                    "receipt_no": "SB20261122K7M2Q9XA",
                    "sequence": 2,
                    "stage": "under_verification",
                    "stage_label_zh": "核查中",
                    "changed_at": "2026-11-22T02:16:10Z",
                    "identification_due": "2026-12-07",
                    "outcome_reason": None,
                }
            ]
        }
    )

    delivery_id: uuid.UUID = Field(description="推送编号；重试时不变，接收方可据此去重")
    receipt_no: str
    sequence: int = Field(description="该申报的第几个进度节点，从1开始递增")
    stage: Stage
    stage_label_zh: str
    changed_at: datetime
    identification_due: date | None
    outcome_reason: str | None

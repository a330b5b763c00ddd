"""A region's casework procedure as versioned data: steps, permissions, risk-elimination rules.

`workflow.py` is the state machine; this module is what a region configures around it
(domain.md §9 A8, A12, A16):

* which optional identification steps it runs and where a township return goes back to;
* who may do what (`permissions`): every procedure `Action` and every case-keeping
  `Operation` is listed explicitly, so a missing grant is a data error at load time rather
  than a silent lock-out;
* whether risk elimination has its own publicity, and the criteria it is checked against.

Templates live in `policies/procedure/*.json`.  A case is bound to the template of its
region when it opens (like its deadline policy): a later change of a region's procedure
never moves a case that is half-way through the old one.  The most specific template whose
region contains the case's village wins; `default` applies everywhere else.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from enum import StrEnum
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.casework.workflow import (
    Action,
    IllegalTransition,
    Stage,
    WorkflowTemplate,
)
from shared.regions import full_code, in_scope

__all__ = [
    "OPERATION_LABELS_ZH",
    "SYSTEM_ROLE",
    "EliminationCriteria",
    "Operation",
    "ProcedureTemplate",
    "ProcedureTemplates",
    "allowed_operations",
    "check_operation",
    "load_procedure_templates",
]

# The role the service acts under when no person decides (a new risk reopening a case).
SYSTEM_ROLE = "system"


class Operation(StrEnum):
    """Case-keeping steps that never move the procedure stage."""

    RECORD_VISIT = "record_visit"
    UPDATE_PLAN_ITEM = "update_plan_item"
    PAUSE_DEADLINE = "pause_deadline"
    RESUME_DEADLINE = "resume_deadline"
    EXTEND_DEADLINE = "extend_deadline"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the operation."""
        return OPERATION_LABELS_ZH[self]


OPERATION_LABELS_ZH: Mapping[Operation, str] = {
    Operation.RECORD_VISIT: "录入走访记录",
    Operation.UPDATE_PLAN_ITEM: "更新帮扶措施进度",
    Operation.PAUSE_DEADLINE: "暂停计时",
    Operation.RESUME_DEADLINE: "恢复计时",
    Operation.EXTEND_DEADLINE: "延长时限",
}

# Visits and plan progress belong to the monitored phase, until the risk is confirmed gone.
_MONITORED: frozenset[Stage] = frozenset(
    {Stage.MONITORING, Stage.ASSISTANCE, Stage.RISK_ELIMINATION}
)
# Clocks can be paused or extended while the case is open; closed cases have none running.
_OPEN: frozenset[Stage] = frozenset(Stage) - {Stage.NOT_INCLUDED, Stage.EXITED}
_OPERATION_STAGES: Mapping[Operation, frozenset[Stage]] = {
    Operation.RECORD_VISIT: _MONITORED,
    Operation.UPDATE_PLAN_ITEM: _MONITORED,
    Operation.PAUSE_DEADLINE: _OPEN,
    Operation.RESUME_DEADLINE: _OPEN,
    Operation.EXTEND_DEADLINE: _OPEN,
}


class EliminationCriteria(BaseModel):
    """What must hold before risk elimination is proposed or confirmed (§9 A16)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Annual per-capita income the household must stay at or above.
    income_line_yuan: Decimal = Field(gt=0)
    # How many consecutive calendar months of recorded income must clear the line; 0 = none.
    income_stable_months: int = Field(ge=0, le=36)
    require_guarantees_secure: bool
    require_plan_delivered: bool
    citation: str = Field(min_length=1)


class ProcedureTemplate(BaseModel):
    """One region's procedure, as stored in policies/procedure/<name>.json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    # "default", or the statistical code of the region it governs (county, township, ...).
    region_code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    effective_from: date
    description: str = ""
    identification_steps: tuple[Stage, ...]
    township_return_to: Stage = Stage.HOME_VERIFICATION
    elimination_publicity: bool = False
    permissions: dict[str, tuple[str, ...]]
    elimination: EliminationCriteria

    @model_validator(mode="after")
    def _check(self) -> ProcedureTemplate:
        """Refuse unknown regions, unknown or missing grants, and illegal step lists."""
        if self.region_code != "default" and full_code(self.region_code) is None:
            raise ValueError(f"region_code {self.region_code!r} is not a region code")
        known = {a.value for a in Action} | {o.value for o in Operation}
        unknown = set(self.permissions) - known
        if unknown:
            raise ValueError(f"permissions name unknown actions {sorted(unknown)}")
        missing = known - set(self.permissions)
        if missing:
            raise ValueError(f"permissions must list every action; missing {sorted(missing)}")
        # Building the state-machine template runs its own step validation.
        self.workflow()
        return self

    def workflow(self) -> WorkflowTemplate:
        """Return the state-machine template this data describes."""
        return WorkflowTemplate(
            name=self.name,
            identification_steps=self.identification_steps,
            permissions={a: frozenset(self.permissions[a.value]) for a in Action},
            elimination_publicity=self.elimination_publicity,
            township_return_to=self.township_return_to,
        )

    def may_operate(self, operation: Operation, role: str) -> bool:
        """Return whether role may perform a case-keeping operation."""
        return role in self.permissions.get(operation.value, ())


def check_operation(
    template: ProcedureTemplate, stage: Stage, operation: Operation, role: str
) -> None:
    """Raise IllegalTransition unless role may perform operation at stage."""
    allowed = _OPERATION_STAGES[operation]
    if stage not in allowed:
        order = list(Stage)
        names = sorted(allowed, key=order.index)
        raise IllegalTransition(
            "wrong_stage",
            f"案件当前处于「{stage.label_zh}」阶段，不能办理「{operation.label_zh}」"
            f"（须处于：{'、'.join(s.label_zh for s in names)}）。",
            f"The case is at stage {stage.value}; {operation.value} is only possible at: "
            f"{', '.join(s.value for s in names)}.",
        )
    if not template.may_operate(operation, role):
        raise IllegalTransition(
            "role_not_allowed",
            f"角色「{role}」无权办理「{operation.label_zh}」。",
            f"Role {role!r} may not perform {operation.value}.",
        )


def allowed_operations(template: ProcedureTemplate, stage: Stage, role: str) -> list[Operation]:
    """Return the operations role may perform at stage, in declaration order."""
    return [
        op for op in Operation if stage in _OPERATION_STAGES[op] and template.may_operate(op, role)
    ]


class ProcedureTemplates:
    """The templates of every region, chosen by the most specific region containing a case."""

    def __init__(self, templates: Iterable[ProcedureTemplate]) -> None:
        by_region: dict[str, ProcedureTemplate] = {}
        for template in templates:
            if template.region_code in by_region:
                raise ValueError(f"two templates for region {template.region_code!r}")
            by_region[template.region_code] = template
        if "default" not in by_region:
            raise ValueError("a default procedure template is required")
        self._by_region = by_region

    def __len__(self) -> int:
        return len(self._by_region)

    def for_region(self, region_code: str) -> ProcedureTemplate:
        """Return the template that governs a case in region_code."""
        best: ProcedureTemplate = self._by_region["default"]
        best_length = 0
        for code, template in self._by_region.items():
            if code == "default" or not in_scope(code, region_code):
                continue
            # A longer significant code is a smaller region: a township beats its county.
            length = len(code.rstrip("0"))
            if length > best_length:
                best, best_length = template, length
        return best


@functools.cache
def load_procedure_templates() -> ProcedureTemplates:
    """Load every packaged template (policies/procedure/*.json); the result is immutable."""
    folder = resources.files("services.casework").joinpath("policies/procedure")
    templates = [
        ProcedureTemplate.model_validate(json.loads(entry.read_text(encoding="utf-8")))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    ]
    return ProcedureTemplates(templates)

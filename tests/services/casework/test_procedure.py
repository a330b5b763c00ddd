"""Tests for per-region procedure templates and case-keeping operations."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from services.casework.procedure import (
    Operation,
    ProcedureTemplate,
    ProcedureTemplates,
    allowed_operations,
    check_operation,
    load_procedure_templates,
)
from services.casework.workflow import (
    Action,
    IllegalTransition,
    Stage,
    default_workflow_template,
)

DEFAULT = load_procedure_templates().for_region("default")


def variant(**changes: Any) -> ProcedureTemplate:
    """Return the default template with some fields replaced, validated afresh."""
    data = DEFAULT.model_dump(mode="json")
    data.update(changes)
    return ProcedureTemplate.model_validate(data)


class TestLoadProcedureTemplates:
    def test_the_packaged_default_is_the_documented_procedure(self) -> None:
        assert DEFAULT.region_code == "default"
        coded = default_workflow_template()
        # Permissions are compared in the next test (the data adds the system's reopen grant).
        assert replace(DEFAULT.workflow(), permissions=coded.permissions) == coded

    def test_packaged_permissions_match_the_state_machine_defaults(self) -> None:
        # The JSON is the region-editable copy; it must not drift from the coded default.
        expected = default_workflow_template().permissions
        workflow = DEFAULT.workflow()
        for action in Action:
            extra = {"system"} if action == Action.REOPEN else set()
            assert workflow.permissions[action] == expected[action] | extra, action

    def test_elimination_criteria_are_data(self) -> None:
        criteria = DEFAULT.elimination
        assert str(criteria.income_line_yuan) == "6000"
        assert criteria.income_stable_months == 6
        assert criteria.require_guarantees_secure
        assert criteria.require_plan_delivered


class TestProcedureTemplateValidation:
    @pytest.mark.parametrize(
        ("changes", "match"),
        [
            pytest.param({"region_code": "14112"}, "not a region code", id="bad-region"),
            pytest.param(
                {"identification_steps": ["home_verification", "county_approval"]},
                "lack",
                id="no-publicity",
            ),
            pytest.param(
                {"permissions": {**DEFAULT.permissions, "approve_everything": ["admin"]}},
                "unknown actions",
                id="unknown-action",
            ),
            pytest.param(
                {"permissions": {k: v for k, v in DEFAULT.permissions.items() if k != "exit"}},
                "missing",
                id="missing-grant",
            ),
            pytest.param(
                {"elimination": {**DEFAULT.elimination.model_dump(), "income_line_yuan": "0"}},
                "greater than 0",
                id="zero-income-line",
            ),
        ],
    )
    def test_invalid_templates_are_refused(self, changes: dict[str, Any], match: str) -> None:
        with pytest.raises(ValidationError, match=match):
            variant(**changes)

    def test_a_region_may_add_democratic_appraisal(self) -> None:
        template = variant(
            region_code="141122",
            identification_steps=[
                "home_verification",
                "department_crosscheck",
                "democratic_appraisal",
                "village_publicity",
                "county_approval",
            ],
        )
        assert template.workflow().enables(Stage.DEMOCRATIC_APPRAISAL)
        assert not template.workflow().enables(Stage.TOWNSHIP_REVIEW)


class TestForRegion:
    TEMPLATES = ProcedureTemplates(
        [
            DEFAULT,
            variant(region_code="141122", name="jiaocheng"),
            variant(region_code="141122101", name="xiajiaying"),
        ]
    )

    @pytest.mark.parametrize(
        ("region", "expected"),
        [
            pytest.param("141122100201", "jiaocheng", id="village-of-the-county"),
            pytest.param("141122101201", "xiajiaying", id="village-of-the-township"),
            pytest.param("141122101", "xiajiaying", id="the-township-itself"),
            pytest.param("140100000000", "default", id="elsewhere"),
            pytest.param("not-a-code", "default", id="malformed"),
        ],
    )
    def test_most_specific_region_wins(self, region: str, expected: str) -> None:
        assert self.TEMPLATES.for_region(region).name == expected

    def test_a_default_is_required(self) -> None:
        with pytest.raises(ValueError, match="default"):
            ProcedureTemplates([variant(region_code="141122")])

    def test_two_templates_for_one_region_are_refused(self) -> None:
        with pytest.raises(ValueError, match="two templates"):
            ProcedureTemplates([DEFAULT, DEFAULT])


class TestCheckOperation:
    @pytest.mark.parametrize(
        ("stage", "operation", "role", "code"),
        [
            pytest.param(Stage.MONITORING, Operation.RECORD_VISIT, "village_officer", None),
            pytest.param(
                Stage.RISK_ELIMINATION, Operation.RECORD_VISIT, "helper", "role_not_allowed"
            ),
            pytest.param(Stage.OPENED, Operation.RECORD_VISIT, "village_officer", "wrong_stage"),
            pytest.param(
                Stage.RISK_ELIMINATED, Operation.UPDATE_PLAN_ITEM, "county_officer", "wrong_stage"
            ),
            pytest.param(Stage.OPENED, Operation.EXTEND_DEADLINE, "county_officer", None),
            pytest.param(
                Stage.OPENED, Operation.EXTEND_DEADLINE, "township_officer", "role_not_allowed"
            ),
            pytest.param(Stage.OPENED, Operation.PAUSE_DEADLINE, "township_officer", None),
            pytest.param(Stage.EXITED, Operation.RESUME_DEADLINE, "county_officer", "wrong_stage"),
        ],
    )
    def test_stage_then_role(
        self, stage: Stage, operation: Operation, role: str, code: str | None
    ) -> None:
        if code is None:
            check_operation(DEFAULT, stage, operation, role)
            return
        with pytest.raises(IllegalTransition) as caught:
            check_operation(DEFAULT, stage, operation, role)
        assert caught.value.code == code
        assert caught.value.message_zh
        assert caught.value.message_en


class TestAllowedOperations:
    @pytest.mark.parametrize(
        ("stage", "role", "expected"),
        [
            pytest.param(
                Stage.ASSISTANCE,
                "county_officer",
                list(Operation),
                id="county-in-assistance",
            ),
            pytest.param(
                Stage.MONITORING,
                "village_officer",
                [Operation.RECORD_VISIT, Operation.UPDATE_PLAN_ITEM],
                id="village-in-monitoring",
            ),
            pytest.param(
                Stage.HOME_VERIFICATION,
                "township_officer",
                [Operation.PAUSE_DEADLINE, Operation.RESUME_DEADLINE],
                id="township-before-inclusion",
            ),
            pytest.param(Stage.NOT_INCLUDED, "county_officer", [], id="closed"),
        ],
    )
    def test_allowed(self, stage: Stage, role: str, expected: list[Operation]) -> None:
        assert allowed_operations(DEFAULT, stage, role) == expected

    def test_every_operation_has_a_chinese_label(self) -> None:
        assert all(op.label_zh for op in Operation)

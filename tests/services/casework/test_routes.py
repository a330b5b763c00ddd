"""Tests for casework's HTTP routes: procedure actions, access, history, as_of, helpers, calendar."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.services.casework.harness import (
    COUNTY,
    HELPER,
    NEIGHBOUR,
    OTHER_TOWNSHIP_VILLAGE,
    TOWNSHIP,
    VILLAGE,
    Casework,
    template,
    verification,
)

Setup = Callable[[Casework, str], Awaitable[None]]


def kinds(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the case's deadlines by kind (the latest clock of each kind)."""
    return {d["kind"]: d for d in detail["deadlines"]}


def actions(detail: dict[str, Any]) -> list[str]:
    """Return the actions of the case's history."""
    return [h["action"] for h in detail["history"]]


async def opened(cw: Casework, case_id: str) -> None:
    """Leave the case as it opened."""


async def verifying(cw: Casework, case_id: str) -> None:
    """Start the home verification."""
    await cw.ok(case_id, cw.village, "start_verification")


async def crosschecking(cw: Casework, case_id: str) -> None:
    """Record the verification; the case waits for the departments."""
    await verifying(cw, case_id)
    await cw.ok(
        case_id, cw.village, "record_verification", verification=verification(on="2026-03-02")
    )


async def publicising(cw: Casework, case_id: str) -> None:
    """Start the village publicity on 2026-03-02."""
    await cw.to_publicity(case_id, "2026-03-02")


async def township_review(cw: Casework, case_id: str) -> None:
    """End a full publicity; the township reviews."""
    await cw.to_publicity(case_id, "2026-03-02")
    cw.at("2026-03-07")
    await cw.ok(case_id, cw.village, "end_publicity")


async def monitoring(cw: Casework, case_id: str) -> None:
    """Include the household on 2026-03-09."""
    await cw.to_monitoring(case_id, "2026-03-02", include_on="2026-03-09")


async def assisting(cw: Casework, case_id: str) -> None:
    """Include, name a helper, record a plan and start assistance."""
    await cw.to_assistance(case_id, "2026-03-02", include_on="2026-03-09")


class TestPostAction:
    @pytest.mark.parametrize(
        ("setup", "role", "action", "body", "status", "code"),
        [
            pytest.param(
                opened, "village", "end_publicity", {}, 409, "wrong_stage", id="end-unstarted"
            ),
            pytest.param(
                opened,
                "county",
                "county_include",
                {"categories": ["marginal"]},
                409,
                "wrong_stage",
                id="include-without-procedure",
            ),
            pytest.param(
                verifying,
                "county",
                "record_crosscheck",
                {"results": [{"department": "health", "result": "consistent"}]},
                409,
                "wrong_stage",
                id="crosscheck-before-verification",
            ),
            pytest.param(
                crosschecking,
                "county",
                "record_crosscheck",
                {
                    "results": [
                        {"department": "health", "result": "consistent"},
                        {"department": "housing", "result": "pending"},
                    ]
                },
                409,
                "crosscheck_pending",
                id="department-still-pending",
            ),
            pytest.param(
                publicising,
                "village",
                "end_publicity",
                {},
                409,
                "publicity_too_short",
                id="publicity-day-0",
            ),
            pytest.param(
                publicising,
                "village",
                "resolve_objection",
                {"objection_no": 1, "resolution": "无", "upheld": False},
                409,
                "no_open_objection",
                id="nothing-to-resolve",
            ),
            pytest.param(
                township_review,
                "village",
                "township_approve",
                {},
                403,
                "role_not_allowed",
                id="village-cannot-approve",
            ),
            pytest.param(
                township_review,
                "county",
                "county_include",
                {"categories": ["marginal"]},
                409,
                "wrong_stage",
                id="county-before-township",
            ),
            pytest.param(
                monitoring,
                "village",
                "start_assistance",
                {},
                409,
                "helper_missing",
                id="assistance-without-helper",
            ),
            pytest.param(
                monitoring,
                "village",
                "assign_helper",
                {"helper": HELPER},
                403,
                "role_not_allowed",
                id="village-cannot-assign",
            ),
            pytest.param(
                opened,
                "village",
                "record_visit",
                {"visit": {"visited_on": "2026-03-02", "visitor_name": "李", "findings": "x"}},
                409,
                "wrong_stage",
                id="visit-before-inclusion",
            ),
            pytest.param(
                monitoring,
                "township",
                "extend_deadline",
                {"deadline_id": str(uuid.uuid4()), "days": 3, "reason": "x"},
                403,
                "role_not_allowed",
                id="extension-is-county-policy",
            ),
            pytest.param(
                assisting,
                "village",
                "propose_elimination",
                {},
                409,
                "elimination_criteria_unmet",
                id="elimination-criteria",
            ),
        ],
    )
    async def test_refusals_say_why(
        self,
        cw: Casework,
        setup: Setup,
        role: str,
        action: str,
        body: dict[str, Any],
        status: int,
        code: str,
    ) -> None:
        case_id = await cw.open_case()
        await setup(cw, case_id)
        before = await cw.case(case_id)
        token = {"village": cw.village, "township": cw.township, "county": cw.county}[role]
        response = await cw.act(case_id, token, action, **body)
        assert response.status_code == status, response.text
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["code"] == code
        assert problem["detail_zh"] == problem["message_zh"]
        assert problem["detail"] == problem["message_en"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in problem["message_zh"])
        assert problem["message_en"].isascii()
        # A refusal stores nothing.
        after = await cw.case(case_id)
        assert after["history"] == before["history"]
        assert after["version"] == before["version"]

    @pytest.mark.parametrize(
        ("day", "status"),
        [
            pytest.param("2026-03-02", 409, id="day-1-start"),
            pytest.param("2026-03-06", 409, id="day-5-last-day"),
            pytest.param("2026-03-07", 200, id="day-6-may-close"),
        ],
    )
    async def test_publicity_runs_at_least_five_days(
        self, cw: Casework, day: str, status: int
    ) -> None:
        case_id = await cw.open_case()
        await cw.to_publicity(case_id, "2026-03-02")
        cw.at(day, hour=0)
        response = await cw.act(case_id, cw.village, "end_publicity")
        assert response.status_code == status, response.text
        if status == 409:
            assert "2026-03-06" in response.json()["message_zh"]

    async def test_open_objection_blocks_approval_until_resolved(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await cw.to_publicity(case_id, "2026-03-02")
        cw.at("2026-03-04")
        filed = await cw.ok(
            case_id,
            cw.village,
            "file_objection",
            objection={"text": "该户有家庭成员在外务工，收入不实", "objector": "王某"},
        )
        assert filed["record"]["objections"][0]["open"] is True
        cw.at("2026-03-08")
        refused = await cw.act(case_id, cw.village, "end_publicity")
        assert refused.status_code == 409
        assert refused.json()["code"] == "open_objection"
        resolved = await cw.ok(
            case_id,
            cw.township,
            "resolve_objection",
            objection_no=1,
            resolution="经核实务工收入已计入，异议不成立",
            upheld=False,
        )
        objection = resolved["record"]["objections"][0]
        assert objection["open"] is False
        assert objection["upheld"] is False
        assert objection["resolved_on"] == "2026-03-08"
        approved = await cw.ok(case_id, cw.village, "end_publicity")
        assert approved["stage"] == "township_review"

    async def test_full_procedure_publishes_every_step(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await cw.to_assistance(case_id, "2026-03-02", include_on="2026-03-09")
        detail = await cw.case(case_id)
        (item,) = detail["plan"]
        await cw.ok(
            case_id, cw.village, "update_plan_item", item_id=item["item_id"], status="delivered"
        )
        for month in range(4, 10):
            cw.at(f"2026-{month:02d}-10")
            await cw.ok(
                case_id,
                cw.village,
                "record_visit",
                visit={
                    "visited_on": f"2026-{month:02d}-10",
                    "visitor_name": "李帮扶",
                    "helper_id": "TN-0007",
                    "findings": "车间务工稳定",
                    "income_per_capita": "6800.00",
                },
            )
        cw.at("2026-09-20")
        proposed = await cw.ok(case_id, cw.village, "propose_elimination", reason="收入稳定")
        assert proposed["stage"] == "risk_elimination"
        confirmed = await cw.ok(case_id, cw.county, "confirm_elimination")
        assert confirmed["stage"] == "risk_eliminated"
        exited = await cw.ok(case_id, cw.county, "exit", reason="风险消除后按程序退出")
        assert exited["stage"] == "exited"
        assert exited["closed_at"] is not None
        assert exited["allowed_actions"] == []
        assert all(d["met_at"] or d["closed"] for d in exited["deadlines"])

        changed = [
            (e["from_stage"], e["to_stage"]) for e in await cw.events("casework.stage_changed")
        ]
        assert changed == [
            ("opened", "home_verification"),
            ("home_verification", "department_crosscheck"),
            ("department_crosscheck", "village_publicity"),
            ("village_publicity", "township_review"),
            ("township_review", "county_approval"),
            ("county_approval", "monitoring"),
            ("monitoring", "assistance"),
            ("assistance", "risk_elimination"),
            ("risk_elimination", "risk_eliminated"),
            ("risk_eliminated", "exited"),
        ]
        types = [e["event_type"] for e in await cw.events()]
        assert types.count("casework.included") == 1
        assert types.count("casework.helper_assigned") == 1
        assert types.count("casework.risk_eliminated") == 1
        (included,) = await cw.events("casework.included")
        assert included["categories"] == ["marginal"]
        (helper,) = await cw.events("casework.helper_assigned")
        assert (helper["helper_id"], helper["helper_name"]) == ("TN-0007", "李帮扶")

        again = await cw.act(case_id, cw.county, "reopen", reason="新风险")
        assert again.status_code == 409
        assert again.json()["code"] == "case_closed"

    async def test_history_records_who_when_from_to_reason_and_data(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        cw.at("2026-03-02", hour=1)
        await cw.ok(case_id, cw.village, "start_verification", reason="入户核查")
        await cw.ok(
            case_id, cw.village, "record_verification", verification=verification(on="2026-03-02")
        )
        history = (await cw.case(case_id))["history"]
        assert [(h["action"], h["from_stage"], h["to_stage"]) for h in history] == [
            ("open", None, "opened"),
            ("start_verification", "opened", "home_verification"),
            ("record_verification", "home_verification", "department_crosscheck"),
        ]
        step = history[1]
        assert step["actor"] == f"village_officer@{VILLAGE}"
        assert step["actor_role"] == "village_officer"
        assert step["reason"] == "入户核查"
        assert step["at"].startswith("2026-03-01T17:00:00")  # 01:00 in Beijing, stored in UTC
        recorded = history[2]["data"]["verification"]
        assert recorded["verified_income_per_capita"] == "5200.00"
        assert recorded["guarantees"]["drinking_water"] == "secure"

    async def test_rejection_closes_the_case_with_the_applicant_reason(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await crosschecking(cw, case_id)
        detail = await cw.ok(
            case_id,
            cw.county,
            "county_reject",
            applicant_reason="经入户核查，家庭人均收入高于监测标准，暂不纳入",
            reason="核查收入 9800 元",
        )
        assert detail["stage"] == "not_included"
        assert detail["closed_at"] is not None
        assert kinds(detail)["identification"]["met_at"] is not None
        (changed,) = [
            e for e in await cw.events("casework.stage_changed") if e["to_stage"] == "not_included"
        ]
        # Only the applicant-visible reason travels; the internal note stays in the history.
        assert changed["reason"] == "经入户核查，家庭人均收入高于监测标准，暂不纳入"
        assert detail["history"][-1]["reason"] == "核查收入 9800 元"
        later = await cw.act(case_id, cw.village, "start_verification")
        assert later.json()["code"] == "case_closed"

    async def test_clocks_are_met_when_their_step_happens(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await cw.to_publicity(case_id, "2026-03-02")
        before = kinds(await cw.case(case_id))
        assert before["identification"]["due"] == "2026-03-17"
        assert before["publicity_min"]["due"] == "2026-03-07"
        cw.at("2026-03-09")
        await cw.ok(case_id, cw.village, "end_publicity")
        await cw.ok(case_id, cw.township, "township_approve")
        included = kinds(await cw.ok(case_id, cw.county, "county_include", categories=["marginal"]))
        assert included["identification"]["met_at"] is not None
        assert included["publicity_min"]["met_at"] is not None
        # 10 working days from Monday 9 March: 23 March.
        assert included["helper_assignment"]["due"] == "2026-03-23"
        assert included["assistance_plan"]["due"] == "2026-03-23"
        assert included["helper_assignment"]["met_at"] is None
        # The month of inclusion is exempt; April's visit is owed by 30 April.
        assert included["monthly_visit"]["due"] == "2026-04-30"
        cw.at("2026-03-12")
        helper = kinds(await cw.ok(case_id, cw.township, "assign_helper", helper=HELPER))
        assert helper["helper_assignment"]["met_at"] is not None
        assert helper["assistance_plan"]["met_at"] is None
        plan = kinds(
            await cw.ok(
                case_id, cw.village, "record_plan", items=[{"measure_code": "finance.microcredit"}]
            )
        )
        assert plan["assistance_plan"]["met_at"] is not None

    async def test_plan_items_come_from_the_catalogue(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await monitoring(cw, case_id)
        unknown = await cw.act(
            case_id,
            cw.village,
            "record_plan",
            items=[{"measure_code": "employment.workshop"}, {"measure_code": "cash.handout"}],
        )
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["field"] == "items.1.measure_code"
        detail = await cw.ok(
            case_id,
            cw.village,
            "record_plan",
            items=[
                {"measure_code": "employment.workshop"},
                {"measure_code": "medical.three_tier_protection", "responsible_unit": "县医保局"},
            ],
        )
        assert [(i["name_zh"], i["responsible_unit"], i["status"]) for i in detail["plan"]] == [
            ("就业帮扶车间", "县人力资源和社会保障局", "planned"),
            ("基本医保、大病保险、医疗救助三重保障", "县医保局", "planned"),
        ]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            pytest.param({"action": "approve_everything"}, "body", id="unknown-action"),
            pytest.param(
                {"action": "county_reject"}, "county_reject.applicant_reason", id="no-reason"
            ),
            pytest.param(
                {"action": "township_return"}, "township_return.reason", id="return-needs-reason"
            ),
            pytest.param(
                {
                    "action": "record_crosscheck",
                    "results": [
                        {"department": "health", "result": "consistent"},
                        {"department": "health", "result": "discrepancy"},
                    ],
                },
                "record_crosscheck.results",
                id="one-result-per-department",
            ),
        ],
    )
    async def test_invalid_bodies_are_422(
        self, cw: Casework, body: dict[str, Any], field: str
    ) -> None:
        case_id = await cw.open_case()
        response = await cw.http.post(
            f"/v1/cases/{case_id}/actions",
            json=body,
            headers={"Authorization": f"Bearer {cw.county}"},
        )
        assert response.status_code == 422, response.text
        assert field in [e["field"] for e in response.json()["errors"]]

    async def test_stale_version_is_refused(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        first = await cw.case(case_id)
        await cw.ok(case_id, cw.village, "start_verification", expected_version=first["version"])
        stale = await cw.act(
            case_id,
            cw.village,
            "record_verification",
            verification=verification(on="2026-03-02"),
            expected_version=first["version"],
        )
        assert stale.status_code == 409
        assert stale.json()["code"] == "version_conflict"

    async def test_deadlines_pause_resume_and_extend_with_reasons(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        clock = kinds(await cw.case(case_id))["identification"]
        assert clock["due"] == "2026-03-17"
        cw.at("2026-03-03")
        paused = await cw.ok(
            case_id,
            cw.township,
            "pause_deadline",
            deadline_id=clock["deadline_id"],
            reason="户主住院，无法入户核查",
        )
        assert kinds(paused)["identification"]["paused"] is True
        cw.at("2026-03-06")
        resumed = await cw.ok(
            case_id, cw.township, "resume_deadline", deadline_id=clock["deadline_id"]
        )
        # Stopped over 3, 4 and 5 March: three calendar days later.
        assert kinds(resumed)["identification"]["due"] == "2026-03-20"
        extended = await cw.ok(
            case_id,
            cw.county,
            "extend_deadline",
            deadline_id=clock["deadline_id"],
            days=5,
            unit="working_days",
            reason="需补充部门协查材料",
        )
        # Friday 20 March plus five working days.
        assert kinds(extended)["identification"]["due"] == "2026-03-27"
        steps = {h["action"]: h for h in extended["history"]}
        assert steps["pause_deadline"]["reason"] == "户主住院，无法入户核查"
        assert steps["extend_deadline"]["data"]["clocks"][0] == {
            "op": "extend",
            "id": clock["deadline_id"],
            "due": "2026-03-27",
            "from": "2026-03-20",
            "days": 5,
            "unit": "working_days",
        }

    @pytest.mark.parametrize(
        ("kind", "prepare", "code"),
        [
            pytest.param("publicity_min", publicising, "deadline_not_adjustable", id="minimum"),
            pytest.param("monthly_visit", monitoring, "deadline_not_adjustable", id="recurring"),
            pytest.param("identification", monitoring, "deadline_not_adjustable", id="already-met"),
        ],
    )
    async def test_only_running_deadlines_can_be_adjusted(
        self, cw: Casework, kind: str, prepare: Setup, code: str
    ) -> None:
        case_id = await cw.open_case()
        await prepare(cw, case_id)
        clock = kinds(await cw.case(case_id))[kind]
        response = await cw.act(
            case_id,
            cw.county,
            "extend_deadline",
            deadline_id=clock["deadline_id"],
            days=2,
            reason="x",
        )
        assert response.status_code == 409
        assert response.json()["code"] == code

    async def test_a_breached_deadline_cannot_be_extended_afterwards(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        clock = kinds(await cw.case(case_id))["identification"]
        cw.at("2026-03-18")
        assert await cw.sweep() == 1
        response = await cw.act(
            case_id,
            cw.county,
            "extend_deadline",
            deadline_id=clock["deadline_id"],
            days=2,
            reason="x",
        )
        assert response.json()["code"] == "deadline_breached"

    async def test_elimination_publicity_when_the_template_says_so(self, cw: Casework) -> None:
        cw.use_templates(
            template(
                region_code=COUNTY,
                name="with-elimination-publicity",
                elimination_publicity=True,
                elimination={"income_stable_months": 0, "require_plan_delivered": False},
            )
        )
        case_id = await cw.open_case()
        await cw.to_assistance(case_id, "2026-03-02", include_on="2026-03-09")
        cw.at("2026-04-01")
        await cw.ok(case_id, cw.village, "propose_elimination")
        early = await cw.act(case_id, cw.county, "confirm_elimination")
        assert early.json()["code"] == "publicity_not_started"
        await cw.ok(case_id, cw.village, "start_publicity")
        cw.at("2026-04-05")
        assert (await cw.act(case_id, cw.county, "confirm_elimination")).json()[
            "code"
        ] == "publicity_too_short"
        cw.at("2026-04-06")
        done = await cw.ok(case_id, cw.county, "confirm_elimination")
        assert done["stage"] == "risk_eliminated"
        assert done["procedure"].startswith("with-elimination-publicity@")


class TestStatementsPerAction:
    @pytest.mark.parametrize(
        ("action", "calendar_reads"),
        [
            pytest.param("start_verification", 0, id="starts-no-clock"),
            pytest.param("start_publicity", 1, id="starts-the-publicity-clock"),
        ],
    )
    async def test_the_calendar_and_the_clocks_are_read_only_as_needed(
        self, cw: Casework, action: str, calendar_reads: int
    ) -> None:
        case_id = await cw.open_case()
        if action == "start_publicity":
            await cw.ok(case_id, cw.village, "start_verification")
            await cw.ok(
                case_id,
                cw.village,
                "record_verification",
                verification=verification(on="2026-03-02"),
            )
            await cw.ok(
                case_id,
                cw.county,
                "record_crosscheck",
                results=[{"department": "civil_affairs", "result": "no_record"}],
            )
        statements: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(" ".join(statement.split()))

        event.listen(Engine, "before_cursor_execute", seen)
        try:
            await cw.ok(case_id, cw.village, action)
        finally:
            event.remove(Engine, "before_cursor_execute", seen)
        # The calendar is two reads (overrides, declared years) for an action that dates a
        # clock; the clocks are read twice: locked for the change, then for the reply.
        calendar = [s for s in statements if "FROM calendar_" in s]
        clocks = [s for s in statements if s.startswith("SELECT") and "FROM case_deadline" in s]
        assert len(calendar) == 2 * calendar_reads
        assert len(clocks) == 2


class TestRegionTemplates:
    async def test_each_case_follows_its_regions_template(self, cw: Casework) -> None:
        cw.use_templates(
            template(
                region_code="141122101",
                name="xiajiaying",
                identification_steps=[
                    "home_verification",
                    "department_crosscheck",
                    "democratic_appraisal",
                    "village_publicity",
                    "county_approval",
                ],
            )
        )
        local = await cw.open_case(village=OTHER_TOWNSHIP_VILLAGE)
        plain = await cw.open_case()
        officer = cw.token("village_officer", OTHER_TOWNSHIP_VILLAGE)
        await cw.ok(local, officer, "start_verification")
        await cw.ok(
            local, officer, "record_verification", verification=verification(on="2026-03-02")
        )
        local_detail = await cw.ok(
            local,
            cw.county,
            "record_crosscheck",
            results=[{"department": "health", "result": "consistent"}],
        )
        assert local_detail["stage"] == "democratic_appraisal"
        assert local_detail["procedure"].startswith("xiajiaying@")
        assert (await cw.case(plain))["procedure"].startswith("default@")


class TestAccess:
    @pytest.mark.parametrize(
        ("role", "region", "status"),
        [
            pytest.param("village_officer", VILLAGE, 200, id="own-village"),
            pytest.param("village_officer", NEIGHBOUR, 404, id="neighbouring-village"),
            pytest.param(
                "village_officer", OTHER_TOWNSHIP_VILLAGE, 404, id="other-township-village"
            ),
            pytest.param("township_officer", TOWNSHIP, 200, id="own-township"),
            pytest.param("township_officer", "141122101", 404, id="other-township"),
            pytest.param("county_officer", COUNTY, 200, id="county"),
            pytest.param("county_officer", "141121", 404, id="other-county"),
        ],
    )
    async def test_read_and_act_only_inside_the_region(
        self, cw: Casework, role: Any, region: str, status: int
    ) -> None:
        case_id = await cw.open_case()
        token = cw.token(role, region)
        for path in (f"/v1/cases/{case_id}", f"/v1/cases/{case_id}/history"):
            assert (await cw.get(path, token)).status_code == status, path
        listed = await cw.get("/v1/cases", token)
        assert (case_id in [c["case_id"] for c in listed.json()["items"]]) is (status == 200)
        acted = await cw.act(case_id, token, "start_verification")
        assert acted.status_code == status, acted.text
        history = (await cw.case(case_id))["history"]
        assert len(history) == (2 if status == 200 else 1)

    async def test_a_village_officer_cannot_list_another_village(self, cw: Casework) -> None:
        response = await cw.get("/v1/cases", cw.village, region=NEIGHBOUR)
        assert response.status_code == 403

    async def test_department_officers_read_no_cases(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        token = cw.token("department_officer", COUNTY)
        assert (await cw.get(f"/v1/cases/{case_id}", token)).status_code == 403
        assert (await cw.act(case_id, token, "start_verification")).status_code == 403


class TestGetCase:
    @pytest.mark.parametrize(
        ("setup", "role", "expected"),
        [
            pytest.param(opened, "village", ["start_verification"], id="opened-village"),
            pytest.param(
                opened,
                "township",
                ["start_verification", "pause_deadline", "resume_deadline"],
                id="opened-township",
            ),
            pytest.param(
                publicising, "village", ["file_objection"], id="publicity-running-village"
            ),
            pytest.param(
                monitoring,
                "township",
                [
                    "assign_helper",
                    "record_plan",
                    "record_visit",
                    "update_plan_item",
                    "pause_deadline",
                    "resume_deadline",
                ],
                id="monitoring-township",
            ),
        ],
    )
    async def test_allowed_actions_follow_stage_role_and_facts(
        self, cw: Casework, setup: Setup, role: str, expected: list[str]
    ) -> None:
        case_id = await cw.open_case()
        await setup(cw, case_id)
        token = {"village": cw.village, "township": cw.township}[role]
        detail = await cw.case(case_id, token)
        assert [a["action"] for a in detail["allowed_actions"]] == expected
        assert all(a["label_zh"] for a in detail["allowed_actions"])

    async def test_as_of_rebuilds_each_day_from_the_history(self, cw: Casework) -> None:
        case_id = await cw.open_case()  # 2026-03-02 10:00 Beijing
        await cw.to_publicity(case_id, "2026-03-02")
        cw.at("2026-03-04")
        await cw.ok(case_id, cw.village, "file_objection", objection={"text": "收入不实"})
        cw.at("2026-03-05")
        await cw.ok(
            case_id,
            cw.village,
            "resolve_objection",
            objection_no=1,
            resolution="不成立",
            upheld=False,
        )
        # 00:30 on 9 March in Beijing is still 8 March in UTC: it belongs to the 9th.
        cw.at("2026-03-09", hour=0)
        await cw.ok(case_id, cw.village, "end_publicity")
        await cw.ok(case_id, cw.township, "township_approve")
        await cw.ok(
            case_id, cw.county, "county_include", categories=["marginal", "sudden_difficulty"]
        )
        cw.at("2026-03-10")
        await cw.ok(case_id, cw.township, "assign_helper", helper=HELPER)
        cw.at("2026-03-24")
        assert await cw.sweep() == 1  # the plan was due on the 23rd

        missing = await cw.get(f"/v1/cases/{case_id}", cw.county, as_of="2026-03-01")
        assert missing.status_code == 404

        expected = {
            "2026-03-02": (
                "village_publicity",
                [
                    "open",
                    "start_verification",
                    "record_verification",
                    "record_crosscheck",
                    "start_publicity",
                ],
                {
                    "identification": ("2026-03-17", False, False),
                    "publicity_min": ("2026-03-07", False, False),
                },
            ),
            "2026-03-08": (
                "village_publicity",
                ["file_objection", "resolve_objection"],
                {
                    "identification": ("2026-03-17", False, False),
                    "publicity_min": ("2026-03-07", False, False),
                },
            ),
            "2026-03-09": (
                "monitoring",
                ["end_publicity", "township_approve", "county_include"],
                {
                    "identification": ("2026-03-17", True, False),
                    "helper_assignment": ("2026-03-23", False, False),
                    "assistance_plan": ("2026-03-23", False, False),
                    "monthly_visit": ("2026-04-30", False, False),
                },
            ),
            "2026-03-10": (
                "monitoring",
                ["assign_helper"],
                {
                    "helper_assignment": ("2026-03-23", True, False),
                    "assistance_plan": ("2026-03-23", False, False),
                },
            ),
            "2026-03-24": (
                "monitoring",
                ["deadline_breached"],
                {"assistance_plan": ("2026-03-23", False, True)},
            ),
        }
        seen: list[str] = []
        for day, (stage, new_actions, clocks) in expected.items():
            view = await cw.case(case_id, as_of=day)
            seen += new_actions
            assert view["as_of"] == day
            assert view["stage"] == stage, day
            assert actions(view) == seen, day
            assert view["allowed_actions"] == []
            assert view["version"] is None
            for kind, (due, met, breached) in clocks.items():
                clock = kinds(view)[kind]
                assert (clock["due"], clock["met_at"] is not None, clock["breached"]) == (
                    due,
                    met,
                    breached,
                ), (day, kind)
        on_8th = await cw.case(case_id, as_of="2026-03-08")
        assert on_8th["record"]["objections"][0]["open"] is False
        assert on_8th["categories"] == ["marginal"]
        on_9th = await cw.case(case_id, as_of="2026-03-09")
        assert on_9th["categories"] == ["marginal", "sudden_difficulty"]
        assert on_9th["helper"] is None
        assert (await cw.case(case_id, as_of="2026-03-10"))["helper"]["name"] == "李帮扶"

    async def test_as_of_today_matches_the_live_case(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await cw.to_assistance(case_id, "2026-03-02", include_on="2026-03-09")
        detail = await cw.case(case_id)
        await cw.ok(
            case_id,
            cw.village,
            "update_plan_item",
            item_id=detail["plan"][0]["item_id"],
            status="in_progress",
            note="已报名",
        )
        cw.at("2026-04-08")
        await cw.ok(
            case_id,
            cw.village,
            "record_visit",
            visit={
                "visited_on": "2026-04-08",
                "visitor_name": "李帮扶",
                "findings": "住房漏雨",
                "guarantees": {
                    **verification(on="2026-04-08")["guarantees"],
                    "housing_safety": "at_risk",
                },
            },
        )
        cw.at("2026-05-02")
        await cw.sweep()
        live = await cw.case(case_id)
        rebuilt = await cw.case(case_id, as_of="2026-05-02")
        compared = (
            "stage",
            "deadlines",
            "record",
            "helper",
            "plan",
            "categories",
            "sources",
            "history",
            "closed_at",
        )
        for name in compared:
            assert rebuilt[name] == live[name], name


class TestGetHistory:
    @pytest.mark.parametrize(
        ("method", "suffix", "status"),
        [
            pytest.param("PUT", "/history", 405, id="put-history"),
            pytest.param("PATCH", "/history", 405, id="patch-history"),
            pytest.param("DELETE", "/history", 405, id="delete-history"),
            pytest.param("POST", "/history", 405, id="post-history"),
            pytest.param("PUT", "/history/1", 404, id="put-entry"),
            pytest.param("PATCH", "/history/1", 404, id="patch-entry"),
            pytest.param("DELETE", "/history/1", 404, id="delete-entry"),
            pytest.param("DELETE", "", 405, id="delete-case"),
            pytest.param("PUT", "", 405, id="put-case"),
        ],
    )
    async def test_no_api_edits_or_deletes_history(
        self, cw: Casework, method: str, suffix: str, status: int
    ) -> None:
        case_id = await cw.open_case()
        await cw.ok(case_id, cw.village, "start_verification")
        before = (await cw.get(f"/v1/cases/{case_id}/history", cw.county)).json()
        response = await cw.http.request(
            method,
            f"/v1/cases/{case_id}{suffix}",
            json={"action": "open", "reason": "rewrite"},
            headers={"Authorization": f"Bearer {cw.admin}"},
        )
        assert response.status_code == status
        after = (await cw.get(f"/v1/cases/{case_id}/history", cw.county)).json()
        assert after == before
        assert [h["action"] for h in after] == ["open", "start_verification"]


class TestListCases:
    async def test_overdue_filter(self, cw: Casework) -> None:
        late = await cw.open_case()
        cw.at("2026-03-10")
        on_time = await cw.open_case()
        cw.at("2026-03-18")
        assert await cw.sweep() == 1
        overdue = await cw.get("/v1/cases", cw.county, overdue="true")
        assert [c["case_id"] for c in overdue.json()["items"]] == [late]
        everything = await cw.get("/v1/cases", cw.county)
        assert {c["case_id"] for c in everything.json()["items"]} == {late, on_time}


class TestListOverdue:
    async def test_overdue_deadlines_in_region_with_their_level(self, cw: Casework) -> None:
        mine = await cw.open_case()
        other = await cw.open_case(village=OTHER_TOWNSHIP_VILLAGE)
        cw.at("2026-03-18")
        assert await cw.sweep() == 2
        cw.at("2026-03-21", hour=11)
        assert await cw.sweep() == 2  # both move up to the township
        county = (await cw.get("/v1/deadlines/overdue", cw.county)).json()
        assert county["total"] == 2
        first = county["items"][0]
        assert first["kind"] == "identification"
        assert first["escalation_level"] == "township"
        assert first["days_overdue"] == 4
        township = (await cw.get("/v1/deadlines/overdue", cw.township)).json()
        assert [i["case_id"] for i in township["items"]] == [mine]
        village = (await cw.get("/v1/deadlines/overdue", cw.village, level="county")).json()
        assert village["items"] == []
        assert other  # listed for the county only
        forbidden = await cw.get("/v1/deadlines/overdue", cw.village, region=TOWNSHIP)
        assert forbidden.status_code == 403


class TestListHelpers:
    async def test_workload_counts_live_cases(self, cw: Casework) -> None:
        first = await cw.open_case()
        second = await cw.open_case(village=NEIGHBOUR)
        third = await cw.open_case(village=OTHER_TOWNSHIP_VILLAGE)
        for case_id, village in (
            (first, VILLAGE),
            (second, NEIGHBOUR),
            (third, OTHER_TOWNSHIP_VILLAGE),
        ):
            await cw.to_monitoring(case_id, "2026-03-02", include_on="2026-03-09", village=village)
        cw.at("2026-03-10")
        other_helper = {**HELPER, "helper_id": "XJY-0001", "name": "王帮扶", "unit": "夏家营镇"}
        await cw.ok(first, cw.county, "assign_helper", helper=HELPER)
        await cw.ok(second, cw.county, "assign_helper", helper=HELPER)
        await cw.ok(third, cw.county, "assign_helper", helper=other_helper)

        def table(body: dict[str, Any]) -> list[tuple[str, int, int]]:
            return [
                (h["helper_id"], h["active_cases"], h["active_cases_in_region"])
                for h in body["items"]
            ]

        county = (await cw.get("/v1/helpers", cw.county)).json()
        assert table(county) == [("TN-0007", 2, 2), ("XJY-0001", 1, 1)]
        township = (await cw.get("/v1/helpers", cw.township)).json()
        assert table(township) == [("TN-0007", 2, 2)]
        village = (await cw.get("/v1/helpers", cw.village)).json()
        assert table(village) == [("TN-0007", 2, 1)]
        # Reassigning moves the workload.
        await cw.ok(second, cw.county, "assign_helper", helper=other_helper)
        county = (await cw.get("/v1/helpers", cw.county)).json()
        assert table(county) == [("XJY-0001", 2, 2), ("TN-0007", 1, 1)]
        assert (await cw.case(second))["helper"]["helper_id"] == "XJY-0001"


class TestPostVisit:
    async def test_visit_meets_the_month_and_opens_the_next(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await monitoring(cw, case_id)
        cw.at("2026-04-15")
        response = await cw.http.post(
            f"/v1/cases/{case_id}/visits",
            json={
                "visited_on": "2026-04-14",
                "visitor_name": "李帮扶",
                "findings": "家中老人病情稳定",
                "income_per_capita": "6100.00",
            },
            headers={"Authorization": f"Bearer {cw.village}"},
        )
        assert response.status_code == 200, response.text
        monthly = [d for d in response.json()["deadlines"] if d["kind"] == "monthly_visit"]
        assert [(d["due"], d["met_at"] is not None) for d in monthly] == [
            ("2026-04-30", True),
            ("2026-05-31", False),
        ]
        visits = (await cw.get(f"/v1/cases/{case_id}/visits", cw.village)).json()["items"]
        assert [(v["visited_on"], v["income_per_capita"]) for v in visits] == [
            ("2026-04-14", "6100.00")
        ]

    @pytest.mark.parametrize(
        ("visited_on", "code"),
        [
            pytest.param("2026-04-16", "visit.future", id="tomorrow"),
            pytest.param("2026-02-27", "visit.before_case", id="before-the-case"),
        ],
    )
    async def test_impossible_dates_are_refused(
        self, cw: Casework, visited_on: str, code: str
    ) -> None:
        case_id = await cw.open_case()
        await monitoring(cw, case_id)
        cw.at("2026-04-15")
        response = await cw.act(
            case_id,
            cw.village,
            "record_visit",
            visit={"visited_on": visited_on, "visitor_name": "李", "findings": "x"},
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["code"] == code

    async def test_a_gap_found_at_a_visit_must_be_cleared_within_the_month(
        self, cw: Casework
    ) -> None:
        case_id = await cw.open_case()
        await monitoring(cw, case_id)
        secure = verification(on="2026-04-03")["guarantees"]
        cw.at("2026-04-03")
        found = await cw.ok(
            case_id,
            cw.village,
            "record_visit",
            visit={
                "visited_on": "2026-04-03",
                "visitor_name": "李帮扶",
                "findings": "饮水水质不达标",
                "guarantees": {**secure, "drinking_water": "at_risk"},
            },
        )
        problem = kinds(found)["guarantee_problem_clearance"]
        assert (problem["due"], problem["met_at"]) == ("2026-04-30", None)
        assert found["record"]["guarantees"]["drinking_water"] == "at_risk"
        cw.at("2026-04-20")
        cleared = await cw.ok(
            case_id,
            cw.village,
            "record_visit",
            visit={
                "visited_on": "2026-04-20",
                "visitor_name": "李帮扶",
                "findings": "已接通集中供水",
                "guarantees": secure,
            },
        )
        assert kinds(cleared)["guarantee_problem_clearance"]["met_at"] is not None

    async def test_secretary_visits_meet_the_annual_rules(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await monitoring(cw, case_id)
        cw.at("2026-06-01")
        detail = await cw.ok(
            case_id,
            cw.village,
            "record_visit",
            visit={
                "visited_on": "2026-06-01",
                "visitor_name": "村支书",
                "visitor_role": "village_secretary",
                "findings": "遍访",
            },
        )
        clocks = [d for d in detail["deadlines"] if d["kind"] == "village_secretary_visit"]
        assert [(d["due"], d["met_at"] is not None) for d in clocks] == [
            ("2026-12-31", True),
            ("2027-12-31", False),
        ]
        # A secretary's visit is not the helper's monthly one.
        assert kinds(detail)["monthly_visit"]["met_at"] is None


class TestGetSuggestions:
    @pytest.mark.parametrize(
        ("labour", "housing", "first", "includes", "excludes"),
        [
            pytest.param(
                "full",
                "secure",
                "industry",
                "employment.workshop",
                "social_assistance.dibao",
                id="labour",
            ),
            pytest.param(
                "none",
                "secure",
                None,
                "social_assistance.dibao",
                "employment.workshop",
                id="no-labour",
            ),
            pytest.param(
                "full",
                "at_risk",
                "housing",
                "housing.dangerous_house_renovation",
                "social_assistance.tekun",
                id="housing-gap-first",
            ),
        ],
    )
    async def test_routed_by_labour_and_gaps(
        self,
        cw: Casework,
        labour: str,
        housing: str,
        first: str | None,
        includes: str,
        excludes: str,
    ) -> None:
        case_id = await cw.open_case()
        await verifying(cw, case_id)
        await cw.ok(
            case_id,
            cw.village,
            "record_verification",
            verification=verification(on="2026-03-02", labour=labour, housing_safety=housing),
        )
        body = (await cw.get(f"/v1/cases/{case_id}/plan/suggestions", cw.village)).json()
        codes = [s["measure"]["code"] for s in body["items"]]
        assert body["labour_capacity"] == labour
        if first is not None:
            assert codes[0].split(".")[0] == first
        assert includes in codes
        assert excludes not in codes

    async def test_catalogue_is_published(self, cw: Casework) -> None:
        body = (await cw.http.get("/v1/measures")).json()
        assert body["version"]
        assert len(body["measures"]) >= 30


class TestWorkingDays:
    @pytest.mark.parametrize(
        ("start", "days", "due"),
        [
            pytest.param("2025-09-30", 1, "2025-10-09", id="2025-national-day"),
            pytest.param("2025-09-26", 1, "2025-09-28", id="2025-makeup-sunday"),
            pytest.param("2026-02-13", 1, "2026-02-14", id="2026-makeup-saturday"),
            pytest.param("2026-02-14", 1, "2026-02-24", id="2026-spring-festival"),
            pytest.param("2026-03-09", 10, "2026-03-23", id="helper-deadline"),
            pytest.param("2026-05-01", 0, "2026-05-01", id="zero-days"),
        ],
    )
    async def test_official_arithmetic(self, cw: Casework, start: str, days: int, due: str) -> None:
        response = await cw.http.get(
            "/v1/calendar/working-days", params={"start": start, "days": days}
        )
        assert response.json() == {"start": start, "days": days, "due": due}


class TestCalendarOverrides:
    DAYS_2027 = (
        {"day": "2027-01-01", "kind": "holiday"},
        {"day": "2027-02-05", "kind": "holiday"},
        {"day": "2027-02-06", "kind": "workday"},
    )

    async def test_only_admins_maintain_the_calendar(self, cw: Casework) -> None:
        body = {"reason": "x", "days": [{"day": "2026-12-31", "kind": "holiday"}]}
        for token in (cw.village, cw.county):
            response = await cw.http.post(
                "/v1/calendar/overrides", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 403
            assert (await cw.get("/v1/calendar/overrides", token)).status_code == 403

    async def test_declaring_a_year_makes_it_computable(self, cw: Casework) -> None:
        before = await cw.http.get(
            "/v1/calendar/working-days", params={"start": "2027-02-04", "days": 2}
        )
        assert before.status_code == 422
        assert before.json()["errors"][0]["code"] == "calendar.unavailable"
        created = await cw.http.post(
            "/v1/calendar/overrides",
            json={
                "reason": "国务院办公厅关于2027年部分节假日安排的通知",
                "days": list(self.DAYS_2027),
                "declares_year": 2027,
            },
            headers={"Authorization": f"Bearer {cw.admin}"},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert [d["year"] for d in body["declared_years"]] == [2027]
        assert 2027 in body["official_years"]
        assert [i["day"] for i in body["items"]] == ["2027-01-01", "2027-02-05", "2027-02-06"]
        # Thu 4 Feb → Fri 5 Feb is a day off, Sat 6 Feb a make-up workday, then Mon 8 Feb.
        after = await cw.http.get(
            "/v1/calendar/working-days", params={"start": "2027-02-04", "days": 2}
        )
        assert after.json()["due"] == "2027-02-08"
        listed = (await cw.get("/v1/calendar/overrides", cw.admin, year=2027)).json()
        assert listed["items"] == body["items"]

    async def test_undeclared_overrides_do_not_make_a_year_official(self, cw: Casework) -> None:
        created = await cw.http.post(
            "/v1/calendar/overrides",
            json={"reason": "partial entry", "days": list(self.DAYS_2027)},
            headers={"Authorization": f"Bearer {cw.admin}"},
        )
        assert created.status_code == 201
        still = await cw.http.get(
            "/v1/calendar/working-days", params={"start": "2027-02-04", "days": 2}
        )
        assert still.status_code == 422

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            pytest.param(
                {
                    "reason": "x",
                    "days": [{"day": "2026-12-31", "kind": "holiday"}],
                    "declares_year": 2027,
                },
                422,
                "override.outside_year",
                id="day-outside-declared-year",
            ),
            pytest.param(
                {
                    "reason": "x",
                    "days": [{"day": "2027-02-06", "kind": "workday"}],
                    "declares_year": 2027,
                },
                422,
                "override.no_holiday",
                id="declaration-without-days-off",
            ),
            pytest.param(
                {"reason": "x", "days": [{"day": "2027-01-01", "kind": "holiday"}] * 2},
                422,
                "override.duplicate_day",
                id="same-day-twice",
            ),
        ],
    )
    async def test_bad_entries_are_refused(
        self, cw: Casework, body: dict[str, Any], status: int, code: str
    ) -> None:
        response = await cw.http.post(
            "/v1/calendar/overrides", json=body, headers={"Authorization": f"Bearer {cw.admin}"}
        )
        assert response.status_code == status
        assert response.json()["errors"][0]["code"] == code

    async def test_a_day_is_entered_once(self, cw: Casework) -> None:
        body = {"reason": "x", "days": [{"day": "2026-12-31", "kind": "holiday"}]}
        headers = {"Authorization": f"Bearer {cw.admin}"}
        assert (
            await cw.http.post("/v1/calendar/overrides", json=body, headers=headers)
        ).status_code == 201
        again = await cw.http.post("/v1/calendar/overrides", json=body, headers=headers)
        assert again.status_code == 409

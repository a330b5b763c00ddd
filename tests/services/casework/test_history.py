"""Tests for rebuilding a case from its history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.casework import history
from services.casework.history import ClockView, Entry
from services.casework.workflow import CaseFacts, Stage

D = date.fromisoformat
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def at(days: float) -> datetime:
    """Return an instant `days` after T0."""
    return T0 + timedelta(days=days)


def entry(action: str, to_stage: str, days: float = 0, **data: Any) -> Entry:
    """Return a history entry recorded `days` after T0."""
    return Entry(
        at=at(days),
        actor="someone",
        actor_role="village_officer",
        action=action,
        from_stage=None,
        to_stage=to_stage,
        reason=None,
        data=data,
    )


START = history.op_start(
    clock_id="c1", kind="identification", bound="deadline", due=D("2026-03-17"), citation="D1"
)


class TestProcedureFacts:
    def test_round_trip(self) -> None:
        facts = CaseFacts(
            stage=Stage.VILLAGE_PUBLICITY,
            publicity_started_on=D("2026-03-05"),
            open_objections=2,
            verification_recorded=True,
            crosscheck_departments_pending=3,
        )
        stored = history.procedure_record(facts)
        back = history.procedure_facts({"procedure": stored}, "village_publicity")
        # Pending cross-checks and shortfalls belong to one request and are not stored.
        assert back == CaseFacts(
            stage=Stage.VILLAGE_PUBLICITY,
            publicity_started_on=D("2026-03-05"),
            open_objections=2,
            verification_recorded=True,
        )

    def test_empty_facts_are_a_fresh_case(self) -> None:
        assert history.procedure_facts({}, "opened") == CaseFacts(stage=Stage.OPENED)


class TestApplyFacts:
    @pytest.mark.parametrize(
        ("action", "data", "expected"),
        [
            pytest.param(
                "record_verification",
                {"verification": {"labour_capacity": "weak", "guarantees": {"food": "secure"}}},
                {"labour_capacity": "weak", "guarantees": {"food": "secure"}},
                id="verification",
            ),
            pytest.param(
                "file_objection",
                {"objection": {"no": 1, "text": "收入不实"}},
                {"objections": [{"no": 1, "text": "收入不实", "open": True}]},
                id="objection",
            ),
            pytest.param(
                "county_include",
                {"labels": ["escaped_poverty"]},
                {"labels": ["escaped_poverty"]},
                id="labels",
            ),
            pytest.param(
                "record_visit",
                {"visit": {"guarantees": {"housing_safety": "at_risk"}}},
                {"guarantees": {"food": "secure", "housing_safety": "at_risk"}},
                id="visit-rechecks-guarantees",
            ),
            pytest.param(
                "record_visit",
                {"visit": {"guarantees": None}},
                {"guarantees": {"food": "secure"}},
                id="visit-without-check",
            ),
        ],
    )
    def test_records(self, action: str, data: dict[str, Any], expected: dict[str, Any]) -> None:
        before = {"guarantees": {"food": "secure"}}
        after = history.apply_facts(before, action, data)
        assert {k: after[k] for k in expected} == expected
        assert before == {"guarantees": {"food": "secure"}}  # the input is left alone

    def test_resolution_closes_its_objection_only(self) -> None:
        facts = {
            "objections": [
                {"no": 1, "text": "a", "open": True},
                {"no": 2, "text": "b", "open": True},
            ]
        }
        after = history.apply_facts(
            facts,
            "resolve_objection",
            {"resolution": {"no": 2, "resolution": "已核实", "upheld": False}},
        )
        assert [o["open"] for o in after["objections"]] == [True, False]
        assert after["objections"][1]["resolution"] == "已核实"


class TestApplyClockOps:
    @pytest.mark.parametrize(
        ("ops", "expected"),
        [
            pytest.param([START], {"met_at": None, "live": True}, id="started"),
            pytest.param([START, history.op_meet("c1")], {"met_at": T0, "live": False}, id="met"),
            pytest.param(
                [START, history.op_breach("c1", "village", at(3))],
                {"breached_at": T0, "escalation_level": "village", "escalate_at": at(3)},
                id="breached",
            ),
            pytest.param(
                [
                    START,
                    history.op_breach("c1", "village", at(3)),
                    history.op_escalate("c1", "township", None),
                ],
                {"escalation_level": "township", "escalate_at": None},
                id="escalated-to-the-top",
            ),
            pytest.param(
                [
                    START,
                    history.op_breach("c1", "village", at(3)),
                    history.op_meet("c1"),
                ],
                {"met_at": T0, "escalate_at": None, "owed": False},
                id="met-late",
            ),
            pytest.param(
                [START, history.op_pause("c1")],
                {"paused_at": T0, "live": True, "owed": True},
                id="paused",
            ),
            pytest.param(
                [
                    START,
                    history.op_pause("c1"),
                    history.op_resume("c1", D("2026-03-20"), D("2026-03-17")),
                ],
                {"paused_at": None, "due_date": D("2026-03-20")},
                id="resumed",
            ),
            pytest.param(
                [
                    START,
                    history.op_extend(
                        "c1", D("2026-03-24"), D("2026-03-17"), days=5, unit="working_days"
                    ),
                ],
                {"due_date": D("2026-03-24")},
                id="extended",
            ),
            pytest.param(
                [START, history.op_close("c1")],
                {"closed_at": T0, "live": False, "owed": False},
                id="closed",
            ),
            pytest.param([history.op_meet("nobody")], {}, id="unknown-id-ignored"),
        ],
    )
    def test_ops(self, ops: list[dict[str, Any]], expected: dict[str, Any]) -> None:
        clocks: dict[str, ClockView] = {}
        history.apply_clock_ops(clocks, ops, T0)
        for name, value in expected.items():
            assert getattr(clocks["c1"], name) == value, name

    def test_unknown_operation_is_an_error(self) -> None:
        clocks: dict[str, ClockView] = {}
        history.apply_clock_ops(clocks, [START], T0)
        with pytest.raises(ValueError, match="unknown clock operation"):
            history.apply_clock_ops(clocks, [{"op": "rewind", "id": "c1"}], T0)

    def test_minimum_clocks_are_never_live(self) -> None:
        clocks: dict[str, ClockView] = {}
        minimum = {**START, "bound": "minimum"}
        history.apply_clock_ops(clocks, [minimum], T0)
        assert not clocks["c1"].live
        assert clocks["c1"].owed


class TestReplay:
    ENTRIES = (
        entry("open", "opened", 0, clocks=[START], score=70, level="high", sources=[{"kind": "a"}]),
        entry("start_verification", "home_verification", 1),
        entry("deadline_breached", "opened", 16, clocks=[history.op_breach("c1", "village", None)]),
        entry(
            "county_reject",
            "not_included",
            17,
            clocks=[history.op_meet("c1")],
            closes_case=True,
            sources=[{"kind": "a"}],
        ),
    )

    @pytest.mark.parametrize(
        ("until_days", "stage", "breached", "met", "closed"),
        [
            pytest.param(0.5, "opened", False, False, False, id="day-0"),
            pytest.param(2, "home_verification", False, False, False, id="day-2"),
            pytest.param(16.5, "home_verification", True, False, False, id="breach-keeps-stage"),
            pytest.param(None, "not_included", True, True, True, id="everything"),
        ],
    )
    def test_as_it_stood(
        self, until_days: float | None, stage: str, breached: bool, met: bool, closed: bool
    ) -> None:
        view = history.replay(self.ENTRIES, until=None if until_days is None else at(until_days))
        assert view is not None
        assert view.stage == stage
        assert (view.clocks["c1"].breached_at is not None) is breached
        assert (view.clocks["c1"].met_at is not None) is met
        assert (view.closed_at is not None) is closed
        assert view.sources == [{"kind": "a"}]
        assert view.score == 70

    def test_before_opening_there_is_no_case(self) -> None:
        assert history.replay(self.ENTRIES, until=T0) is None

    def test_plan_items_and_updates(self) -> None:
        view = history.replay(
            [
                entry("open", "opened"),
                entry(
                    "record_plan",
                    "monitoring",
                    1,
                    plan_items=[{"id": "p1", "status": "planned", "note": None}],
                ),
                entry(
                    "update_plan_item",
                    "assistance",
                    2,
                    plan_update={"id": "p1", "status": "delivered", "note": "已发放"},
                ),
            ]
        )
        assert view is not None
        assert view.plan["p1"]["status"] == "delivered"
        assert view.plan["p1"]["note"] == "已发放"

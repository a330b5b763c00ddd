"""Tests for casework's use cases: new risks, the sweep, clocks and the calendar."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError

from services.casework import service
from services.casework.models import (
    CalendarOverrideRow,
    CalendarYearDeclaration,
    Case,
    CaseDeadline,
    CaseEvent,
)
from services.casework.repository import CaseRepository
from services.casework.sweeper import DeadlineSweeper
from services.casework.workdays import CalendarUnavailable
from tests.services.casework.harness import (
    HELPER,
    VILLAGE,
    Casework,
    template,
    verification,
)

D = date.fromisoformat
LENIENT = template(
    region_code="141122",
    name="lenient",
    elimination={
        "income_stable_months": 0,
        "require_plan_delivered": False,
        "require_guarantees_secure": True,
    },
)


async def eliminated(cw: Casework) -> str:
    """Return a case whose risk the county confirmed eliminated on 2026-04-01."""
    cw.use_templates(LENIENT)
    case_id = await cw.open_case()
    await cw.to_assistance(case_id, "2026-03-02", include_on="2026-03-09")
    cw.at("2026-04-01")
    await cw.ok(case_id, cw.village, "propose_elimination")
    await cw.ok(case_id, cw.county, "confirm_elimination")
    return case_id


async def clocks(cw: Casework, case_id: str) -> list[CaseDeadline]:
    """Return the stored clocks of a case."""
    async with cw.sessionmaker() as session:
        found = await CaseRepository(session).deadlines_of([uuid.UUID(case_id)])
    return found[uuid.UUID(case_id)]


class TestOnRiskAssessed:
    async def test_new_risk_reopens_monitoring_after_elimination(self, cw: Casework) -> None:
        case_id = await eliminated(cw)
        before = await cw.case(case_id)
        assert before["stage"] == "risk_eliminated"
        assert not [d for d in before["deadlines"] if not (d["met_at"] or d["closed"])]
        household = (await cw.events("casework.case_opened"))[0]["household_id"]
        cw.at("2026-05-06")
        same = await cw.assess(cw.assessment(household_id=uuid.UUID(household), score=81))
        assert str(same) == case_id
        after = await cw.case(case_id)
        assert after["stage"] == "monitoring"
        assert [h["action"] for h in after["history"][-2:]] == ["evidence_added", "reopen"]
        assert after["history"][-1]["actor"] == "system"
        live = [d for d in after["deadlines"] if not (d["met_at"] or d["closed"])]
        assert {(d["kind"], d["due"]) for d in live} >= {("monthly_visit", "2026-06-30")}
        (changed,) = [
            e
            for e in await cw.events("casework.stage_changed")
            if e["to_stage"] == "monitoring" and e["from_stage"] == "risk_eliminated"
        ]
        assert changed["actor"] == "system"

    async def test_a_reassessment_without_risk_only_adds_evidence(self, cw: Casework) -> None:
        case_id = await eliminated(cw)
        household = (await cw.events("casework.case_opened"))[0]["household_id"]
        await cw.assess(cw.assessment(household_id=uuid.UUID(household), opens_case=False))
        after = await cw.case(case_id)
        assert after["stage"] == "risk_eliminated"
        assert after["history"][-1]["action"] == "evidence_added"

    @pytest.mark.parametrize("how", ["not_included", "exited"])
    async def test_a_closed_case_stays_closed_and_a_new_one_opens(
        self, cw: Casework, how: str
    ) -> None:
        household, episode = uuid.uuid4(), uuid.uuid4()
        cw.use_templates(LENIENT)
        first = await cw.open_case(household_id=household, episode_id=episode)
        if how == "not_included":
            await cw.ok(first, cw.county, "county_reject", applicant_reason="收入高于标准")
        else:
            await cw.to_assistance(first, "2026-03-02", include_on="2026-03-09")
            await cw.ok(first, cw.village, "propose_elimination")
            await cw.ok(first, cw.county, "confirm_elimination")
            await cw.ok(first, cw.county, "exit")
        cw.at("2026-06-01")
        # Screening keeps the episode open, so the new case shares it.
        second = await cw.assess(cw.assessment(household_id=household, episode_id=episode))
        assert second is not None
        assert str(second) != first
        assert (await cw.case(first))["stage"] == how
        fresh = await cw.case(str(second))
        assert fresh["stage"] == "opened"
        assert [d["kind"] for d in fresh["deadlines"]] == ["identification"]

    async def test_categories_follow_screening_until_the_county_decides(self, cw: Casework) -> None:
        household = uuid.uuid4()
        case_id = await cw.open_case(household_id=household)
        update = cw.assessment(household_id=household).model_copy(
            update={"categories": ("sudden_difficulty",)}
        )
        await cw.assess(update)
        assert (await cw.case(case_id))["categories"] == ["sudden_difficulty"]
        await cw.to_monitoring(case_id, "2026-03-02", include_on="2026-03-09")
        await cw.assess(
            update.model_copy(
                update={"assessment_id": uuid.uuid4(), "categories": ("unstable_escaped",)}
            )
        )
        assert (await cw.case(case_id))["categories"] == ["marginal"]


class TestSweep:
    async def test_a_breach_is_published_once(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        cw.at("2026-03-17", hour=23)
        assert await cw.sweep() == 0  # due at the end of the 17th, Beijing time
        cw.at("2026-03-18", hour=0)
        assert await cw.sweep() == 1
        assert await cw.sweep() == 0
        cw.at("2026-03-19")
        assert await cw.sweep() == 0
        (breach,) = await cw.events("casework.deadline_breached")
        assert (breach["kind"], breach["due"], breach["escalation_level"]) == (
            "identification",
            "2026-03-17",
            "village",
        )
        assert breach["case_id"] == case_id
        history = (await cw.case(case_id))["history"]
        assert [h["action"] for h in history] == ["open", "deadline_breached"]

    @pytest.mark.parametrize(
        ("day", "level", "entries"),
        [
            pytest.param("2026-03-18", "village", 1, id="at-breach"),
            pytest.param("2026-03-20", "village", 1, id="two-days-on"),
            pytest.param("2026-03-21", "township", 2, id="three-days-on"),
            pytest.param("2026-03-24", "county", 3, id="six-days-on"),
            pytest.param("2026-04-30", "county", 3, id="top-of-the-ladder"),
        ],
    )
    async def test_escalation_climbs_village_township_county(
        self, cw: Casework, day: str, level: str, entries: int
    ) -> None:
        case_id = await cw.open_case()
        for step in ("2026-03-18", "2026-03-21", "2026-03-24", "2026-04-30"):
            if step > day:
                break
            cw.at(step, hour=10)
            await cw.sweep()
        clock = next(
            d for d in (await cw.case(case_id))["deadlines"] if d["kind"] == "identification"
        )
        assert clock["escalation_level"] == level
        history = (await cw.case(case_id))["history"]
        assert len([h for h in history if h["action"].startswith("deadline_")]) == entries
        assert len(await cw.events("casework.deadline_breached")) == 1

    async def test_meeting_a_breached_clock_ends_its_escalation(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await cw.to_publicity(case_id, "2026-03-02")
        cw.at("2026-03-18")
        await cw.sweep()
        await cw.ok(case_id, cw.village, "end_publicity")
        await cw.ok(case_id, cw.township, "township_approve")
        await cw.ok(case_id, cw.county, "county_include", categories=["marginal"])
        cw.at("2026-03-30")
        await cw.sweep()
        clock = next(
            d for d in (await cw.case(case_id))["deadlines"] if d["kind"] == "identification"
        )
        assert clock["breached"] is True
        assert clock["met_at"] is not None
        assert clock["escalation_level"] == "village"

    async def test_a_missed_month_opens_the_next_one(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await cw.to_monitoring(case_id, "2026-03-02", include_on="2026-03-09")
        cw.at("2026-05-01")
        await cw.sweep()
        monthly = [
            (d["due"], d["breached"])
            for d in (await cw.case(case_id))["deadlines"]
            if d["kind"] == "monthly_visit"
        ]
        assert monthly == [("2026-04-30", True), ("2026-05-31", False)]
        kinds = {e["kind"] for e in await cw.events("casework.deadline_breached")}
        # The plan and helper clocks (due 23 March) were missed too.
        assert kinds == {"monthly_visit", "helper_assignment", "assistance_plan"}

    async def test_a_late_visit_record_meets_the_breached_month(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await cw.to_monitoring(case_id, "2026-03-02", include_on="2026-03-09")
        cw.at("2026-05-01")
        await cw.sweep()
        await cw.ok(
            case_id,
            cw.village,
            "record_visit",
            visit={"visited_on": "2026-04-29", "visitor_name": "李帮扶", "findings": "补录"},
        )
        monthly = [
            (d["due"], d["breached"], d["met_at"] is not None)
            for d in (await cw.case(case_id))["deadlines"]
            if d["kind"] == "monthly_visit"
        ]
        assert monthly == [("2026-04-30", True, True), ("2026-05-31", False, False)]

    async def test_paused_and_closed_clocks_are_not_breached(self, cw: Casework) -> None:
        paused = await cw.open_case()
        closed = await cw.open_case()
        clock = next(d for d in (await cw.case(paused))["deadlines"])
        await cw.ok(
            paused, cw.township, "pause_deadline", deadline_id=clock["deadline_id"], reason="住院"
        )
        await cw.ok(closed, cw.county, "county_reject", applicant_reason="不符合条件")
        cw.at("2026-04-30")
        assert await cw.sweep() == 0

    async def test_the_sweep_reads_only_the_columns_its_entries_need(self, cw: Casework) -> None:
        case_id = uuid.UUID(await cw.open_case())
        async with cw.sessionmaker() as session:
            (case,) = (await CaseRepository(session).for_clock_entries([case_id])).values()
            assert (case.stage, case.region_code) == ("opened", VILLAGE)
            with pytest.raises(InvalidRequestError):
                _ = case.facts

    async def test_each_case_is_swept_under_its_own_stored_policy(self, cw: Casework) -> None:
        # Same version and region, another ladder: the stored policy, not its name, decides.
        usual, own = await cw.open_case(), await cw.open_case()
        async with cw.sessionmaker() as session, session.begin():
            case = await session.get(Case, uuid.UUID(own))
            assert case is not None
            policy = dict(case.deadline_policy)
            policy["escalation"] = {
                **policy.get("escalation", {}),
                "levels": ["township", "county"],
            }
            case.deadline_policy = policy
        cw.at("2026-03-18")
        assert await cw.sweep() == 2
        levels = {
            e["case_id"]: e["escalation_level"]
            for e in await cw.events("casework.deadline_breached")
        }
        assert levels == {usual: "village", own: "township"}

    @pytest.mark.parametrize("batch", [1, 3, 500])
    async def test_several_cases_sweep_to_the_same_history_and_events(
        self, cw: Casework, batch: int
    ) -> None:
        # However the clocks fall into batches, each case gets one entry per breach (with
        # the next period it opens) and one per escalation, and each breach one event.
        cases = await _several_cases(cw)
        sweeper = DeadlineSweeper(
            sessionmaker=cw.sessionmaker, ctx=cw.ctx, interval_seconds=60, batch_size=batch
        )
        breached = sum(len(clocks) for clocks in BREACHED_ON_1_MAY.values())
        cw.at("2026-05-01")
        assert await sweeper.sweep_once() == breached
        cw.at("2026-05-04", hour=11)
        assert await sweeper.sweep_once() == breached  # each moves up to the township
        entries, events = await _sweep_record(cw, cases)
        assert entries == {
            name: {
                clock: [
                    ("deadline_breached", "breach village", *opened),
                    ("deadline_escalated", "escalate township"),
                ]
                for clock, opened in clocks.items()
            }
            for name, clocks in BREACHED_ON_1_MAY.items()
        }
        assert events == sorted(
            (name, clock, clock.split("@")[0], "2026-05-01T02:00:00Z", "village", VILLAGE)
            for name, clocks in BREACHED_ON_1_MAY.items()
            for clock in clocks
        )


async def _several_cases(cw: Casework) -> dict[str, str]:
    """Return cases whose clocks fall due together: one-off, recurring, caught-up, labelled."""
    cases = {"opened": await cw.open_case()}
    for name in ("monitored", "visited", "labelled"):
        cases[name] = await cw.open_case()
        await cw.to_publicity(cases[name], "2026-03-02")
        cw.at("2026-03-09")
        await cw.ok(cases[name], cw.village, "end_publicity")
        await cw.ok(cases[name], cw.township, "township_approve")
        labels = (
            ["special_care_ordinary", "relocated_escaped_poverty"] if name == "labelled" else []
        )
        await cw.ok(
            cases[name], cw.county, "county_include", categories=["marginal"], labels=labels
        )
    cw.at("2026-05-01", hour=9)
    # A May visit: the sweep's catch-up meets May at once and opens June.
    await cw.ok(
        cases["visited"],
        cw.village,
        "record_visit",
        visit={"visited_on": "2026-05-01", "visitor_name": "李帮扶", "findings": "走访"},
    )
    return cases


# What the sweep on 1 May does to the cases of _several_cases: each overdue clock is breached
# at the village level, and a missed period opens the next (catching up a period visited).
BREACHED_ON_1_MAY: dict[str, dict[str, list[str]]] = {
    "opened": {"identification@2026-03-17": []},
    "monitored": {
        "assistance_plan@2026-03-23": [],
        "helper_assignment@2026-03-23": [],
        "monthly_visit@2026-04-30": ["start monthly_visit@2026-05-31"],
    },
    "visited": {
        "assistance_plan@2026-03-23": [],
        "helper_assignment@2026-03-23": [],
        "monthly_visit@2026-04-30": [
            "start monthly_visit@2026-05-31",
            "meet monthly_visit@2026-05-31",
            "start monthly_visit@2026-06-30",
        ],
    },
    "labelled": {
        "assistance_plan@2026-03-23": [],
        "helper_assignment@2026-03-23": [],
        "monthly_visit@2026-04-30": ["start monthly_visit@2026-05-31"],
        "relocation_followup_visit@2026-04-30": ["start relocation_followup_visit@2026-05-31"],
        "special_care_visit@2026-04-30": ["start special_care_visit@2026-05-31"],
    },
}


async def _sweep_record(
    cw: Casework, cases: dict[str, str]
) -> tuple[dict[str, dict[str, list[tuple[str, ...]]]], list[tuple[str, ...]]]:
    """Return each case's sweep entries by clock, and the breach events; clocks as kind@due."""
    names = {case_id: name for name, case_id in cases.items()}
    clock_names: dict[str, str] = {}
    entries: dict[str, dict[str, list[tuple[str, ...]]]] = {}
    for name, case_id in cases.items():
        detail = await cw.case(case_id)
        clock_names.update(
            {d["deadline_id"]: f"{d['kind']}@{d['due']}" for d in detail["deadlines"]}
        )
        by_clock = entries.setdefault(name, {})
        for h in detail["history"]:
            if not h["action"].startswith("deadline_"):
                continue
            ops = [
                " ".join([op["op"], *([op["level"]] if "level" in op else [])])
                if op["id"] == h["data"]["deadline"]["id"]
                else f"{op['op']} {clock_names[op['id']]}"
                for op in h["data"]["clocks"]
            ]
            by_clock.setdefault(clock_names[h["data"]["deadline"]["id"]], []).append(
                (h["action"], *ops)
            )
    events: list[tuple[str, ...]] = sorted(
        (
            names[e["case_id"]],
            clock_names[e["deadline_id"]],
            e["kind"],
            e["breached_at"],
            e["escalation_level"],
            e["village_code"],
        )
        for e in await cw.events("casework.deadline_breached")
    )
    return entries, events


class TestStartClocks:
    @pytest.mark.parametrize(
        ("labels", "expected"),
        [
            pytest.param([], set(), id="no-label"),
            pytest.param(["escaped_poverty"], {("escaped_household_visit", "2026-03-31")}, id="d5"),
            pytest.param(
                ["special_care_especially_difficult"],
                {("special_care_weekly_visit", "2026-03-22")},
                id="d10-weekly",
            ),
            pytest.param(
                ["special_care_ordinary", "relocated_escaped_poverty"],
                {("special_care_visit", "2026-04-30"), ("relocation_followup_visit", "2026-04-30")},
                id="d10-d11",
            ),
        ],
    )
    async def test_labels_switch_on_their_visit_rules(
        self, cw: Casework, labels: list[str], expected: set[tuple[str, str]]
    ) -> None:
        case_id = await cw.open_case()
        await cw.to_publicity(case_id, "2026-03-02")
        cw.at("2026-03-09")  # a Monday
        await cw.ok(case_id, cw.village, "end_publicity")
        await cw.ok(case_id, cw.township, "township_approve")
        detail = await cw.ok(
            case_id, cw.county, "county_include", categories=["marginal"], labels=labels
        )
        labelled = {
            "escaped_household_visit",
            "special_care_visit",
            "special_care_weekly_visit",
            "relocation_followup_visit",
        }
        found = {(d["kind"], d["due"]) for d in detail["deadlines"] if d["kind"] in labelled}
        assert found == expected

    async def test_a_gap_found_at_verification_is_owed_after_inclusion(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        cw.at("2026-03-02")
        await cw.ok(case_id, cw.village, "start_verification")
        await cw.ok(
            case_id,
            cw.village,
            "record_verification",
            verification=verification(on="2026-03-02", housing_safety="at_risk"),
        )
        await cw.ok(
            case_id,
            cw.county,
            "record_crosscheck",
            results=[{"department": "housing", "result": "discrepancy", "finding": "C级危房"}],
        )
        await cw.ok(case_id, cw.village, "start_publicity")
        cw.at("2026-04-02")
        await cw.ok(case_id, cw.village, "end_publicity")
        await cw.ok(case_id, cw.township, "township_approve")
        detail = await cw.ok(case_id, cw.county, "county_include", categories=["marginal"])
        problem = next(d for d in detail["deadlines"] if d["kind"] == "guarantee_problem_clearance")
        assert problem["due"] == "2026-04-30"

    async def test_inclusion_needs_the_official_calendar(self, cw: Casework) -> None:
        # 10 working days from 24 December 2026 run into 2027, which has no official data.
        case_id = await cw.open_case()
        await cw.to_publicity(case_id, "2026-12-14")
        cw.at("2026-12-24")
        await cw.ok(case_id, cw.village, "end_publicity")
        await cw.ok(case_id, cw.township, "township_approve")
        refused = await cw.act(case_id, cw.county, "county_include", categories=["marginal"])
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["code"] == "calendar.unavailable"
        assert (await cw.case(case_id))["stage"] == "county_approval"


class TestLoadCalendar:
    @pytest.mark.parametrize(
        ("declared", "expected"),
        [
            pytest.param(False, None, id="entered-but-not-declared"),
            pytest.param(True, "2027-01-06", id="declared"),
        ],
    )
    async def test_a_year_counts_only_once_declared(
        self, cw: Casework, declared: bool, expected: str | None
    ) -> None:
        now = datetime(2026, 12, 1, tzinfo=UTC)
        async with cw.sessionmaker() as session, session.begin():
            session.add(
                CalendarOverrideRow(
                    day=D("2027-01-01"),
                    kind="holiday",
                    reason="元旦",
                    created_by="a",
                    created_at=now,
                )
            )
            if declared:
                session.add(
                    CalendarYearDeclaration(
                        year=2027, reason="通知", declared_by="a", declared_at=now
                    )
                )
        async with cw.sessionmaker() as session:
            calendar = await service.load_calendar(session)
        if expected is None:
            with pytest.raises(CalendarUnavailable):
                calendar.add_working_days(D("2026-12-31"), 3)
            return
        # Thu 31 Dec 2026 → Fri 1 Jan off → Mon 4, Tue 5, Wed 6.
        assert calendar.add_working_days(D("2026-12-31"), 3) == D(expected)
        assert 2027 in calendar.official_years

    async def test_overrides_apply_to_library_years(self, cw: Casework) -> None:
        now = datetime(2026, 12, 1, tzinfo=UTC)
        async with cw.sessionmaker() as session, session.begin():
            session.add(
                CalendarOverrideRow(
                    day=D("2026-12-31"),
                    kind="holiday",
                    reason="更正",
                    created_by="a",
                    created_at=now,
                )
            )
        async with cw.sessionmaker() as session:
            calendar = await service.load_calendar(session)
        assert not calendar.is_working_day(D("2026-12-31"))


class TestAct:
    async def test_every_change_is_one_history_entry(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await cw.to_assistance(case_id, "2026-03-02", include_on="2026-03-09")
        async with cw.sessionmaker() as session:
            events = (
                await session.execute(select(func.count()).select_from(CaseEvent))
            ).scalar_one()
            case = await session.get(Case, uuid.UUID(case_id))
        assert case is not None
        # open + 4 to publicity + 3 to inclusion + helper, plan, assistance
        assert events == 11
        assert case.version == 11

    async def test_reassignment_ends_the_previous_helper(self, cw: Casework) -> None:
        case_id = await cw.open_case()
        await cw.to_monitoring(case_id, "2026-03-02", include_on="2026-03-09")
        await cw.ok(case_id, cw.township, "assign_helper", helper=HELPER)
        detail = await cw.ok(
            case_id,
            cw.township,
            "assign_helper",
            helper={**HELPER, "helper_id": "TN-0008", "name": "赵"},
        )
        assert detail["helper"]["helper_id"] == "TN-0008"
        assert len(await cw.events("casework.helper_assigned")) == 2

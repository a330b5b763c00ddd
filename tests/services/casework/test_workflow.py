"""Tests for the casework procedure state machine."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from services.casework.deadlines import publicity_satisfied
from services.casework.workflow import (
    ACTION_LABELS_ZH,
    STAGE_LABELS_ZH,
    Action,
    CaseFacts,
    IllegalTransition,
    Role,
    Shortfall,
    Stage,
    WorkflowTemplate,
    advance,
    allowed_actions,
    default_workflow_template,
    transition,
)

D = date.fromisoformat
MIN_DAYS = 5
VILLAGE = Role.VILLAGE_OFFICER.value
TOWNSHIP = Role.TOWNSHIP_OFFICER.value
COUNTY = Role.COUNTY_OFFICER.value
ADMIN = Role.ADMIN.value

DEFAULT = default_workflow_template()
WITH_APPRAISAL = replace(
    DEFAULT,
    name="with-appraisal",
    identification_steps=(
        Stage.HOME_VERIFICATION,
        Stage.DEPARTMENT_CROSSCHECK,
        Stage.DEMOCRATIC_APPRAISAL,
        Stage.VILLAGE_PUBLICITY,
        Stage.TOWNSHIP_REVIEW,
        Stage.COUNTY_APPROVAL,
    ),
)
JIAOCHENG_FOUR_STEPS = replace(
    DEFAULT,
    name="jiaocheng",
    identification_steps=(
        Stage.HOME_VERIFICATION,
        Stage.DEPARTMENT_CROSSCHECK,
        Stage.VILLAGE_PUBLICITY,
        Stage.COUNTY_APPROVAL,
    ),
)
ELIMINATION_PUBLICITY = replace(DEFAULT, name="elimination-publicity", elimination_publicity=True)

Step = tuple[Action, str, str]


def run(template: WorkflowTemplate, facts: CaseFacts, steps: list[Step]) -> list[CaseFacts]:
    """Apply (action, role, ISO day) steps with advance and return every intermediate state."""
    states = []
    for action, role, day in steps:
        facts = advance(
            template, facts, action, actor_role=role, today=D(day), publicity_min_days=MIN_DAYS
        )
        states.append(facts)
    return states


def refusal(
    template: WorkflowTemplate, facts: CaseFacts, action: Action, role: str, today: str
) -> IllegalTransition:
    """Return the IllegalTransition an action raises."""
    with pytest.raises(IllegalTransition) as caught:
        transition(
            template, facts, action, actor_role=role, today=D(today), publicity_min_days=MIN_DAYS
        )
    return caught.value


HAPPY_PATH: list[tuple[Action, str, str, Stage]] = [
    (Action.START_VERIFICATION, VILLAGE, "2026-11-23", Stage.HOME_VERIFICATION),
    (Action.RECORD_VERIFICATION, VILLAGE, "2026-11-23", Stage.DEPARTMENT_CROSSCHECK),
    (Action.RECORD_CROSSCHECK, COUNTY, "2026-11-24", Stage.VILLAGE_PUBLICITY),
    (Action.START_PUBLICITY, VILLAGE, "2026-11-24", Stage.VILLAGE_PUBLICITY),
    (Action.FILE_OBJECTION, VILLAGE, "2026-11-25", Stage.VILLAGE_PUBLICITY),
    (Action.RESOLVE_OBJECTION, TOWNSHIP, "2026-11-26", Stage.VILLAGE_PUBLICITY),
    (Action.END_PUBLICITY, VILLAGE, "2026-11-29", Stage.TOWNSHIP_REVIEW),
    (Action.TOWNSHIP_APPROVE, TOWNSHIP, "2026-11-30", Stage.COUNTY_APPROVAL),
    (Action.COUNTY_INCLUDE, COUNTY, "2026-12-01", Stage.MONITORING),
    (Action.ASSIGN_HELPER, TOWNSHIP, "2026-12-02", Stage.MONITORING),
    (Action.RECORD_PLAN, VILLAGE, "2026-12-03", Stage.MONITORING),
    (Action.START_ASSISTANCE, VILLAGE, "2026-12-03", Stage.ASSISTANCE),
    (Action.PROPOSE_ELIMINATION, VILLAGE, "2027-06-01", Stage.RISK_ELIMINATION),
    (Action.CONFIRM_ELIMINATION, COUNTY, "2027-06-10", Stage.RISK_ELIMINATED),
    (Action.EXIT, COUNTY, "2027-06-20", Stage.EXITED),
    (Action.REOPEN, VILLAGE, "2027-09-01", Stage.MONITORING),
]


class TestHappyPath:
    def test_full_procedure(self) -> None:
        states = run(
            DEFAULT,
            CaseFacts(stage=Stage.OPENED),
            [(action, role, day) for action, role, day, _ in HAPPY_PATH],
        )
        assert [s.stage for s in states] == [stage for *_, stage in HAPPY_PATH]
        included = states[8]
        assert included.verification_recorded
        assert included.publicity_started_on == D("2026-11-24")
        assert included.open_objections == 0

    @pytest.mark.parametrize(
        ("action", "role", "day", "expected"),
        [
            pytest.param(a, r, d, s, id=f"{i:02d}-{a.value}")
            for i, (a, r, d, s) in enumerate(HAPPY_PATH)
        ],
    )
    def test_each_step_via_transition(
        self, action: Action, role: str, day: str, expected: Stage
    ) -> None:
        index = [step[0] for step in HAPPY_PATH].index(action)
        facts = CaseFacts(stage=Stage.OPENED)
        if index:
            facts = run(DEFAULT, facts, [(a, r, d) for a, r, d, _ in HAPPY_PATH[:index]])[-1]
        got = transition(
            DEFAULT, facts, action, actor_role=role, today=D(day), publicity_min_days=MIN_DAYS
        )
        assert got == expected


PUBLICITY_RUNNING = CaseFacts(
    stage=Stage.VILLAGE_PUBLICITY,
    verification_recorded=True,
    publicity_started_on=D("2026-11-24"),
)
AT_COUNTY = replace(PUBLICITY_RUNNING, stage=Stage.COUNTY_APPROVAL)


class TestRefusals:
    @pytest.mark.parametrize(
        ("facts", "action", "role", "today", "code"),
        [
            pytest.param(
                PUBLICITY_RUNNING,
                Action.END_PUBLICITY,
                VILLAGE,
                "2026-11-28",
                "publicity_too_short",
                id="close-publicity-on-its-last-day",
            ),
            pytest.param(
                AT_COUNTY,
                Action.COUNTY_INCLUDE,
                COUNTY,
                "2026-11-27",
                "publicity_too_short",
                id="approve-inside-publicity-period",
            ),
            pytest.param(
                replace(AT_COUNTY, publicity_started_on=None),
                Action.COUNTY_INCLUDE,
                COUNTY,
                "2026-12-27",
                "publicity_not_started",
                id="approve-without-publicity",
            ),
            pytest.param(
                replace(AT_COUNTY, open_objections=1),
                Action.COUNTY_INCLUDE,
                COUNTY,
                "2026-12-01",
                "open_objection",
                id="approve-with-open-objection",
            ),
            pytest.param(
                replace(PUBLICITY_RUNNING, open_objections=2),
                Action.END_PUBLICITY,
                VILLAGE,
                "2026-12-01",
                "open_objection",
                id="close-publicity-with-open-objection",
            ),
            pytest.param(
                replace(AT_COUNTY, verification_recorded=False),
                Action.COUNTY_INCLUDE,
                COUNTY,
                "2026-12-01",
                "verification_missing",
                id="approve-without-verification",
            ),
            pytest.param(
                AT_COUNTY,
                Action.COUNTY_INCLUDE,
                TOWNSHIP,
                "2026-12-01",
                "role_not_allowed",
                id="township-cannot-include",
            ),
            pytest.param(
                AT_COUNTY,
                Action.COUNTY_INCLUDE,
                ADMIN,
                "2026-12-01",
                "role_not_allowed",
                id="admin-cannot-include",
            ),
            pytest.param(
                AT_COUNTY,
                Action.COUNTY_INCLUDE,
                "guest",
                "2026-12-01",
                "role_not_allowed",
                id="unknown-role",
            ),
            pytest.param(
                CaseFacts(stage=Stage.DEPARTMENT_CROSSCHECK, verification_recorded=True),
                Action.START_PUBLICITY,
                VILLAGE,
                "2026-11-24",
                "wrong_stage",
                id="skip-crosscheck",
            ),
            pytest.param(
                CaseFacts(stage=Stage.HOME_VERIFICATION),
                Action.COUNTY_INCLUDE,
                COUNTY,
                "2026-12-01",
                "wrong_stage",
                id="include-straight-after-verification",
            ),
            pytest.param(
                PUBLICITY_RUNNING,
                Action.TOWNSHIP_APPROVE,
                TOWNSHIP,
                "2026-12-01",
                "wrong_stage",
                id="township-during-publicity",
            ),
            pytest.param(
                CaseFacts(stage=Stage.OPENED),
                Action.RECORD_VERIFICATION,
                VILLAGE,
                "2026-11-23",
                "wrong_stage",
                id="record-before-starting",
            ),
            pytest.param(
                CaseFacts(stage=Stage.DEPARTMENT_CROSSCHECK),
                Action.RECORD_CROSSCHECK,
                COUNTY,
                "2026-11-24",
                "verification_missing",
                id="crosscheck-without-verification",
            ),
            pytest.param(
                CaseFacts(
                    stage=Stage.DEPARTMENT_CROSSCHECK,
                    verification_recorded=True,
                    crosscheck_departments_pending=2,
                ),
                Action.RECORD_CROSSCHECK,
                COUNTY,
                "2026-11-24",
                "crosscheck_pending",
                id="departments-still-pending",
            ),
            pytest.param(
                PUBLICITY_RUNNING,
                Action.START_PUBLICITY,
                VILLAGE,
                "2026-11-25",
                "publicity_already_started",
                id="restart-publicity",
            ),
            pytest.param(
                replace(PUBLICITY_RUNNING, publicity_started_on=None),
                Action.END_PUBLICITY,
                VILLAGE,
                "2026-11-30",
                "publicity_not_started",
                id="end-unstarted-publicity",
            ),
            pytest.param(
                replace(PUBLICITY_RUNNING, publicity_started_on=None),
                Action.FILE_OBJECTION,
                VILLAGE,
                "2026-11-30",
                "publicity_not_started",
                id="objection-before-publicity",
            ),
            pytest.param(
                PUBLICITY_RUNNING,
                Action.RESOLVE_OBJECTION,
                VILLAGE,
                "2026-11-25",
                "no_open_objection",
                id="resolve-nothing",
            ),
            pytest.param(
                CaseFacts(stage=Stage.MONITORING, plan_recorded=True),
                Action.START_ASSISTANCE,
                VILLAGE,
                "2026-12-05",
                "helper_missing",
                id="assistance-without-helper",
            ),
            pytest.param(
                CaseFacts(stage=Stage.MONITORING, helper_assigned=True),
                Action.START_ASSISTANCE,
                VILLAGE,
                "2026-12-05",
                "plan_missing",
                id="assistance-without-plan",
            ),
            pytest.param(
                CaseFacts(stage=Stage.DEPARTMENT_CROSSCHECK, verification_recorded=True),
                Action.RECORD_APPRAISAL,
                VILLAGE,
                "2026-11-24",
                "step_disabled",
                id="appraisal-not-in-default",
            ),
            pytest.param(
                CaseFacts(stage=Stage.RISK_ELIMINATION, helper_assigned=True),
                Action.START_PUBLICITY,
                VILLAGE,
                "2027-06-01",
                "step_disabled",
                id="no-elimination-publicity-by-default",
            ),
            pytest.param(
                CaseFacts(stage=Stage.DEMOCRATIC_APPRAISAL, verification_recorded=True),
                Action.RECORD_APPRAISAL,
                VILLAGE,
                "2026-11-24",
                "stage_not_in_template",
                id="stored-stage-unknown-to-template",
            ),
            pytest.param(
                CaseFacts(stage=Stage.NOT_INCLUDED),
                Action.REOPEN,
                VILLAGE,
                "2026-12-01",
                "case_closed",
                id="closed-case",
            ),
            pytest.param(
                CaseFacts(stage=Stage.ASSISTANCE, helper_assigned=True, plan_recorded=True),
                Action.EXIT,
                COUNTY,
                "2027-01-01",
                "wrong_stage",
                id="exit-before-elimination",
            ),
            pytest.param(
                CaseFacts(stage=Stage.ASSISTANCE, helper_assigned=True, plan_recorded=True),
                Action.REOPEN,
                VILLAGE,
                "2027-01-01",
                "wrong_stage",
                id="reopen-an-open-case",
            ),
            pytest.param(
                CaseFacts(stage=Stage.MONITORING),
                Action.COUNTY_REJECT,
                COUNTY,
                "2027-01-01",
                "wrong_stage",
                id="reject-after-inclusion",
            ),
        ],
    )
    def test_refused_with_reason(
        self, facts: CaseFacts, action: Action, role: str, today: str, code: str
    ) -> None:
        error = refusal(DEFAULT, facts, action, role, today)
        assert error.code == code
        assert error.message_zh
        assert error.message_en
        assert code in str(error)

    def test_publicity_message_names_the_dates(self) -> None:
        error = refusal(DEFAULT, PUBLICITY_RUNNING, Action.END_PUBLICITY, VILLAGE, "2026-11-26")
        assert "2026-11-28" in error.message_zh
        assert "2026-11-28" in error.message_en
        assert "不少于5天" in error.message_zh

    def test_wrong_stage_message_names_the_stages(self) -> None:
        facts = CaseFacts(stage=Stage.DEPARTMENT_CROSSCHECK, verification_recorded=True)
        error = refusal(DEFAULT, facts, Action.START_PUBLICITY, VILLAGE, "2026-11-24")
        assert "部门协查" in error.message_zh
        assert "village_publicity" in error.message_en


class TestOptionalSteps:
    @pytest.mark.parametrize(
        ("template", "expected"),
        [
            pytest.param(DEFAULT, Stage.VILLAGE_PUBLICITY, id="appraisal-off"),
            pytest.param(WITH_APPRAISAL, Stage.DEMOCRATIC_APPRAISAL, id="appraisal-on"),
        ],
    )
    def test_after_crosscheck(self, template: WorkflowTemplate, expected: Stage) -> None:
        facts = CaseFacts(stage=Stage.DEPARTMENT_CROSSCHECK, verification_recorded=True)
        got = transition(
            template,
            facts,
            Action.RECORD_CROSSCHECK,
            actor_role=COUNTY,
            today=D("2026-11-24"),
            publicity_min_days=MIN_DAYS,
        )
        assert got == expected

    def test_appraisal_leads_to_publicity(self) -> None:
        facts = CaseFacts(stage=Stage.DEMOCRATIC_APPRAISAL, verification_recorded=True)
        states = run(WITH_APPRAISAL, facts, [(Action.RECORD_APPRAISAL, VILLAGE, "2026-11-24")])
        assert states[-1].stage == Stage.VILLAGE_PUBLICITY

    def test_appraisal_cannot_be_skipped_when_enabled(self) -> None:
        facts = CaseFacts(stage=Stage.DEMOCRATIC_APPRAISAL, verification_recorded=True)
        error = refusal(WITH_APPRAISAL, facts, Action.START_PUBLICITY, VILLAGE, "2026-11-24")
        assert error.code == "wrong_stage"

    def test_without_township_review_publicity_goes_to_county(self) -> None:
        states = run(
            JIAOCHENG_FOUR_STEPS, PUBLICITY_RUNNING, [(Action.END_PUBLICITY, VILLAGE, "2026-11-29")]
        )
        assert states[-1].stage == Stage.COUNTY_APPROVAL
        error = refusal(
            JIAOCHENG_FOUR_STEPS, AT_COUNTY, Action.TOWNSHIP_APPROVE, TOWNSHIP, "2026-11-29"
        )
        assert error.code == "step_disabled"

    def test_township_return_repeats_verification_and_publicity(self) -> None:
        at_township = replace(PUBLICITY_RUNNING, stage=Stage.TOWNSHIP_REVIEW)
        returned = run(DEFAULT, at_township, [(Action.TOWNSHIP_RETURN, TOWNSHIP, "2026-11-30")])[-1]
        assert returned.stage == Stage.HOME_VERIFICATION
        assert not returned.verification_recorded
        assert returned.publicity_started_on is None

    def test_elimination_publicity(self) -> None:
        facts = CaseFacts(stage=Stage.ASSISTANCE, helper_assigned=True, plan_recorded=True)
        facts = run(
            ELIMINATION_PUBLICITY, facts, [(Action.PROPOSE_ELIMINATION, VILLAGE, "2027-06-01")]
        )[-1]
        assert refusal(
            ELIMINATION_PUBLICITY, facts, Action.CONFIRM_ELIMINATION, COUNTY, "2027-06-01"
        ).code == ("publicity_not_started")
        facts = run(
            ELIMINATION_PUBLICITY,
            facts,
            [
                (Action.START_PUBLICITY, VILLAGE, "2027-06-02"),
                (Action.FILE_OBJECTION, VILLAGE, "2027-06-03"),
            ],
        )[-1]
        assert facts.elimination_publicity_started_on == D("2027-06-02")
        assert facts.publicity_started_on is None
        assert refusal(
            ELIMINATION_PUBLICITY, facts, Action.CONFIRM_ELIMINATION, COUNTY, "2027-06-10"
        ).code == ("open_objection")
        facts = run(
            ELIMINATION_PUBLICITY, facts, [(Action.RESOLVE_OBJECTION, VILLAGE, "2027-06-04")]
        )[-1]
        assert refusal(
            ELIMINATION_PUBLICITY, facts, Action.CONFIRM_ELIMINATION, COUNTY, "2027-06-06"
        ).code == ("publicity_too_short")
        done = run(
            ELIMINATION_PUBLICITY, facts, [(Action.CONFIRM_ELIMINATION, COUNTY, "2027-06-07")]
        )
        assert done[-1].stage == Stage.RISK_ELIMINATED

    def test_rejected_elimination_returns_to_assistance(self) -> None:
        facts = CaseFacts(stage=Stage.RISK_ELIMINATION, helper_assigned=True, plan_recorded=True)
        states = run(DEFAULT, facts, [(Action.REJECT_ELIMINATION, COUNTY, "2027-06-01")])
        assert states[-1].stage == Stage.ASSISTANCE


class TestEliminationCriteria:
    SHORT = (
        Shortfall(
            "plan_not_delivered", "尚有1项帮扶措施未落实", "1 plan measure(s) are not delivered"
        ),
    )

    @pytest.mark.parametrize(
        ("stage", "action", "shortfalls", "expected"),
        [
            pytest.param(
                Stage.ASSISTANCE,
                Action.PROPOSE_ELIMINATION,
                (),
                Stage.RISK_ELIMINATION,
                id="propose",
            ),
            pytest.param(
                Stage.ASSISTANCE, Action.PROPOSE_ELIMINATION, SHORT, None, id="propose-refused"
            ),
            pytest.param(
                Stage.RISK_ELIMINATION,
                Action.CONFIRM_ELIMINATION,
                (),
                Stage.RISK_ELIMINATED,
                id="confirm",
            ),
            pytest.param(
                Stage.RISK_ELIMINATION,
                Action.CONFIRM_ELIMINATION,
                SHORT,
                None,
                id="confirm-refused",
            ),
            pytest.param(
                Stage.RISK_ELIMINATION,
                Action.REJECT_ELIMINATION,
                SHORT,
                Stage.ASSISTANCE,
                id="reject-needs-no-criteria",
            ),
        ],
    )
    def test_criteria_gate_elimination(
        self,
        stage: Stage,
        action: Action,
        shortfalls: tuple[Shortfall, ...],
        expected: Stage | None,
    ) -> None:
        facts = CaseFacts(stage=stage, elimination_shortfalls=shortfalls)
        role = VILLAGE if action == Action.PROPOSE_ELIMINATION else COUNTY
        if expected is not None:
            assert (
                transition(
                    DEFAULT,
                    facts,
                    action,
                    actor_role=role,
                    today=D("2026-09-01"),
                    publicity_min_days=5,
                )
                == expected
            )
            return
        error = refusal(DEFAULT, facts, action, role, "2026-09-01")
        assert error.code == "elimination_criteria_unmet"
        assert "尚有1项帮扶措施未落实" in error.message_zh
        assert "not delivered" in error.message_en

    def test_allowed_actions_follow_the_criteria(self) -> None:
        unmet = CaseFacts(stage=Stage.ASSISTANCE, elimination_shortfalls=self.SHORT)
        met = CaseFacts(stage=Stage.ASSISTANCE)
        assert Action.PROPOSE_ELIMINATION not in allowed_actions(
            DEFAULT, unmet, VILLAGE, D("2026-09-01"), MIN_DAYS
        )
        assert Action.PROPOSE_ELIMINATION in allowed_actions(
            DEFAULT, met, VILLAGE, D("2026-09-01"), MIN_DAYS
        )


class TestReopen:
    @pytest.mark.parametrize(
        "stage",
        [
            pytest.param(Stage.RISK_ELIMINATED, id="from-risk-eliminated"),
            pytest.param(Stage.EXITED, id="from-exited"),
        ],
    )
    def test_new_risk_reopens_monitoring(self, stage: Stage) -> None:
        facts = CaseFacts(stage=stage, helper_assigned=True, plan_recorded=True)
        states = run(
            DEFAULT,
            facts,
            [
                (Action.REOPEN, TOWNSHIP, "2027-09-01"),
                (Action.START_ASSISTANCE, VILLAGE, "2027-09-02"),
                (Action.PROPOSE_ELIMINATION, VILLAGE, "2028-03-01"),
            ],
        )
        assert [s.stage for s in states] == [
            Stage.MONITORING,
            Stage.ASSISTANCE,
            Stage.RISK_ELIMINATION,
        ]


class TestRejection:
    @pytest.mark.parametrize(
        "facts",
        [
            pytest.param(CaseFacts(stage=Stage.OPENED), id="opened"),
            pytest.param(CaseFacts(stage=Stage.HOME_VERIFICATION), id="verification"),
            pytest.param(replace(PUBLICITY_RUNNING, open_objections=1), id="upheld-objection"),
            pytest.param(AT_COUNTY, id="county-approval"),
        ],
    )
    def test_county_may_close_before_inclusion(self, facts: CaseFacts) -> None:
        closed = run(DEFAULT, facts, [(Action.COUNTY_REJECT, COUNTY, "2026-11-26")])[-1]
        assert closed.stage == Stage.NOT_INCLUDED
        assert closed.open_objections == 0


class TestAllowedActions:
    @pytest.mark.parametrize(
        ("facts", "role", "today", "expected"),
        [
            pytest.param(
                CaseFacts(stage=Stage.OPENED),
                VILLAGE,
                "2026-11-23",
                [Action.START_VERIFICATION],
                id="opened-village",
            ),
            pytest.param(
                CaseFacts(stage=Stage.OPENED),
                COUNTY,
                "2026-11-23",
                [Action.START_VERIFICATION, Action.COUNTY_REJECT],
                id="opened-county",
            ),
            pytest.param(
                PUBLICITY_RUNNING,
                VILLAGE,
                "2026-11-26",
                [Action.FILE_OBJECTION],
                id="publicity-running",
            ),
            pytest.param(
                PUBLICITY_RUNNING,
                VILLAGE,
                "2026-11-29",
                [Action.FILE_OBJECTION, Action.END_PUBLICITY],
                id="publicity-complete",
            ),
            pytest.param(
                CaseFacts(stage=Stage.MONITORING),
                TOWNSHIP,
                "2026-12-02",
                [Action.ASSIGN_HELPER, Action.RECORD_PLAN],
                id="monitoring-township",
            ),
            pytest.param(
                CaseFacts(stage=Stage.EXITED), ADMIN, "2027-01-01", [], id="admin-decides-nothing"
            ),
            pytest.param(
                CaseFacts(stage=Stage.NOT_INCLUDED), COUNTY, "2027-01-01", [], id="closed"
            ),
        ],
    )
    def test_allowed(self, facts: CaseFacts, role: str, today: str, expected: list[Action]) -> None:
        assert allowed_actions(DEFAULT, facts, role, D(today), MIN_DAYS) == expected


class TestTemplateValidation:
    @pytest.mark.parametrize(
        ("steps", "match"),
        [
            pytest.param(
                (Stage.HOME_VERIFICATION, Stage.COUNTY_APPROVAL), "lack", id="no-publicity"
            ),
            pytest.param(
                (
                    Stage.HOME_VERIFICATION,
                    Stage.VILLAGE_PUBLICITY,
                    Stage.DEPARTMENT_CROSSCHECK,
                    Stage.COUNTY_APPROVAL,
                ),
                "order",
                id="crosscheck-after-publicity",
            ),
            pytest.param(
                (
                    Stage.HOME_VERIFICATION,
                    Stage.VILLAGE_PUBLICITY,
                    Stage.VILLAGE_PUBLICITY,
                    Stage.COUNTY_APPROVAL,
                ),
                "distinct",
                id="repeated-step",
            ),
            pytest.param(
                (
                    Stage.HOME_VERIFICATION,
                    Stage.VILLAGE_PUBLICITY,
                    Stage.MONITORING,
                    Stage.COUNTY_APPROVAL,
                ),
                "distinct",
                id="non-identification-stage",
            ),
        ],
    )
    def test_invalid_steps(self, steps: tuple[Stage, ...], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            WorkflowTemplate(name="bad", identification_steps=steps)

    def test_return_must_repeat_publicity(self) -> None:
        with pytest.raises(ValueError, match="before the publicity"):
            replace(DEFAULT, township_return_to=Stage.TOWNSHIP_REVIEW)

    def test_default_template_follows_the_documents(self) -> None:
        assert DEFAULT.identification_steps == (
            Stage.HOME_VERIFICATION,
            Stage.DEPARTMENT_CROSSCHECK,
            Stage.VILLAGE_PUBLICITY,
            Stage.TOWNSHIP_REVIEW,
            Stage.COUNTY_APPROVAL,
        )
        assert not DEFAULT.enables(Stage.DEMOCRATIC_APPRAISAL)
        assert not DEFAULT.elimination_publicity
        assert DEFAULT.may(Action.COUNTY_INCLUDE, COUNTY)
        assert not DEFAULT.may(Action.COUNTY_INCLUDE, VILLAGE)


def test_every_stage_and_action_has_a_chinese_label() -> None:
    assert set(STAGE_LABELS_ZH) == set(Stage)
    assert set(ACTION_LABELS_ZH) == set(Action)
    assert Stage.VILLAGE_PUBLICITY.label_zh == "村内公示"
    assert Action.COUNTY_INCLUDE.label_zh == "县级审批纳入"


ROLES = [VILLAGE, TOWNSHIP, COUNTY, ADMIN, "guest"]
TEMPLATES = [DEFAULT, WITH_APPRAISAL, JIAOCHENG_FOUR_STEPS, ELIMINATION_PUBLICITY]
_PRE_INCLUSION = {
    Stage.OPENED,
    Stage.HOME_VERIFICATION,
    Stage.DEPARTMENT_CROSSCHECK,
    Stage.DEMOCRATIC_APPRAISAL,
    Stage.VILLAGE_PUBLICITY,
    Stage.TOWNSHIP_REVIEW,
    Stage.COUNTY_APPROVAL,
}


class CaseMachine(RuleBasedStateMachine):
    """Random users poke one case; the procedure must stay consistent."""

    def __init__(self) -> None:
        super().__init__()
        self.template = DEFAULT
        self.facts = CaseFacts(stage=Stage.OPENED)
        self.today = D("2026-11-23")

    @initialize(template=st.sampled_from(TEMPLATES))
    def choose_template(self, template: WorkflowTemplate) -> None:
        self.template = template

    @rule(days=st.integers(min_value=0, max_value=4))
    def time_passes(self, days: int) -> None:
        self.today += timedelta(days=days)

    @rule(pending=st.integers(min_value=0, max_value=2))
    def departments_answer(self, pending: int) -> None:
        self.facts = replace(self.facts, crosscheck_departments_pending=pending)

    @rule(action=st.sampled_from(list(Action)), role=st.sampled_from(ROLES))
    def anyone_tries_anything(self, action: Action, role: str) -> None:
        self._attempt(action, role)

    @rule(data=st.data())
    def someone_does_something_allowed(self, data: st.DataObject) -> None:
        options = [
            (action, role)
            for role in ROLES
            for action in allowed_actions(self.template, self.facts, role, self.today, MIN_DAYS)
        ]
        # Mostly avoid the terminal rejection, so that runs get deep into the procedure.
        progress = [option for option in options if option[0] != Action.COUNTY_REJECT]
        rejecting_allowed: bool = data.draw(st.integers(min_value=0, max_value=19)) == 0
        if progress and not rejecting_allowed:
            options = progress
        if options:
            action, role = data.draw(st.sampled_from(options))
            self._attempt(action, role, must_succeed=True)

    def _attempt(self, action: Action, role: str, *, must_succeed: bool = False) -> None:
        before = self.facts
        outcome = self._try(action, role)
        if isinstance(outcome, IllegalTransition):
            assert not must_succeed, outcome
            assert outcome.code
            return
        after = outcome
        assert self.template.may(action, role)
        if before.stage in _PRE_INCLUSION and after.stage == Stage.MONITORING:
            # Never include without a full, objection-free publicity and a verification.
            assert action == Action.COUNTY_INCLUDE
            assert publicity_satisfied(before.publicity_started_on, self.today, MIN_DAYS)
            assert before.open_objections == 0
            assert before.verification_recorded
        if after.stage == Stage.ASSISTANCE and before.stage == Stage.MONITORING:
            assert before.helper_assigned
            assert before.plan_recorded
        if before.stage == Stage.NOT_INCLUDED:
            raise AssertionError("a closed case moved")
        self.facts = after

    def _try(self, action: Action, role: str) -> CaseFacts | IllegalTransition:
        """Return the facts after the action, or the refusal."""
        try:
            return advance(
                self.template,
                self.facts,
                action,
                actor_role=role,
                today=self.today,
                publicity_min_days=MIN_DAYS,
            )
        except IllegalTransition as error:
            return error

    @invariant()
    def stage_belongs_to_template(self) -> None:
        assert self.facts.stage in self.template.stages

    @invariant()
    def counts_are_sane(self) -> None:
        assert self.facts.open_objections >= 0

    @invariant()
    def reviews_only_after_a_complete_publicity(self) -> None:
        if self.facts.stage in (Stage.TOWNSHIP_REVIEW, Stage.COUNTY_APPROVAL):
            assert self.facts.verification_recorded
            assert publicity_satisfied(self.facts.publicity_started_on, self.today, MIN_DAYS)

    @invariant()
    def publicity_dates_are_not_in_the_future(self) -> None:
        for started in (
            self.facts.publicity_started_on,
            self.facts.elimination_publicity_started_on,
        ):
            assert started is None or started <= self.today


CaseMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=120, deadline=None)
TestCaseMachine = CaseMachine.TestCase

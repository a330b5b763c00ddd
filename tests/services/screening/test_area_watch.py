"""The area watch's arithmetic: causes of a signal, weekly counts, and the spike rule."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.screening import area_watch
from services.screening.report_repository import CauseSignal

POLICY = area_watch.load_area_alert_policy()
TOWNSHIP = "141122202000"
VILLAGE = "141122202201"
WEEK = date(2026, 11, 16)  # a Monday


def signal(
    day: date,
    *,
    household: uuid.UUID | None = None,
    alert_type: str | None = None,
    kinds: tuple[str, ...] = ("illness",),
    region: str = VILLAGE,
) -> CauseSignal:
    return CauseSignal(
        household_id=household or uuid.uuid4(),
        region_code=region,
        occurred_on=day,
        channel="alert" if alert_type else "declaration",
        alert_type=alert_type,
        difficulty_types=() if alert_type else kinds,
    )


class TestPolicy:
    def test_packaged_policy_is_versioned(self) -> None:
        assert POLICY.version
        assert POLICY.baseline_weeks == 8
        assert POLICY.k == Decimal("3")

    @pytest.mark.parametrize(
        ("alert_type", "kinds", "causes"),
        [
            ("medical_insurance.large_out_of_pocket", (), ("illness",)),
            ("emergency.disaster_loss", (), ("disaster",)),
            (None, ("illness", "disaster"), ("illness", "disaster")),
            ("civil_affairs.dibao_application", (), ()),
        ],
    )
    def test_causes_of_a_signal(
        self, alert_type: str | None, kinds: tuple[str, ...], causes: tuple[str, ...]
    ) -> None:
        assert POLICY.causes_of(alert_type=alert_type, difficulty_types=kinds) == causes


class TestJudge:
    @pytest.mark.parametrize(
        ("signals", "households", "baseline", "alert"),
        [
            (5, 3, [0] * 8, True),  # the floor alone on an empty baseline
            (4, 4, [0] * 8, False),  # below min_signals
            (5, 2, [0] * 8, False),  # too few households: one family's many alerts
            (12, 10, [2, 3, 2, 3, 2, 3, 2, 3], True),  # mean 2.5, sd 0.5: line 4.0
            (4, 4, [2, 3, 2, 3, 2, 3, 2, 3], False),
            (10, 10, [0, 10, 0, 10, 0, 10, 0, 10], False),  # mean 5, sd 5: line 20
        ],
    )
    def test_spike_rule(
        self, signals: int, households: int, baseline: list[int], alert: bool
    ) -> None:
        spike = area_watch.judge(
            area_watch.WeekCount(signals=signals, households=households), baseline, POLICY
        )
        assert spike.alert is alert

    def test_figures_are_rounded_for_readers(self) -> None:
        spike = area_watch.judge(
            area_watch.WeekCount(signals=12, households=10), [2, 3, 2, 3, 2, 3, 2, 3], POLICY
        )
        assert (spike.mean, spike.sd, spike.threshold) == (
            Decimal("2.50"),
            Decimal("0.50"),
            Decimal("5.00"),
        )


class TestAssessWeek:
    def test_counts_only_the_township_cause_and_weeks(self) -> None:
        family = uuid.uuid4()
        signals = [
            *(signal(WEEK + timedelta(days=i % 7)) for i in range(5)),
            signal(WEEK, household=family, alert_type="health.serious_illness_diagnosis"),
            signal(WEEK, household=family, alert_type="health.serious_illness_diagnosis"),
            signal(WEEK, kinds=("disaster",)),  # another cause
            signal(WEEK, region="141122100201"),  # another township
            signal(WEEK + timedelta(days=7)),  # next week
            *(signal(WEEK - timedelta(weeks=w)) for w in range(1, 9)),  # one a week before
        ]
        spike = area_watch.assess_week(
            signals, township=TOWNSHIP, cause="illness", week=WEEK, policy=POLICY
        )
        assert spike.count == area_watch.WeekCount(signals=7, households=6)
        assert spike.baseline == (1,) * 8
        assert spike.alert

    def test_week_start_is_monday(self) -> None:
        assert area_watch.week_start(date(2026, 11, 22)) == WEEK
        assert area_watch.week_start(WEEK) == WEEK

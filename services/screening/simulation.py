"""Policy simulation: replay stored episodes under two policies and compare (pure, no I/O).

The service gathers each episode of the period as a Case (the household's facts rebuilt
from today's registry, the episode's signals of the period); this module scores every case
under the active policy and under the candidate and tallies the outcomes by level,
category and township, and lists the households whose outcome changes.

A household with several episodes in the period counts once, at its highest outcome under
each policy (level first, then score): the question a county asks is "would this family
have been flagged at some point".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Final

from services.screening import scoring
from services.screening.policy import LEVEL_RANK, Level, ScoringPolicy

LEVELS: Final[tuple[Level, ...]] = ("none", "low", "medium", "high")
CATEGORIES: Final = ("unstable_escaped", "marginal", "sudden_difficulty")
UNKNOWN_TOWNSHIP: Final = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One episode to replay: who, where, on which day, with which evidence."""

    household_ref: str
    region_code: str  # the household's village (or county while provisional)
    township_code: str  # 9 digits, or UNKNOWN_TOWNSHIP
    household: scoring.HouseholdFacts
    signals: tuple[scoring.Signal, ...]
    as_of: date


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one policy made of a household."""

    score: int
    level: Level
    categories: tuple[str, ...]
    opens_case: bool
    policy_id: str
    policy_version: int

    def rank(self) -> tuple[int, int]:
        """Order outcomes by level, then score."""
        return LEVEL_RANK[self.level], self.score

    def same_decision(self, other: Outcome) -> bool:
        """Tell whether two outcomes would be handled alike (score differences aside)."""
        return (self.level, self.categories, self.opens_case) == (
            other.level,
            other.categories,
            other.opens_case,
        )


def _zeroes(keys: Iterable[str]) -> dict[str, int]:
    return dict.fromkeys(keys, 0)


@dataclass(slots=True)
class Tally:
    """Households counted by level and category; flagged means a level above none."""

    households: int = 0
    flagged: int = 0
    opens_case: int = 0
    by_level: dict[str, int] = field(default_factory=lambda: _zeroes(LEVELS))
    by_category: dict[str, int] = field(default_factory=lambda: _zeroes(CATEGORIES))

    def add(self, outcome: Outcome) -> None:
        """Count one household's outcome."""
        self.households += 1
        self.by_level[outcome.level] += 1
        if outcome.level != "none":
            self.flagged += 1
        if outcome.opens_case:
            self.opens_case += 1
        for category in outcome.categories:
            self.by_category[category] = self.by_category.get(category, 0) + 1


@dataclass(slots=True)
class TownshipTally:
    """One township's tallies under both policies."""

    township_code: str
    township_name: str | None
    active: Tally = field(default_factory=Tally)
    candidate: Tally = field(default_factory=Tally)


@dataclass(frozen=True, slots=True)
class Change:
    """A household the candidate would treat differently."""

    household_ref: str
    region_code: str
    township_code: str
    active: Outcome
    candidate: Outcome


@dataclass(slots=True)
class Report:
    """The comparison of a candidate policy with the active one over a period."""

    episodes: int = 0
    signals: int = 0
    active: Tally = field(default_factory=Tally)
    candidate: Tally = field(default_factory=Tally)
    townships: list[TownshipTally] = field(default_factory=list)
    # "before→after" level pairs of the households whose level changes.
    transitions: dict[str, int] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    changes_total: int = 0


def outcome_of(case: Case, policy: ScoringPolicy) -> Outcome:
    """Score one case under one policy."""
    result = scoring.score(case.household, case.signals, policy, as_of=case.as_of)
    return Outcome(
        score=result.score,
        level=result.level,
        categories=tuple(sorted(str(c) for c in result.categories)),
        opens_case=result.opens_case,
        policy_id=result.policy_id,
        policy_version=result.policy_version,
    )


def simulate(
    cases: Iterable[Case],
    *,
    active_policy: Callable[[Case], ScoringPolicy],
    candidate_policy: Callable[[Case], ScoringPolicy],
    township_name: Callable[[str], str | None],
    changes_limit: int,
) -> Report:
    """Replay every case under both policies and compare them household by household."""
    report = Report()
    best: dict[str, tuple[Case, Outcome, Outcome]] = {}
    for case in cases:
        report.episodes += 1
        report.signals += len(case.signals)
        before = outcome_of(case, active_policy(case))
        after = outcome_of(case, candidate_policy(case))
        known = best.get(case.household_ref)
        if known is None:
            best[case.household_ref] = (case, before, after)
        else:
            best[case.household_ref] = (
                case,
                max(known[1], before, key=Outcome.rank),
                max(known[2], after, key=Outcome.rank),
            )
    townships: dict[str, TownshipTally] = {}
    changes: list[Change] = []
    for ref, (case, before, after) in best.items():
        report.active.add(before)
        report.candidate.add(after)
        tally = townships.get(case.township_code)
        if tally is None:
            name = township_name(case.township_code) if case.township_code else None
            tally = townships[case.township_code] = TownshipTally(case.township_code, name)
        tally.active.add(before)
        tally.candidate.add(after)
        if before.level != after.level:
            key = f"{before.level}→{after.level}"
            report.transitions[key] = report.transitions.get(key, 0) + 1
        if not before.same_decision(after):
            changes.append(Change(ref, case.region_code, case.township_code, before, after))
    report.townships = sorted(townships.values(), key=lambda t: t.township_code)
    # Biggest moves first, so a capped list still shows what matters most.
    changes.sort(
        key=lambda c: (
            -abs(LEVEL_RANK[c.candidate.level] - LEVEL_RANK[c.active.level]),
            -abs(c.candidate.score - c.active.score),
            c.household_ref,
        )
    )
    report.changes_total = len(changes)
    report.changes = changes[:changes_limit]
    return report

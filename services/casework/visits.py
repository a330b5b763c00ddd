"""Which recorded visits count towards which visit clocks (domain.md §6.2 D4-D7, D10, D11).

A visit is made by someone in a role; each recurring visit rule names who must visit:
帮扶干部 for D4, D5, D10 and D11, the village Party secretary or First Secretary for D6,
the township Party secretary for D7.  A period's quota is met when the period holds at
least `count` visits by a qualifying role.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Literal

from services.casework.deadlines import DeadlineKind, DeadlineRule, period_of, visits_missing

__all__ = ["VISITOR_ROLES", "VisitorRole", "kinds_met_by", "last_period_met", "quota_met"]

VisitorRole = Literal["helper", "village_secretary", "first_secretary", "township_secretary"]
VISITOR_ROLES: tuple[VisitorRole, ...] = (
    "helper",
    "village_secretary",
    "first_secretary",
    "township_secretary",
)

_HELPER_KINDS = frozenset(
    {
        DeadlineKind.MONTHLY_VISIT,
        DeadlineKind.ESCAPED_HOUSEHOLD_VISIT,
        DeadlineKind.SPECIAL_CARE_VISIT,
        DeadlineKind.SPECIAL_CARE_WEEKLY_VISIT,
        DeadlineKind.RELOCATION_FOLLOWUP_VISIT,
    }
)
_KINDS_BY_ROLE: Mapping[VisitorRole, frozenset[DeadlineKind]] = {
    "helper": _HELPER_KINDS,
    # D6 names both the village Party secretary and the First Secretary [002:27].
    "village_secretary": frozenset({DeadlineKind.VILLAGE_SECRETARY_VISIT}),
    "first_secretary": frozenset({DeadlineKind.VILLAGE_SECRETARY_VISIT}),
    "township_secretary": frozenset({DeadlineKind.TOWNSHIP_SECRETARY_VISIT}),
}


def kinds_met_by(role: VisitorRole) -> frozenset[DeadlineKind]:
    """Return the visit clocks a visit by role counts towards."""
    return _KINDS_BY_ROLE[role]


def quota_met(rule: DeadlineRule, visits: Iterable[date], within: date) -> bool:
    """Return whether the period containing `within` holds the rule's quota of visits."""
    return visits_missing(rule, visits, within) == 0


def last_period_met(rule: DeadlineRule, visits: Iterable[date]) -> date | None:
    """Return a day of the latest period whose quota the visits meet, or None."""
    unit = rule.unit
    if unit == "calendar_days" or unit == "working_days":
        raise ValueError(f"{rule.kind} is not a calendar-period rule")
    listed = list(visits)
    counts: dict[date, int] = {}
    for day in listed:
        first, _ = period_of(day, unit)
        counts[first] = counts.get(first, 0) + 1
    for day in sorted(set(listed), reverse=True):
        first, _ = period_of(day, unit)
        if counts[first] >= rule.count:
            return day
    return None

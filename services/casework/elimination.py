"""Risk-elimination criteria checked against a case's record (domain.md §6.4, §9 A16).

The documents name only 两不愁三保障 [000:655] and "风险消除户及时退出" [001:270]; every
number here comes from the region's procedure template (`EliminationCriteria`).  The check
is pure: the caller passes the income readings (verification and visits), the latest
status of each guarantee dimension and the plan items' statuses.

Income is "stable" when each of the last N calendar months holds at least one income
reading and every reading in those months is at or above the line.  The window ends with
the current month once it holds a reading, otherwise with the previous month: a visit
later this month may still come, and it must not make an otherwise clean record fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from services.casework.measures import GUARANTEE_DIMENSIONS
from services.casework.procedure import EliminationCriteria
from services.casework.workflow import Shortfall

__all__ = ["IncomeReading", "evaluate", "income_window"]

_MONTHS = 12


@dataclass(frozen=True)
class IncomeReading:
    """Annual per-capita income as verified or reported at a visit on a local date."""

    on: date
    per_capita: Decimal


def _month_index(day: date) -> int:
    return day.year * _MONTHS + day.month - 1


def _label(index: int) -> str:
    year, month0 = divmod(index, _MONTHS)
    return f"{year:04d}-{month0 + 1:02d}"


def income_window(months: int, today: date, readings: Iterable[IncomeReading]) -> list[int]:
    """Return the month indexes (year*12+month-1) the income criterion looks at, oldest first."""
    if months == 0:
        return []
    current = _month_index(today)
    has_current = any(_month_index(r.on) == current for r in readings if r.on <= today)
    last = current if has_current else current - 1
    return list(range(last - months + 1, last + 1))


def evaluate(
    criteria: EliminationCriteria,
    *,
    today: date,
    incomes: Sequence[IncomeReading],
    guarantees: Mapping[str, str],
    plan_statuses: Sequence[str],
) -> tuple[Shortfall, ...]:
    """Return every unmet criterion (empty when risk elimination may proceed)."""
    shortfalls: list[Shortfall] = []
    window = income_window(criteria.income_stable_months, today, incomes)
    if window:
        by_month: dict[int, list[Decimal]] = {}
        for reading in incomes:
            if reading.on <= today:
                by_month.setdefault(_month_index(reading.on), []).append(reading.per_capita)
        missing = [m for m in window if m not in by_month]
        below = [
            m for m in window if any(v < criteria.income_line_yuan for v in by_month.get(m, []))
        ]
        line = f"{criteria.income_line_yuan}"
        if missing:
            months = "、".join(_label(m) for m in missing)
            shortfalls.append(
                Shortfall(
                    "income_unrecorded",
                    f"须连续{len(window)}个月有收入记录，{months}无入户核查或走访收入记录",
                    f"{len(window)} consecutive months of income records are required; "
                    f"none for {', '.join(_label(m) for m in missing)}",
                )
            )
        if below:
            shortfalls.append(
                Shortfall(
                    "income_below_line",
                    f"{'、'.join(_label(m) for m in below)}人均收入低于{line}元",
                    f"per-capita income was below {line} yuan in "
                    f"{', '.join(_label(m) for m in below)}",
                )
            )
    if criteria.require_guarantees_secure:
        insecure = [
            d for d in GUARANTEE_DIMENSIONS if guarantees.get(d) not in ("secure", "not_applicable")
        ]
        if insecure:
            shortfalls.append(
                Shortfall(
                    "guarantees_not_secure",
                    f"两不愁三保障及饮水安全尚未全部保障（{'、'.join(insecure)}）",
                    f"两不愁三保障 and drinking water are not all secure ({', '.join(insecure)})",
                )
            )
    if criteria.require_plan_delivered:
        live = [s for s in plan_statuses if s != "cancelled"]
        if not live:
            shortfalls.append(
                Shortfall(
                    "plan_empty",
                    "“一户一策”帮扶措施为空",
                    "The one-household-one-plan has no measure",
                )
            )
        elif any(s != "delivered" for s in live):
            pending = sum(1 for s in live if s != "delivered")
            shortfalls.append(
                Shortfall(
                    "plan_not_delivered",
                    f"尚有{pending}项帮扶措施未落实",
                    f"{pending} plan measure(s) are not delivered",
                )
            )
    return tuple(shortfalls)

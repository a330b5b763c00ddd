"""A hand-computed SLA fixture: clocks of two townships over three months, and the answers.

As of 2026-03-20 10:00 (Asia/Shanghai), months 2026-01..2026-03.  Each clock's verdict is
written beside it; EXPECTED_* were counted by hand from those verdicts, not by the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8))
AS_OF = datetime(2026, 3, 20, 10, 0, tzinfo=CST)
MONTHS = ["2026-01", "2026-02", "2026-03"]
T1 = "141122100"  # 天宁镇
T2 = "141122101"  # 夏家营镇
T1_VILLAGE = "141122100201"
T1_OTHER_VILLAGE = "141122100202"
T2_VILLAGE = "141122101201"


def cst(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, 0, tzinfo=CST)


@dataclass(frozen=True)
class Clock:
    """One clock of the fixture; `case` groups clocks that belong to the same case."""

    case: int
    kind: str
    bound: str
    village: str
    due: date
    met_at: datetime | None = None
    breached_at: datetime | None = None
    paused_at: datetime | None = None
    closed_at: datetime | None = None


CLOCKS: tuple[Clock, ...] = (
    # identification (D1), bound deadline
    Clock(
        1, "identification", "deadline", T1_VILLAGE, date(2026, 1, 16), met_at=cst(2026, 1, 15)
    ),  # Jan on time
    Clock(
        2, "identification", "deadline", T1_VILLAGE, date(2026, 1, 20), met_at=cst(2026, 1, 22)
    ),  # Jan late
    Clock(
        3,
        "identification",
        "deadline",
        T1_OTHER_VILLAGE,
        date(2026, 2, 10),
        breached_at=cst(2026, 2, 11, 0),
    ),  # Feb late, overdue
    Clock(
        4, "identification", "deadline", T2_VILLAGE, date(2026, 2, 5), met_at=cst(2026, 2, 5, 23)
    ),  # Feb on time (same evening)
    Clock(5, "identification", "deadline", T2_VILLAGE, date(2026, 3, 25)),  # Mar pending
    Clock(
        6, "identification", "deadline", T2_VILLAGE, date(2026, 3, 18)
    ),  # Mar late: past due, not yet swept
    Clock(
        7, "identification", "deadline", T1_VILLAGE, date(2026, 2, 12), closed_at=cst(2026, 2, 1)
    ),  # lapsed: left out
    Clock(
        8, "identification", "deadline", T1_VILLAGE, date(2025, 12, 30), met_at=cst(2025, 12, 29)
    ),  # before the window
    # village publicity (D2), bound minimum: respected if ended on or after the due day
    Clock(
        1, "publicity_min", "minimum", T1_VILLAGE, date(2026, 2, 6), met_at=cst(2026, 2, 6, 9)
    ),  # Feb respected
    Clock(
        4, "publicity_min", "minimum", T2_VILLAGE, date(2026, 2, 9), met_at=cst(2026, 2, 8)
    ),  # Feb cut short
    Clock(5, "publicity_min", "minimum", T2_VILLAGE, date(2026, 3, 22)),  # Mar pending (running)
    # 一户一策 plan and helper (D3)
    Clock(
        1, "assistance_plan", "deadline", T1_VILLAGE, date(2026, 2, 27), met_at=cst(2026, 2, 20)
    ),  # Feb on time
    Clock(
        4, "assistance_plan", "deadline", T2_VILLAGE, date(2026, 3, 2), met_at=cst(2026, 3, 5)
    ),  # Mar late
    Clock(
        6, "assistance_plan", "deadline", T2_VILLAGE, date(2026, 3, 31), paused_at=cst(2026, 3, 10)
    ),  # Mar pending (paused)
    Clock(
        1, "helper_assignment", "deadline", T1_VILLAGE, date(2026, 2, 27), met_at=cst(2026, 2, 26)
    ),  # Feb on time
    # monthly visits (D4), one clock per case and month
    Clock(
        1, "monthly_visit", "recurring", T1_VILLAGE, date(2026, 1, 31), met_at=cst(2026, 1, 20)
    ),  # Jan done
    Clock(
        1,
        "monthly_visit",
        "recurring",
        T1_VILLAGE,
        date(2026, 2, 28),
        breached_at=cst(2026, 3, 1, 0),
    ),  # Feb missed, overdue
    Clock(
        4, "monthly_visit", "recurring", T2_VILLAGE, date(2026, 2, 28), met_at=cst(2026, 2, 27)
    ),  # Feb done
    Clock(4, "monthly_visit", "recurring", T2_VILLAGE, date(2026, 3, 31)),  # Mar pending
    # a kind the report does not read
    Clock(1, "village_secretary_visit", "recurring", T1_VILLAGE, date(2026, 12, 31)),
)

# (township, month, metric) → (on_time, late, pending, share)
EXPECTED_TOWNSHIPS: dict[tuple[str, str, str], tuple[int, int, int, float | None]] = {
    (T1, "2026-01", "identification"): (1, 1, 0, 0.5),
    (T1, "2026-02", "identification"): (0, 1, 0, 0.0),
    (T1, "2026-02", "publicity"): (1, 0, 0, 1.0),
    (T1, "2026-02", "plan"): (1, 0, 0, 1.0),
    (T1, "2026-02", "helper"): (1, 0, 0, 1.0),
    (T1, "2026-01", "monthly_visit"): (1, 0, 0, 1.0),
    (T1, "2026-02", "monthly_visit"): (0, 1, 0, 0.0),
    (T2, "2026-02", "identification"): (1, 0, 0, 1.0),
    (T2, "2026-03", "identification"): (0, 1, 1, 0.0),
    (T2, "2026-02", "publicity"): (0, 1, 0, 0.0),
    (T2, "2026-03", "publicity"): (0, 0, 1, None),
    (T2, "2026-03", "plan"): (0, 1, 1, 0.0),
    (T2, "2026-02", "monthly_visit"): (1, 0, 0, 1.0),
    (T2, "2026-03", "monthly_visit"): (0, 0, 1, None),
}
# (month, metric) → (on_time, late, pending, share), all townships together
EXPECTED_TOTALS: dict[tuple[str, str], tuple[int, int, int, float | None]] = {
    ("2026-01", "identification"): (1, 1, 0, 0.5),
    ("2026-02", "identification"): (1, 1, 0, 0.5),
    ("2026-03", "identification"): (0, 1, 1, 0.0),
    ("2026-02", "publicity"): (1, 1, 0, 0.5),
    ("2026-03", "publicity"): (0, 0, 1, None),
    ("2026-02", "plan"): (1, 0, 0, 1.0),
    ("2026-03", "plan"): (0, 1, 1, 0.0),
    ("2026-02", "helper"): (1, 0, 0, 1.0),
    ("2026-01", "monthly_visit"): (1, 0, 0, 1.0),
    ("2026-02", "monthly_visit"): (1, 1, 0, 0.5),
    ("2026-03", "monthly_visit"): (0, 0, 1, None),
}
# Breached and still owed, longest overdue first: (case, kind, due, days overdue on 2026-03-20)
EXPECTED_OVERDUE = [
    (3, "identification", date(2026, 2, 10), 38),
    (1, "monthly_visit", date(2026, 2, 28), 20),
]

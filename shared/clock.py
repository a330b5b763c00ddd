"""Time as an injected dependency: the system clock in production, a frozen one in tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


def utc_now() -> datetime:
    """Return the current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


class Clock(Protocol):
    """Anything that can tell the current aware UTC instant."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current instant in UTC."""
        return utc_now()


class FrozenClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        """Return the frozen instant."""
        return self._at

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by delta."""
        self._at += delta

    def set(self, at: datetime) -> None:
        """Jump the clock to an aware instant."""
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at.astimezone(UTC)


# Every date in Fangpin (due dates, birth dates, occurred_on) is a local date in China
# Standard Time; instants are stored in UTC and converted only at this edge.
CHINA_TZ = ZoneInfo("Asia/Shanghai")


def china_date(instant: datetime) -> date:
    """Return the local calendar date in China of an aware instant."""
    if instant.tzinfo is None:
        raise ValueError("china_date needs an aware datetime")
    return instant.astimezone(CHINA_TZ).date()


def today_in_china() -> date:
    """Return today's date in China Standard Time."""
    return china_date(utc_now())

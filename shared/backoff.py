"""Exponential backoff with jitter, shared by the relay and the consumers."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, initial: float, maximum: float) -> float:
    """Return the delay before retry number attempt (1-based), capped, with 50-100 % jitter."""
    base = min(maximum, initial * 2.0 ** min(max(attempt - 1, 0), 16))
    # Jitter keeps restarted workers from retrying in lockstep against a recovering server.
    return base * (0.5 + random.random() / 2)

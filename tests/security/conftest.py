"""Fixtures of the security suites."""

from __future__ import annotations

from tests.security.world import world

__all__ = ["world"]

"""Progress callbacks: the worker POSTs each recorded change to the client's URL until a 2xx.

Requests are signed exactly like client requests to intake (contract.md), with the secret of
the client that filed the declaration, so the receiver verifies them with code it already
has. Delivery is at least once: a receiver deduplicates on `delivery_id`. Changes of one
declaration are sent in order; a later change waits until the earlier one is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.repository import CallbackRepository
from services.intake.settings import IntakeSettings
from shared.auth import ClientRegistry, signed_headers
from shared.backoff import backoff_delay
from shared.clock import Clock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Attempt:
    pk: int
    delivery_id: str
    url: str
    client_id: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class _Outcome:
    pk: int
    ok: bool
    status: int | None
    error: str | None


class CallbackDispatcher:
    """Sends due callback deliveries and records each attempt."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clients: ClientRegistry,
        clock: Clock,
        settings: IntakeSettings,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clients = clients
        self._clock = clock
        self._settings = settings
        # Redirects are not followed: a signature covers one path, and a 3xx is no answer.
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=settings.callback_timeout_seconds,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    async def deliver_once(self) -> int:
        """Attempt every due delivery once; return how many were attempted."""
        now = self._clock.now()
        # Leased, not locked: no transaction stays open while the HTTP calls run.
        lease_until = now + timedelta(seconds=2 * self._settings.callback_timeout_seconds + 30)
        async with self._sessionmaker() as session, session.begin():
            rows = await CallbackRepository(session).claim_due(
                now=now, limit=self._settings.callback_batch_size, lease_until=lease_until
            )
            attempts = [
                _Attempt(r.id, str(r.delivery_id), r.url, r.client_id, dict(r.payload), r.attempts)
                for r in rows
            ]
        if not attempts:
            return 0
        outcomes = await asyncio.gather(*(self._send(a) for a in attempts))
        done = self._clock.now()
        async with self._sessionmaker() as session, session.begin():
            repo = CallbackRepository(session)
            for attempt, outcome in zip(attempts, outcomes, strict=True):
                row = await repo.get(outcome.pk)
                if row is None:
                    continue
                row.attempts = attempt.attempts + 1
                row.last_status = outcome.status
                if outcome.ok:
                    row.delivered_at = done
                    row.last_error = None
                else:
                    row.last_error = (outcome.error or "")[:2000]
                    row.next_attempt_at = done + timedelta(
                        seconds=backoff_delay(
                            row.attempts,
                            initial=self._settings.callback_initial_backoff_seconds,
                            maximum=self._settings.callback_max_backoff_seconds,
                        )
                    )
                    logger.warning(
                        "callback %s attempt %d failed: %s",
                        attempt.delivery_id,
                        row.attempts,
                        row.last_error,
                    )
        return len(attempts)

    async def _send(self, attempt: _Attempt) -> _Outcome:
        client = self._clients.get(attempt.client_id)
        if client is None:
            # Kept pending: the client may come back with its secret after a rotation.
            return _Outcome(attempt.pk, False, None, f"unknown client {attempt.client_id}")
        body = json.dumps(attempt.payload, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            url = httpx.URL(attempt.url)
            headers = signed_headers(
                client.client_id,
                client.secret,
                "POST",
                url.raw_path.decode("ascii"),
                body,
                self._clock.now().timestamp(),
            )
            headers["Content-Type"] = "application/json"
            headers["X-Callback-Id"] = attempt.delivery_id
            response = await self._http.post(url, content=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
            return _Outcome(attempt.pk, False, None, f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return _Outcome(attempt.pk, True, response.status_code, None)
        return _Outcome(attempt.pk, False, response.status_code, f"HTTP {response.status_code}")

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until stop is set, pausing when nothing is due."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    sent = await self.deliver_once()
                    failures = 0
                except Exception:
                    failures += 1
                    logger.warning("callback delivery round failed", exc_info=True)
                    sent = 0
                    await _sleep_or_stop(stop, backoff_delay(failures, initial=0.5, maximum=30))
                    continue
                if sent == 0:
                    await _sleep_or_stop(stop, self._settings.callback_idle_poll_seconds)
        finally:
            await self.aclose()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)

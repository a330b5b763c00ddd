"""The deadline sweeper: a crash-safe loop that turns overdue clocks into breach events."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.casework import service
from services.casework.repository import CaseRepository
from services.casework.service import CaseworkContext
from shared.metrics import OVERDUE_DEADLINES

logger = logging.getLogger(__name__)


class DeadlineSweeper:
    """Sweeps in batches; each batch and its breach events commit together."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        ctx: CaseworkContext,
        interval_seconds: float,
        batch_size: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._ctx = ctx
        self._interval = interval_seconds
        self._batch = batch_size

    async def sweep_once(self) -> int:
        """Breach every overdue live clock; return how many."""
        total = 0
        while True:
            async with self._sessionmaker() as session, session.begin():
                n = await service.sweep(session, self._ctx, limit=self._batch)
            total += n
            if n < self._batch:
                break
        async with self._sessionmaker() as session:
            OVERDUE_DEADLINES.set(await CaseRepository(session).count_overdue())
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every interval until stop is set."""
        while not stop.is_set():
            try:
                breached = await self.sweep_once()
                if breached:
                    logger.info("sweep breached %d deadline(s)", breached)
            except Exception:
                logger.exception("deadline sweep failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)

"""Casework's consumer of screening.events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import service
from services.casework.service import CaseworkContext
from shared.contracts.envelope import EventEnvelope


class CaseworkHandlers:
    """Handlers for screening.events."""

    def __init__(self, ctx: CaseworkContext) -> None:
        self.ctx = ctx

    async def on_risk_assessed(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        """Open (or feed) the household's case."""
        await self.on_batch(session, [envelope])

    async def on_batch(
        self, session: AsyncSession, envelopes: Sequence[EventEnvelope[Any]]
    ) -> None:
        """Open (or feed) the cases of a fetched batch's assessments, in order."""
        await service.on_risk_assessed_many(
            session,
            self.ctx,
            [service.Assessed(e.payload, e.correlation_id, e.event_id) for e in envelopes],
        )

    def table(self) -> dict[tuple[str, int], Any]:
        """Return the (event_type, version) → handler map for the consumer runner."""
        return {("screening.risk_assessed", 1): self.on_risk_assessed}

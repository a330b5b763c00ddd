"""Casework's consumer of screening.events."""

from __future__ import annotations

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
        await service.on_risk_assessed(
            session,
            self.ctx,
            envelope.payload,
            correlation_id=envelope.correlation_id,
            causation_id=envelope.event_id,
        )

    def table(self) -> dict[tuple[str, int], Any]:
        """Return the (event_type, version) → handler map for the consumer runner."""
        return {("screening.risk_assessed", 1): self.on_risk_assessed}

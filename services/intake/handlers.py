"""Intake's consumer of casework events: keeps each applicant's progress current.

Every change is recorded with its callback delivery (service.record_step) in the consumer's
transaction, so a client's callback URL hears of exactly the changes that were committed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.models import Declaration
from services.intake.repository import DeclarationRepository
from services.intake.service import advance_progress
from shared.clock import Clock
from shared.contracts.casework import (
    CaseIncludedV1,
    CaseOpenedV1,
    RiskEliminatedV1,
    StageChangedV1,
)
from shared.contracts.envelope import EventEnvelope

# Casework's procedure stages, folded into the six the applicant is shown.
APPLICANT_STAGE = {
    "opened": "under_verification",
    "home_verification": "under_verification",
    "department_crosscheck": "under_verification",
    "democratic_appraisal": "under_verification",
    "village_publicity": "in_publicity",
    "township_review": "under_verification",
    "county_approval": "under_verification",
    "not_included": "not_included",
    "monitoring": "included",
    "assistance": "included",
    "risk_elimination": "included",
    "risk_eliminated": "risk_eliminated",
    "exited": "risk_eliminated",
}


class ProgressHandlers:
    """Handlers for casework.events, bound to a clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def _advance(
        self,
        session: AsyncSession,
        declaration: Declaration,
        stage: str,
        *,
        at: Any,
        note: str | None,
    ) -> None:
        await advance_progress(session, declaration, stage, at=at, note=note, now=self.clock.now())

    async def on_case_opened(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        """Link declarations to the case their signal opened and start the countdown."""
        payload: CaseOpenedV1 = envelope.payload
        receipts = [
            s.receipt_no for s in payload.sources if s.kind == "declaration" and s.receipt_no
        ]
        due = next((d.due for d in payload.deadlines if d.kind == "identification"), None)
        for declaration in await DeclarationRepository(session).by_receipts(receipts):
            declaration.case_id = payload.case_id
            declaration.identification_due = due
            await self._advance(
                session, declaration, "under_verification", at=payload.opened_at, note=None
            )

    async def on_stage_changed(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        """Show the applicant the stage their case reached."""
        payload: StageChangedV1 = envelope.payload
        stage = APPLICANT_STAGE.get(payload.to_stage)
        if stage is None:
            return
        note = payload.reason if stage == "not_included" else None
        for declaration in await DeclarationRepository(session).by_case(payload.case_id):
            await self._advance(session, declaration, stage, at=payload.changed_at, note=note)

    async def on_included(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        """Tell the applicant the household is under monitoring."""
        payload: CaseIncludedV1 = envelope.payload
        for declaration in await DeclarationRepository(session).by_case(payload.case_id):
            await self._advance(session, declaration, "included", at=payload.included_at, note=None)

    async def on_risk_eliminated(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        """Tell the applicant the risk was eliminated."""
        payload: RiskEliminatedV1 = envelope.payload
        for declaration in await DeclarationRepository(session).by_case(payload.case_id):
            await self._advance(
                session, declaration, "risk_eliminated", at=payload.eliminated_at, note=None
            )

    def table(self) -> dict[tuple[str, int], Any]:
        """Return the (event_type, version) → handler map for the consumer runner."""
        return {
            ("casework.case_opened", 1): self.on_case_opened,
            ("casework.stage_changed", 1): self.on_stage_changed,
            ("casework.included", 1): self.on_included,
            ("casework.risk_eliminated", 1): self.on_risk_eliminated,
        }

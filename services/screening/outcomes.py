"""Screening's consumer of casework.events: what became of the households it scored.

Casework decides inclusion; screening owns the registry that 表七/1 counts.  When the county
includes a household (`casework.included`), screening labels it with its monitoring
categories and remembers which episode the inclusion closed, so the township report and the
department scorecards come from screening's own tables (no cross-service reads).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.screening.models import Household, Inclusion
from services.screening.report_repository import ReportRepository
from shared.clock import Clock
from shared.contracts.casework import CaseIncludedV1
from shared.contracts.envelope import EventEnvelope

MONITORED = "monitored"
# Categories casework may send, and the household labels the registry uses for them.
CATEGORY_LABELS = {
    "unstable_escaped": "unstable_escaped",
    "marginal": "marginal",
    "sudden_difficulty": "sudden_difficulty",
}


class OutcomeHandlers:
    """Handlers for casework.events."""

    def __init__(self, *, clock: Clock) -> None:
        self.clock = clock

    def table(self) -> dict[tuple[str, int], Any]:
        """Return the (event_type, version) → handler map for the consumer runner."""
        return {("casework.included", 1): self.on_included}

    async def on_included(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        """Label the household with its categories and record the inclusion once."""
        payload: CaseIncludedV1 = envelope.payload
        repo = ReportRepository(session)
        if await repo.inclusion(payload.case_id) is not None:
            return
        household = await self._current(repo, payload)
        episode_id = None
        if household is not None:
            labels = set(household.labels or ())
            labels.add(MONITORED)
            labels.update(CATEGORY_LABELS[c] for c in payload.categories if c in CATEGORY_LABELS)
            # A new list, so the JSON column is seen as changed.
            household.labels = sorted(labels)
            household.updated_at = self.clock.now()
            episode = await repo.open_episode_of(payload.household_id)
            episode_id = episode.id if episode is not None else None
        session.add(
            Inclusion(
                case_id=payload.case_id,
                household_id=payload.household_id,
                episode_id=episode_id,
                categories=list(payload.categories),
                included_at=payload.included_at,
                recorded_at=self.clock.now(),
            )
        )

    async def _current(self, repo: ReportRepository, payload: CaseIncludedV1) -> Household | None:
        # A provisional household may since have been merged into a roster household: the
        # labels belong on the one that absorbed it.
        household = await repo.household(payload.household_id)
        seen = set()
        while household is not None and household.merged_into_id is not None:
            if household.id in seen:
                break
            seen.add(household.id)
            household = await repo.household(household.merged_into_id)
        return household

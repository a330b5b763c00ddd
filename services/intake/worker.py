"""Intake's worker: relays intake.events and keeps applicant progress from casework.events."""

from __future__ import annotations

from services.intake.handlers import ProgressHandlers
from services.intake.models import inbox_table, outbox_table
from shared.clock import Clock
from shared.contracts.topics import Topic
from shared.worker import ConsumerSpec, WorkerSpec


def worker_spec(clock: Clock) -> WorkerSpec:
    """Return what the intake worker runs."""
    return WorkerSpec(
        service="intake",
        outbox=outbox_table,
        inbox=inbox_table,
        consumers=(
            ConsumerSpec(
                group="intake",
                topics=(Topic.CASEWORK_EVENTS,),
                handlers=ProgressHandlers(clock).table(),
            ),
        ),
    )

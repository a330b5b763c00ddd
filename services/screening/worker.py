"""Screening's worker: consumes intake.events, relays screening.events."""

from __future__ import annotations

from services.screening.handlers import ScreeningHandlers
from services.screening.models import inbox_table, outbox_table
from shared.clock import Clock
from shared.contracts.topics import Topic
from shared.messaging.outbox import Outbox
from shared.pii import PiiCipher
from shared.worker import ConsumerSpec, WorkerSpec


def screening_outbox() -> Outbox:
    """Return screening's outbox writer."""
    return Outbox(outbox_table, topic=Topic.SCREENING_EVENTS, producer="screening")


def worker_spec(clock: Clock, cipher: PiiCipher) -> WorkerSpec:
    """Return what the screening worker runs."""
    handlers = ScreeningHandlers(clock=clock, outbox=screening_outbox(), cipher=cipher)
    return WorkerSpec(
        service="screening",
        outbox=outbox_table,
        inbox=inbox_table,
        consumers=(
            ConsumerSpec(
                group="screening", topics=(Topic.INTAKE_EVENTS,), handlers=handlers.table()
            ),
        ),
    )

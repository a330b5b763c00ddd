"""Screening's worker: consumes intake.events and casework.events, relays screening.events."""

from __future__ import annotations

from services.screening.area_watch import AreaWatch
from services.screening.handlers import ScreeningHandlers
from services.screening.models import inbox_table, outbox_table
from services.screening.outcomes import OutcomeHandlers
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
    outbox = screening_outbox()
    # Every stored signal is checked for a same-cause spike in its township, in the same
    # transaction, so an area alert and the signal that tripped it commit together.
    handlers = ScreeningHandlers(
        clock=clock, outbox=outbox, cipher=cipher, area_watch=AreaWatch(clock=clock, outbox=outbox)
    )
    return WorkerSpec(
        service="screening",
        outbox=outbox_table,
        inbox=inbox_table,
        consumers=(
            ConsumerSpec(
                group="screening",
                topics=(Topic.INTAKE_EVENTS,),
                handlers=handlers.table(),
                batch_handler=handlers.on_batch,
            ),
            # What casework decided (inclusion) comes back to label the registry. A group of
            # its own: a backlog of intake signals never delays the labels, and each group
            # keeps its own offsets and dead letters.
            ConsumerSpec(
                group="screening-outcomes",
                topics=(Topic.CASEWORK_EVENTS,),
                handlers=OutcomeHandlers(clock=clock).table(),
            ),
        ),
    )

"""Casework's worker: relays casework.events, consumes screening.events, sweeps deadlines."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.casework.handlers import CaseworkHandlers
from services.casework.models import inbox_table, outbox_table
from services.casework.service import CaseworkContext
from services.casework.settings import CaseworkSettings
from services.casework.sweeper import DeadlineSweeper
from shared.clock import Clock
from shared.contracts.topics import Topic
from shared.messaging.outbox import Outbox
from shared.worker import ConsumerSpec, Loop, WorkerSpec


def casework_outbox() -> Outbox:
    """Return casework's outbox writer."""
    return Outbox(outbox_table, topic=Topic.CASEWORK_EVENTS, producer="casework")


def worker_spec(settings: CaseworkSettings, clock: Clock) -> WorkerSpec:
    """Return what the casework worker runs."""
    ctx = CaseworkContext(outbox=casework_outbox(), clock=clock)

    def sweeper(sessionmaker: async_sessionmaker[AsyncSession]) -> Loop:
        return DeadlineSweeper(
            sessionmaker=sessionmaker,
            ctx=ctx,
            interval_seconds=settings.sweep_interval_seconds,
            batch_size=settings.sweep_batch_size,
        ).run

    handlers = CaseworkHandlers(ctx)
    return WorkerSpec(
        service="casework",
        outbox=outbox_table,
        inbox=inbox_table,
        consumers=(
            ConsumerSpec(
                group="casework",
                topics=(Topic.SCREENING_EVENTS,),
                handlers=handlers.table(),
                batch_handler=handlers.on_batch,
            ),
        ),
        loops=(sweeper,),
    )

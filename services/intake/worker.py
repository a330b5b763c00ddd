"""Intake's worker: relays intake.events, keeps applicant progress, delivers progress callbacks."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.callbacks import CallbackDispatcher
from services.intake.handlers import ProgressHandlers
from services.intake.models import inbox_table, outbox_table
from services.intake.settings import IntakeSettings, load_clients
from shared.auth import ClientRegistry
from shared.clock import Clock
from shared.contracts.topics import Topic
from shared.worker import ConsumerSpec, Loop, WorkerSpec


def worker_spec(
    clock: Clock,
    *,
    settings: IntakeSettings | None = None,
    clients: ClientRegistry | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> WorkerSpec:
    """Return what the intake worker runs (settings default to the environment's)."""

    def callbacks(sessionmaker: async_sessionmaker[AsyncSession]) -> Loop:
        # Built when the worker starts, not when the spec is: the secrets are read then.
        cfg = settings or IntakeSettings()
        return CallbackDispatcher(
            sessionmaker=sessionmaker,
            clients=clients if clients is not None else load_clients(cfg),
            clock=clock,
            settings=cfg,
            transport=transport,
        ).run

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
        loops=(callbacks,),
    )

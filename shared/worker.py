"""A service worker: its outbox relay, its consumers and any periodic loops, in one process."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.backoff import backoff_delay
from shared.clock import Clock
from shared.contracts.topics import dead_letter_topic
from shared.db import create_engine, make_sessionmaker
from shared.messaging.consumer import BatchHandler, ConsumerRunner, Handler
from shared.messaging.kafka import KafkaPublisher, KafkaSource
from shared.messaging.memory import InMemoryBus
from shared.messaging.outbox import OutboxRelay
from shared.messaging.ports import MessagePublisher, MessageSource
from shared.settings import KafkaSettings, ServiceSettings

logger = logging.getLogger(__name__)

Loop = Callable[[asyncio.Event], Awaitable[None]]


class Bus(Protocol):
    """Makes publishers and group readers: Kafka in production, in-process when embedded."""

    def publisher(self) -> MessagePublisher: ...

    def source(self, group: str, topics: Sequence[str]) -> MessageSource: ...


class KafkaBus:
    """Bus on Apache Kafka."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings

    def publisher(self) -> MessagePublisher:
        """Return a new idempotent producer."""
        return KafkaPublisher(self._settings)

    def source(self, group: str, topics: Sequence[str]) -> MessageSource:
        """Return a new manual-commit group member."""
        return KafkaSource(self._settings, group, topics)


def bus_for(settings: ServiceSettings, memory: InMemoryBus | None = None) -> Bus:
    """Return the bus the settings ask for (the in-process one must be shared, so it is passed)."""
    if settings.bus == "kafka":
        return KafkaBus(settings.kafka)
    if memory is None:
        raise RuntimeError("bus=memory needs the process's InMemoryBus (use `fangpin up`)")
    return memory


@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer group of a worker."""

    group: str
    topics: tuple[str, ...]
    handlers: Mapping[tuple[str, int], Handler]
    # Optional: applies a fetched batch's fresh events at once (see ConsumerRunner).
    batch_handler: BatchHandler | None = None


@dataclass(frozen=True)
class WorkerSpec:
    """What a service's worker runs."""

    service: str
    outbox: Table
    inbox: Table
    consumers: tuple[ConsumerSpec, ...] = ()
    loops: tuple[Callable[[async_sessionmaker[AsyncSession]], Loop], ...] = field(default=())


async def _start_with_retry(
    what: str, start: Callable[[], Awaitable[None]], stop: asyncio.Event
) -> bool:
    attempt = 0
    while not stop.is_set():
        attempt += 1
        try:
            await start()
            return True
        except Exception as exc:
            delay = backoff_delay(attempt, initial=0.5, maximum=10.0)
            logger.warning("could not start %s (%s); retrying in %.1fs", what, exc, delay)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                continue
    return False


async def run_worker(
    spec: WorkerSpec,
    *,
    settings: ServiceSettings,
    bus: Bus,
    clock: Clock,
    stop: asyncio.Event,
) -> None:
    """Run relay, consumers and loops until stop is set; each finishes its batch in hand."""
    engine = create_engine(settings.database)
    sessionmaker = make_sessionmaker(engine)
    publisher = bus.publisher()
    sources: list[MessageSource] = []
    try:
        if not await _start_with_retry(f"{spec.service} publisher", publisher.start, stop):
            return
        tasks: list[Awaitable[None]] = []
        relay = OutboxRelay(
            service=spec.service,
            sessionmaker=sessionmaker,
            table=spec.outbox,
            publisher=publisher,
            clock=clock,
            settings=settings.relay,
        )
        tasks.append(relay.run(stop))
        for consumer in spec.consumers:
            source = bus.source(consumer.group, consumer.topics)
            if not await _start_with_retry(f"{consumer.group} consumer", source.start, stop):
                return
            sources.append(source)
            runner = ConsumerRunner(
                group=consumer.group,
                source=source,
                dead_letters=publisher,
                dlq_topic=dead_letter_topic(consumer.group),
                sessionmaker=sessionmaker,
                inbox=spec.inbox,
                handlers=consumer.handlers,
                clock=clock,
                settings=settings.consumer,
                batch_handler=consumer.batch_handler,
            )
            tasks.append(runner.run(stop))
        for make_loop in spec.loops:
            tasks.append(make_loop(sessionmaker)(stop))
        logger.info(
            "%s worker running: relay, %d consumer(s), %d loop(s)",
            spec.service,
            len(spec.consumers),
            len(spec.loops),
        )
        await asyncio.gather(*tasks)
    finally:
        for source in sources:
            await source.stop()
        await publisher.stop()
        await engine.dispose()
        logger.info("%s worker stopped", spec.service)


def install_stop_signals(stop: asyncio.Event) -> None:
    """Set stop on SIGTERM or SIGINT so in-flight work finishes before exit."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

"""ConsumerRunner: decode → [inbox claim + handler in one transaction] → commit offsets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.backoff import backoff_delay
from shared.clock import Clock
from shared.contracts.envelope import EventEnvelope
from shared.contracts.registry import PoisonMessage, UnknownEventType, decode
from shared.db import is_unavailable
from shared.logs import causation_id, correlation_id
from shared.messaging.inbox import claim, claim_many
from shared.messaging.ports import MessagePublisher, MessageSource, OutgoingMessage, ReceivedMessage
from shared.metrics import CONSUMER_LAG, DEAD_LETTERS, EVENTS_PROCESSED
from shared.settings import ConsumerSettings

logger = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, EventEnvelope[Any]], Awaitable[None]]
# Applies the fresh events of a fetched batch at once, in order. It must leave the database
# as the record handlers would one after another: a batch that fails is replayed through them.
BatchHandler = Callable[[AsyncSession, Sequence[EventEnvelope[Any]]], Awaitable[None]]


@contextmanager
def traced(envelope: EventEnvelope[Any]) -> Iterator[None]:
    """Log lines written while an event is applied carry its correlation and causation ids."""
    tokens = (
        correlation_id.set(str(envelope.correlation_id)),
        causation_id.set(str(envelope.event_id)),
    )
    try:
        yield
    finally:
        correlation_id.reset(tokens[0])
        causation_id.reset(tokens[1])


def is_transient(exc: BaseException) -> bool:
    """True for failures that may pass on a retry (races, timeouts)."""
    return isinstance(exc, IntegrityError | TimeoutError | DBAPIError)


class ConsumerRunner:
    """Runs one consumer group: at-least-once delivery made effectively-once by the inbox."""

    def __init__(
        self,
        *,
        group: str,
        source: MessageSource,
        dead_letters: MessagePublisher,
        dlq_topic: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        inbox: Table,
        handlers: Mapping[tuple[str, int], Handler],
        clock: Clock,
        settings: ConsumerSettings,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        self.group = group
        self._source = source
        self._dead_letters = dead_letters
        self._dlq_topic = dlq_topic
        self._sessionmaker = sessionmaker
        self._inbox = inbox
        self._handlers = dict(handlers)
        self._batch_handler = batch_handler
        self._clock = clock
        self._settings = settings
        self._stopping = False

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and process until stop is set; the batch in hand is always finished."""
        while not stop.is_set():
            messages = await self._source.fetch(
                max_records=500, timeout_ms=self._settings.fetch_timeout_ms
            )
            if messages:
                await self.process(messages)
            lag = self._source.lag()
            if lag is not None:
                CONSUMER_LAG.labels(self.group).set(lag)

    async def process(self, messages: Sequence[ReceivedMessage]) -> None:
        """Apply each record in order, then commit their offsets (after the DB commits)."""
        if not (
            self._settings.batch_transaction
            and len(messages) > 1
            and await self._process_batch(messages)
        ):
            for msg in messages:
                await self._process_one(msg)
        await self._source.commit(messages)

    async def _process_batch(self, messages: Sequence[ReceivedMessage]) -> bool:
        """Apply the whole batch in one transaction; False (nothing applied) if anything fails.

        Each record still claims its inbox row before its handler, so a repeat inside the
        batch or from an earlier delivery is skipped exactly as one record at a time. On a
        failure the batch rolls back as a whole and the caller replays it record by record,
        where retries, outage waits and dead-lettering apply to the one record at fault.
        """
        work: list[tuple[ReceivedMessage, EventEnvelope[Any], Handler]] = []
        ignored = 0
        for msg in messages:
            try:
                envelope = decode(msg.value)
            except UnknownEventType:
                ignored += 1
                continue
            except PoisonMessage:
                return False  # the record-by-record path dead-letters it
            handler = self._handlers.get((envelope.event_type, envelope.schema_version))
            if handler is None:
                # Events of the topic this group does not handle are skipped, as one by one.
                ignored += 1
                continue
            work.append((msg, envelope, handler))
        if not work:
            EVENTS_PROCESSED.labels(self.group, "ignored").inc(ignored)
            return True
        outcomes: list[str] = []
        try:
            async with self._sessionmaker() as session, session.begin():
                if self._batch_handler is not None:
                    outcomes = await self._apply_batch(session, work, self._batch_handler)
                else:
                    for msg, envelope, handler in work:
                        outcomes.append(
                            "applied"
                            if await self._apply_traced(session, msg, envelope, handler)
                            else "duplicate"
                        )
        except Exception as exc:
            logger.info(
                "%s: batch of %d failed (%s); replaying one record per transaction",
                self.group,
                len(work),
                type(exc).__name__,
            )
            return False
        for outcome in outcomes:
            EVENTS_PROCESSED.labels(self.group, outcome).inc()
        if ignored:
            EVENTS_PROCESSED.labels(self.group, "ignored").inc(ignored)
        return True

    async def _process_one(self, msg: ReceivedMessage) -> None:
        try:
            envelope = decode(msg.value)
        except UnknownEventType:
            EVENTS_PROCESSED.labels(self.group, "ignored").inc()
            return
        except PoisonMessage as exc:
            await self._dead_letter(msg, exc, attempts=1)
            return
        handler = self._handlers.get((envelope.event_type, envelope.schema_version))
        if handler is None:
            EVENTS_PROCESSED.labels(self.group, "ignored").inc()
            return
        with traced(envelope):
            await self._apply_with_retry(msg, envelope, handler)

    async def _apply_batch(
        self,
        session: AsyncSession,
        work: Sequence[tuple[ReceivedMessage, EventEnvelope[Any], Handler]],
        batch_handler: BatchHandler,
    ) -> list[str]:
        """Claim every event in one statement and hand the fresh ones over at once."""
        fresh = await claim_many(
            session,
            self._inbox,
            consumer=self.group,
            records=[
                (envelope.event_id, msg.topic, msg.partition, msg.offset)
                for msg, envelope, _ in work
            ],
            now=self._clock.now(),
        )
        todo: list[EventEnvelope[Any]] = []
        outcomes: list[str] = []
        for _, envelope, _ in work:
            if envelope.event_id in fresh:
                fresh.discard(envelope.event_id)  # a repeat later in the batch is a duplicate
                todo.append(envelope)
                outcomes.append("applied")
            else:
                outcomes.append("duplicate")
        if todo:
            await batch_handler(session, todo)
        return outcomes

    async def _apply_traced(
        self,
        session: AsyncSession,
        msg: ReceivedMessage,
        envelope: EventEnvelope[Any],
        handler: Handler,
    ) -> bool:
        with traced(envelope):
            return await self._apply(session, msg, envelope, handler)

    async def _apply(
        self,
        session: AsyncSession,
        msg: ReceivedMessage,
        envelope: EventEnvelope[Any],
        handler: Handler,
    ) -> bool:
        """Claim the event in the inbox and run its handler; False when already applied."""
        fresh = await claim(
            session,
            self._inbox,
            consumer=self.group,
            event_id=envelope.event_id,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            now=self._clock.now(),
        )
        if fresh:
            await handler(session, envelope)
        return fresh

    async def _apply_with_retry(
        self, msg: ReceivedMessage, envelope: EventEnvelope[Any], handler: Handler
    ) -> None:
        attempt = 0
        outage = 0
        while True:
            attempt += 1
            try:
                async with self._sessionmaker() as session, session.begin():
                    fresh = await self._apply(session, msg, envelope, handler)
                EVENTS_PROCESSED.labels(self.group, "applied" if fresh else "duplicate").inc()
                return
            except Exception as exc:
                if is_unavailable(exc):
                    # The database is down: block the partition and wait, however long it
                    # takes. Dead-lettering here would punish good messages for an outage.
                    outage += 1
                    attempt -= 1
                    delay = self._delay(outage)
                    logger.warning(
                        "%s: database unavailable (%s); retry in %.1fs",
                        self.group,
                        type(exc).__name__,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                if is_transient(exc) and attempt < self._settings.max_attempts:
                    delay = self._delay(attempt)
                    logger.info(
                        "%s: transient failure on %s (%s); retry %d in %.1fs",
                        self.group,
                        envelope.event_type,
                        type(exc).__name__,
                        attempt,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                logger.exception(
                    "%s: giving up on %s %s", self.group, envelope.event_type, envelope.event_id
                )
                await self._dead_letter(msg, exc, attempts=attempt)
                return

    def _delay(self, attempt: int) -> float:
        return backoff_delay(
            attempt,
            initial=self._settings.initial_backoff_seconds,
            maximum=self._settings.max_backoff_seconds,
        )

    async def _dead_letter(
        self, msg: ReceivedMessage, exc: BaseException, *, attempts: int
    ) -> None:
        headers = (
            *msg.headers,
            ("x-error-type", type(exc).__name__.encode()),
            ("x-error-message", str(exc)[:1000].encode()),
            ("x-original-topic", msg.topic.encode()),
            ("x-original-partition", str(msg.partition).encode()),
            ("x-original-offset", str(msg.offset).encode()),
            ("x-attempts", str(attempts).encode()),
            ("x-failed-at", self._clock.now().isoformat().encode()),
        )
        dead = OutgoingMessage(topic=self._dlq_topic, key=msg.key, value=msg.value, headers=headers)
        failures = 0
        while True:
            try:
                await self._dead_letters.publish_batch([dead])
                break
            except Exception:
                # The offset must not move past a record that reached neither the DB nor the DLQ.
                failures += 1
                delay = self._delay(failures)
                logger.warning("%s: dead-letter publish failed; retry in %.1fs", self.group, delay)
                await asyncio.sleep(delay)
        DEAD_LETTERS.labels(self.group).inc()
        EVENTS_PROCESSED.labels(self.group, "dead_lettered").inc()
        logger.error(
            "%s: dead-lettered %s@%s:%s: %s",
            self.group,
            msg.topic,
            msg.partition,
            msg.offset,
            type(exc).__name__,
        )

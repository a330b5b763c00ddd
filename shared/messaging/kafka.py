"""Apache Kafka adapters (aiokafka): an idempotent producer and a manual-commit consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.messaging.ports import OutgoingMessage, ReceivedMessage
from shared.settings import KafkaSettings


class KafkaPublisher:
    """MessagePublisher on Kafka: acks=all, idempotent, waits for every acknowledgement."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        make_producer: Callable[[KafkaSettings], AIOKafkaProducer] | None = None,
    ) -> None:
        self._settings = settings
        self._make_producer = make_producer or _idempotent_producer
        self._producer: AIOKafkaProducer | None = None
        self._started = False
        self._stale = False

    async def start(self) -> None:
        """Connect to the cluster."""
        producer = self._make_producer(self._settings)
        await producer.start()
        self._producer = producer
        self._started = True
        self._stale = False

    async def stop(self) -> None:
        """Flush and disconnect."""
        self._started = False
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def _ready(self) -> AIOKafkaProducer:
        if not self._started:
            raise RuntimeError("KafkaPublisher used before start()")
        if self._stale or self._producer is None:
            old, self._producer = self._producer, None
            if old is not None:
                # Its unsent batches are abandoned on purpose: the caller resends them all.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(old.stop(), timeout=STALE_STOP_SECONDS)
            producer = self._make_producer(self._settings)
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
            self._stale = False
        return self._producer

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send all records, then wait until the broker has acknowledged every one."""
        producer = await self._ready()
        ns = self._settings.namespace
        try:
            futures = [
                await producer.send(
                    ns + msg.topic, value=msg.value, key=msg.key, headers=list(msg.headers)
                )
                for msg in messages
            ]
            # A failure of any record fails the batch: the outbox keeps every row of it and
            # the relay sends them again; consumers drop the repeats through their inbox.
            await asyncio.gather(*futures)
        except BaseException:
            # After a failed batch the idempotent producer's sequence numbers may no longer
            # match the broker's: after a broker restart every later send failed with
            # OutOfOrderSequenceNumber until the process was restarted (the fault suite found
            # it). The next batch therefore goes out on a new producer id.
            self._stale = True
            raise


STALE_STOP_SECONDS = 10.0


def _idempotent_producer(settings: KafkaSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=settings.client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.linger_ms,
        request_timeout_ms=settings.request_timeout_ms,
    )


class KafkaSource:
    """MessageSource on Kafka: a group member that commits offsets only when told."""

    def __init__(self, settings: KafkaSettings, group: str, topics: Sequence[str]) -> None:
        self._settings = settings
        self._group = group
        self._topics = list(topics)
        self._consumer: AIOKafkaConsumer | None = None
        self._next: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        """Join the group."""
        ns = self._settings.namespace
        self._consumer = AIOKafkaConsumer(
            *(ns + t for t in self._topics),
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=self._settings.client_id,
            group_id=ns + self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self._settings.session_timeout_ms,
            max_poll_records=self._settings.max_poll_records,
            request_timeout_ms=self._settings.request_timeout_ms,
        )
        await self._consumer.start()

    async def stop(self) -> None:
        """Leave the group."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def fetch(self, *, max_records: int, timeout_ms: int) -> list[ReceivedMessage]:
        """Return the next records in partition order, up to max_records."""
        if self._consumer is None:
            raise RuntimeError("KafkaSource used before start()")
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        out: list[ReceivedMessage] = []
        for tp, records in batches.items():
            if records:
                self._next[tp] = records[-1].offset + 1
            for rec in records:
                out.append(
                    ReceivedMessage(
                        topic=tp.topic.removeprefix(self._settings.namespace),
                        partition=tp.partition,
                        offset=rec.offset,
                        key=rec.key,
                        value=rec.value,
                        headers=tuple((k, v) for k, v in (rec.headers or ())),
                    )
                )
        return out

    async def commit(self, messages: Sequence[ReceivedMessage]) -> None:
        """Commit the position after the highest offset of each partition given."""
        if self._consumer is None or not messages:
            return
        offsets: dict[TopicPartition, int] = {}
        for msg in messages:
            tp = TopicPartition(self._settings.namespace + msg.topic, msg.partition)
            offsets[tp] = max(offsets.get(tp, 0), msg.offset + 1)
        await self._consumer.commit(offsets)

    def lag(self) -> int | None:
        """Return the records between what was last fetched and the high watermark."""
        if self._consumer is None:
            return None
        total = 0
        for tp, next_offset in self._next.items():
            high = self._consumer.highwater(tp)
            if high is not None:
                total += max(0, high - next_offset)
        return total

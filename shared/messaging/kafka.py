"""Apache Kafka adapters (aiokafka): an idempotent producer and a manual-commit consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.messaging.ports import OutgoingMessage, ReceivedMessage
from shared.settings import KafkaSettings


class KafkaPublisher:
    """MessagePublisher on Kafka: acks=all, idempotent, waits for every acknowledgement."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect to the cluster."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=self._settings.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._settings.linger_ms,
            request_timeout_ms=self._settings.request_timeout_ms,
        )
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and disconnect."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send all records, then wait until the broker has acknowledged every one."""
        if self._producer is None:
            raise RuntimeError("KafkaPublisher used before start()")
        ns = self._settings.namespace
        futures = [
            await self._producer.send(
                ns + msg.topic, value=msg.value, key=msg.key, headers=list(msg.headers)
            )
            for msg in messages
        ]
        # A failure of any record fails the batch: the outbox keeps every row of it and
        # the relay sends them again; consumers drop the repeats through their inbox.
        await asyncio.gather(*futures)


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

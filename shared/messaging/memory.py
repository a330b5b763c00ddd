"""The in-process bus of the embedded default: Kafka's semantics, without a broker."""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections import defaultdict
from collections.abc import Sequence

from shared.messaging.ports import OutgoingMessage, ReceivedMessage


class InMemoryBus:
    """Partitioned append-only logs with per-group committed offsets.

    It behaves like Kafka where the services can tell: records are keyed into partitions,
    order holds per partition, a group resumes from its last commit (so a restarted consumer
    sees uncommitted records again), and several groups read the same topic independently.
    """

    def __init__(self, partitions: int = 3) -> None:
        self.partitions = partitions
        self._logs: dict[tuple[str, int], list[ReceivedMessage]] = defaultdict(list)
        self._committed: dict[tuple[str, str, int], int] = defaultdict(int)
        self._changed = asyncio.Condition()

    def _partition_for(self, key: bytes | None, topic: str) -> int:
        if key is None:
            return len(self._logs[(topic, 0)]) % self.partitions
        return zlib.crc32(key) % self.partitions

    async def append(self, messages: Sequence[OutgoingMessage]) -> None:
        """Append records to their topics and wake any waiting reader."""
        async with self._changed:
            for msg in messages:
                part = self._partition_for(msg.key, msg.topic)
                log = self._logs[(msg.topic, part)]
                log.append(
                    ReceivedMessage(
                        topic=msg.topic,
                        partition=part,
                        offset=len(log),
                        key=msg.key,
                        value=msg.value,
                        headers=msg.headers,
                    )
                )
            self._changed.notify_all()

    def records(self, topic: str) -> list[ReceivedMessage]:
        """Return every record of a topic, partition by partition (for tests and DLQ tools)."""
        out: list[ReceivedMessage] = []
        for part in range(self.partitions):
            out.extend(self._logs.get((topic, part), []))
        return out

    def committed(self, group: str, topic: str, partition: int) -> int:
        """Return a group's committed position in a partition."""
        return self._committed[(group, topic, partition)]

    def _commit(self, group: str, message: ReceivedMessage) -> None:
        key = (group, message.topic, message.partition)
        self._committed[key] = max(self._committed[key], message.offset + 1)

    def publisher(self) -> InMemoryPublisher:
        """Return a publisher bound to this bus."""
        return InMemoryPublisher(self)

    def source(self, group: str, topics: Sequence[str]) -> InMemorySource:
        """Return a reader for a consumer group over some topics."""
        return InMemorySource(self, group, topics)


class InMemoryPublisher:
    """MessagePublisher over an InMemoryBus."""

    def __init__(self, bus: InMemoryBus) -> None:
        self._bus = bus

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Append the records; they are acknowledged at once."""
        await self._bus.append(messages)


class InMemorySource:
    """MessageSource over an InMemoryBus for one group."""

    def __init__(self, bus: InMemoryBus, group: str, topics: Sequence[str]) -> None:
        self._bus = bus
        self._group = group
        self._topics = list(topics)
        # Fetch position, ahead of the committed one, as in Kafka.
        self._position: dict[tuple[str, int], int] = {}

    async def start(self) -> None:
        """Resume every partition from the group's committed offset."""
        self._position = {
            (t, p): self._bus.committed(self._group, t, p)
            for t in self._topics
            for p in range(self._bus.partitions)
        }

    async def stop(self) -> None:
        """Forget the fetch position; committed offsets stay on the bus."""
        self._position = {}

    def _available(self, max_records: int) -> list[ReceivedMessage]:
        out: list[ReceivedMessage] = []
        for (topic, part), pos in self._position.items():
            log = self._bus._logs.get((topic, part), [])
            take = log[pos : pos + max_records - len(out)]
            if take:
                out.extend(take)
                self._position[(topic, part)] = pos + len(take)
            if len(out) >= max_records:
                break
        return out

    async def fetch(self, *, max_records: int, timeout_ms: int) -> list[ReceivedMessage]:
        """Return up to max_records new records, waiting up to timeout_ms for some."""
        # Check and wait under the bus's lock so an append between the two cannot be missed.
        async with self._bus._changed:
            got = self._available(max_records)
            if got:
                return got
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._bus._changed.wait(), timeout_ms / 1000)
            return self._available(max_records)

    async def commit(self, messages: Sequence[ReceivedMessage]) -> None:
        """Record that these records are done for this group."""
        for msg in messages:
            self._bus._commit(self._group, msg)

    def seek_to_committed(self) -> None:
        """Rewind to the committed offsets, as a rebalance would."""
        for topic, part in self._position:
            self._position[(topic, part)] = self._bus.committed(self._group, topic, part)

    def lag(self) -> int | None:
        """Return how many records the group has not committed yet."""
        total = 0
        for topic, part in self._position:
            total += len(self._bus._logs.get((topic, part), [])) - self._bus.committed(
                self._group, topic, part
            )
        return total

"""Dead letters: list what a consumer group gave up on, and replay it once the cause is fixed.

`fangpin dlq list <group|topic>` reads `<group>.dlq` from the beginning and prints one line
per record: offset, event id and type, the error the consumer recorded and where the record
came from. Resident ID numbers in error messages are masked; payloads are never printed.

`fangpin dlq replay <group>` republishes every record after the replay position to the topic
named in its `x-original-topic` header (same key, value and event headers, plus
`x-replayed-from`), waits for the broker's acknowledgement, and only then commits the
position of the consumer group `<group>.dlq.replay` on the dead-letter topic. A second replay
therefore republishes nothing; if the tool dies between publishing and committing, the next
replay sends those records again and the consumer's inbox drops the repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.contracts.topics import dead_letter_topic
from shared.logs import mask_resident_ids
from shared.messaging.kafka import KafkaPublisher
from shared.messaging.ports import OutgoingMessage
from shared.settings import KafkaSettings

# Headers the consumer runner adds when it dead-letters a record; not carried on replay.
ERROR_HEADERS = frozenset(
    {
        "x-error-type",
        "x-error-message",
        "x-original-topic",
        "x-original-partition",
        "x-original-offset",
        "x-attempts",
        "x-failed-at",
        "x-replayed-from",
    }
)


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        """Return a header as text, or None."""
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    def summary(self, *, replayed: bool) -> dict[str, str | int | bool | None]:
        """Return what an operator may see: positions, ids and the error, no personal data."""
        message = self.header("x-error-message")
        return {
            "offset": self.offset,
            "partition": self.partition,
            "event_id": self.header("event_id"),
            "event_type": self.header("event_type"),
            "schema_version": self.header("schema_version"),
            "error_type": self.header("x-error-type"),
            "error": mask_resident_ids(message)[:300] if message else None,
            "original": (
                f"{self.header('x-original-topic')}:{self.header('x-original-partition')}"
                f"@{self.header('x-original-offset')}"
            ),
            "attempts": self.header("x-attempts"),
            "failed_at": self.header("x-failed-at"),
            "replayed": replayed,
        }

    def replay_message(self) -> OutgoingMessage | None:
        """Return the record as it goes back to its original topic (None without one)."""
        original = self.header("x-original-topic")
        if not original:
            return None
        headers = tuple((k, v) for k, v in self.headers if k not in ERROR_HEADERS)
        origin = f"{self.topic}:{self.partition}@{self.offset}".encode()
        return OutgoingMessage(
            topic=original,
            key=self.key,
            value=self.value,
            headers=(*headers, ("x-replayed-from", origin)),
        )


async def partitions_of(settings: KafkaSettings, topic: str) -> list[int]:
    """Return the partition numbers of a topic (empty when it does not exist)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id}-dlq",
        request_timeout_ms=settings.request_timeout_ms,
    )
    await admin.start()
    try:
        (meta,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if meta["error_code"]:
        return []
    return sorted(int(p["partition"]) for p in meta["partitions"])


def dlq_topic_of(name: str) -> str:
    """Accept a consumer group (`screening`) or its dead-letter topic (`screening.dlq`)."""
    return name if name.endswith(".dlq") else dead_letter_topic(name)


def replay_group_of(topic: str) -> str:
    """Return the consumer group whose committed offset marks what was replayed."""
    return f"{topic}.replay"


class DeadLetterTopic:
    """Reads a dead-letter topic with the replay group's offsets (never joins the group)."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []

    async def __aenter__(self) -> DeadLetterTopic:
        ns = self.settings.namespace
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            client_id=f"{self.settings.client_id}-dlq",
            group_id=ns + replay_group_of(self.topic),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=self.settings.request_timeout_ms,
        )
        parts = await partitions_of(self.settings, ns + self.topic)
        if not parts:
            raise SystemExit(f"no topic {ns + self.topic} on {self.settings.bootstrap_servers}")
        await consumer.start()
        self._consumer = consumer
        self._partitions = [TopicPartition(ns + self.topic, p) for p in parts]
        consumer.assign(self._partitions)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """Return the started consumer."""
        assert self._consumer is not None
        return self._consumer

    async def replayed_up_to(self) -> dict[TopicPartition, int]:
        """Return, per partition, the first offset not yet replayed (0 when never)."""
        out = {}
        for tp in self._partitions:
            out[tp] = await self.consumer.committed(tp) or 0
        return out

    async def read(self, start: dict[TopicPartition, int]) -> list[DeadLetter]:
        """Return the records from `start` up to the end as of now, in partition order."""
        consumer = self.consumer
        end = await consumer.end_offsets(self._partitions)
        first = await consumer.beginning_offsets(self._partitions)
        wanted = {}
        for tp in self._partitions:
            begin = max(start.get(tp, 0), first[tp])
            if begin < end[tp]:
                consumer.seek(tp, begin)
                wanted[tp] = end[tp]
        records: list[DeadLetter] = []
        deadline = time.monotonic() + 60
        while wanted:
            if time.monotonic() > deadline:
                raise SystemExit(f"could not read {self.topic} to its end in 60 s")
            batches = await consumer.getmany(*wanted, timeout_ms=1000)
            for tp, recs in batches.items():
                for rec in recs:
                    if rec.offset < wanted.get(tp, -1):
                        records.append(
                            DeadLetter(
                                topic=self.topic,
                                partition=tp.partition,
                                offset=rec.offset,
                                key=rec.key,
                                value=rec.value,
                                headers=tuple((k, v) for k, v in (rec.headers or ())),
                            )
                        )
            for tp in list(wanted):
                if await consumer.position(tp) >= wanted[tp]:
                    del wanted[tp]
        records.sort(key=lambda r: (r.partition, r.offset))
        return records

    async def mark_replayed(self, records: Sequence[DeadLetter]) -> None:
        """Commit the replay position past the given records."""
        offsets: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(self.settings.namespace + self.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        if offsets:
            await self.consumer.commit(offsets)


async def list_dead_letters(
    settings: KafkaSettings, name: str
) -> list[dict[str, str | int | bool | None]]:
    """Return the summaries of every record on a dead-letter topic."""
    topic = dlq_topic_of(name)
    async with DeadLetterTopic(settings, topic) as dlq:
        done = await dlq.replayed_up_to()
        records = await dlq.read({})
    return [
        r.summary(replayed=r.offset < done.get(_tp(settings, topic, r.partition), 0))
        for r in records
    ]


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did."""

    republished: int
    skipped: int


async def republish(settings: KafkaSettings, records: list[DeadLetter]) -> int:
    """Send dead letters back to their original topics; return how many were sent.

    Returns once the broker acknowledged every one; records without an original topic
    header are left out.
    """
    messages = [m for m in (r.replay_message() for r in records) if m is not None]
    publisher = KafkaPublisher(settings)
    await publisher.start()
    try:
        await publisher.publish_batch(messages)
    finally:
        await publisher.stop()
    return len(messages)


async def replay_dead_letters(settings: KafkaSettings, name: str) -> ReplayResult:
    """Republish what was not replayed yet, then commit the replay position."""
    topic = dlq_topic_of(name)
    async with DeadLetterTopic(settings, topic) as dlq:
        records = await dlq.read(await dlq.replayed_up_to())
        if not records:
            return ReplayResult(0, 0)
        # republish returns only once the broker acknowledged every record; the position
        # moves after that, never before.
        republished = await republish(settings, records)
        await dlq.mark_replayed(records)
    return ReplayResult(republished=republished, skipped=len(records) - republished)


def _tp(settings: KafkaSettings, topic: str, partition: int) -> TopicPartition:
    return TopicPartition(settings.namespace + topic, partition)


def kafka_settings_for(group: str) -> KafkaSettings:
    """Return the Kafka settings of the service that owns a consumer group (its environment)."""
    from deploy.cli import settings_for
    from deploy.migrate import SERVICES

    service = group.removesuffix(".dlq").split("-")[0]
    if service not in SERVICES:
        raise SystemExit(f"unknown consumer group {group!r} (groups start with {SERVICES})")
    return settings_for(service).kafka


def main(args: argparse.Namespace) -> int:
    """Run `fangpin dlq list|replay`."""
    settings = kafka_settings_for(args.group)
    updates: dict[str, str] = {}
    if args.bootstrap_servers:
        updates["bootstrap_servers"] = args.bootstrap_servers
    if args.namespace is not None:
        updates["namespace"] = args.namespace
    settings = settings.model_copy(update=updates)
    if args.dlq_command == "list":
        rows = asyncio.run(list_dead_letters(settings, args.group))
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return 0
        for row in rows:
            print(
                f"{row['partition']}@{row['offset']}  {row['event_type'] or '-'}"
                f" v{row['schema_version'] or '-'}  {row['event_id'] or '-'}  from {row['original']}"
                f"  {'replayed' if row['replayed'] else 'waiting'}\n"
                f"    {row['error_type']}: {row['error']}"
            )
        waiting = sum(1 for r in rows if not r["replayed"])
        print(f"{len(rows)} dead letter(s) on {dlq_topic_of(args.group)}, {waiting} not replayed")
        return 0
    result = asyncio.run(replay_dead_letters(settings, args.group))
    print(
        f"republished {result.republished} dead letter(s) from {dlq_topic_of(args.group)}"
        + (f"; {result.skipped} without x-original-topic skipped" if result.skipped else "")
    )
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `dlq` subcommands to the `fangpin` parser."""
    sub = parser.add_subparsers(dest="dlq_command", required=True)
    for command, helptext in (
        ("list", "print the dead letters of a group (or a .dlq topic)"),
        ("replay", "republish not-yet-replayed dead letters to their original topics"),
    ):
        p = sub.add_parser(command, help=helptext)
        p.add_argument("group", help="consumer group (screening) or dead-letter topic")
        p.add_argument(
            "--bootstrap-servers", default=None, help="default: <SERVICE>_KAFKA__BOOTSTRAP_SERVERS"
        )
        p.add_argument("--namespace", default=None, help="default: <SERVICE>_KAFKA__NAMESPACE")
        if command == "list":
            p.add_argument("--json", action="store_true", help="one JSON array")

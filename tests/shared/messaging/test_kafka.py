"""KafkaPublisher: a failed batch retires the idempotent producer; the next batch gets a new one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from shared.messaging.kafka import KafkaPublisher
from shared.messaging.ports import OutgoingMessage
from shared.settings import KafkaSettings

RECORD = OutgoingMessage(topic="intake.events", key=b"k", value=b"{}")


class FakeProducer:
    """Stands in for AIOKafkaProducer: acknowledges, or fails every send as told."""

    def __init__(self, fail: BaseException | None) -> None:
        self.fail = fail
        self.started = False
        self.stopped = False
        self.sent: list[tuple[str, bytes]] = []

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, *, value: bytes, key: bytes | None, headers: Any) -> Any:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail is not None:
            future.set_exception(self.fail)
        else:
            self.sent.append((topic, value))
            future.set_result(None)
        return future


class TestPublishBatch:
    async def test_after_a_failed_batch_the_next_goes_out_on_a_new_producer(self) -> None:
        # What a broker restart did to the relays: every send on the old producer id failed.
        made: list[FakeProducer] = []
        failures: list[BaseException | None] = [OutOfOrderSequenceNumber(), None]

        def make(_settings: KafkaSettings) -> Any:
            made.append(FakeProducer(failures.pop(0)))
            return made[-1]

        publisher = KafkaPublisher(KafkaSettings(namespace="ns."), make_producer=make)
        await publisher.start()
        with pytest.raises(OutOfOrderSequenceNumber):
            await publisher.publish_batch([RECORD])
        await publisher.publish_batch([RECORD])
        assert len(made) == 2
        assert made[0].stopped
        assert made[1].sent == [("ns.intake.events", b"{}")]
        await publisher.stop()
        assert made[1].stopped

    async def test_a_good_batch_keeps_the_producer(self) -> None:
        made: list[FakeProducer] = []

        def make(_settings: KafkaSettings) -> Any:
            made.append(FakeProducer(None))
            return made[-1]

        publisher = KafkaPublisher(KafkaSettings(), make_producer=make)
        await publisher.start()
        await publisher.publish_batch([RECORD])
        await publisher.publish_batch([RECORD, RECORD])
        assert len(made) == 1
        assert len(made[0].sent) == 3

    async def test_a_producer_that_cannot_connect_is_closed_and_the_error_raised(self) -> None:
        made: list[Any] = []

        class Unreachable(FakeProducer):
            async def start(self) -> None:
                raise ConnectionError("broker down")

        def make(_settings: KafkaSettings) -> Any:
            made.append(FakeProducer(OutOfOrderSequenceNumber()) if not made else Unreachable(None))
            return made[-1]

        publisher = KafkaPublisher(KafkaSettings(), make_producer=make)
        await publisher.start()
        with pytest.raises(OutOfOrderSequenceNumber):
            await publisher.publish_batch([RECORD])
        with pytest.raises(ConnectionError):
            await publisher.publish_batch([RECORD])
        assert made[1].stopped

    async def test_use_before_start_is_refused(self) -> None:
        with pytest.raises(RuntimeError):
            await KafkaPublisher(KafkaSettings()).publish_batch([RECORD])

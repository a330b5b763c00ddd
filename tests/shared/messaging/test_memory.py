"""The in-process bus keeps Kafka's promises that the services rely on."""

from __future__ import annotations

from shared.messaging.memory import InMemoryBus
from shared.messaging.ports import OutgoingMessage


def _msg(key: str, n: int) -> OutgoingMessage:
    return OutgoingMessage(topic="t", key=key.encode(), value=str(n).encode())


class TestInMemoryBus:
    async def test_order_holds_per_key(self) -> None:
        bus = InMemoryBus(partitions=3)
        await bus.publisher().publish_batch([_msg("a", n) for n in range(20)])
        source = bus.source("g", ["t"])
        await source.start()
        got = await source.fetch(max_records=100, timeout_ms=0)
        assert [int(m.value) for m in got] == list(range(20))

    async def test_a_restarted_reader_resumes_from_the_last_commit(self) -> None:
        bus = InMemoryBus()
        await bus.publisher().publish_batch([_msg(str(n), n) for n in range(10)])
        first = bus.source("g", ["t"])
        await first.start()
        batch = await first.fetch(max_records=100, timeout_ms=0)
        await first.commit(batch[:4])
        # Crash: nothing after the commit is remembered.
        second = bus.source("g", ["t"])
        await second.start()
        again = await second.fetch(max_records=100, timeout_ms=0)
        committed = {(m.partition, m.offset) for m in batch[:4]}
        assert {(m.partition, m.offset) for m in again} == {
            (m.partition, m.offset) for m in batch
        } - {
            (m.partition, m.offset)
            for m in batch
            if any(m.partition == p and m.offset <= o for p, o in committed)
        }

    async def test_groups_read_independently(self) -> None:
        bus = InMemoryBus()
        await bus.publisher().publish_batch([_msg("k", 1)])
        a, b = bus.source("a", ["t"]), bus.source("b", ["t"])
        await a.start()
        await b.start()
        assert len(await a.fetch(max_records=10, timeout_ms=0)) == 1
        assert len(await b.fetch(max_records=10, timeout_ms=0)) == 1
        assert a.lag() == 1

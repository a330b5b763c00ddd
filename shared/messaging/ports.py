"""What the services need from a message bus, independent of Kafka or the in-process bus."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    """A record to publish."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class ReceivedMessage:
    """A record read from a topic, with its position."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default=())

    def header(self, name: str) -> str | None:
        """Return a header as text, or None."""
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None


class MessagePublisher(Protocol):
    """Publishes records; publish_batch returns only when every record is acknowledged."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None: ...


class MessageSource(Protocol):
    """Reads records for one consumer group; positions advance only on commit."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def fetch(self, *, max_records: int, timeout_ms: int) -> list[ReceivedMessage]: ...

    async def commit(self, messages: Sequence[ReceivedMessage]) -> None: ...

    def lag(self) -> int | None: ...

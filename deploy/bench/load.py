"""HTTP load on raw keep-alive sockets: closed loop for saturation, open loop for latency.

A plain asyncio client costs a fraction of httpx per request, so on two cores the load
generator takes less of the CPU the server needs. Open-loop latency is measured from each
request's *scheduled* send time, so a stalled server is charged for the requests that
queued behind the stall (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# uvicorn closes a keep-alive connection idle for 5 s; one idle longer is not reused, or the
# request sent on it would fail through no fault of the server.
MAX_IDLE_SECONDS = 4.0


@dataclass
class LoadResult:
    """What a load run saw."""

    sent: int = 0
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # exception name → count

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    def fail(self, exc: BaseException) -> None:
        """Count a request that got no answer."""
        self.errors += 1
        name = type(exc).__name__
        self.failures[name] = self.failures.get(name, 0) + 1

    def summary(self) -> dict[str, Any]:
        """Rate, counts, answers by status, failures and latency percentiles."""
        return {
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": dict(self.failures),
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            **percentiles(self.latencies_ms),
        }


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max (nearest rank), rounded to 0.1."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50": round(rank(0.50), 1),
        "p95": round(rank(0.95), 1),
        "p99": round(rank(0.99), 1),
        "max": round(ordered[-1], 1),
    }


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        """Connect to 127.0.0.1:port."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send one whole request; return the status and the body."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        """Close the socket."""
        self.writer.close()


def _record(result: LoadResult, status: int, started: float) -> None:
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if status < 400:
        result.ok += 1
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
    else:
        result.errors += 1


async def closed_loop(
    port: int, make: Callable[[int], bytes], *, concurrency: int, seconds: float
) -> LoadResult:
    """`concurrency` connections each sending back to back for `seconds`: the saturation rate."""
    result = LoadResult()
    counter = iter(range(1 << 62))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        conn = await Connection.open(port)
        try:
            while time.perf_counter() < deadline:
                request = make(next(counter))
                started = time.perf_counter()
                result.sent += 1
                try:
                    status, _ = await conn.send(request)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    result.fail(exc)
                    conn.close()
                    conn = await Connection.open(port)
                    continue
                _record(result, status, started)
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


async def open_loop(
    port: int,
    make: Callable[[int], bytes],
    *,
    rate: float,
    seconds: float,
    max_connections: int = 256,
) -> LoadResult:
    """Send at a fixed rate whatever the server does; latency from the scheduled send time."""
    result = LoadResult()
    idle: list[tuple[Connection, float]] = []
    opened = 0
    slots = asyncio.Semaphore(max_connections)
    total = int(rate * seconds)
    requests = [make(i) for i in range(total)]  # built before the clock starts
    tasks: list[asyncio.Task[None]] = []
    t0 = time.perf_counter() + 0.05

    async def one(request: bytes, scheduled: float) -> None:
        nonlocal opened
        async with slots:
            conn = None
            while idle:
                candidate, last_used = idle.pop()
                if time.perf_counter() - last_used < MAX_IDLE_SECONDS:
                    conn = candidate
                    break
                candidate.close()
            if conn is None:
                opened += 1
                conn = await Connection.open(port)
            try:
                status, _ = await conn.send(request)
            except (OSError, asyncio.IncompleteReadError) as exc:
                result.fail(exc)
                conn.close()
                return
            _record(result, status, scheduled)
            idle.append((conn, time.perf_counter()))

    for i, request in enumerate(requests):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        result.sent += 1
        tasks.append(asyncio.create_task(one(request, scheduled)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - t0
    for conn, _ in idle:
        conn.close()
    return result

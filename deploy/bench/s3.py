"""S3 — interactive intake: signed self-declarations against the real intake API.

Saturation is found closed loop (32 keep-alive connections); then open-loop load at 50 % and
80 % of it, latency from each request's scheduled send time.
Goal: saturation ≥ 60 % of the no-op endpoint; p99 ≤ 50 ms at 50 %, ≤ 200 ms at 80 %.
"""

from __future__ import annotations

from typing import Any

from deploy.bench import limits, load
from deploy.bench.stack import Servers, Stack


async def run_once(servers: Servers, var: Any, *, seconds: float, tag: str) -> dict[str, Any]:
    """Saturation, then the two open-loop steps, on a fresh intake."""
    async with Stack(servers, var, name=f"s3{tag}") as stack:
        stack.start_worker("intake")  # the relay runs beside the API, as in production
        await stack.start_api("intake")
        port = stack.api_port
        await load.closed_loop(
            port, limits.declaration_requests(stack, offset=0), concurrency=8, seconds=1.0
        )
        saturation = await load.closed_loop(
            port,
            limits.declaration_requests(stack, offset=1_000_000),
            concurrency=32,
            seconds=seconds,
        )
        steps = {}
        for share, offset in ((0.5, 2_000_000), (0.8, 3_000_000)):
            rate = max(1.0, saturation.rate * share)
            result = await load.open_loop(
                port, limits.declaration_requests(stack, offset=offset), rate=rate, seconds=seconds
            )
            steps[f"at_{int(share * 100)}"] = {"offered_rate": round(rate, 1), **result.summary()}
        stored = int(await stack.scalar("intake", "SELECT count(*) FROM declaration"))
    return {
        "saturation": saturation.summary(),
        **steps,
        "stored_declarations": stored,
        "errors": saturation.errors + sum(int(s["errors"]) for s in steps.values()),
    }

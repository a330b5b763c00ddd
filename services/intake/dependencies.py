"""FastAPI dependencies of intake: state, signed clients (whole or streamed bodies), caseworkers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated

from fastapi import Depends, Request

from services.intake.bulk import BulkJobs
from services.intake.service import IntakeContext
from services.intake.settings import IntakeSettings
from shared.auth import (
    SIGNATURE_WINDOW_SECONDS,
    ClientRecord,
    ClientRegistry,
    RateLimiter,
    ReplayGuard,
    now_seconds,
    require_kind,
    string_to_sign,
    verify_client_request,
)
from shared.db import UnitOfWork
from shared.problems import TooManyRequests, Unauthorized

# Spooled uploads are written in blocks this large: few thread hops, bounded memory.
_SPOOL_BLOCK = 1 << 20


@dataclass
class IntakeState:
    """Everything the routes share, built in the lifespan."""

    uow: UnitOfWork
    ctx: IntakeContext
    clients: ClientRegistry
    replay: ReplayGuard
    limiter: RateLimiter
    jwt_secret: str
    settings: IntakeSettings
    bulk: BulkJobs


async def get_state(request: Request) -> IntakeState:
    """Return the app's state."""
    # async although it awaits nothing: FastAPI runs a plain `def` dependency in its thread
    # pool, a thread hop per request for one attribute read.
    state: IntakeState = request.app.state.intake
    return state


StateDep = Annotated[IntakeState, Depends(get_state)]


def _path_with_query(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


async def signed_client(request: Request, state: StateDep) -> ClientRecord:
    """Authenticate an HMAC-signed machine client (contract.md)."""
    body = await request.body()
    return verify_client_request(
        registry=state.clients,
        replay=state.replay,
        limiter=state.limiter,
        method=request.method,
        path_with_query=_path_with_query(request),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        now=now_seconds(),
    )


async def miniprogram_client(
    client: Annotated[ClientRecord, Depends(signed_client)],
) -> ClientRecord:
    """Only the mini-program backend files and reads declarations."""
    require_kind(client, "miniprogram")
    return client


async def department_client(
    client: Annotated[ClientRecord, Depends(signed_client)],
) -> ClientRecord:
    """Only department systems push alerts."""
    require_kind(client, "department")
    return client


MiniProgram = Annotated[ClientRecord, Depends(miniprogram_client)]
DepartmentClient = Annotated[ClientRecord, Depends(department_client)]


@dataclass(frozen=True)
class SignedHeaders:
    """The signature headers of a request whose body has not been read yet."""

    client: ClientRecord
    timestamp: str
    signature: str


def read_signed_headers(
    registry: ClientRegistry, headers: dict[str, str], now: float
) -> SignedHeaders:
    """Check what can be checked before the body: headers present, client known, time fresh.

    Same rules and wording as shared.auth.verify_client_request, split in two so that a bulk
    upload is refused before hundreds of megabytes are read when its headers are wrong.
    """
    client_id = headers.get("x-client-id", "")
    timestamp = headers.get("x-timestamp", "")
    signature = headers.get("x-signature", "")
    if not client_id or not timestamp or not signature:
        raise Unauthorized(
            "X-Client-Id, X-Timestamp and X-Signature headers are required",
            detail_zh="缺少签名请求头 X-Client-Id、X-Timestamp、X-Signature",
        )
    client = registry.get(client_id)
    if client is None:
        raise Unauthorized("unknown client", detail_zh="未知的调用方")
    try:
        ts = int(timestamp)
    except ValueError:
        raise Unauthorized(
            "X-Timestamp must be unix seconds", detail_zh="X-Timestamp 应为秒级时间戳"
        ) from None
    if abs(now - ts) > SIGNATURE_WINDOW_SECONDS:
        raise Unauthorized(
            "the request timestamp is more than 300 s from server time",
            detail_zh="请求时间戳与服务器时间相差超过 300 秒",
        )
    return SignedHeaders(client, timestamp, signature.lower())


def check_signature(
    state: IntakeState,
    signed: SignedHeaders,
    *,
    method: str,
    path_with_query: str,
    body_sha256: str,
    now: float,
) -> ClientRecord:
    """Check the HMAC over the body's digest, then refuse replays and enforce the rate limit."""
    message = string_to_sign(method, path_with_query, signed.timestamp, body_sha256)
    expected = hmac.new(signed.client.secret.encode(), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signed.signature):
        raise Unauthorized("bad signature", detail_zh="签名不正确")
    client_id = signed.client.client_id
    if not state.replay.check_and_remember(client_id, signed.timestamp, signed.signature, now):
        raise Unauthorized("replayed request refused", detail_zh="重复提交的签名请求已被拒绝")
    if not state.limiter.allow(signed.client, now):
        raise TooManyRequests("rate limit exceeded", detail_zh="超过调用频率限制，请稍后重试")
    return signed.client


@dataclass(frozen=True)
class BulkUpload:
    """A verified bulk upload, spooled to its job's file."""

    client: ClientRecord
    job_id: uuid.UUID
    path: Path
    size_bytes: int
    body_sha256: str
    content_type: str | None


async def signed_bulk_upload(request: Request, state: StateDep) -> BulkUpload:
    """Stream the body to disk while hashing it, then verify the signature over that hash."""
    now = now_seconds()
    signed = read_signed_headers(
        state.clients, {k.lower(): v for k, v in request.headers.items()}, now
    )
    job_id = uuid.uuid4()
    path = state.bulk.path_for(job_id)
    try:
        size, digest = await spool_body(request, path)
        client = check_signature(
            state,
            signed,
            method=request.method,
            path_with_query=_path_with_query(request),
            body_sha256=digest,
            now=now,
        )
        require_kind(client, "department")
    except BaseException:
        # Refused, too large or cut off: nothing of the body may stay on disk.
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return BulkUpload(
        client=client,
        job_id=job_id,
        path=path,
        size_bytes=size,
        body_sha256=digest,
        content_type=request.headers.get("content-type"),
    )


async def spool_body(request: Request, path: Path) -> tuple[int, str]:
    """Write the request body to a new private file; return its size and SHA-256 (hex)."""
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    fh = await asyncio.to_thread(_create_private, path)
    hasher = hashlib.sha256()
    size = 0
    pending = bytearray()
    try:
        async for chunk in request.stream():
            hasher.update(chunk)
            size += len(chunk)
            pending += chunk
            if len(pending) >= _SPOOL_BLOCK:
                await asyncio.to_thread(fh.write, bytes(pending))
                pending.clear()
        if pending:
            await asyncio.to_thread(fh.write, bytes(pending))
    finally:
        await asyncio.to_thread(fh.close)
    return size, hasher.hexdigest()


def _create_private(path: Path) -> IO[bytes]:
    # Owner-only and never an existing file: the body holds clear resident IDs.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


SignedBulkUpload = Annotated[BulkUpload, Depends(signed_bulk_upload)]

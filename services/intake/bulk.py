"""Bulk pushes, run by the API process: one task per job, a transaction per chunk, leases.

The API process reads the uploaded file and writes each chunk; a child process validates,
encrypts and builds the events of the next chunk meanwhile (ChunkJudge). A job's state lives in its bulk_job row, and every chunk commits its alerts, their events,
its rejections and the job's counters together. That makes jobs resumable: when an API
process dies, its lease on the job runs out, and the next process to look (at its start-up
or on its periodic check) claims the job and carries on after the last committed row. No
alert is stored twice (the counters say where to resume, and (department, alert_id) is
unique anyway) and no count is doubled. A job whose uploaded file is gone (another host, a
wiped disk) is marked failed with `bulk.file_lost`; the department pushes the file again,
and the rows already stored come back as duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake import service
from services.intake.bulk_files import (
    MEDIA_TYPES,
    BulkFileError,
    BulkFormat,
    RawRow,
    format_for,
    inspect,
    open_rows,
)
from services.intake.catalogue import default_catalogue
from services.intake.models import BulkJob
from services.intake.repository import BulkJobRepository
from services.intake.service import IntakeContext, JudgedRow
from shared.auth import ClientRecord, ClientRegistry
from shared.clock import SystemClock
from shared.db import UnitOfWork
from shared.pii import PiiCipher
from shared.problems import FieldError, UnsupportedMediaType, ValidationFailed
from shared.secrets import Secrets

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# Files no unfinished job claims are removed once this old; younger ones may be uploads
# another API process sharing the directory has not committed yet.
_ORPHAN_FILE_AGE_SECONDS = 3600.0


class BulkJobs:
    """Starts, resumes and finishes bulk jobs; owns the files they read."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        ctx: IntakeContext,
        clients: ClientRegistry,
        directory: Path,
        chunk_rows: int,
        max_rows: int,
        lease_seconds: float,
        judge: ChunkJudge | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.uow = UnitOfWork(sessionmaker)
        self.ctx = ctx
        self.clients = clients
        self.directory = directory
        self.chunk_rows = chunk_rows
        self.max_rows = max_rows
        self.lease_seconds = lease_seconds
        self.judge = judge or ChunkJudge(ctx)
        # Unique per process start, so a restarted process does not mistake its dead
        # predecessor's lease for its own.
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex}"
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}

    def path_for(self, job_id: uuid.UUID) -> Path:
        """Return where a job's uploaded file is kept until the job ends."""
        return self.directory / f"{job_id}.upload"

    async def accept(
        self,
        *,
        job_id: uuid.UUID,
        client: ClientRecord,
        content_type: str | None,
        size_bytes: int,
        body_sha256: str,
    ) -> BulkJob:
        """Check an uploaded file as a whole, record its job and start it; or refuse it.

        Refusals (415 for a media type we do not read, 422 for a file that is not one) leave
        nothing behind: no job row, no file.
        """
        path = self.path_for(job_id)
        try:
            file_format = format_for(content_type)
            if file_format is None:
                raise UnsupportedMediaType(
                    f"send {', '.join(sorted(MEDIA_TYPES))} (UTF-8 for text)",
                    detail_zh="请以 application/x-ndjson、text/csv（UTF-8）或 XLSX 格式推送",
                )
            try:
                rows_total = await asyncio.to_thread(
                    inspect, path, file_format, max_rows=self.max_rows
                )
            except BulkFileError as exc:
                raise ValidationFailed(exc.errors) from None
            async with self.uow.transaction() as session:
                job = await service.create_bulk_job(
                    session,
                    self.ctx,
                    job_id=job_id,
                    client=client,
                    file_format=file_format,
                    size_bytes=size_bytes,
                    body_sha256=body_sha256,
                    rows_total=rows_total,
                    owner=self.owner,
                    lease_seconds=self.lease_seconds,
                )
        except BaseException:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            raise
        logger.info(
            "bulk job %s queued: %s, %d bytes, %s rows",
            job_id,
            file_format,
            size_bytes,
            rows_total if rows_total is not None else "unknown",
        )
        self.start(job_id)
        return job

    def start(self, job_id: uuid.UUID) -> None:
        """Process a job this process holds the lease on, in the background."""
        if job_id in self._tasks:
            return
        task = asyncio.create_task(self._run(job_id), name=f"bulk-job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(job_id, None))

    async def wait(self, job_id: uuid.UUID) -> None:
        """Wait until this process stops working on a job (tests and shutdown)."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.wait({task})

    async def recover(self) -> int:
        """Claim the unfinished jobs whose owner's lease ran out and start them."""
        now = self.ctx.clock.now()
        async with self.uow.read() as session:
            orphaned = await BulkJobRepository(session).orphaned(now)
        claimed = 0
        for job_id in orphaned:
            async with self.uow.transaction() as session:
                took = await BulkJobRepository(session).claim(
                    job_id, owner=self.owner, now=now, lease_until=self._lease_until()
                )
            if took:
                claimed += 1
                logger.info("bulk job %s claimed for resumption", job_id)
                self.start(job_id)
        return claimed

    async def remove_orphan_files(self) -> int:
        """Delete uploaded files that no unfinished job needs any more."""
        async with self.uow.read() as session:
            live = await BulkJobRepository(session).unfinished_ids()
        return await asyncio.to_thread(self._remove_files_except, live)

    def _remove_files_except(self, live: set[uuid.UUID]) -> int:
        removed = 0
        if not self.directory.exists():
            return 0
        cutoff = time.time() - _ORPHAN_FILE_AGE_SECONDS
        for path in self.directory.glob("*.upload"):
            try:
                job_id = uuid.UUID(path.stem)
            except ValueError:
                continue
            if job_id not in live and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    async def watch(self, stop: asyncio.Event) -> None:
        """Look for jobs abandoned by a dead process every half lease, until stop is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.lease_seconds / 2)
            if stop.is_set():
                return
            try:
                await self.recover()
            except Exception:
                logger.warning("bulk job recovery check failed", exc_info=True)

    async def aclose(self) -> None:
        """Stop every job in hand (the chunk in flight rolls back) and free their leases."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.judge.aclose()
        async with self.uow.transaction() as session:
            await BulkJobRepository(session).release(self.owner, self.ctx.clock.now())

    def _lease_until(self) -> Any:
        return self.ctx.clock.now() + timedelta(seconds=self.lease_seconds)

    async def _run(self, job_id: uuid.UUID) -> None:
        try:
            await self._process(job_id)
        except asyncio.CancelledError:
            raise
        except BulkFileError as exc:
            first = exc.errors[0]
            await self._finish(job_id, failure=first)
        except Exception:
            logger.exception("bulk job %s failed", job_id)
            await self._finish(
                job_id,
                failure=FieldError(
                    "job",
                    "bulk.internal_error",
                    "处理过程中发生内部错误；已受理的行不受影响，可重新推送该文件",
                    "internal error while processing; rows already accepted stay; push the "
                    "file again to finish",
                ),
            )

    async def _process(self, job_id: uuid.UUID) -> None:
        async with self.uow.transaction() as session:
            job = await BulkJobRepository(session).lock(job_id)
            if job is None or job.lease_owner != self.owner:
                return
            if job.status not in ("queued", "running"):
                return
            job.status = "running"
            job.started_at = job.started_at or self.ctx.clock.now()
            job.updated_at = self.ctx.clock.now()
            job.lease_expires_at = self._lease_until()
            skip, file_format, client_id = job.rows_processed, job.file_format, job.client_id
        client = self.clients.get(client_id)
        if client is None or client.department is None:
            raise BulkFileError(
                [
                    FieldError(
                        "job",
                        "bulk.client_unknown",
                        "推送该文件的调用方已不存在",
                        "the client that pushed this file no longer exists",
                    )
                ]
            )
        path = self.path_for(job_id)
        if not await asyncio.to_thread(path.exists):
            raise BulkFileError(
                [
                    FieldError(
                        "job",
                        "bulk.file_lost",
                        "上传的文件已丢失（服务重启或迁移），请重新推送；已受理的行将计为重复",
                        "the uploaded file is gone (restart or move); push it again, rows "
                        "already accepted will count as duplicates",
                    )
                ]
            )
        logger.info("bulk job %s running from row %d", job_id, skip)
        opened = open_rows(path, file_format_of(file_format))
        rows = await asyncio.to_thread(opened.__enter__)
        # The next chunk is read and judged while this task writes the current one; the lock
        # keeps the file from being closed under a read still running in its thread.
        reading = threading.Lock()
        ahead: asyncio.Future[list[JudgedRow]] | None = None
        # One session (one connection) for the whole job, a transaction per chunk: SQLite
        # connections are not pooled, and reconnecting for each chunk cost as much as writing it.
        session = self.sessionmaker()
        try:
            await asyncio.to_thread(_locked, reading, _skip, rows, skip)
            seen = skip
            ahead = asyncio.ensure_future(self._prepare(rows, reading, client, job_id, seen))
            while True:
                judged = await ahead
                ahead = None
                if not judged:
                    break
                seen += len(judged)
                ahead = asyncio.ensure_future(self._prepare(rows, reading, client, job_id, seen))
                async with session.begin():
                    kept = await service.store_bulk_chunk(
                        session,
                        self.ctx,
                        job_id=job_id,
                        owner=self.owner,
                        judged=judged,
                        lease_seconds=self.lease_seconds,
                    )
                if not kept:
                    logger.warning("bulk job %s: lease lost to another process; stopping", job_id)
                    return
        finally:
            if ahead is not None:
                ahead.cancel()
            await session.close()
            await asyncio.to_thread(_locked, reading, opened.__exit__, None, None, None)
        await self._finish(job_id, failure=None)

    async def _prepare(
        self,
        rows: Iterator[RawRow],
        reading: threading.Lock,
        client: ClientRecord,
        job_id: uuid.UUID,
        seen: int,
    ) -> list[JudgedRow]:
        """Read the next chunk (in a thread) and judge it (in the judge's process or thread)."""
        batch = await asyncio.to_thread(_locked, reading, _take, rows, self.chunk_rows)
        if seen + len(batch) > self.max_rows:
            raise BulkFileError(
                [
                    FieldError(
                        "body",
                        "bulk.too_many_rows",
                        f"数据行数超过上限 {self.max_rows} 行；此前的行已处理",
                        f"more than {self.max_rows} rows; the rows before the limit were processed",
                    )
                ]
            )
        if not batch:
            return []
        return await self.judge.judge(
            client,
            [(r.number, r.data, r.errors) for r in batch],
            now=self.ctx.clock.now(),
            job_id=job_id,
        )

    async def _finish(self, job_id: uuid.UUID, *, failure: FieldError | None) -> None:
        now = self.ctx.clock.now()
        async with self.uow.transaction() as session:
            job = await BulkJobRepository(session).lock(job_id)
            if job is None or job.lease_owner != self.owner:
                return
            job.status = "failed" if failure else "done"
            job.finished_at = now
            job.updated_at = now
            job.lease_owner = None
            job.lease_expires_at = None
            if failure is not None:
                job.error_code = failure.code
                job.error_zh = failure.message_zh
                job.error_en = failure.message_en
            counts = (job.rows_processed, job.accepted, job.duplicate, job.rejected)
        # The file holds clear resident IDs: it goes as soon as no job needs it.
        await asyncio.to_thread(self.path_for(job_id).unlink, missing_ok=True)
        logger.info(
            "bulk job %s %s: rows=%d accepted=%d duplicate=%d rejected=%d",
            job_id,
            "failed" if failure else "done",
            *counts,
        )


def file_format_of(value: str) -> BulkFormat:
    """Return a stored format name as the reader's type."""
    if value == "ndjson":
        return "ndjson"
    if value == "csv":
        return "csv"
    if value == "xlsx":
        return "xlsx"
    raise ValueError(f"unknown bulk format {value!r}")


def _skip(rows: Iterator[RawRow], count: int) -> None:
    """Advance past rows an earlier run already committed."""
    for _ in itertools.islice(rows, count):
        pass


def _take(rows: Iterator[RawRow], count: int) -> list[RawRow]:
    return list(itertools.islice(rows, count))


def _locked(lock: threading.Lock, fn: Callable[..., _T], *args: Any) -> _T:
    with lock:
        return fn(*args)


Items = list[tuple[int, Any, list[FieldError]]]


class ChunkJudge:
    """Validates and prepares chunks of rows: in child processes when given the keys, else a thread.

    Validation, encryption and event building are CPU work: in a thread they hold the API
    process's GIL against its requests and against the chunk being written. A child process
    works on the next chunk beside both. The child gets the PII keys once, at its start.
    """

    def __init__(
        self, ctx: IntakeContext, *, secrets: Secrets | None = None, processes: int = 0
    ) -> None:
        self.ctx = ctx
        self._secrets = secrets
        self._processes = processes if secrets is not None else 0
        self._pool: ProcessPoolExecutor | None = None

    async def judge(
        self, client: ClientRecord, items: Items, *, now: datetime, job_id: uuid.UUID
    ) -> list[JudgedRow]:
        """Return the chunk's rows judged."""
        if not self._processes:
            return await asyncio.to_thread(
                service.judge_alert_rows, self.ctx, client, items, now=now, job_id=job_id
            )
        # The child needs the department, never the client's secret.
        public = dataclasses.replace(client, secret="")
        pool = self._pool_or_start()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, _judge_in_child, public, items, now, job_id
            )
        except BrokenProcessPool:
            self._pool = None  # a new one is started for the next chunk or job
            raise

    def _pool_or_start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            assert self._secrets is not None
            self._pool = ProcessPoolExecutor(
                max_workers=self._processes,
                # spawn, not fork: the API process has threads and an event loop to not copy.
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child,
                initargs=(self._secrets.pii_encryption_key, self._secrets.pii_hash_key),
            )
        return self._pool

    async def aclose(self) -> None:
        """Stop the child processes, if any."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


_child_ctx: IntakeContext | None = None


def _start_child(encryption_key: str, hash_key: str) -> None:
    """Build the judging context once in a child process."""
    global _child_ctx
    _child_ctx = IntakeContext(
        outbox=service.intake_outbox(),
        cipher=PiiCipher.from_base64(encryption_key, hash_key),
        clock=SystemClock(),
        catalogue=default_catalogue(),
    )


def _judge_in_child(
    client: ClientRecord, items: Items, now: datetime, job_id: uuid.UUID
) -> list[JudgedRow]:
    assert _child_ctx is not None
    return service.judge_alert_rows(_child_ctx, client, items, now=now, job_id=job_id)

"""Bulk pushes, run inside the API process: one task per job, a transaction per chunk, leases.

A job's state lives in its bulk_job row, and every chunk commits its alerts, their events,
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
import itertools
import logging
import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

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
from services.intake.models import BulkJob
from services.intake.repository import BulkJobRepository
from services.intake.service import IntakeContext, JudgedRow
from shared.auth import ClientRecord, ClientRegistry
from shared.db import UnitOfWork
from shared.problems import FieldError, UnsupportedMediaType, ValidationFailed

logger = logging.getLogger(__name__)

# Files no unfinished job claims are removed once this old; younger ones may be uploads
# another API process sharing the directory has not committed yet.
_ORPHAN_FILE_AGE_SECONDS = 3600.0


class BulkJobs:
    """Starts, resumes and finishes bulk jobs; owns the files they read."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        ctx: IntakeContext,
        clients: ClientRegistry,
        directory: Path,
        chunk_rows: int,
        max_rows: int,
        lease_seconds: float,
    ) -> None:
        self.uow = uow
        self.ctx = ctx
        self.clients = clients
        self.directory = directory
        self.chunk_rows = chunk_rows
        self.max_rows = max_rows
        self.lease_seconds = lease_seconds
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
        try:
            await asyncio.to_thread(_skip, rows, skip)
            seen = skip
            while True:
                judged = await asyncio.to_thread(self._next_chunk, rows, client, job_id, seen)
                if not judged:
                    break
                seen += len(judged)
                async with self.uow.transaction() as session:
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
            await asyncio.to_thread(opened.__exit__, None, None, None)
        await self._finish(job_id, failure=None)

    def _next_chunk(
        self,
        rows: Iterator[RawRow],
        client: ClientRecord,
        job_id: uuid.UUID,
        seen: int,
    ) -> list[JudgedRow]:
        """Read and judge the next chunk (runs in a worker thread)."""
        batch = list(itertools.islice(rows, self.chunk_rows))
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
        return service.judge_alert_rows(
            self.ctx,
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

"""Bulk pushes: files in three formats, jobs with counts and rejection reports, restarts."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import threading
import uuid
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from services.intake.bulk import BulkJobs, ChunkJudge
from services.intake.bulk_files import COLUMNS, XLSX_MEDIA_TYPE, RawRow
from services.intake.models import Alert, BulkJob
from services.intake.service import JudgedRow
from shared.auth import ClientRecord
from shared.clock import FrozenClock
from shared.secrets import Secrets
from tests import factories
from tests.services.intake.harness import Intake, assert_problem, start_intake

NDJSON = "application/x-ndjson"
CSV = "text/csv"
BAD_ID = "110105194912310021"  # check digit should be X


def _line(alert: dict[str, Any]) -> str:
    return json.dumps(alert, ensure_ascii=False) + "\n"


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: json.dumps(v, ensure_ascii=False) if k == "details" else ("" if v is None else v)
                for k, v in row.items()
            }
        )
    return out.getvalue().encode()


def _xlsx(header: list[str], rows: list[list[Any]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def _push(
    intake: Intake, body: bytes, content_type: str, department: str = "medical_insurance"
) -> Any:
    return await intake.signed(
        "POST",
        "/v1/alerts:bulk",
        intake.client("department", department),
        raw=body,
        content_type=content_type,
    )


async def _finished(intake: Intake, response: Any, department: str = "medical_insurance") -> Any:
    assert response.status_code == 202, response.text
    job_id = uuid.UUID(response.json()["job_id"])
    await intake.state.bulk.wait(job_id)
    status = await intake.signed(
        "GET", f"/v1/jobs/{job_id}", intake.client("department", department)
    )
    assert status.status_code == 200, status.text
    return status.json()


async def _rejections(intake: Intake, job_id: str) -> list[dict[str, str]]:
    response = await intake.signed(
        "GET", f"/v1/jobs/{job_id}/rejections", intake.client("department", "medical_insurance")
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")  # so Excel opens the Chinese text as UTF-8
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def _spool_files(intake: Intake) -> list[str]:
    directory = intake.settings.bulk_dir
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


class TestCreateAlertBulk:
    async def test_an_ndjson_push_accepts_counts_and_reports_each_kind_of_row(
        self, intake: Intake, backend: str
    ) -> None:
        await intake.signed(
            "POST",
            "/v1/alerts",
            intake.client("department", "medical_insurance"),
            factories.alert("N-0", factories.resident_id(1)),
        )
        body = "".join(
            [
                _line(factories.alert("N-1", factories.resident_id(2))),  # row 1 accepted
                _line(factories.alert("N-0", factories.resident_id(1))),  # row 2 pushed before
                "\n",  # row 3 blank, skipped
                _line(factories.alert("N-2", BAD_ID)),  # row 4 bad check digit
                "{not json\n",  # row 5
                _line(factories.alert("N-1", factories.resident_id(2))),  # row 6 repeated
                _line(factories.alert("N-3", factories.resident_id(3), amount=None)),  # row 7
                "[1, 2]\n",  # row 8 not an object
                _line(factories.alert("N-4", factories.resident_id(4))),  # row 9 accepted
            ]
        ).encode()

        response = await _push(intake, body, NDJSON)
        job = await _finished(intake, response)

        assert response.json()["status_url"] == f"/v1/jobs/{job['job_id']}"
        assert response.json()["rows_total"] == 8
        assert job["status"] == "done"
        assert job["format"] == "ndjson"
        assert job["counts"] == {"rows": 8, "accepted": 2, "duplicate": 2, "rejected": 4}
        assert job["progress"] == {"processed": 8, "total": 8, "percent": 100.0}
        assert job["error"] is None
        report = await _rejections(intake, job["job_id"])
        assert [(r["row"], r["alert_id"], r["field"], r["code"]) for r in report] == [
            ("4", "N-2", "subject_id_number", "resident_id.checksum"),
            ("5", "", "body", "row.json_invalid"),
            ("7", "N-3", "amount", "amount.required"),
            ("8", "", "body", "row.not_object"),
        ]
        assert all(r["message_zh"] and r["message_en"] for r in report)
        assert await intake.counts("alert", "outbox_message") == {"alert": 3, "outbox_message": 3}
        assert _spool_files(intake) == []  # the file, with its clear IDs, is gone

    async def test_a_second_push_of_the_same_file_stores_nothing_new(self, intake: Intake) -> None:
        body = "".join(
            _line(factories.alert(f"S-{n}", factories.resident_id(10 + n))) for n in range(5)
        ).encode()

        await _finished(intake, await _push(intake, body, NDJSON))
        again = await _finished(intake, await _push(intake, body, NDJSON))

        assert again["counts"] == {"rows": 5, "accepted": 0, "duplicate": 5, "rejected": 0}
        assert await intake.counts("alert", "outbox_message") == {"alert": 5, "outbox_message": 5}

    async def test_a_csv_push_reads_typed_cells_and_a_json_details_column(
        self, intake: Intake
    ) -> None:
        good = factories.alert(
            "C-1", factories.resident_id(20), details={"医院": "县人民医院", "住院天数": 12}
        )
        rows = [
            good,
            factories.alert("C-2", factories.resident_id(21), amount="not a number"),
            factories.alert("C-3", factories.resident_id(22), village_code=None),
        ]
        body = b"\xef\xbb\xbf" + _csv(rows)  # Excel's "CSV UTF-8" starts with a BOM
        body += b'C-4,medical_insurance.large_out_of_pocket,x,,1,,,2026-11-01,"{bad"\r\n'
        body += b"C-5,medical_insurance.large_out_of_pocket,x,,1,,,2026-11-01,{},extra\r\n"
        body += b",,,,,,,,\r\n"  # an empty row, skipped

        job = await _finished(intake, await _push(intake, body, CSV))

        assert job["counts"] == {"rows": 5, "accepted": 2, "duplicate": 0, "rejected": 3}
        report = await _rejections(intake, job["job_id"])
        assert {(r["row"], r["field"], r["code"]) for r in report} == {
            ("3", "amount", "decimal_parsing"),
            ("5", "details", "details.json_invalid"),
            ("5", "subject_id_number", "resident_id.length"),
            ("6", "row", "row.columns"),
        }
        async with intake.sessionmaker() as session:
            stored = (
                await session.execute(select(Alert).where(Alert.alert_id == "C-1"))
            ).scalar_one()
        assert stored.details == {"医院": "县人民医院", "住院天数": 12}
        assert stored.job_id == uuid.UUID(job["job_id"])

    async def test_an_xlsx_push_reads_the_first_sheet(self, intake: Intake) -> None:
        header = ["alert_id", "alert_type", "subject_id_number", "amount", "occurred_on"]
        kind = "medical_insurance.large_out_of_pocket"
        body = _xlsx(
            header,
            [
                ["X-1", kind, factories.resident_id(30), 52000, date(2026, 11, 1)],
                [1002, kind, factories.resident_id(31), 100.5, "2026-11-02"],  # numeric alert id
                ["X-3", kind, 110105194912310021, 1, date(2026, 11, 1)],  # ID as a number
                [],  # blank row, skipped
                ["X-5", kind, factories.resident_id(32), None, date(2026, 11, 1)],
            ],
        )

        job = await _finished(intake, await _push(intake, body, XLSX_MEDIA_TYPE))

        assert job["format"] == "xlsx"
        assert job["counts"] == {"rows": 4, "accepted": 2, "duplicate": 0, "rejected": 2}
        report = await _rejections(intake, job["job_id"])
        assert [(r["row"], r["alert_id"], r["code"]) for r in report] == [
            ("4", "X-3", "resident_id.not_text"),
            ("6", "X-5", "amount.required"),
        ]

    @pytest.mark.parametrize(
        ("content_type", "body", "status", "code"),
        [
            pytest.param(
                CSV,
                "alert_id,alert_type,subject_id_number,occurred_on,details\n"
                'A,b,c,2026-11-01,"{""医院"": ""县医院""}"\n'.encode("gbk"),
                422,
                "encoding.not_utf8",
                id="csv-in-gbk",
            ),
            pytest.param(
                NDJSON,
                '{"alert_id": "A", "details": {"x": "\xe9"}}\n'.encode("latin-1"),
                422,
                "encoding.not_utf8",
                id="ndjson-in-latin-1",
            ),
            pytest.param(
                CSV,
                b'alert_id,alert_type,subject_id_number,occurred_on\nA,"unclosed,x,2026-11-01\n',
                422,
                "csv.malformed",
                id="csv-unclosed-quote",
            ),
            pytest.param(
                CSV,
                b"alert_id,alert_type,occurred_on\nA,b,2026-11-01\n",
                422,
                "header.missing_column",
                id="csv-missing-column",
            ),
            pytest.param(
                CSV,
                b"alert_id,alert_type,subject_id_number,occurred_on,colour\nA,b,c,d,e\n",
                422,
                "header.unknown_column",
                id="csv-unknown-column",
            ),
            pytest.param(CSV, b"", 422, "csv.no_header", id="csv-empty"),
            pytest.param(
                CSV,
                b"alert_id,alert_type,subject_id_number,occurred_on\n",
                422,
                "bulk.empty",
                id="csv-header-only",
            ),
            pytest.param(NDJSON, b"\n\n", 422, "bulk.empty", id="ndjson-blank"),
            pytest.param(
                XLSX_MEDIA_TYPE, b"PK\x03\x04 not really", 422, "xlsx.unreadable", id="xlsx-garbage"
            ),
            pytest.param(XLSX_MEDIA_TYPE, "ZIP", 422, "xlsx.unreadable", id="xlsx-zip-not-sheet"),
            pytest.param(
                XLSX_MEDIA_TYPE, "NOHEADER", 422, "header.missing_column", id="xlsx-wrong-header"
            ),
            pytest.param("text/plain", b"a\n", 415, None, id="text-plain"),
            pytest.param(f"{CSV}; charset=gbk", b"a\n", 415, None, id="csv-declared-gbk"),
            pytest.param(None, b"a\n", 415, None, id="no-content-type"),
        ],
    )
    async def test_a_file_that_cannot_be_read_is_refused_with_a_problem(
        self, intake: Intake, content_type: str | None, body: Any, status: int, code: str | None
    ) -> None:
        if body == "ZIP":
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w") as archive:
                archive.writestr("hello.txt", "not a workbook")
            body = out.getvalue()
        elif body == "NOHEADER":
            body = _xlsx(["编号", "类型"], [["A", "B"]])

        response = await intake.signed(
            "POST",
            "/v1/alerts:bulk",
            intake.client("department", "medical_insurance"),
            raw=body,
            content_type=content_type,
        )

        if status == 415:
            assert_problem(response, 415, "unsupported-media-type")
        else:
            problem = assert_problem(response, 422, "validation-failed")
            assert code in {e["code"] for e in problem["errors"]}
            assert all(e["message_zh"] and e["message_en"] for e in problem["errors"])
        assert await intake.counts("bulk_job", "alert") == {"bulk_job": 0, "alert": 0}
        assert _spool_files(intake) == []

    async def test_a_body_over_the_bulk_limit_is_a_413_and_leaves_no_file(
        self, intake_url: str, tmp_path: Path, secrets: Secrets, clock: FrozenClock
    ) -> None:
        small, stop = await start_intake(
            intake_url, tmp_path / "var", secrets, clock, max_bulk_bytes=2000
        )
        try:
            line = _line(factories.alert("L-1", factories.resident_id(40))).encode()
            declared = await _push(small, line * 20, NDJSON)

            def chunks() -> Iterator[bytes]:
                yield from [line] * 20  # streamed: no Content-Length to refuse up front

            streamed = await small.signed(
                "POST",
                "/v1/alerts:bulk",
                small.client("department", "medical_insurance"),
                raw=chunks,
                content_type=NDJSON,
            )
            under = await _push(small, line, NDJSON)

            assert_problem(declared, 413, "payload-too-large")
            assert_problem(streamed, 413, "payload-too-large")
            assert under.status_code == 202, under.text
            await small.state.bulk.wait(uuid.UUID(under.json()["job_id"]))
            assert _spool_files(small) == []
            assert await small.count("bulk_job") == 1
        finally:
            await stop()

    async def test_more_rows_than_the_limit_are_refused(
        self, intake_url: str, tmp_path: Path, secrets: Secrets, clock: FrozenClock
    ) -> None:
        limited, stop = await start_intake(
            intake_url, tmp_path / "var", secrets, clock, bulk_max_rows=3
        )
        try:
            body = "".join(
                _line(factories.alert(f"M-{n}", factories.resident_id(50 + n))) for n in range(4)
            ).encode()

            response = await _push(limited, body, NDJSON)

            problem = assert_problem(response, 422, "validation-failed")
            assert [e["code"] for e in problem["errors"]] == ["bulk.too_many_rows"]
            assert await limited.count("bulk_job") == 0
        finally:
            await stop()

    async def test_a_hundred_thousand_rows_in_flat_memory_with_exact_counts(
        self, intake_url: str, tmp_path: Path, secrets: Secrets, clock: FrozenClock
    ) -> None:
        # The production shape: a child process judges chunks beside the API process.
        intake, stop = await start_intake(
            intake_url, tmp_path / "var", secrets, clock, bulk_judge_processes=1
        )
        try:
            total, expected = 100_000, {"accepted": 0, "duplicate": 0, "rejected": 0}
            path = tmp_path / "month.ndjson"
            with path.open("w", encoding="utf-8") as fh:
                for i in range(total):
                    alert_id, subject = f"YB-{i:06d}", factories.resident_id(i % 50_000)
                    if i % 1000 == 999:
                        alert_id = f"YB-{i - 1:06d}"  # repeats a row of the same chunk
                        expected["duplicate"] += 1
                    elif i % 1000 == 0 and i > 0:
                        alert_id = f"YB-{i - 2:06d}"  # repeats a row of the chunk before
                        expected["duplicate"] += 1
                    elif i % 500 == 250:
                        subject = BAD_ID
                        expected["rejected"] += 1
                    else:
                        expected["accepted"] += 1
                    fh.write(_line(factories.alert(alert_id, subject)))

            def chunks() -> Iterator[bytes]:
                with path.open("rb") as fh:
                    while block := fh.read(1 << 16):
                        yield block

            sampler = _RssSampler(intake.state.bulk.judge)
            sampling = asyncio.create_task(sampler.run())
            response = await _push(intake, chunks, NDJSON)  # type: ignore[arg-type]
            job = await _finished(intake, response)
            sampler.stop.set()
            await sampling

            assert job["status"] == "done", job
            assert job["counts"] == {"rows": total, **expected}
            assert expected == {"accepted": 99_601, "duplicate": 199, "rejected": 200}
            assert await intake.counts("alert", "outbox_message", "bulk_rejection") == {
                "alert": expected["accepted"],
                "outbox_message": expected["accepted"],
                "bulk_rejection": expected["rejected"],
            }
            # Held in memory as rows, a file of this size takes well over 200 MB; streamed in
            # chunks of a thousand rows neither process grows with the rows read. The child's
            # baseline is taken a fifth of the way in, once its imports are loaded.
            parent_growth = sampler.growth(sampler.parent, warm_from=0)
            child_growth = sampler.growth(sampler.child, warm_from=len(sampler.child) // 5)
            print(  # noqa: T201 - the numbers behind the claim, shown with -s
                f"RSS growth MiB: API process {parent_growth / 2**20:.1f}, "
                f"judge process {child_growth / 2**20:.1f}; samples {len(sampler.parent)}"
            )
            assert parent_growth < 48 * 2**20, sampler.parent
            assert child_growth < 48 * 2**20, sampler.child
        finally:
            await stop()


class _RssSampler:
    """Samples the resident memory of this process and of the judging child (Linux /proc)."""

    def __init__(self, judge: ChunkJudge) -> None:
        self.judge = judge
        self.stop = asyncio.Event()
        self.parent: list[int] = []
        self.child: list[int] = []

    @staticmethod
    def growth(samples: list[int], *, warm_from: int) -> int:
        """Return how far memory rose above its level at a sample (0 when not sampled)."""
        if len(samples) <= warm_from:
            return 0
        return max(samples[warm_from:]) - samples[warm_from]

    async def run(self) -> None:
        while not self.stop.is_set():
            parent = _rss(os.getpid())
            if parent:
                self.parent.append(parent)
            pool = self.judge._pool
            pids = list(getattr(pool, "_processes", None) or {}) if pool else []
            for pid in pids:
                child = _rss(pid)
                if child:
                    self.child.append(child)
            await asyncio.sleep(0.2)


def _rss(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class TestGetJob:
    async def test_another_department_cannot_see_the_job(self, intake: Intake) -> None:
        body = _line(factories.alert("P-1", factories.resident_id(60))).encode()
        job = await _finished(intake, await _push(intake, body, NDJSON))

        status = await intake.signed(
            "GET", f"/v1/jobs/{job['job_id']}", intake.client("department", "health")
        )
        report = await intake.signed(
            "GET", f"/v1/jobs/{job['job_id']}/rejections", intake.client("department", "health")
        )

        assert_problem(status, 404, "job-not-found")
        assert_problem(report, 404, "job-not-found")

    async def test_an_unknown_job_is_not_found(self, intake: Intake) -> None:
        response = await intake.signed(
            "GET", f"/v1/jobs/{uuid.uuid4()}", intake.client("department", "medical_insurance")
        )

        assert_problem(response, 404, "job-not-found")


class TestBulkJobs:
    async def _crashing_run(
        self, intake: Intake, body: bytes, *, crash_after_chunks: int
    ) -> uuid.UUID:
        """Run a job in a second BulkJobs that dies (like a killed process) mid-job."""
        dying = _DyingBulkJobs(intake, crash_after_chunks=crash_after_chunks)
        job_id = uuid.uuid4()
        path = dying.path_for(job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        await dying.accept(
            job_id=job_id,
            client=intake.state.clients.get("dept-medical_insurance"),  # type: ignore[arg-type]
            content_type=NDJSON,
            size_bytes=len(body),
            body_sha256="0" * 64,
        )
        await dying.wait(job_id)
        return job_id

    async def test_a_job_whose_process_died_is_resumed_after_the_last_committed_chunk(
        self, intake: Intake, backend: str
    ) -> None:
        body = "".join(
            _line(factories.alert(f"R-{n}", factories.resident_id(70 + n) if n != 4 else BAD_ID))
            for n in range(7)
        ).encode()
        job_id = await self._crashing_run(intake, body, crash_after_chunks=1)
        async with intake.sessionmaker() as session:
            halfway = await session.get(BulkJob, job_id)
        assert halfway is not None
        assert (halfway.status, halfway.rows_processed, halfway.accepted) == ("running", 3, 3)

        intake.clock.advance(timedelta(seconds=intake.settings.bulk_lease_seconds + 1))
        assert await intake.state.bulk.recover() == 1
        await intake.state.bulk.wait(job_id)

        status = await intake.signed(
            "GET", f"/v1/jobs/{job_id}", intake.client("department", "medical_insurance")
        )
        assert status.json()["status"] == "done"
        assert status.json()["counts"] == {"rows": 7, "accepted": 6, "duplicate": 0, "rejected": 1}
        assert await intake.counts("alert", "outbox_message", "bulk_rejection") == {
            "alert": 6,
            "outbox_message": 6,
            "bulk_rejection": 1,
        }

    async def test_a_live_lease_is_left_alone(self, intake: Intake) -> None:
        body = _line(factories.alert("L-1", factories.resident_id(80))).encode() * 4
        job_id = await self._crashing_run(intake, body, crash_after_chunks=0)

        claimed = await intake.state.bulk.recover()

        assert claimed == 0
        async with intake.sessionmaker() as session:
            job = await session.get(BulkJob, job_id)
        assert job is not None
        assert job.status in ("queued", "running")

    async def test_a_job_whose_file_is_gone_fails_with_a_reason(self, intake: Intake) -> None:
        body = _line(factories.alert("G-1", factories.resident_id(81))).encode() * 4
        job_id = await self._crashing_run(intake, body, crash_after_chunks=0)
        intake.state.bulk.path_for(job_id).unlink()
        intake.clock.advance(timedelta(seconds=intake.settings.bulk_lease_seconds + 1))

        await intake.state.bulk.recover()
        await intake.state.bulk.wait(job_id)

        status = await intake.signed(
            "GET", f"/v1/jobs/{job_id}", intake.client("department", "medical_insurance")
        )
        assert status.json()["status"] == "failed"
        assert status.json()["error"]["code"] == "bulk.file_lost"
        assert status.json()["error"]["message_zh"]

    async def test_a_restarted_api_resumes_a_job_left_by_a_clean_shutdown(
        self, intake_url: str, tmp_path: Path, secrets: Secrets, clock: FrozenClock
    ) -> None:
        first, stop_first = await start_intake(intake_url, tmp_path / "var", secrets, clock)
        never = asyncio.Event()

        async def stuck(*args: Any, **kwargs: Any) -> Any:
            await never.wait()  # the job is mid-chunk when the API shuts down

        first.state.bulk.judge.judge = stuck  # type: ignore[method-assign]
        body = "".join(
            _line(factories.alert(f"T-{n}", factories.resident_id(90 + n))) for n in range(5)
        ).encode()
        accepted = await _push(first, body, NDJSON)
        job_id = uuid.UUID(accepted.json()["job_id"])
        await asyncio.sleep(0.2)
        await stop_first()
        async with first.sessionmaker() as session:
            left = await session.get(BulkJob, job_id)
        assert left is not None
        assert left.status == "running"
        assert left.lease_expires_at is not None
        assert left.lease_expires_at <= clock.now()  # released, not left to run out
        await first.engine.dispose()

        second, stop_second = await start_intake(intake_url, tmp_path / "var", secrets, clock)
        try:
            await second.state.bulk.wait(job_id)
            status = await second.signed(
                "GET", f"/v1/jobs/{job_id}", second.client("department", "medical_insurance")
            )
            assert status.json()["status"] == "done"
            assert status.json()["counts"] == {
                "rows": 5,
                "accepted": 5,
                "duplicate": 0,
                "rejected": 0,
            }
            assert await second.count("alert") == 5
        finally:
            await stop_second()


class _Crash(BaseException):
    """Stands for the process dying: nothing catches it, nothing cleans up."""


class _DyingBulkJobs(BulkJobs):
    """A BulkJobs (another process, in effect) that dies after some chunks are committed."""

    def __init__(self, intake: Intake, *, crash_after_chunks: int) -> None:
        state = intake.state
        super().__init__(
            sessionmaker=intake.sessionmaker,
            ctx=state.ctx,
            clients=state.clients,
            directory=intake.settings.bulk_dir,
            chunk_rows=3,
            max_rows=1000,
            lease_seconds=intake.settings.bulk_lease_seconds,
        )
        self._chunks_left = crash_after_chunks

    async def _run(self, job_id: uuid.UUID) -> None:
        try:
            await super()._run(job_id)
        except _Crash:
            return

    async def _prepare(
        self,
        rows: Iterator[RawRow],
        reading: threading.Lock,
        client: ClientRecord,
        job_id: uuid.UUID,
        seen: int,
    ) -> list[JudgedRow]:
        if self._chunks_left == 0:
            raise _Crash
        self._chunks_left -= 1
        return await super()._prepare(rows, reading, client, job_id, seen)

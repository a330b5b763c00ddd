"""Hostile bodies against every POST route of the three apps, with valid credentials.

Whole-body attacks (too large, nested ten thousand levels, bytes that are not UTF-8, wrong
media types) must be refused with a 4xx problem and leave every table as it was. Then each
valid body is mutated one leaf at a time (NaN, infinities, numbers too large for any
column, NUL characters, very long text, deep nesting in place of a value) and every answer
must be a success or a 4xx problem, never a server error. The mutations run on SQLite and
PostgreSQL, whose text and number types refuse different things.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import zipfile
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import httpx
import pytest

from services.intake.bulk_files import XLSX_MEDIA_TYPE
from services.screening import roster
from shared.auth import signed_headers
from tests import factories
from tests.figures import record
from tests.security.routes import Operation, assert_problem, sample_path, signing_path
from tests.security.world import World, protected
from tests.services.screening import harness
from tests.support import Stack

pytestmark = pytest.mark.e2e

JSON = "application/json"
# Bodies every service refuses before reading them: one byte over the default limit.
LIMIT = 1_048_576
STREAMED_ROUTES = {("intake", "/v1/alerts:bulk"), ("screening", "/v1/roster:import")}


def _deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"{}" + b"}" * levels


def _post_routes(stack: Stack) -> list[Operation]:
    return [op for op in protected(stack) if op.method == "POST"]


def _json_routes(stack: Stack) -> list[Operation]:
    """POST routes that parse a JSON body (the streamed uploads read files instead)."""
    return [
        op
        for op in _post_routes(stack)
        if (op.service, op.path) not in STREAMED_ROUTES
        and op.route is not None
        and op.route.dependant.body_params
    ]


async def _send(
    world: World,
    op: Operation,
    content: bytes | Iterator[bytes] | None,
    media: str | None,
) -> httpx.Response:
    """Send a raw body to op with valid credentials; an iterator is sent chunked."""
    client = world.stack.http[op.service]
    headers = world.headers_for(op)
    if media:
        headers["Content-Type"] = media
    streamed = isinstance(content, Iterator)
    raw = b"".join(content) if isinstance(content, Iterator) else (content or b"")

    async def chunks() -> AsyncGenerator[bytes, None]:
        # Two chunks and no Content-Length: the limit must hold while reading.
        half = len(raw) // 2
        yield raw[:half]
        yield raw[half:]

    stream = chunks()
    request = client.build_request(
        op.method,
        sample_path(op.path, world.values),
        content=stream if streamed else raw,
        headers=headers,
    )
    if op.auth == "signed":
        credentials = world.client_for(op)
        request.headers.update(
            signed_headers(
                credentials["client_id"],
                credentials["secret"],
                op.method,
                signing_path(request),
                raw,
                time.time(),
            )
        )
    try:
        return await client.send(request)
    finally:
        # A refused upload leaves the generator half read; close it here rather than in a
        # garbage collection that may run deep inside the JSON decoder's recursion.
        await stream.aclose()


class TestWholeBodies:
    async def test_bodies_no_route_should_read_are_refused_and_store_nothing(
        self, world: World
    ) -> None:
        cases: list[tuple[str, bytes | Iterator[bytes], str | None, tuple[int, ...]]] = [
            ("deep-10000", _deep(10_000), JSON, (422,)),
            ("deep-100000-arrays", b"[" * 100_000 + b"]" * 100_000, JSON, (422,)),
            ("not-utf8", b'{"reason": "\xff\xfe\xfa"}', JSON, (422,)),
            ("gbk", '{"reason": "国务院通知"}'.encode("gbk"), JSON, (422,)),
            ("latin-1", '{"reason": "café"}'.encode("latin-1"), JSON, (422,)),
            ("truncated", b'{"reason": "x', JSON, (422,)),
            ("plain-text", b"reason=x", "text/plain", (415, 422)),
            ("xml", b"<reason>x</reason>", "application/xml", (415, 422)),
            ("form", b"reason=x&days=1", "application/x-www-form-urlencoded", (415, 422)),
            (
                "multipart",
                b"--b\r\n\r\nx\r\n--b--\r\n",
                "multipart/form-data; boundary=b",
                (415, 422),
            ),
        ]
        before = await world.row_counts()
        tried = 0
        for op in _json_routes(world.stack):
            valid, _ = world.body_for(op)
            assert valid is not None
            big = valid + b" " * (LIMIT + 1 - len(valid))
            attempts = [
                *cases,
                ("oversized", big, JSON, (413,)),
                ("oversized-streamed", iter([big]), JSON, (413,)),
            ]
            for name, content, media, statuses in attempts:
                response = await _send(world, op, content, media)
                try:
                    assert_problem(response, *statuses)
                except AssertionError as exc:
                    raise AssertionError(f"{op} {name}: {exc}") from None
                tried += 1

        assert await world.row_counts() == before
        record(
            "hostile",
            {
                "check": "oversized, deeply nested, non-UTF-8, wrongly typed bodies, every POST",
                "inputs_tried": tried,
                "refused": tried,
                "server_errors": 0,
            },
        )


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    out = list(value)
    out[head] = _replace(value[head], rest, new)
    return out


NESTED: Any = {}
for _ in range(200):
    NESTED = {"a": NESTED}
# Written by hand: json.dumps refuses NaN and the infinities only with allow_nan=False, and
# a number too large for a float is still valid JSON.
NUMBER_MUTATIONS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", str(10**40), "-0"]
TEXT_MUTATIONS: list[Any] = ["\u0000", "a\u0000b", "x" * 100_000, "\ud800", "%s%n", NESTED]


def _mutations(body: Any) -> Iterator[tuple[str, bytes]]:
    for path, leaf in _leaves(body):
        where = ".".join(map(str, path))
        if isinstance(leaf, bool) or leaf is None:
            continue
        if isinstance(leaf, int | float):
            for literal in NUMBER_MUTATIONS:
                marker = "__NUMBER__"
                text = json.dumps(_replace(body, path, marker)).replace(f'"{marker}"', literal)
                yield f"{where}={literal}", text.encode()
        elif isinstance(leaf, str):
            for new in TEXT_MUTATIONS:
                text = json.dumps(_replace(body, path, new))
                label = new if isinstance(new, str) and len(new) < 10 else type(new).__name__
                yield f"{where}={label!r}", text.encode("utf-8", errors="surrogatepass")


class TestMutatedFields:
    async def test_no_field_value_makes_a_server_error(self, world: World, backend: str) -> None:
        tried = refused = 0
        errors: list[str] = []
        for op in _json_routes(world.stack):
            valid, _ = world.body_for(op)
            if not valid:
                continue
            for label, content in _mutations(json.loads(valid)):
                response = await _send(world, op, content, JSON)
                tried += 1
                if response.status_code >= 500:
                    errors.append(f"{op} {label}: {response.status_code}")
                elif response.status_code >= 400:
                    refused += 1
                    assert_problem(response, response.status_code)

        record(
            "hostile",
            {
                "check": f"one field mutated at a time (NaN, huge, NUL, long, nested), {backend}",
                "inputs_tried": tried,
                "refused": refused,
                "server_errors": len(errors),
            },
        )
        assert not errors, "\n".join(errors)


def _ndjson(*rows: bytes) -> bytes:
    return b"".join(row + b"\n" for row in rows)


def _alert(alert_id: str, serial: int, **fields: Any) -> bytes:
    return json.dumps(factories.alert(alert_id, factories.resident_id(serial), **fields)).encode()


def _truncated_xlsx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook>" * 5000)
    data = out.getvalue()
    return data[: len(data) // 2]


class TestBulkFiles:
    """Files the bulk route's own tests do not try: hostile rows inside readable files."""

    async def test_hostile_rows_are_rejected_one_by_one_and_the_job_finishes(
        self, world: World, backend: str
    ) -> None:
        deep_details = json.dumps(factories.alert("H-2", factories.resident_id(42)))
        deep_details = deep_details.replace(
            '"details": {}', '"details": ' + '{"a":' * 50 + "{}" + "}" * 50
        )
        body = _ndjson(
            _alert("H-1", 41),
            b'{"alert_id": "H-X", "details": ' + _deep(10_000) + b"}",
            deep_details.encode(),
            b'{"alert_id": "H-3", "amount": NaN}',
            _alert("H-4", 43, amount=10**40),
            _alert("H-5\u0000", 44),
            _alert("H-6", 45, details={"备注": "a\u0000b"}),
            _alert("H-7" * 100, 46),
            b'{"alert_id": "H-8", "\\u0000\\ud800": 1}',
        )
        op = next(op for op in _post_routes(world.stack) if op.path == "/v1/alerts:bulk")
        pushed = await _send(world, op, body, "application/x-ndjson")
        assert pushed.status_code == 202, pushed.text
        job = await _finished(world, pushed.json()["status_url"])

        assert job["status"] == "done", job
        assert job["counts"] == {"rows": 9, "accepted": 1, "duplicate": 0, "rejected": 8}
        record(
            "hostile",
            {
                "check": f"bulk NDJSON rows: deep, NaN, huge, NUL, over-long id, {backend}",
                "inputs_tried": 8,
                "refused": job["counts"]["rejected"],
                "server_errors": 0,
            },
        )

    async def test_a_json_typed_upload_over_the_json_limit_is_handed_on_and_refused(
        self, world: World
    ) -> None:
        op = next(op for op in _post_routes(world.stack) if op.path == "/v1/alerts:bulk")
        lines = _ndjson(*[_alert(f"J-{n}", 60 + n % 30) for n in range(8000)])
        assert len(lines) > LIMIT

        response = await _send(world, op, iter([lines]), JSON)

        assert_problem(response, 415)

    @pytest.mark.parametrize(
        ("media", "content"),
        [
            pytest.param("text/csv", "FIELD", id="csv-field-over-the-csv-module-limit"),
            pytest.param("text/csv", "NUL", id="csv-with-nul-bytes"),
            pytest.param(XLSX_MEDIA_TYPE, "TRUNCATED", id="xlsx-cut-in-half"),
            pytest.param("application/x-ndjson", "UTF16", id="ndjson-in-utf-16"),
        ],
    )
    async def test_hostile_files_are_refused_or_rejected_never_a_failure(
        self, world: World, media: str, content: str
    ) -> None:
        header = b"alert_id,alert_type,subject_id_number,occurred_on,amount\n"
        row = f"B-1,medical_insurance.large_out_of_pocket,{factories.resident_id(50)},2026-11-01,"
        files = {
            "FIELD": header + row.encode() + b'"' + b"9" * 200_000 + b'"\n',
            "NUL": header + row.encode() + b"1\x00\n",
            "TRUNCATED": _truncated_xlsx(),
            "UTF16": _alert("B-2", 51).decode().encode("utf-16"),
        }
        op = next(op for op in _post_routes(world.stack) if op.path == "/v1/alerts:bulk")
        before = await world.row_counts()
        response = await _send(world, op, files[content], media)

        if response.status_code == 202:
            job = await _finished(world, response.json()["status_url"])
            assert job["status"] == "done", job
            assert job["counts"]["accepted"] == 0, job
        else:
            assert_problem(response, 415, 422)
            assert await world.row_counts() == before


async def _finished(world: World, url: str) -> dict[str, Any]:
    client = world.stack.client("department", "medical_insurance")
    for _ in range(400):
        response = await world.stack.signed("GET", url, client)
        body: dict[str, Any] = response.json()
        if body["status"] in ("done", "failed"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("the bulk job did not finish")


def _roster_csv(rows: list[dict[str, Any]], *, encoding_errors: str = "strict") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(roster.HEADERS)
    for row in rows:
        writer.writerow([row.get(c.key, "") for c in roster.COLUMNS])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8", errors=encoding_errors)


class TestRosterFiles:
    async def test_hostile_cells_are_rejected_row_by_row(self, world: World, backend: str) -> None:
        nul = harness.household_rows("R-NUL", [81, 82])
        nul[0]["name"] = "户\x00主"
        rows = [
            *nul,
            *harness.household_rows("R-LONG\x00", [83]),
            *harness.household_rows("R-" + "9" * 5000, [84]),
            *harness.household_rows("R-OK", [86]),
        ]
        op = next(op for op in _post_routes(world.stack) if op.path == "/v1/roster:import")

        response = await _send(world, op, _roster_csv(rows), "text/csv")

        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert_problem(response, response.status_code)
            refused = 3
        else:
            refused = response.json()["rejected_rows"]
        record(
            "hostile",
            {
                "check": f"roster cells: NUL (dropped), 5,000-char roster number (rejected), {backend}",
                "inputs_tried": 3,
                "refused": refused,
                "server_errors": 0,
            },
        )

    async def test_a_file_in_no_known_encoding_is_a_422(self, world: World) -> None:
        rows = harness.household_rows("R-SUR", [85])
        rows[0]["name"] = "a\ud800b"  # written as bytes that neither UTF-8 nor GB18030 read
        op = next(op for op in _post_routes(world.stack) if op.path == "/v1/roster:import")
        before = await world.row_counts()

        response = await _send(
            world, op, _roster_csv(rows, encoding_errors="surrogatepass"), "text/csv"
        )

        problem = assert_problem(response, 422)
        assert "file.encoding" in json.dumps(problem), problem
        assert await world.row_counts() == before

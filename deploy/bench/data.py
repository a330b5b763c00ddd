"""Synthetic workloads: department alerts, declarations and a large household registry."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any, Final

import asyncpg

from deploy.demo import make_resident_id
from services.intake import schemas
from services.intake import service as intake_service
from services.intake.catalogue import default_catalogue
from shared.auth import ClientRecord, signed_headers
from shared.clock import SystemClock
from shared.contracts.registry import encode
from shared.pii import PiiCipher
from shared.regions import default_region_table

COUNTY: Final = "141122"
OCCURRED: Final = "2026-11-01"
# The department that pushes most, and the one whose alerts repeat a person already alerted.
PRIMARY: Final = ("medical_insurance", "medical_insurance.large_out_of_pocket")
SECOND: Final = ("civil_affairs", "civil_affairs.dibao_application")


def villages() -> list[str]:
    """The village codes of the demo county."""
    return [r.code for r in default_region_table().villages_of(COUNTY)]


def resident_id(serial: int) -> str:
    """A valid resident ID number, distinct per serial (up to 36.5 million of them)."""
    born = date(1940, 1, 1) + timedelta(days=serial // 1000)
    return make_resident_id(COUNTY, born, serial % 1000)


# Both S1 and its bare peer push these first and wait for them, so neither side's start-up
# (imports, joining the consumer group) is timed: county workers run for months.
WARM_UP = 20
WARM_UP_FROM = 30_000_000  # serials no push reaches (a push of n alerts uses 0 … n-1)


def warm_up_alerts() -> list[dict[str, Any]]:
    """The warm-up push: WARM_UP alerts about people outside every measured push."""
    return [alert(WARM_UP_FROM + n, village=villages()[0]) for n in range(WARM_UP)]


def alert(
    serial: int, *, village: str, department: tuple[str, str] = PRIMARY, tag: str = "A"
) -> dict[str, Any]:
    """One department alert about person `serial` (about 250 bytes of JSON)."""
    body: dict[str, Any] = {
        "alert_id": f"{tag}-{department[0][:4]}-{serial}",
        "alert_type": department[1],
        "subject_id_number": resident_id(serial),
        "village_code": village,
        "occurred_on": OCCURRED,
        "details": {"batch": tag},
    }
    if department == PRIMARY:
        body["amount"] = 52000.0
    return body


def county_push(
    total: int, *, duplicate_share: float = 0.10, seed: int = 1
) -> list[dict[str, Any]]:
    """A county's monthly push: `total` alerts, a share of them a second department's alert
    about a person the first department already reported (cross-department duplicates)."""
    rng = random.Random(seed)
    codes = villages()
    repeats = int(total * duplicate_share)
    people = total - repeats
    out = [alert(n, village=codes[n % len(codes)]) for n in range(people)]
    for n in rng.sample(range(people), repeats):
        out.append(alert(n, village=codes[n % len(codes)], department=SECOND))
    rng.shuffle(out)
    return out


def declaration(serial: int, village: str) -> dict[str, Any]:
    """One self-declaration as the mini-program files it (about 0.5 KB of JSON)."""
    return {
        "applicant": {"name": "张三", "id_number": resident_id(serial), "phone": "13800138000"},
        "village_code": village,
        "difficulty_types": ["illness"],
        "description": "家中主要劳动力患大病，医疗支出大，申请纳入监测帮扶" * 2,
        "income_last_12_months": 5200.0,
        "members": [],
        "consent": True,
    }


def signed_request(
    client: dict[str, Any], method: str, path: str, body: bytes, *, host: str = "bench"
) -> bytes:
    """A whole HTTP/1.1 request with the intake HMAC headers (keep-alive)."""
    headers = signed_headers(client["client_id"], client["secret"], method, path, body, time.time())
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def alert_envelopes(
    cipher: PiiCipher, serials: list[int], *, department: str = PRIMARY[0]
) -> list[tuple[bytes, bytes]]:
    """(key, value) Kafka records of intake.alert_received events, built by intake's own code,
    for a feed that goes straight onto the topic (a province batch skips HTTP)."""
    ctx = intake_service.IntakeContext(
        outbox=intake_service.intake_outbox(),
        cipher=cipher,
        clock=SystemClock(),
        catalogue=default_catalogue(),
    )
    client = ClientRecord(
        client_id=f"dept-{department}", secret="-", kind="department", department=department
    )
    codes = villages()
    now = datetime.now().astimezone()
    out = []
    for n in serials:
        body = schemas.AlertCreate.model_validate(alert(n, village=codes[n % len(codes)], tag="P"))
        prepared = intake_service.prepare_alert(
            ctx, client, body, now=now, correlation=uuid.uuid4()
        )
        row = prepared.outbox_row
        out.append((str(row["message_key"]).encode(), str(row["value"]).encode()))
    return out


_MEMBER_COLUMNS: Final = (
    "id",
    "household_id",
    "person_ref",
    "id_cipher",
    "id_masked",
    "relation",
    "is_main_labourer",
    "student_aided",
    "migrant_worker",
    "receives_basic_pension",
    "medical_insured",
    "dropout_risk",
    "in_roster",
)


def _household_id(serial: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-9000-{serial // 3:012x}")


async def load_registry(
    conn: asyncpg.Connection, cipher: PiiCipher, *, persons: int, alerted: int
) -> float:
    """Fill screening's registry with `persons` members in households of three; return seconds.

    Persons 0 … alerted-1 are the ones alerts will name: they get their real keyed hash and
    ciphertext (computed here, loaded with COPY). The rest get unique stand-in refs made by
    the server, which is all matching needs of them.
    """
    started = time.perf_counter()
    now = datetime.now().astimezone()
    codes = villages()
    households = (persons + 2) // 3
    await conn.execute(
        """
        INSERT INTO household (id, roster_no, village_code, region_code, address, provisional,
                               labels, facts, created_at, updated_at)
        SELECT ('00000000-0000-4000-9000-' || lpad(to_hex(h), 12, '0'))::uuid,
               'BENCH-' || h, v.codes[1 + h % array_length(v.codes, 1)],
               v.codes[1 + h % array_length(v.codes, 1)], h % 97 || '号', false,
               '["脱贫户"]', '{}', $2, $2
        FROM generate_series(0, $1 - 1) AS h, (SELECT $3::text[] AS codes) AS v
        """,
        households,
        now,
        codes,
    )
    records = []
    for n in range(alerted):
        rid = resident_id(n)
        records.append(
            (
                uuid.UUID(int=(0x4000 << 64) | n),
                _household_id(n),
                cipher.keyed_hash(rid),
                cipher.encrypt(rid),
                rid[:6] + "********" + rid[14:],
                "户主" if n % 3 == 0 else "子女",
                n % 3 == 0,
                False,
                False,
                False,
                True,
                False,
                True,
            )
        )
    await conn.copy_records_to_table("member", records=records, columns=list(_MEMBER_COLUMNS))
    await conn.execute(
        """
        INSERT INTO member (id, household_id, person_ref, id_cipher, id_masked, relation,
                            is_main_labourer, student_aided, migrant_worker,
                            receives_basic_pension, medical_insured, dropout_risk, in_roster)
        SELECT uuid_in(lpad(to_hex(n), 32, '0')::cstring),
               ('00000000-0000-4000-9000-' || lpad(to_hex(n / 3), 12, '0'))::uuid,
               'stand-in-' || n, 'x', '141122********0000', '子女',
               false, false, false, false, true, false, true
        FROM generate_series($1::bigint, $2 - 1) AS n
        """,
        alerted,
        persons,
    )
    await conn.execute("ANALYZE household")
    await conn.execute("ANALYZE member")
    return time.perf_counter() - started


def json_bytes(value: Any) -> bytes:
    """Compact JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def envelope_bytes(envelope: Any) -> bytes:
    """An event envelope as it goes on the wire."""
    return encode(envelope)

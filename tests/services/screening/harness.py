"""Screening on its own, for service and route tests: one database, the app, tokens, rosters."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.screening import roster
from services.screening.app import create_app
from services.screening.bench_roster import resident_id
from services.screening.models import Household, Member, RiskEpisode, Signal
from services.screening.settings import ScreeningSettings
from shared.auth import Principal, Role, issue_token
from shared.clock import FrozenClock, utc_now
from shared.db import UnitOfWork
from shared.pii import PiiCipher
from shared.regions import default_region_table
from shared.resident_id import birth_date_of, mask_resident_id
from shared.secrets import Secrets
from shared.settings import DatabaseSettings

COUNTY = "141122"
VILLAGE = "141122100201"  # 东关村, 天宁镇
OTHER_VILLAGE = "141122101201"  # 夏家营村, 夏家营镇
OTHER_COUNTY_VILLAGE = "141122202201"  # same county, 东坡底乡
REGIONS = default_region_table()


def person(serial: int, born: date | None = None) -> str:
    """Return a valid resident ID, distinct per serial (born 1970 unless given)."""
    day = born or date(1970, 1, 1) + timedelta(days=serial // 900)
    return resident_id(COUNTY, day, serial % 900)


def principal(
    role: Role = "county_officer", region: str = COUNTY, sub: str = "tester"
) -> Principal:
    """Return a caseworker principal."""
    return Principal(sub=sub, role=role, region=region)


def member_row(
    roster_no: str,
    id_number: str,
    *,
    name: str = "王建国",
    relation: str = "户主",
    village: str = VILLAGE,
    **values: Any,
) -> dict[str, Any]:
    """Return one roster row as column key → cell; household columns only where given."""
    row: dict[str, Any] = {
        "roster_no": roster_no,
        "village_code": village,
        "name": name,
        "id_number": id_number,
        "relation": relation,
    }
    row.update(values)
    return row


def household_rows(
    roster_no: str, serials: Iterable[int], **household: Any
) -> list[dict[str, Any]]:
    """Return a household's rows: the first serial is the head, the others children."""
    rows = []
    for k, serial in enumerate(serials):
        rows.append(
            member_row(
                roster_no,
                person(serial),
                name=f"成员{serial}",
                relation="户主" if k == 0 else "之子",
                **(
                    household
                    if k == 0
                    else {"village_code": household.get("village_code", VILLAGE)}
                ),
            )
        )
    return rows


def write_roster(path: Path, rows: Iterable[dict[str, Any]], fmt: roster.Format = "xlsx") -> Path:
    """Write rows (dicts keyed by column key) as a roster file with the template's headers."""
    cells = [[row.get(c.key, "") for c in roster.COLUMNS] for row in rows]
    if fmt == "xlsx":
        roster.write_xlsx(path, roster.HEADERS, cells)
    else:
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            roster.write_csv(fh, roster.HEADERS, cells)
    return path


def csv_bytes(rows: Iterable[dict[str, Any]], headers: Iterable[str] | None = None) -> bytes:
    """Return a CSV roster (UTF-8 with BOM) in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    heads = list(headers or roster.HEADERS)
    keys = [roster.COLUMN_BY_KEY[k].key for k in (_key_of(h) for h in heads)]
    writer.writerow(heads)
    for row in rows:
        writer.writerow([row.get(k, "") for k in keys])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _key_of(header: str) -> str:
    for c in roster.COLUMNS:
        if c.header == header:
            return c.key
    raise KeyError(header)


@dataclass
class Screening:
    """The screening app over ASGI, with what tests need around it."""

    app: FastAPI
    http: httpx.AsyncClient
    uow: UnitOfWork
    cipher: PiiCipher
    secrets: Secrets
    clock: FrozenClock

    def token(
        self, role: Role = "county_officer", region: str = COUNTY, sub: str | None = None
    ) -> str:
        """Return a JWT for a caseworker."""
        return issue_token(
            self.secrets.jwt_secret,
            sub=sub or f"{role}-{region}",
            role=role,
            region=region,
            # Tokens are checked against the real clock, whatever the app's frozen one says.
            now=utc_now(),
            ttl=timedelta(hours=1),
        )

    def auth(
        self, role: Role = "county_officer", region: str = COUNTY, sub: str | None = None
    ) -> dict[str, str]:
        """Return the Authorization header of a caseworker."""
        return {"Authorization": f"Bearer {self.token(role, region, sub)}"}


def screening_app(url: str, secrets: Secrets, clock: FrozenClock, var: Path) -> FastAPI:
    """Build the screening app on a database."""
    return create_app(
        ScreeningSettings(database=DatabaseSettings(url=url), var_dir=var),
        secrets=secrets,
        clock=clock,
    )


@dataclass(frozen=True)
class Seeded:
    """Ids of a household put into the registry directly."""

    household_id: uuid.UUID
    member_ids: tuple[uuid.UUID, ...]
    episode_id: uuid.UUID | None


async def seed_household(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    serials: Iterable[int],
    now: datetime,
    provisional: bool = True,
    roster_no: str | None = None,
    region: str = VILLAGE,
    signals: int = 1,
    alert_type: str = "medical_insurance.large_out_of_pocket",
    amount: Decimal | None = Decimal("52000"),
) -> Seeded:
    """Put a household into the registry as a signal (provisional) or a roster would."""
    household = Household(
        id=uuid.uuid4(),
        roster_no=roster_no,
        village_code=region if len(region) == 12 else None,
        region_code=region,
        provisional=provisional,
        labels=[],
        facts={},
        created_at=now,
        updated_at=now,
    )
    session.add(household)
    await session.flush()
    members = []
    for k, serial in enumerate(serials):
        number = person(serial)
        member = Member(
            id=uuid.uuid4(),
            household_id=household.id,
            person_ref=cipher.keyed_hash(number),
            id_cipher=cipher.encrypt(number),
            id_masked=mask_resident_id(number),
            name=f"成员{serial}",
            relation=("self" if provisional else "head") if k == 0 else "child",
            birth_date=birth_date_of(number),
            in_roster=not provisional,
        )
        session.add(member)
        members.append(member)
    await session.flush()
    episode_id = None
    if signals:
        episode = RiskEpisode(
            id=uuid.uuid4(), household_id=household.id, opened_at=now, last_signal_at=now
        )
        session.add(episode)
        await session.flush()
        episode_id = episode.id
        for n in range(signals):
            session.add(
                Signal(
                    id=uuid.uuid4(),
                    event_id=uuid.uuid4(),
                    household_id=household.id,
                    episode_id=episode.id,
                    member_id=members[0].id,
                    channel="alert",
                    department="medical_insurance",
                    alert_id=f"A-{uuid.uuid4().hex[:8]}-{n}",
                    alert_type=alert_type,
                    difficulty_types=[],
                    amount=amount,
                    occurred_on=now.date(),
                    received_at=now,
                )
            )
        await session.flush()
    return Seeded(household.id, tuple(m.id for m in members), episode_id)

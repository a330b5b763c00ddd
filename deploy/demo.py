"""Demo principals and demo households for the embedded default (never in production)."""

from __future__ import annotations

import json
import secrets as pysecrets
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.catalogue import default_catalogue
from services.screening.models import Household, IncomeRecord, Member
from shared.auth import Role, issue_token
from shared.pii import PiiCipher
from shared.resident_id import mask_resident_id

DEMO_COUNTY = "141122"  # 交城县, the county of source document 000
DEMO_TOWNSHIP = "141122100"  # 天宁镇
DEMO_VILLAGES = ("141122100201", "141122101201")  # 东关村 (天宁镇), 夏家营村 (夏家营镇)
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def make_resident_id(region: str, born: date, serial: int) -> str:
    """Return a well-formed resident ID number (GB 11643 check digit) for demo and test data."""
    body = f"{region}{born:%Y%m%d}{serial:03d}"
    total = sum(int(ch) * w for ch, w in zip(body, _WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def write_demo_credentials(path: Path, jwt_secret: str, now: datetime) -> dict[str, Any]:
    """Create the demo clients and caseworkers once; later runs reuse the file."""
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    clients: list[dict[str, Any]] = [
        {
            "client_id": f"dept-{dep.code}",
            "secret": pysecrets.token_urlsafe(24),
            "kind": "department",
            "department": dep.code,
            "name_zh": dep.name_zh,
        }
        for dep in default_catalogue().departments
    ]
    clients.append(
        {"client_id": "miniprogram", "secret": pysecrets.token_urlsafe(24), "kind": "miniprogram"}
    )
    people: list[tuple[str, Role, str]] = [
        ("village-dongguan", "village_officer", DEMO_VILLAGES[0]),
        ("village-xiajiaying", "village_officer", DEMO_VILLAGES[1]),
        ("township-tianning", "township_officer", DEMO_TOWNSHIP),
        ("county-jiaocheng", "county_officer", DEMO_COUNTY),
        ("admin-jiaocheng", "admin", DEMO_COUNTY),
    ]
    caseworkers = [
        {
            "username": sub,
            "role": role,
            "region": region,
            "token": issue_token(
                jwt_secret, sub=sub, role=role, region=region, now=now, ttl=timedelta(days=365)
            ),
        }
        for sub, role, region in people
    ]
    data = {"clients": clients, "caseworkers": caseworkers}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    path.chmod(0o600)
    return data


async def seed_demo_households(session: AsyncSession, cipher: PiiCipher, now: datetime) -> int:
    """Put a few roster households into the screening registry (once)."""
    if (await session.execute(select(Household.id).limit(1))).first() is not None:
        return 0
    today = now.date()
    specs: list[tuple[str, str, list[str], list[tuple[str, str, date, str]], Decimal]] = [
        (
            DEMO_VILLAGES[0],
            "JC-DG-001",
            ["tuopin"],
            [
                ("王建国", "self", date(1968, 3, 2), "full"),
                ("李秀英", "spouse", date(1970, 7, 9), "weak"),
                ("王磊", "child", date(2004, 1, 5), "full"),
            ],
            Decimal("380"),
        ),
        (
            DEMO_VILLAGES[0],
            "JC-DG-002",
            [],
            [
                ("赵德胜", "self", date(1955, 11, 20), "half"),
                ("孙桂兰", "spouse", date(1957, 2, 14), "none"),
            ],
            Decimal("450"),
        ),
        (
            DEMO_VILLAGES[1],
            "JC-XJY-001",
            ["tuopin", "dibao"],
            [
                ("刘永强", "self", date(1975, 5, 30), "full"),
                ("陈梅", "spouse", date(1977, 9, 1), "full"),
                ("刘洋", "child", date(2005, 6, 18), "full"),
                ("刘婷", "child", date(2007, 12, 3), "full"),
            ],
            Decimal("900"),
        ),
    ]
    serial = 100
    for village, roster_no, labels, people, monthly in specs:
        household = Household(
            id=uuid.uuid4(),
            roster_no=roster_no,
            village_code=village,
            region_code=village,
            provisional=False,
            labels=labels,
            facts={},
            created_at=now,
            updated_at=now,
        )
        session.add(household)
        await session.flush()
        for name, relation, born, labour in people:
            serial += 1
            number = make_resident_id(DEMO_COUNTY, born, serial)
            session.add(
                Member(
                    id=uuid.uuid4(),
                    household_id=household.id,
                    person_ref=cipher.keyed_hash(number),
                    id_cipher=cipher.encrypt(number),
                    id_masked=mask_resident_id(number),
                    name=name,
                    relation=relation,
                    birth_date=born,
                    labour_capacity=labour,
                    is_main_labourer=relation == "self",
                )
            )
        month = date(today.year, today.month, 1)
        for _ in range(12):
            month = (month - timedelta(days=1)).replace(day=1)
            session.add(
                IncomeRecord(
                    household_id=household.id, month=month, component="wages", amount=monthly
                )
            )
    return len(specs)

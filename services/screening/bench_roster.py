"""Roster import benchmark: a synthetic county roster, imported twice into a screening database.

    python -m services.screening.bench_roster --url postgresql+asyncpg://…/db [--households 20000]

The first import must finish in under a minute on PostgreSQL for 20,000 households (about
60,000 members); the second, of the same file, must change nothing: the script checks the
counts of households, members and income records and every household's updated_at. The
database is migrated first; use an empty one, the script counts what it finds.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final

from sqlalchemy import func, select
from stdnum.cn import ric

from services.screening import roster, service
from services.screening.models import Household, IncomeRecord, Member
from shared.clock import SystemClock
from shared.db import UnitOfWork, create_engine, make_sessionmaker
from shared.pii import PiiCipher, generate_key_b64
from shared.regions import default_region_table
from shared.settings import DatabaseSettings

DEMO_COUNTY: Final = "141122"
_SURNAMES: Final = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_GIVEN: Final = "建国秀英磊洋婷伟芳娜敏静丽强军杰涛明超霞平刚桂兰"


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")


def resident_id(region: str, born: date, serial: int) -> str:
    """Return a well-formed resident ID number (GB 11643 check character)."""
    body = f"{region}{born:%Y%m%d}{serial:03d}"
    return body + ric.calc_check_digit(body + "0")


@dataclass(frozen=True)
class Counts:
    """What the registry holds, and a digest of every household's updated_at."""

    households: int
    members: int
    incomes: int
    updated_at_digest: str


class _People:
    """Hands out distinct resident IDs with plausible birth dates."""

    def __init__(self, rng: random.Random, serial_offset: int) -> None:
        self.rng = rng
        self.used: dict[date, int] = {}
        self.serial_offset = serial_offset

    def born_between(self, first_year: int, last_year: int) -> tuple[str, date]:
        while True:
            born = date(first_year, 1, 1) + timedelta(
                days=self.rng.randrange((last_year - first_year + 1) * 365)
            )
            taken = self.used.get(born, 0)
            if taken < 900:
                self.used[born] = taken + 1
                return resident_id(DEMO_COUNTY, born, self.serial_offset + taken), born


def synthetic_roster(
    households: int,
    *,
    seed: int = 7,
    villages: Sequence[str] | None = None,
    prefix: str = "BR",
    end_month: date = date(2026, 10, 1),
) -> Iterator[list[object]]:
    """Yield roster rows (in roster.HEADERS order) for a synthetic county, about 3 members each.

    Household columns are filled on every member row, as counties usually do; about a third
    of the optional cells are left blank, as in real sheets.
    """
    rng = random.Random(seed)
    people = _People(rng, serial_offset=0)
    table = default_region_table()
    codes = list(villages or [r.code for r in table.villages_of(DEMO_COUNTY)])
    for n in range(households):
        village = codes[n % len(codes)]
        size = rng.choices((1, 2, 3, 4, 5), weights=(10, 25, 30, 25, 10))[0]
        labels = rng.choice(
            ("脱贫户", "脱贫户、监测户", "一般农户", "低保户", "脱贫户、低保户", "")
        )
        wages = rng.choice((0, 0, 6000, 12000, 24000, 36000))
        operating = rng.choice((0, 0, 0, 2000, 5000, -1500))
        transfer = rng.choice((1200, 2400, 3600, 6000, 0))
        household = {
            "roster_no": f"{prefix}-{n:06d}",
            "village_code": village,
            "address": f"{n % 12 + 1}组{n % 97 + 1}号",
            "labels": labels,
            "income_end_month": f"{end_month:%Y-%m}",
            "wages": Decimal(wages) if wages else "",
            "operating": Decimal(operating) if operating else "",
            "property": Decimal(600) if n % 10 == 0 else "",
            "transfer": Decimal(transfer) if transfer else "",
            "previous_year_income": Decimal(wages + operating + transfer + rng.choice((0, 3000))),
            "mud_brick_only": "是" if n % 50 == 0 else "否",
            "house_unsafe": "否",
            "hazard_zone": "是" if n % 40 == 0 else "",
            "water_unsafe": "否",
            "industry_covered": rng.choice(("是", "否", "")),
            "vehicle": "是" if n % 30 == 0 else "",
        }
        for k in range(size):
            if k == 0:
                number, _ = people.born_between(1950, 1985)
                relation, labour = (
                    "户主",
                    rng.choice(("普通劳动力", "普通劳动力", "弱劳动力", "半劳动力")),
                )
            elif k == 1:
                number, _ = people.born_between(1952, 1988)
                relation, labour = "配偶", rng.choice(("普通劳动力", "弱劳动力", "丧失劳动力"))
            else:
                number, _ = people.born_between(2000, 2018)
                relation, labour = rng.choice(("之子", "之女")), "无劳动力"
            member = {
                "name": rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(_GIVEN),
                "id_number": number,
                "relation": relation,
                "labour_capacity": labour,
                "disability_grade": "二级" if n % 25 == 0 and k == 0 else "",
                "health": rng.choice(("健康", "健康", "健康", "长期慢性病", "患有大病")),
                "schooling": "义务教育" if k >= 2 else "非在校生",
                "migrant_worker": "省外务工" if k == 0 and wages >= 24000 else "未务工",
                "receives_basic_pension": "未参保" if k >= 2 else "已参保",
                "medical_insured": "已参保" if n % 45 else "未参保",
            }
            row = {**household, **member}
            yield [row.get(c.key, "") for c in roster.COLUMNS]


def write_synthetic(path: Path, households: int, fmt: roster.Format, **kwargs: object) -> int:
    """Write a synthetic roster file; return its number of data rows."""
    rows = synthetic_roster(households, **kwargs)  # type: ignore[arg-type]
    if fmt == "xlsx":
        return roster.write_xlsx(path, roster.HEADERS, rows)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        return roster.write_csv(fh, roster.HEADERS, rows)


async def registry_counts(uow: UnitOfWork) -> Counts:
    """Count households, members and incomes, and digest every household's updated_at."""
    async with uow.read() as session:
        households = (
            await session.execute(select(func.count()).select_from(Household))
        ).scalar_one()
        members = (await session.execute(select(func.count()).select_from(Member))).scalar_one()
        incomes = (
            await session.execute(select(func.count()).select_from(IncomeRecord))
        ).scalar_one()
        stamps = (
            await session.execute(select(Household.id, Household.updated_at).order_by(Household.id))
        ).all()
    digest = hashlib.sha256("".join(f"{i}{u.isoformat()}" for i, u in stamps).encode()).hexdigest()
    return Counts(households, members, incomes, digest)


async def run(
    url: str, households: int, fmt: roster.Format, work: Path, *, budget: float | None = None
) -> int:
    """Generate, import, re-import, check; print the timings; return a process exit code.

    Non-zero when the re-import changed anything, or when the first import took longer
    than budget seconds.
    """
    from deploy.migrate import migrate

    await migrate("screening", url)
    path = work / f"roster-{households}.{fmt}"
    started = time.perf_counter()
    rows = write_synthetic(path, households, fmt)
    _say(
        f"generated {rows} rows ({households} households) in {time.perf_counter() - started:.1f} s"
    )
    cipher = PiiCipher.from_base64(generate_key_b64(), generate_key_b64())
    engine = create_engine(DatabaseSettings(url=url))
    uow = UnitOfWork(make_sessionmaker(engine))
    try:
        before = await registry_counts(uow)
        timings = []
        summaries = []
        for attempt in ("first import", "re-import"):
            started = time.perf_counter()
            summary = await service.import_roster(
                uow,
                path=path,
                fmt=fmt,
                cipher=cipher,
                clock=SystemClock(),
                actor="bench",
                scope=DEMO_COUNTY,
                regions=default_region_table(),
                options=service.ImportOptions(file_name=path.name),
            )
            timings.append(time.perf_counter() - started)
            summaries.append(summary)
            _say(f"{attempt}: {timings[-1]:.1f} s  {summary.counts}")
            if attempt == "first import":
                after_first = await registry_counts(uow)
        after_second = await registry_counts(uow)
    finally:
        await engine.dispose()
    created = after_first.households - before.households
    ok = (
        created == households
        and after_second == after_first
        and summaries[1].counts["households_unchanged"] == households
        and (budget is None or timings[0] <= budget)
    )
    _say(
        f"households={after_first.households} members={after_first.members} "
        f"incomes={after_first.incomes} first={timings[0]:.1f}s reimport={timings[1]:.1f}s "
        f"reimport_changed_nothing={after_second == after_first}"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point: python -m services.screening.bench_roster --url …"""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="screening database (SQLAlchemy async URL)")
    parser.add_argument("--households", type=int, default=20000)
    parser.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds the first import may take (0: none)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        return asyncio.run(
            run(args.url, args.households, args.format, Path(work), budget=args.budget or None)
        )


if __name__ == "__main__":
    raise SystemExit(main())

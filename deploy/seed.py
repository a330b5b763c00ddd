"""Demo datasets loaded by `fangpin seed`: a registry that reproduces 表七/1 for Jiaocheng.

Deployment tooling, like `deploy/demo.py`: it writes each service's own database with that
service's own models, the way a data migration would; the services themselves never read
each other's tables.

`seed_jiaocheng` writes synthetic households, members (with well-formed resident IDs, stored
the way screening stores them: cipher, mask, keyed hash) and village profiles into the
screening registry, so that the township report computed from that registry equals the
printed 目前交城县脱贫户分布情况表 (domain.md §7.1) in every cell.  The people are invented;
only the per-township counts come from the table.  Never load this into production.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from deploy.demo import DEMO_COUNTY, make_resident_id
from services.casework.deadlines import CST, due_instant
from services.casework.models import Case, CaseDeadline
from services.screening.models import Household, Member, VillageProfile
from shared.db import dialect_of
from shared.pii import PiiCipher
from shared.regions import Region, RegionTable, canonical_name
from shared.resident_id import mask_resident_id

ROSTER_PREFIX: Final = "JCS-"
# Fixed, so the households' ids are the same in every run and in both services' databases.
_NAMESPACE: Final = uuid.UUID("6f1c2a8e-5b7d-4c1e-9a3f-0d2b4e6a8c10")


@dataclass(frozen=True)
class TownshipCounts:
    """One printed row of 表七/1: the counts the seed has to reproduce."""

    printed_name: str
    escaped_households: int
    escaped_persons: int
    unstable_households: int
    unstable_persons: int
    marginal_households: int
    marginal_persons: int
    escaped_villages: int


# The ten reporting units of 表七/1 with the numbers the seed generates.  The test suite keeps
# its own transcription of the printed table and compares the report against that one.
JIAOCHENG: Final[tuple[TownshipCounts, ...]] = (
    TownshipCounts("东坡底乡", 1164, 2835, 55, 106, 19, 42, 14),
    TownshipCounts("庞泉沟镇", 419, 929, 34, 65, 13, 28, 8),
    TownshipCounts("（会立）", 975, 2319, 15, 40, 20, 51, 17),
    TownshipCounts("水峪贯镇", 1175, 3434, 25, 54, 12, 32, 11),
    TownshipCounts("岭底", 870, 2280, 90, 208, 16, 43, 10),
    TownshipCounts("洪相镇", 1047, 2548, 39, 83, 20, 46, 2),
    TownshipCounts("西社镇", 1038, 2659, 24, 49, 25, 79, 5),
    TownshipCounts("天宁镇", 1218, 2586, 80, 135, 0, 0, 0),
    TownshipCounts("西营镇", 1777, 4639, 75, 210, 0, 0, 0),
    TownshipCounts("夏家营镇", 1372, 2996, 39, 81, 24, 73, 0),
)

_SURNAMES: Final = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
)
_GIVEN: Final = "建国秀英永强桂兰德胜海燕志明玉梅文华春生俊杰丽娟红霞国庆伟东小龙晓红金凤"
# Ordinary (non-脱贫) villages given to a township that has none in the region table.
_ORDINARY_VILLAGES: Final = 2


@dataclass(frozen=True)
class SeedPerson:
    """One synthetic person of the dataset."""

    township_code: str
    village_code: str
    roster_no: str
    relation: str
    name: str
    born: date
    id_number: str


@dataclass(frozen=True)
class SeedHousehold:
    """One synthetic household with its labels and members."""

    roster_no: str
    township_code: str
    village_code: str
    labels: tuple[str, ...]
    people: tuple[SeedPerson, ...]


@dataclass(frozen=True)
class SeedVillage:
    """A village of the dataset and whether it is a 脱贫村."""

    code: str
    name: str
    escaped: bool


@dataclass(frozen=True)
class SeedSummary:
    """What a seed run wrote (zeros when the dataset was already there)."""

    loaded: bool
    households: int
    members: int
    villages: int


def household_uuid(roster_no: str) -> uuid.UUID:
    """Return the dataset's id for a household, the same in screening and casework."""
    return uuid.uuid5(_NAMESPACE, roster_no)


def township_for(regions: RegionTable, printed_name: str) -> Region:
    """Return the township a printed row name stands for (（会立） → 会立乡, 岭底 → 岭底乡)."""
    found = regions.find(printed_name, within=DEMO_COUNTY, level="township")
    if len(found) != 1:
        raise LookupError(f"{printed_name!r} names {len(found)} townships of {DEMO_COUNTY}")
    return found[0]


def _sizes(households: int, persons: int) -> list[int]:
    """Spread persons over households as evenly as possible (each household ≥ 1 person)."""
    if households == 0:
        return []
    if persons < households:
        raise ValueError("every household has at least one person")
    base, extra = divmod(persons, households)
    return [base + 1 if i < extra else base for i in range(households)]


def _villages(regions: RegionTable, township: Region, escaped: int) -> list[SeedVillage]:
    """Return the township's villages: the region table's (ordinary) plus synthetic ones."""
    known = regions.villages_of(township.code)
    villages = [SeedVillage(code=v.code, name=v.name, escaped=False) for v in known]
    short = canonical_name(township.name)
    prefix = township.code[:9]
    # Synthetic village numbers start after the highest 2xx (村) number in use.
    used = [int(v.code[9:]) for v in known if v.code[9] == "2"]
    number = max(used, default=200)
    missing = max(0, _ORDINARY_VILLAGES - len(villages))
    for index in range(missing + escaped):
        number += 1
        villages.append(
            SeedVillage(
                code=f"{prefix}{number:03d}",
                name=f"{short}{number - 200:02d}村",
                escaped=index >= missing,
            )
        )
    return villages


def _person_id(serial_no: int) -> tuple[date, str]:
    """Return a birth date and resident ID unique to the dataset's serial_no."""
    # 37 is coprime with 27,000, so serial_no → day is one-to-one within each block of
    # 27,000 people, and the block number goes into the ID's sequence digits.
    born = date(1940, 1, 1) + timedelta(days=(serial_no * 37) % 27_000)
    sequence = 100 + serial_no // 27_000
    return born, make_resident_id(DEMO_COUNTY, born, sequence)


def _name(serial_no: int) -> str:
    surname = _SURNAMES[serial_no % len(_SURNAMES)]
    given = _GIVEN[(serial_no * 7) % len(_GIVEN)] + _GIVEN[(serial_no * 13 + 5) % len(_GIVEN)]
    return surname + given


def jiaocheng_dataset(regions: RegionTable) -> tuple[list[SeedVillage], list[SeedHousehold]]:
    """Return the whole synthetic dataset, the same on every call."""
    villages: list[SeedVillage] = []
    households: list[SeedHousehold] = []
    serial_no = 0
    for counts in JIAOCHENG:
        township = township_for(regions, counts.printed_name)
        own = _villages(regions, township, counts.escaped_villages)
        villages.extend(own)
        groups: list[tuple[tuple[str, ...], list[int]]] = [
            (
                ("tuopin", "unstable_escaped", "monitored"),
                _sizes(counts.unstable_households, counts.unstable_persons),
            ),
            (
                ("tuopin",),
                _sizes(
                    counts.escaped_households - counts.unstable_households,
                    counts.escaped_persons - counts.unstable_persons,
                ),
            ),
            (
                ("marginal", "monitored"),
                _sizes(counts.marginal_households, counts.marginal_persons),
            ),
        ]
        number = 0
        for labels, sizes in groups:
            for size in sizes:
                village = own[number % len(own)]
                number += 1
                roster_no = f"{ROSTER_PREFIX}{township.code[6:9]}-{number:05d}"
                people = []
                for position in range(size):
                    born, id_number = _person_id(serial_no)
                    relation = ("self", "spouse")[position] if position < 2 else "child"
                    people.append(
                        SeedPerson(
                            township_code=township.code,
                            village_code=village.code,
                            roster_no=roster_no,
                            relation=relation,
                            name=_name(serial_no),
                            born=born,
                            id_number=id_number,
                        )
                    )
                    serial_no += 1
                households.append(
                    SeedHousehold(
                        roster_no=roster_no,
                        township_code=township.code,
                        village_code=village.code,
                        labels=labels,
                        people=tuple(people),
                    )
                )
    return villages, households


def people_of(households: list[SeedHousehold], township_code: str) -> Iterator[SeedPerson]:
    """Yield the seeded people of one township (tests file signals about them)."""
    for household in households:
        if household.township_code == township_code:
            yield from household.people


async def seed_jiaocheng(
    session: AsyncSession, cipher: PiiCipher, now: datetime, regions: RegionTable
) -> SeedSummary:
    """Load the Jiaocheng dataset into the screening registry once; later runs do nothing."""
    existing = select(Household.id).where(Household.roster_no.like(f"{ROSTER_PREFIX}%")).limit(1)
    if (await session.execute(existing)).first() is not None:
        return SeedSummary(loaded=False, households=0, members=0, villages=0)
    villages, households = jiaocheng_dataset(regions)
    await session.execute(
        insert(VillageProfile),
        [
            {
                "village_code": v.code,
                "name": v.name,
                "labels": ["tuopin_village"] if v.escaped else [],
                "updated_at": now,
            }
            for v in villages
        ],
    )
    household_rows = []
    member_rows = []
    for household in households:
        household_id = household_uuid(household.roster_no)
        household_rows.append(
            {
                "id": household_id,
                "roster_no": household.roster_no,
                "village_code": household.village_code,
                "region_code": household.village_code,
                "provisional": False,
                "labels": list(household.labels),
                "facts": {},
                "created_at": now,
                "updated_at": now,
            }
        )
        for person in household.people:
            member_rows.append(
                {
                    "id": uuid.uuid4(),
                    "household_id": household_id,
                    "person_ref": cipher.keyed_hash(person.id_number),
                    "id_cipher": cipher.encrypt(person.id_number),
                    "id_masked": mask_resident_id(person.id_number),
                    "name": person.name,
                    "relation": person.relation,
                    "birth_date": person.born,
                    "labour_capacity": "full",
                    "is_main_labourer": person.relation == "self",
                    "in_roster": True,
                }
            )
    # Batches keep each statement's parameter list well inside the drivers' limits.
    for start in range(0, len(household_rows), 2000):
        await session.execute(insert(Household), household_rows[start : start + 2000])
    for start in range(0, len(member_rows), 2000):
        await session.execute(insert(Member), member_rows[start : start + 2000])
    if dialect_of(session) == "postgresql":
        # Fresh statistics, so the first report after a bulk load gets a sensible plan.
        for table in ("household", "member", "village_profile"):
            await session.execute(text(f"ANALYZE {table}"))
    return SeedSummary(
        loaded=True,
        households=len(household_rows),
        members=len(member_rows),
        villages=len(villages),
    )


# ------------------------------------------------------------------ casework history (demo)

# Risk factors the demo cases carry, as screening would explain them.
_FACTORS: Final = (
    ("RF-14", "家庭成员患大病或重病"),
    ("RF-15", "家庭成员残疾"),
    ("RF-04", "刚性支出较大"),
    ("RF-19", "住房不安全"),
    ("RF-10", "家庭成员失业"),
    ("RF-16", "在读大学生教育支出"),
    ("RF-07", "产业经营失败"),
    ("RF-11", "主要劳动力弱劳动能力"),
)
_DEPARTMENTS: Final = (
    ("medical_insurance", "medical_insurance.large_out_of_pocket"),
    ("health", "health.serious_illness_diagnosis"),
    ("civil_affairs", "civil_affairs.temporary_assistance"),
    ("housing", "housing.unsafe_house_appraisal"),
    ("human_resources", "human_resources.unemployment_registered"),
)
_EARLY_STAGES: Final = ("opened", "home_verification", "department_crosscheck", "village_publicity")


@dataclass(frozen=True)
class CaseSummary:
    """What the casework part of the seed wrote."""

    loaded: bool
    cases: int
    clocks: int


def _month_end(day: date) -> date:
    first_next = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first_next - timedelta(days=1)


async def seed_jiaocheng_cases(
    session: AsyncSession, now: datetime, regions: RegionTable
) -> CaseSummary:
    """Give the dataset's monitored households a plausible casework history (demo only).

    Every 脱贫不稳定户 and 边缘户 gets an included case opened one to six months ago, with
    its identification, publicity, helper, plan and monthly-visit clocks mostly met on time
    and some late or missed; a few recent cases are still being identified.  Dates come
    from a fixed random sequence relative to `now`, so the dashboard has something to show.
    The 10-working-day clocks are approximated as 14 calendar days: this is demo data, and
    the real clocks come from the working-day calendar when a case moves.
    """
    existing = select(Case.id).limit(1)
    if (await session.execute(existing)).first() is not None:
        return CaseSummary(loaded=False, cases=0, clocks=0)
    _, households = jiaocheng_dataset(regions)
    rng = random.Random(20221)
    today = now.astimezone(CST).date()
    cases: list[dict[str, object]] = []
    clocks: list[dict[str, object]] = []

    def at(day: date, hour: int = 10) -> datetime:
        return datetime(day.year, day.month, day.day, hour, tzinfo=CST)

    def clock(
        case_id: uuid.UUID,
        kind: str,
        bound: str,
        started: date,
        due: date,
        met: date | None,
    ) -> None:
        late_unmet = met is None and due < today
        clocks.append(
            {
                "id": uuid.uuid4(),
                "case_id": case_id,
                "kind": kind,
                "bound": bound,
                "due_date": due,
                "due_at": due_instant(due),
                "started_at": at(started),
                "met_at": at(met) if met is not None and met <= today else None,
                "breached_at": due_instant(due) if late_unmet and bound != "minimum" else None,
                "escalation_level": "village" if late_unmet and bound != "minimum" else None,
                "citation": "demo data (fangpin seed jiaocheng)",
            }
        )

    monitored = [h for h in households if "monitored" in h.labels]
    for index, household in enumerate(monitored):
        case_id = uuid.uuid5(_NAMESPACE, f"case:{household.roster_no}")
        recent = index % 25 == 0
        opened = today - timedelta(days=rng.randint(2, 12) if recent else rng.randint(35, 180))
        category = "unstable_escaped" if "unstable_escaped" in household.labels else "marginal"
        factors = rng.sample(_FACTORS, k=rng.choice((1, 1, 2)))
        roll = rng.random()
        if roll < 0.3:
            source: dict[str, object] = {"kind": "declaration", "receipt_no": f"SB{index:08d}"}
        elif roll < 0.75:
            department, _alert_type = rng.choice(_DEPARTMENTS)
            source = {"kind": "alert", "department": department, "alert_id": f"DEMO-{index}"}
        else:
            source = {"kind": "report", "report_id": f"ZF{index:08d}"}
        head = household.people[0]
        identified = opened + timedelta(days=rng.choice((7, 9, 10, 11, 12, 13, 14, 16, 19)))
        stage = (
            rng.choice(_EARLY_STAGES)
            if recent
            else rng.choice(
                ("monitoring", "assistance", "assistance", "assistance", "risk_eliminated")
            )
        )
        cases.append(
            {
                "id": case_id,
                "household_id": household_uuid(household.roster_no),
                "episode_id": uuid.uuid5(_NAMESPACE, f"episode:{household.roster_no}"),
                "region_code": household.village_code,
                "stage": stage,
                "opened_at": at(opened, 9),
                "head_name": head.name,
                "head_id_masked": mask_resident_id(head.id_number),
                "score": rng.randint(45, 90),
                "level": "high",
                "categories": [category],
                "reasons": [
                    {"code": code, "title_zh": title, "evidence": "", "contribution": 20}
                    for code, title in factors
                ],
                "review_flags": [],
                "sources": [source],
                "deadline_policy": {},
                "facts": {"demo": True},
                "updated_at": now,
            }
        )
        clock(
            case_id,
            "identification",
            "deadline",
            opened,
            opened + timedelta(days=15),
            None if recent else identified,
        )
        publicity = opened + timedelta(days=2)
        clock(
            case_id,
            "publicity_min",
            "minimum",
            publicity,
            publicity + timedelta(days=5),
            None if recent else publicity + timedelta(days=rng.choice((5, 5, 5, 6, 4))),
        )
        if recent:
            continue
        for kind in ("helper_assignment", "assistance_plan"):
            clock(
                case_id,
                kind,
                "deadline",
                identified,
                identified + timedelta(days=14),
                identified + timedelta(days=rng.choice((3, 5, 8, 10, 12, 13, 17))),
            )
        month = _month_end(identified) + timedelta(days=1)
        while month <= today:
            due = _month_end(month)
            # A case whose risk is eliminated owes no more visits; keep its record clean.
            done = rng.random() < 0.9 or due >= today or stage == "risk_eliminated"
            visit = month + timedelta(days=rng.randint(0, 20))
            clock(
                case_id,
                "monthly_visit",
                "recurring",
                identified,
                due,
                visit if done and visit <= today else None,
            )
            month = due + timedelta(days=1)
    for start in range(0, len(cases), 1000):
        await session.execute(insert(Case), cases[start : start + 1000])
    for start in range(0, len(clocks), 2000):
        await session.execute(insert(CaseDeadline), clocks[start : start + 2000])
    return CaseSummary(loaded=True, cases=len(cases), clocks=len(clocks))

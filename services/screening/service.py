"""Screening's use cases besides the event handlers: roster, linking, policies, simulation.

They take a session (or, for the chunked roster import, a unit of work), never commit on
their own, and raise shared.problems errors that the routes render as problem details.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import anyio.to_thread
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.screening import assess, roster, scoring, simulation
from services.screening.models import Household, PolicyRecord, RiskEpisode, RosterImport
from services.screening.policy import ScoringPolicy, load_default_policy, select_policy
from services.screening.repository import (
    EpisodeRepository,
    IncomeSpreadRow,
    KnownMember,
    MergeRepository,
    PolicyAdminRepository,
    PolicyRepository,
    RegistryRepository,
    RosterRepository,
    SimulationRepository,
    chunked,
    scope_prefix,
)
from shared.auth import Principal, Role
from shared.clock import Clock, china_date
from shared.db import UnitOfWork
from shared.pii import PiiCipher
from shared.problems import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
    field_errors_from_pydantic,
)
from shared.regions import RegionTable, full_code, in_scope

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

IMPORT_ROLES: Final[frozenset[Role]] = frozenset({"county_officer", "admin"})
EXPORT_ROLES: Final[frozenset[Role]] = frozenset(
    {"village_officer", "township_officer", "county_officer", "admin"}
)
LINK_ROLES: Final[frozenset[Role]] = EXPORT_ROLES
# Households written per transaction. Small enough that SQLite's single writer lock is
# released between chunks (the worker keeps scoring signals during an import); large
# enough that bulk statements pay off.
CHUNK_HOUSEHOLDS: Final = 2000
# Row errors kept with an import record; the count says how many there were in all.
REJECTIONS_KEPT: Final = 20000
COUNT_KEYS: Final = (
    "households_created",
    "households_updated",
    "households_unchanged",
    "households_rejected",
    "provisional_linked",
    "members_created",
    "members_updated",
    "members_removed",
    "members_moved",
)
INCOME_LOOKBACK: Final = assess.INCOME_LOOKBACK
MAX_SIMULATION_DAYS: Final = 3 * 366


def _require(principal: Principal, roles: frozenset[Role], action_zh: str) -> None:
    if principal.role not in roles:
        raise Forbidden(
            f"role {principal.role} may not {action_zh and 'do this'}",
            detail_zh=f"当前角色无权{action_zh}",
        )


def _visible(principal: Principal, household: Household | None) -> Household:
    if household is None or not in_scope(principal.region, household.region_code):
        raise NotFound("no such household in your region", detail_zh="您的辖区内没有该农户")
    return household


# ------------------------------------------------------------------------- roster import


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportOptions:
    """How to run one import."""

    dry_run: bool = False
    file_name: str | None = None
    # Used for households whose 收入截止月份 is blank.
    default_end_month: date | None = None


@dataclass(slots=True, kw_only=True)
class ImportSummary:
    """What an import did (or, dry, would do) and which rows it refused."""

    import_id: uuid.UUID | None
    format: str
    layout: str
    rows: int
    counts: dict[str, int]
    rejections: list[dict[str, Any]]
    rejections_total: int
    rejected_rows: int
    ignored_columns: list[str]
    dry_run: bool


@dataclass(slots=True)
class _Plan:
    household: roster.RosterHousehold
    digest: str
    household_id: uuid.UUID | None  # None: a new household
    known: dict[str, KnownMember] = field(default_factory=dict)


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


async def import_roster(
    uow: UnitOfWork,
    *,
    path: Path,
    fmt: roster.Format,
    cipher: PiiCipher,
    clock: Clock,
    actor: str,
    scope: str | None,
    regions: RegionTable,
    options: ImportOptions,
    progress: Progress | None = None,
) -> ImportSummary:
    """Read a roster file and upsert its households, chunk by chunk, each chunk committed.

    Idempotent: a household whose rows fingerprint as stored is skipped, so importing the
    same file twice changes nothing, and an import cut short can simply be run again.
    Raises roster.RosterFileError when the file as a whole cannot be read.
    """
    report = progress or (lambda _phase, _done, _total: None)
    started = clock.now()
    reader = roster.RosterReader(
        person_ref=cipher.keyed_hash,
        today=china_date(started),
        is_village=regions.is_village,
        # No scope: an operator's import from the command line, any region of the table.
        in_scope=lambda code: scope is None or in_scope(scope, code),
        default_end_month=options.default_end_month,
    )
    report("read", 0, 0)
    # Parsing and validating is CPU work; a thread keeps the event loop answering meanwhile.
    parsed = await anyio.to_thread.run_sync(reader.read, path, fmt)
    sha = await anyio.to_thread.run_sync(file_sha256, path)
    counts = dict.fromkeys(COUNT_KEYS, 0)
    counts["households_rejected"] = parsed.rejected_households
    total = len(parsed.households)
    report("read", parsed.rows, parsed.rows)
    done = 0
    report("import", 0, total)
    for chunk in chunked(parsed.households, CHUNK_HOUSEHOLDS):
        if options.dry_run:
            async with uow.read() as session:
                await apply_roster(
                    session, chunk, cipher=cipher, now=started, counts=counts, write=False
                )
        else:
            async with uow.transaction() as session:
                await apply_roster(
                    session, chunk, cipher=cipher, now=started, counts=counts, write=True
                )
        done += len(chunk)
        report("import", done, total)
    errors = [e.as_dict() for e in parsed.rejections]
    summary = ImportSummary(
        import_id=None,
        format=fmt,
        layout=parsed.layout,
        rows=parsed.rows,
        counts=counts,
        rejections=errors[:REJECTIONS_KEPT],
        rejections_total=len(errors),
        rejected_rows=len({e["row"] for e in errors}),
        ignored_columns=parsed.ignored_columns,
        dry_run=options.dry_run,
    )
    if not options.dry_run:
        record = RosterImport(
            id=uuid.uuid4(),
            file_sha256=sha,
            file_name=(options.file_name or "")[:200] or None,
            format=fmt,
            imported_by=actor,
            region_code=scope or "",
            started_at=started,
            finished_at=clock.now(),
            summary={
                "rows": parsed.rows,
                "layout": parsed.layout,
                "rejected_rows": summary.rejected_rows,
                "rejections_total": summary.rejections_total,
                "ignored_columns": parsed.ignored_columns,
                **counts,
            },
            rejections=summary.rejections,
            rejections_truncated=len(errors) > REJECTIONS_KEPT,
        )
        async with uow.transaction() as session:
            await RosterRepository(session).save_import(record)
        summary.import_id = record.id
    logger.info(
        "roster import by %s in %s: %s rows, %s",
        actor,
        scope,
        parsed.rows,
        counts,
    )
    return summary


async def apply_roster(
    session: AsyncSession,
    households: Sequence[roster.RosterHousehold],
    *,
    cipher: PiiCipher,
    now: datetime,
    counts: dict[str, int],
    write: bool,
) -> None:
    """Upsert validated roster households by roster number and member person_ref.

    Most households take the set-at-a-time path. A household naming someone registered
    elsewhere (a provisional household from a signal, or another roster household) is
    settled one at a time: provisional households are linked into it, people move.
    """
    repo = RosterRepository(session)
    known_households = await repo.households_by_roster_no([h.roster_no for h in households])
    known_people = await repo.members_by_ref([m.person_ref for h in households for m in h.members])
    plans: list[_Plan] = []
    settle: list[tuple[roster.RosterHousehold, str]] = []
    for household in households:
        digest = household.fingerprint()
        existing = known_households.get(household.roster_no)
        known = {
            m.person_ref: known_people[m.person_ref]
            for m in household.members
            if m.person_ref in known_people
        }
        home = existing.household_id if existing else None
        if any(k.household_id != home for k in known.values()):
            settle.append((household, digest))
        elif existing is not None and existing.content_hash == digest:
            counts["households_unchanged"] += 1
        else:
            plans.append(_Plan(household, digest, home, known))
    if not write:
        for plan in plans:
            _count_plan(plan, counts)
        for household, _digest in settle:
            counts["households_updated"] += 1
            counts["provisional_linked"] += len(
                {
                    known_people[m.person_ref].household_id
                    for m in household.members
                    if m.person_ref in known_people and known_people[m.person_ref].provisional
                }
            )
        return
    await _write_plans(session, plans, cipher=cipher, now=now, counts=counts)
    for household, digest in settle:
        plan = await _settle(session, household, digest, now=now, counts=counts)
        await _write_plans(session, [plan], cipher=cipher, now=now, counts=counts)


def _count_plan(plan: _Plan, counts: dict[str, int]) -> None:
    counts["households_created" if plan.household_id is None else "households_updated"] += 1
    for m in plan.household.members:
        counts["members_updated" if m.person_ref in plan.known else "members_created"] += 1


async def _settle(
    session: AsyncSession,
    household: roster.RosterHousehold,
    digest: str,
    *,
    now: datetime,
    counts: dict[str, int],
) -> _Plan:
    registry = RegistryRepository(session)
    repo = RosterRepository(session)
    refs = [m.person_ref for m in household.members]
    people = await repo.members_by_ref(refs)
    target = await registry.by_roster_no(household.roster_no)
    provisional: list[Household] = []
    for household_id in sorted({k.household_id for k in people.values() if k.provisional}):
        found = await registry.household_for_update(household_id)
        if found is not None and found.merged_into_id is None and found is not target:
            provisional.append(found)
    provisional.sort(key=lambda h: (h.created_at, str(h.id)))
    if target is None and provisional:
        # The roster names someone a signal already made a provisional household for: that
        # household becomes the roster household, keeping the id casework knows it by.
        target = provisional.pop(0)
        counts["provisional_linked"] += 1
    for source in provisional:
        assert target is not None
        merged = await merge_households(session, source=source, target=target, now=now)
        target = merged.survivor
        counts["provisional_linked"] += 1
    people = await repo.members_by_ref(refs)
    home = target.id if target is not None else None
    elsewhere = {k.household_id for k in people.values() if k.household_id != home}
    counts["members_moved"] += sum(1 for k in people.values() if k.household_id != home)
    # Those households just lost members: their stored fingerprints no longer describe them.
    await repo.forget_fingerprints(elsewhere)
    await session.flush()
    return _Plan(household, digest, home, dict(people))


def _member_fields(m: roster.MemberRow) -> dict[str, Any]:
    return {
        "name": m.name,
        "relation": m.relation,
        "birth_date": m.birth_date,
        "labour_capacity": m.labour_capacity,
        "is_main_labourer": bool(m.is_main_labourer),
        "disability_grade": m.disability_grade,
        "health": m.health,
        "schooling": m.schooling,
        "student_aided": m.student_aided,
        "migrant_worker": m.migrant_worker,
        "receives_basic_pension": m.receives_basic_pension,
        "medical_insured": m.medical_insured,
        "dropout_risk": m.dropout_risk,
        "in_roster": True,
        "removed_at": None,
    }


async def _write_plans(
    session: AsyncSession,
    plans: Sequence[_Plan],
    *,
    cipher: PiiCipher,
    now: datetime,
    counts: dict[str, int],
) -> None:
    if not plans:
        return
    repo = RosterRepository(session)
    new_households: list[dict[str, Any]] = []
    household_updates: list[dict[str, Any]] = []
    member_inserts: list[dict[str, Any]] = []
    member_updates: list[dict[str, Any]] = []
    incomes: list[dict[str, Any]] = []
    spreads: list[IncomeSpreadRow] = []
    listed: dict[uuid.UUID, set[str]] = {}
    for plan in plans:
        h = plan.household
        household_id = plan.household_id or uuid.uuid4()
        values: dict[str, Any] = {
            "roster_no": h.roster_no,
            "village_code": h.village_code,
            "region_code": h.village_code,
            "address": h.address,
            "provisional": False,
            "labels": list(h.labels),
            "facts": h.facts,
            "previous_year_income": h.previous_year_income,
            "content_hash": plan.digest,
            "updated_at": now,
        }
        if plan.household_id is None:
            new_households.append(
                {
                    "id": household_id,
                    **values,
                    "merged_into_id": None,
                    "merged_at": None,
                    "created_at": now,
                }
            )
        else:
            household_updates.append({"id": household_id, **values})
            listed[household_id] = {m.person_ref for m in h.members}
        _count_plan(plan, counts)
        for m in h.members:
            known = plan.known.get(m.person_ref)
            if known is not None:
                member_updates.append(
                    {"id": known.member_id, "household_id": household_id, **_member_fields(m)}
                )
            else:
                member_inserts.append(
                    {
                        "id": uuid.uuid4(),
                        "household_id": household_id,
                        "person_ref": m.person_ref,
                        "id_cipher": cipher.encrypt(m.id_number),
                        "id_masked": m.id_masked,
                        **_member_fields(m),
                    }
                )
        incomes.extend(
            {
                "id": uuid.uuid4(),
                "household_id": household_id,
                "month": line.month,
                "component": line.component,
                "amount": line.amount,
            }
            for line in h.monthly
        )
        for annual in h.annual:
            share, last = annual.shares()
            spreads.append(
                IncomeSpreadRow(household_id, annual.end_month, annual.component, share, last)
            )
    await repo.insert_households(new_households)
    await repo.update_households(household_updates)
    # The roster removes only the people it once listed for a household and lists no more;
    # people a caseworker or a signal put there are not the roster's to remove.
    gone = [
        member_id
        for member_id, household_id, ref in await repo.roster_members_of(list(listed))
        if ref not in listed[household_id]
    ]
    await repo.mark_removed(gone, now)
    counts["members_removed"] += len(gone)
    await repo.insert_members(member_inserts)
    await repo.update_members(member_updates)
    await repo.replace_incomes(list(listed), incomes, spreads)


# ---------------------------------------------------------------------------- merging


@dataclass(frozen=True, slots=True)
class MergeResult:
    """Which household survived a link and what moved onto it."""

    survivor: Household
    absorbed: Household
    members_moved: int
    signals_moved: int
    episode_id: uuid.UUID | None


async def merge_households(
    session: AsyncSession, *, source: Household, target: Household, now: datetime
) -> MergeResult:
    """Link a provisional household (source) with a roster household (target).

    Which row survives depends on what casework already knows. Casework keys its live case
    by household id and each case by episode id. If the roster household never had an
    episode, nobody outside screening knows its id: the provisional household survives,
    takes over the roster number and data, and its episodes and case stay where they are.
    Otherwise the roster household survives; the provisional household's open episode is
    closed and its signals join the survivor's open episode (one is opened if needed, with
    a new id, so that casework never sees one episode id under two households).
    """
    registry = RegistryRepository(session)
    merges = MergeRepository(session)
    episodes = EpisodeRepository(session)
    roster_has_head = any(
        m.relation in ("head", "self") for m in await registry.members_of(target.id)
    )
    provisional_heads = [
        m.id for m in await registry.members_of(source.id) if m.relation in ("head", "self")
    ]
    if not await registry.has_episodes(target.id):
        survivor, absorbed = source, target
        carried = (
            target.roster_no,
            target.village_code,
            target.region_code,
            target.address,
            list(target.labels or []),
            dict(target.facts or {}),
            target.previous_year_income,
        )
        target.roster_no = None
        await session.flush()  # frees the unique roster number before the survivor takes it
        (
            survivor.roster_no,
            survivor.village_code,
            survivor.region_code,
            survivor.address,
            survivor.labels,
            survivor.facts,
            survivor.previous_year_income,
        ) = carried
        survivor.provisional = False
    else:
        survivor, absorbed = target, source
    if roster_has_head and provisional_heads:
        # The roster's 户主 stays head; the applicant a signal recorded as "self" is just a
        # member until the roster says what they are.
        await merges.demote_heads(source.id, provisional_heads)
    moved = await merges.move_members(absorbed.id, survivor.id)
    await merges.move_incomes(absorbed.id, survivor.id)
    signals_moved = 0
    episode_id: uuid.UUID | None = None
    if absorbed is source:
        open_source = await episodes.open_episode(source.id)
        if open_source is not None:
            open_target = await episodes.open_episode(survivor.id)
            if open_target is None:
                open_target = RiskEpisode(
                    id=uuid.uuid4(),
                    household_id=survivor.id,
                    opened_at=open_source.opened_at,
                    last_signal_at=open_source.last_signal_at,
                )
                session.add(open_target)
                await session.flush()
            signals_moved = await merges.move_signals(open_source.id, open_target.id)
            open_target.last_signal_at = max(open_target.last_signal_at, open_source.last_signal_at)
            open_source.closed_at = now
            episode_id = open_target.id
            await session.flush()
        await merges.rehome_history(source.id, survivor.id)
    else:
        open_episode = await episodes.open_episode(survivor.id)
        episode_id = open_episode.id if open_episode else None
    absorbed.merged_into_id = survivor.id
    absorbed.merged_at = now
    absorbed.content_hash = None
    absorbed.updated_at = now
    survivor.content_hash = None
    survivor.updated_at = now
    await session.flush()
    return MergeResult(survivor, absorbed, moved, signals_moved, episode_id)


async def link_household(
    session: AsyncSession,
    *,
    principal: Principal,
    household_id: uuid.UUID,
    target_id: uuid.UUID,
    now: datetime,
) -> MergeResult:
    """A caseworker links a provisional household to a roster household of their region."""
    _require(principal, LINK_ROLES, "关联农户")
    registry = RegistryRepository(session)
    if household_id == target_id:
        raise Conflict("a household cannot be linked to itself", detail_zh="不能将农户关联到其自身")
    # Lock both rows in a fixed order so two links racing on the same pair cannot deadlock.
    locked = {i: await registry.household_for_update(i) for i in sorted((household_id, target_id))}
    source = _visible(principal, locked[household_id])
    target = _visible(principal, locked[target_id])
    if source.merged_into_id is not None or target.merged_into_id is not None:
        raise Conflict(
            "one of the households was already merged into another",
            detail_zh="其中一户已并入其他农户",
        )
    if not source.provisional:
        raise Conflict(
            "only a provisional household can be linked", detail_zh="只有临时农户可以关联到台账农户"
        )
    if target.provisional:
        raise Conflict(
            "the target must be a roster household", detail_zh="关联目标必须是台账中的农户"
        )
    result = await merge_households(session, source=source, target=target, now=now)
    logger.info(
        "household %s linked with %s by %s; survivor %s",
        household_id,
        target_id,
        principal.sub,
        result.survivor.id,
    )
    return result


# ----------------------------------------------------------------------------- export


_HEAD_FIRST: Final = {"head": 0, "self": 0, "spouse": 1}


async def export_roster(
    session: AsyncSession,
    *,
    principal: Principal,
    region: str,
    unmask: bool,
    cipher: PiiCipher,
    include_provisional: bool = False,
) -> list[roster.ExportHousehold]:
    """Return the roster of a region for export; resident IDs masked unless an admin asks."""
    _require(principal, EXPORT_ROLES, "导出台账")
    prefix = scope_prefix(region)
    if prefix is None or not in_scope(principal.region, region):
        raise Forbidden("the region is outside yours", detail_zh="所选区域不在您的辖区内")
    if unmask and principal.role != "admin":
        raise Forbidden(
            "only an admin may export unmasked resident IDs",
            detail_zh="只有管理员可以导出未脱敏的身份证号",
        )
    registry = RegistryRepository(session)
    out: list[roster.ExportHousehold] = []
    after: tuple[str, str, uuid.UUID] | None = None
    while True:
        page = await registry.roster_page(
            prefix, after=after, limit=CHUNK_HOUSEHOLDS, include_provisional=include_provisional
        )
        if not page:
            break
        last = page[-1]
        after = (last.region_code, last.roster_no or "", last.id)
        ids = [h.id for h in page]
        members: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for m in await registry.members_of_many(ids):
            members[m.household_id].append(m)
        incomes: dict[uuid.UUID, list[roster.IncomeLine]] = defaultdict(list)
        for i in await registry.incomes_of_many(ids):
            incomes[i.household_id].append(roster.IncomeLine(i.month, i.component, i.amount))
        for h in page:
            people = sorted(
                members[h.id], key=lambda m: (_HEAD_FIRST.get(m.relation or "", 2), str(m.id))
            )
            out.append(
                roster.ExportHousehold(
                    roster_no=h.roster_no,
                    village_code=h.village_code,
                    address=h.address,
                    labels=list(h.labels or []),
                    facts=dict(h.facts or {}),
                    previous_year_income=h.previous_year_income,
                    incomes=incomes[h.id],
                    members=[
                        roster.ExportMember(
                            id_display=cipher.decrypt(m.id_cipher) if unmask else m.id_masked,
                            name=m.name,
                            relation=m.relation,
                            labour_capacity=m.labour_capacity,
                            is_main_labourer=m.is_main_labourer,
                            disability_grade=m.disability_grade,
                            health=m.health,
                            schooling=m.schooling,
                            student_aided=m.student_aided,
                            dropout_risk=m.dropout_risk,
                            migrant_worker=m.migrant_worker,
                            receives_basic_pension=m.receives_basic_pension,
                            medical_insured=m.medical_insured,
                        )
                        for m in people
                    ],
                )
            )
    if unmask:
        # Who took clear resident IDs out, and how many households: never the IDs themselves.
        logger.warning(
            "unmasked roster export by %s of region %s: %s households",
            principal.sub,
            region,
            len(out),
        )
    return out


# --------------------------------------------------------------------------- policies


def _admin(principal: Principal) -> None:
    _require(principal, frozenset({"admin"}), "管理评分政策")


def _manages(principal: Principal, region_code: str) -> bool:
    return bool(region_code) and in_scope(principal.region, region_code)


def parse_candidate(document: Any) -> ScoringPolicy:
    """Validate a policy document, or raise a 422 problem listing every invalid field."""
    try:
        return ScoringPolicy.model_validate(document)
    except ValidationError as exc:
        raise ValidationFailed(
            [
                FieldError(
                    "policy." + e.field if e.field != "body" else "policy",
                    e.code,
                    e.message_zh,
                    e.message_en,
                )
                for e in field_errors_from_pydantic(exc.errors())
            ]
        ) from None


async def propose_policy(
    session: AsyncSession, *, principal: Principal, document: Any, now: datetime
) -> PolicyRecord:
    """Store a new policy version as proposed."""
    _admin(principal)
    policy = parse_candidate(document)
    if not _manages(principal, policy.region_code):
        raise Forbidden(
            "you may only propose policies for your own region",
            detail_zh="只能为本辖区提出评分政策",
        )
    if policy.policy_id == load_default_policy().policy_id:
        raise Conflict(
            "the packaged default policy cannot be versioned here",
            detail_zh="系统内置的默认政策不能在此修改，请使用新的政策编号",
        )
    repo = PolicyAdminRepository(session)
    versions = await repo.versions_of(policy.policy_id)
    if any(v.region_code != policy.region_code for v in versions):
        raise Conflict(
            "this policy_id belongs to another region", detail_zh="该政策编号属于其他区域"
        )
    if any(v.version == policy.version for v in versions):
        raise Conflict(
            f"version {policy.version} of {policy.policy_id} exists already",
            detail_zh="该政策版本已存在，请使用新的版本号",
        )
    record = PolicyRecord(
        id=uuid.uuid4(),
        policy_id=policy.policy_id,
        version=policy.version,
        region_code=policy.region_code,
        effective_from=policy.effective_from,
        status="proposed",
        body=policy.model_dump(mode="json"),
        proposed_by=principal.sub,
        reviewed_by=None,
        created_at=now,
        activated_at=None,
    )
    await repo.add(record)
    return record


async def _managed_version(
    session: AsyncSession, principal: Principal, policy_id: str, version: int
) -> PolicyRecord:
    _admin(principal)
    record = await PolicyAdminRepository(session).get(policy_id, version, lock=True)
    if record is None or not _manages(principal, record.region_code):
        raise NotFound(
            "no such policy version in your region", detail_zh="您的辖区内没有该政策版本"
        )
    return record


async def review_policy(
    session: AsyncSession, *, principal: Principal, policy_id: str, version: int, now: datetime
) -> PolicyRecord:
    """Mark a proposed version reviewed, by an admin other than its proposer."""
    record = await _managed_version(session, principal, policy_id, version)
    if record.status != "proposed":
        raise Conflict(
            f"the version is {record.status}, not proposed", detail_zh="只有“已提出”的版本可以审核"
        )
    if record.proposed_by == principal.sub:
        raise Forbidden(
            "a policy must be reviewed by an admin other than its proposer",
            detail_zh="评分政策须由提出人以外的管理员审核",
        )
    record.status = "reviewed"
    record.reviewed_by = principal.sub
    del now  # reviews carry no timestamp column; the record's history is its status
    await session.flush()
    return record


async def activate_policy(
    session: AsyncSession, *, principal: Principal, policy_id: str, version: int, now: datetime
) -> tuple[PolicyRecord, list[PolicyRecord]]:
    """Activate a reviewed version; return it and the versions it retired.

    A version in force from today or earlier retires the policy's previous active version
    at once. One that takes effect later leaves it active until then: scoring always picks
    the highest version in force, so the switch happens on the effective date by itself.
    """
    record = await _managed_version(session, principal, policy_id, version)
    if record.status != "reviewed":
        raise Conflict(
            f"the version is {record.status}; only a reviewed version can be activated",
            detail_zh="只有审核通过的版本可以启用",
        )
    record.status = "active"
    record.activated_at = now
    retired: list[PolicyRecord] = []
    if record.effective_from <= china_date(now):
        for other in await PolicyAdminRepository(session).versions_of(policy_id):
            if other.id != record.id and other.status == "active":
                other.status = "retired"
                retired.append(other)
    await session.flush()
    return record, retired


async def list_policies(
    session: AsyncSession, *, principal: Principal, status: str | None
) -> list[PolicyRecord]:
    """Return the versions an admin manages or that apply to their region."""
    _admin(principal)
    region = full_code(principal.region) or principal.region
    return [
        r
        for r in await PolicyAdminRepository(session).all(status)
        if _manages(principal, r.region_code) or region.startswith(r.region_code)
    ]


# ------------------------------------------------------------------------- simulation


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationRequest:
    """What to replay: a candidate, a period, a region."""

    candidate: ScoringPolicy
    start: date
    end: date
    region: str
    changes_limit: int = 1000


async def simulate_policy(
    session: AsyncSession,
    *,
    principal: Principal,
    request: SimulationRequest,
    regions: RegionTable,
) -> simulation.Report:
    """Replay a candidate and the active policies over the stored signals of a period."""
    _admin(principal)
    problems: list[FieldError] = []
    prefix = scope_prefix(request.region)
    if prefix is None:
        problems.append(
            FieldError("region", "bad_region", "区域代码无效", "the region code is not valid")
        )
    elif not full_code(request.region).startswith(request.candidate.region_code):  # type: ignore[union-attr]
        problems.append(
            FieldError(
                "region",
                "outside_candidate",
                "所选区域不在候选政策的适用范围内",
                "the region is outside the candidate policy's region",
            )
        )
    if request.end < request.start:
        problems.append(
            FieldError(
                "period", "reversed", "结束日期早于开始日期", "the period ends before it starts"
            )
        )
    elif (request.end - request.start).days > MAX_SIMULATION_DAYS:
        problems.append(
            FieldError(
                "period", "too_long", "模拟期间最长三年", "the period may be at most three years"
            )
        )
    if problems:
        raise ValidationFailed(problems)
    assert prefix is not None
    if not in_scope(principal.region, request.region):
        raise Forbidden("the region is outside yours", detail_zh="所选区域不在您的辖区内")
    repo = SimulationRepository(session)
    signals = await repo.signals(prefix, request.start, request.end)
    households: dict[uuid.UUID, Any] = {
        h.id: h for h in await repo.households(prefix, request.start, request.end)
    }
    members: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for m in await repo.members(prefix, request.start, request.end):
        members[m.household_id].append(m)
    incomes: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for i in await repo.incomes(
        prefix, request.start, request.end, request.start - INCOME_LOOKBACK
    ):
        incomes[i.household_id].append(i)
    active_records = await PolicyRepository(session).active()
    return await anyio.to_thread.run_sync(
        _replay, request, signals, households, members, incomes, active_records, regions
    )


def _replay(
    request: SimulationRequest,
    signals: Sequence[Any],
    households: dict[uuid.UUID, Any],
    members: dict[uuid.UUID, list[Any]],
    incomes: dict[uuid.UUID, list[Any]],
    active_records: Sequence[PolicyRecord],
    regions: RegionTable,
) -> simulation.Report:
    default = load_default_policy()
    active = [ScoringPolicy.model_validate(r.body) for r in active_records]
    # Replayed as if in force throughout the period and replacing its own policy's versions.
    candidate = request.candidate.model_copy(update={"effective_from": date.min})
    with_candidate = [p for p in active if p.policy_id != candidate.policy_id] + [candidate]

    def chooser(pool: list[ScoringPolicy]) -> Callable[[simulation.Case], ScoringPolicy]:
        cache: dict[tuple[str, date], ScoringPolicy] = {}

        def choose(case: simulation.Case) -> ScoringPolicy:
            key = (case.region_code, case.as_of)
            found = cache.get(key)
            if found is None:
                found = cache[key] = select_policy([*pool, default], case.region_code, case.as_of)
            return found

        return choose

    by_episode: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for s in signals:
        by_episode[s.episode_id].append(s)

    def cases() -> Any:
        for episode_signals in by_episode.values():
            household = households.get(episode_signals[0].household_id)
            if household is None:
                continue
            people = members.get(household.id, [])
            refs = {m.id: m.person_ref for m in people}
            as_of = max(s.occurred_on for s in episode_signals)
            region = household.region_code
            # Rows carry the mapped classes' attribute names, which is all assess reads.
            yield simulation.Case(
                household_ref=str(household.id),
                region_code=region,
                township_code=region[:9] if len(region) == 12 else simulation.UNKNOWN_TOWNSHIP,
                household=assess.household_facts(
                    household, people, incomes.get(household.id, []), as_of
                ),
                signals=tuple(_signal_of_row(s, refs) for s in episode_signals),
                as_of=as_of,
            )

    def township_name(code: str) -> str | None:
        found = regions.get(code)
        return found.name if found is not None else None

    return simulation.simulate(
        cases(),
        active_policy=chooser(active),
        candidate_policy=chooser(with_candidate),
        township_name=township_name,
        changes_limit=request.changes_limit,
    )


def _signal_of_row(row: Any, refs: dict[Any, str]) -> scoring.Signal:
    # The simulation reads difficulty_types as JSON text (see SimulationRepository.signals).
    kinds = row.difficulty_types
    return scoring.Signal(
        signal_id=str(row.id),
        channel=row.channel,
        occurred_on=row.occurred_on,
        alert_type=row.alert_type,
        difficulty_types=tuple(json.loads(kinds)) if kinds and kinds != "[]" else (),
        department=row.department,
        amount=row.amount,
        count=row.count,
        grade=row.grade,
        self_reported_income=row.self_reported_income,
        member_ref=refs.get(row.member_id),
    )

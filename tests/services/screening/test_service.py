"""Tests for screening's use cases on a real database: roster, linking, export, policies, simulation."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from services.screening import assess, service
from services.screening.models import (
    Household,
    IncomeRecord,
    Member,
    PolicyRecord,
    RiskEpisode,
    RosterImport,
    Signal,
)
from services.screening.policy import load_default_policy
from services.screening.repository import PolicyRepository, RegistryRepository
from shared.clock import FrozenClock, china_date
from shared.db import UnitOfWork
from shared.pii import PiiCipher
from shared.problems import Conflict, Forbidden, NotFound, ValidationFailed
from tests.services.screening.harness import (
    COUNTY,
    OTHER_VILLAGE,
    REGIONS,
    VILLAGE,
    household_rows,
    member_row,
    person,
    principal,
    seed_household,
    write_roster,
)


async def run_import(
    uow: UnitOfWork,
    cipher: PiiCipher,
    clock: FrozenClock,
    path: Path,
    *,
    scope: str = COUNTY,
    dry_run: bool = False,
) -> service.ImportSummary:
    """Import a roster file as the county officer."""
    return await service.import_roster(
        uow,
        path=path,
        fmt="xlsx" if path.suffix == ".xlsx" else "csv",
        cipher=cipher,
        clock=clock,
        actor="county-officer",
        scope=scope,
        regions=REGIONS,
        options=service.ImportOptions(dry_run=dry_run, file_name=path.name),
    )


async def count(uow: UnitOfWork, model: Any) -> int:
    """Count a table's rows."""
    async with uow.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def stamps(uow: UnitOfWork) -> dict[uuid.UUID, Any]:
    """Return every household's updated_at."""
    async with uow.read() as session:
        return dict((await session.execute(select(Household.id, Household.updated_at))).all())


async def by_roster_no(uow: UnitOfWork, number: str) -> Household:
    """Return the household of a roster number."""
    async with uow.read() as session:
        found = await RegistryRepository(session).by_roster_no(number)
    assert found is not None
    return found


async def members_of(uow: UnitOfWork, household_id: uuid.UUID) -> list[Member]:
    """Return a household's current members."""
    async with uow.read() as session:
        return await RegistryRepository(session).members_of(household_id)


class TestImportRoster:
    async def test_creates_households_members_and_monthly_incomes(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, tmp_path: Path, backend: str
    ) -> None:
        rows = [
            *household_rows(
                "JC-1", [1, 2, 3], income_end_month="2026-10", wages="24000", labels="脱贫户"
            ),
            *household_rows(
                "JC-2",
                [4],
                village_code=OTHER_VILLAGE,
                transfer="1200.05",
                income_end_month="2026-09",
            ),
        ]
        summary = await run_import(uow, cipher, frozen, write_roster(tmp_path / "r.xlsx", rows))
        assert summary.counts["households_created"] == 2
        assert summary.counts["members_created"] == 4
        assert summary.rejections == []
        household = await by_roster_no(uow, "JC-1")
        assert (household.provisional, household.labels, household.region_code) == (
            False,
            ["tuopin"],
            VILLAGE,
        )
        people = await members_of(uow, household.id)
        assert sorted(cipher.decrypt(m.id_cipher) for m in people) == sorted(
            person(n) for n in (1, 2, 3)
        )
        assert {m.person_ref for m in people} == {cipher.keyed_hash(person(n)) for n in (1, 2, 3)}
        assert all(m.in_roster and "********" in m.id_masked for m in people)
        async with uow.read() as session:
            incomes = await RegistryRepository(session).incomes_of(household.id, date(2000, 1, 1))
        assert len(incomes) == 12
        assert sum(i.amount for i in incomes) == Decimal("24000")
        assert max(i.month for i in incomes) == date(2026, 10, 1)
        async with uow.read() as session:
            record = await session.get(RosterImport, summary.import_id)
        assert record is not None
        assert record.summary["households_created"] == 2

    async def test_importing_the_same_file_again_changes_nothing(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, tmp_path: Path, backend: str
    ) -> None:
        rows = [
            row
            for n in range(1, 6)
            for row in household_rows(
                f"JC-{n}", [n * 10 + k for k in range(3)], wages="6000", income_end_month="2026-10"
            )
        ]
        path = write_roster(tmp_path / "r.xlsx", rows)
        await run_import(uow, cipher, frozen, path)
        before = (await stamps(uow), await count(uow, Member), await count(uow, IncomeRecord))
        frozen.advance(timedelta(days=1))
        again = await run_import(uow, cipher, frozen, path)
        assert again.counts["households_unchanged"] == 5
        assert again.counts["households_created"] + again.counts["households_updated"] == 0
        assert (
            await stamps(uow),
            await count(uow, Member),
            await count(uow, IncomeRecord),
        ) == before

    async def test_rewrites_only_the_household_that_changed(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, tmp_path: Path, backend: str
    ) -> None:
        rows = [*household_rows("A", [1, 2]), *household_rows("B", [3, 4])]
        await run_import(uow, cipher, frozen, write_roster(tmp_path / "1.xlsx", rows))
        before = await stamps(uow)
        rows[1]["health"] = "患有大病"
        frozen.advance(timedelta(hours=1))
        summary = await run_import(uow, cipher, frozen, write_roster(tmp_path / "2.xlsx", rows))
        assert (summary.counts["households_updated"], summary.counts["households_unchanged"]) == (
            1,
            1,
        )
        after = await stamps(uow)
        a, b = await by_roster_no(uow, "A"), await by_roster_no(uow, "B")
        assert after[a.id] > before[a.id]
        assert after[b.id] == before[b.id]
        assert {m.health for m in await members_of(uow, a.id)} == {None, "serious_illness"}

    async def test_marks_people_the_roster_no_longer_lists_and_takes_them_back(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, tmp_path: Path, backend: str
    ) -> None:
        rows = household_rows("A", [1, 2, 3])
        await run_import(uow, cipher, frozen, write_roster(tmp_path / "1.xlsx", rows))
        summary = await run_import(uow, cipher, frozen, write_roster(tmp_path / "2.xlsx", rows[:2]))
        household = await by_roster_no(uow, "A")
        assert summary.counts["members_removed"] == 1
        assert len(await members_of(uow, household.id)) == 2
        assert await count(uow, Member) == 3  # kept: signals may point at them
        await run_import(uow, cipher, frozen, write_roster(tmp_path / "3.xlsx", rows))
        assert len(await members_of(uow, household.id)) == 3

    async def test_moves_a_person_the_roster_now_lists_in_another_household(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, tmp_path: Path, backend: str
    ) -> None:
        await run_import(
            uow, cipher, frozen, write_roster(tmp_path / "1.xlsx", household_rows("A", [1, 2]))
        )
        # The child married out and now heads household B.
        summary = await run_import(
            uow, cipher, frozen, write_roster(tmp_path / "2.xlsx", household_rows("B", [2, 5]))
        )
        assert summary.counts["members_moved"] == 1
        a, b = await by_roster_no(uow, "A"), await by_roster_no(uow, "B")
        assert [m.person_ref for m in await members_of(uow, b.id)].count(
            cipher.keyed_hash(person(2))
        ) == 1
        assert len(await members_of(uow, a.id)) == 1
        # A's fingerprint was cleared, so importing A again rewrites it instead of skipping.
        assert a.content_hash is None

    async def test_a_provisional_household_becomes_the_roster_household(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, tmp_path: Path, backend: str
    ) -> None:
        async with uow.transaction() as session:
            seeded = await seed_household(
                session, cipher, serials=[1], now=frozen.now(), region=COUNTY
            )
        summary = await run_import(
            uow, cipher, frozen, write_roster(tmp_path / "r.xlsx", household_rows("A", [1, 2]))
        )
        assert summary.counts["provisional_linked"] == 1
        household = await by_roster_no(uow, "A")
        # Same id: casework may already have a case for it.
        assert household.id == seeded.household_id
        assert (household.provisional, household.region_code) == (False, VILLAGE)
        assert len(await members_of(uow, household.id)) == 2
        async with uow.read() as session:
            episode = await session.get(RiskEpisode, seeded.episode_id)
        assert episode is not None
        assert (episode.household_id, episode.closed_at) == (household.id, None)

    async def test_a_provisional_household_joins_an_existing_roster_household(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, tmp_path: Path, backend: str
    ) -> None:
        await run_import(
            uow, cipher, frozen, write_roster(tmp_path / "1.xlsx", household_rows("A", [1]))
        )
        roster_household = await by_roster_no(uow, "A")
        async with uow.transaction() as session:
            # The roster household already had a risk episode (casework knows its id).
            session.add(
                RiskEpisode(
                    id=uuid.uuid4(),
                    household_id=roster_household.id,
                    opened_at=frozen.now(),
                    last_signal_at=frozen.now(),
                    closed_at=frozen.now(),
                )
            )
            seeded = await seed_household(session, cipher, serials=[2], now=frozen.now(), signals=2)
        summary = await run_import(
            uow, cipher, frozen, write_roster(tmp_path / "2.xlsx", household_rows("A", [1, 2]))
        )
        assert summary.counts["provisional_linked"] == 1
        assert (await by_roster_no(uow, "A")).id == roster_household.id
        async with uow.read() as session:
            provisional = await session.get(Household, seeded.household_id)
            signals = (
                (
                    await session.execute(
                        select(Signal).where(Signal.household_id == roster_household.id)
                    )
                )
                .scalars()
                .all()
            )
        assert provisional is not None
        assert provisional.merged_into_id == roster_household.id
        assert len(signals) == 2
        assert {m.person_ref for m in await members_of(uow, roster_household.id)} == {
            cipher.keyed_hash(person(1)),
            cipher.keyed_hash(person(2)),
        }

    async def test_refused_households_write_nothing_and_are_reported(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, tmp_path: Path, backend: str
    ) -> None:
        rows = [*household_rows("OK", [1]), member_row("BAD", person(2), relation="配偶")]
        summary = await run_import(uow, cipher, frozen, write_roster(tmp_path / "r.xlsx", rows))
        assert (summary.counts["households_created"], summary.counts["households_rejected"]) == (
            1,
            1,
        )
        assert [e["code"] for e in summary.rejections] == ["no_head"]
        assert await count(uow, Household) == 1
        async with uow.read() as session:
            record = await session.get(RosterImport, summary.import_id)
        assert record is not None
        assert record.rejections == summary.rejections
        assert person(2) not in str(record.rejections)

    async def test_a_dry_run_counts_without_writing(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, tmp_path: Path, backend: str
    ) -> None:
        summary = await run_import(
            uow,
            cipher,
            frozen,
            write_roster(tmp_path / "r.xlsx", household_rows("A", [1, 2])),
            dry_run=True,
        )
        assert (summary.counts["households_created"], summary.counts["members_created"]) == (1, 2)
        assert summary.import_id is None
        assert (await count(uow, Household), await count(uow, RosterImport)) == (0, 0)


class TestMergeHouseholds:
    @pytest.mark.parametrize(
        ("roster_episode", "roster_open", "survivor"),
        [
            pytest.param(False, False, "provisional", id="roster-household-never-scored"),
            pytest.param(True, False, "roster", id="roster-household-with-closed-episode"),
            pytest.param(True, True, "roster", id="roster-household-with-open-episode"),
        ],
    )
    async def test_keeps_the_household_casework_knows(
        self,
        uow: UnitOfWork,
        cipher: PiiCipher,
        frozen: FrozenClock,
        backend: str,
        roster_episode: bool,
        roster_open: bool,
        survivor: str,
    ) -> None:
        now = frozen.now()
        async with uow.transaction() as session:
            target = await seed_household(
                session,
                cipher,
                serials=[1],
                now=now,
                provisional=False,
                roster_no="A",
                signals=1 if roster_episode else 0,
            )
            if roster_episode and not roster_open:
                episode = await session.get(RiskEpisode, target.episode_id)
                assert episode is not None
                episode.closed_at = now
            source = await seed_household(session, cipher, serials=[2], now=now, signals=2)
        async with uow.transaction() as session:
            s = await session.get(Household, source.household_id)
            t = await session.get(Household, target.household_id)
            assert s is not None
            assert t is not None
            result = await service.merge_households(session, source=s, target=t, now=now)
        expected = source.household_id if survivor == "provisional" else target.household_id
        assert result.survivor.id == expected
        async with uow.read() as session:
            kept = await session.get(Household, expected)
            gone = await session.get(Household, result.absorbed.id)
            open_episodes = (
                (
                    await session.execute(
                        select(RiskEpisode).where(
                            RiskEpisode.household_id == expected, RiskEpisode.closed_at.is_(None)
                        )
                    )
                )
                .scalars()
                .all()
            )
            signals = (
                (await session.execute(select(Signal).where(Signal.household_id == expected)))
                .scalars()
                .all()
            )
        assert kept is not None
        assert gone is not None
        assert (kept.roster_no, kept.provisional) == ("A", False)
        assert (gone.roster_no, gone.merged_into_id) == (None, expected)
        assert len(await members_of(uow, expected)) == 2
        assert len(open_episodes) == 1
        # Every signal of both households is with the survivor, the provisional ones in its
        # open episode.
        assert len(signals) == 2 + (1 if roster_episode else 0)
        assert sum(1 for s in signals if s.episode_id == open_episodes[0].id) >= 2
        if survivor == "roster":
            # The provisional household's episode id stays closed under the survivor, so
            # casework never sees one episode id under two households.
            assert source.episode_id not in {e.id for e in open_episodes}


class TestLinkHousehold:
    async def seed(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock
    ) -> tuple[uuid.UUID, uuid.UUID]:
        async with uow.transaction() as session:
            target = await seed_household(
                session, cipher, serials=[1], now=frozen.now(), provisional=False, roster_no="A"
            )
            source = await seed_household(session, cipher, serials=[2], now=frozen.now())
        return source.household_id, target.household_id

    async def test_links_within_the_caseworker_region(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, backend: str
    ) -> None:
        source, target = await self.seed(uow, cipher, frozen)
        async with uow.transaction() as session:
            result = await service.link_household(
                session,
                principal=principal("village_officer", VILLAGE),
                household_id=source,
                target_id=target,
                now=frozen.now(),
            )
        assert result.survivor.id == target
        assert result.signals_moved == 1

    @pytest.mark.parametrize(
        ("who", "swap", "error"),
        [
            pytest.param(
                principal("department_officer"), False, Forbidden, id="department-officer"
            ),
            pytest.param(
                principal("village_officer", OTHER_VILLAGE), False, NotFound, id="other-village"
            ),
            pytest.param(principal(), True, Conflict, id="roster-household-as-source"),
        ],
    )
    async def test_refuses(
        self,
        uow: UnitOfWork,
        cipher: PiiCipher,
        frozen: FrozenClock,
        backend: str,
        who: Any,
        swap: bool,
        error: type[Exception],
    ) -> None:
        source, target = await self.seed(uow, cipher, frozen)
        if swap:
            source, target = target, source
        with pytest.raises(error):
            async with uow.transaction() as session:
                await service.link_household(
                    session, principal=who, household_id=source, target_id=target, now=frozen.now()
                )

    async def test_refuses_a_provisional_target_itself_and_a_second_link(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, backend: str
    ) -> None:
        source, target = await self.seed(uow, cipher, frozen)
        async with uow.transaction() as session:
            other = await seed_household(session, cipher, serials=[3], now=frozen.now())
        for a, b in ((source, other.household_id), (source, source)):
            with pytest.raises(Conflict):
                async with uow.transaction() as session:
                    await service.link_household(
                        session,
                        principal=principal(),
                        household_id=a,
                        target_id=b,
                        now=frozen.now(),
                    )
        async with uow.transaction() as session:
            await service.link_household(
                session,
                principal=principal(),
                household_id=source,
                target_id=target,
                now=frozen.now(),
            )
        with pytest.raises(Conflict):
            async with uow.transaction() as session:
                await service.link_household(
                    session,
                    principal=principal(),
                    household_id=source,
                    target_id=target,
                    now=frozen.now(),
                )


class TestExportRoster:
    async def test_masks_ids_unless_an_admin_asks(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, tmp_path: Path, backend: str
    ) -> None:
        await run_import(
            uow, cipher, frozen, write_roster(tmp_path / "r.xlsx", household_rows("A", [1, 2]))
        )
        async with uow.read() as session:
            masked = await service.export_roster(
                session, principal=principal(), region=COUNTY, unmask=False, cipher=cipher
            )
            clear = await service.export_roster(
                session, principal=principal("admin"), region=COUNTY, unmask=True, cipher=cipher
            )
        assert [m.id_display for m in masked[0].members] == [
            person(1)[:6] + "********" + person(1)[14:],
            person(2)[:6] + "********" + person(2)[14:],
        ]
        assert [m.id_display for m in clear[0].members] == [person(1), person(2)]

    @pytest.mark.parametrize(
        ("who", "region", "unmask"),
        [
            pytest.param(principal(), COUNTY, True, id="officer-unmasked"),
            pytest.param(principal("village_officer", VILLAGE), COUNTY, False, id="outside-region"),
            pytest.param(principal("department_officer"), COUNTY, False, id="department-officer"),
        ],
    )
    async def test_refuses(
        self, uow: UnitOfWork, cipher: PiiCipher, backend: str, who: Any, region: str, unmask: bool
    ) -> None:
        with pytest.raises(Forbidden):
            async with uow.read() as session:
                await service.export_roster(
                    session, principal=who, region=region, unmask=unmask, cipher=cipher
                )

    async def test_an_unmasked_export_imports_back_unchanged(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, tmp_path: Path, backend: str
    ) -> None:
        from services.screening import roster

        rows = [
            *household_rows(
                "A",
                [1, 2],
                wages="24000",
                operating="-100",
                income_end_month="2026-10",
                labels="脱贫户、低保户",
                water_unsafe="是",
            ),
            *household_rows("B", [3], village_code=OTHER_VILLAGE, disability_grade="二级"),
        ]
        await run_import(uow, cipher, frozen, write_roster(tmp_path / "r.xlsx", rows))
        async with uow.read() as session:
            households = await service.export_roster(
                session, principal=principal("admin"), region=COUNTY, unmask=True, cipher=cipher
            )
        path = tmp_path / "export.xlsx"
        roster.write_xlsx(
            path, roster.export_headers(), (r for h in households for r in roster.export_rows(h))
        )
        summary = await run_import(uow, cipher, frozen, path)
        assert summary.counts["households_unchanged"] == 2
        assert summary.rejections == []


def candidate(**changes: Any) -> dict[str, Any]:
    """Return a county policy document derived from the packaged default."""
    body = load_default_policy().model_dump(mode="json")
    body.update(
        {
            "policy_id": "jiaocheng",
            "version": 1,
            "region_code": COUNTY,
            "effective_from": "2026-01-01",
        }
    )
    body.update(changes)
    return body


class TestProposePolicy:
    async def test_stores_a_valid_document_as_proposed(
        self, uow: UnitOfWork, frozen: FrozenClock, backend: str
    ) -> None:
        async with uow.transaction() as session:
            record = await service.propose_policy(
                session,
                principal=principal("admin", sub="a1"),
                document=candidate(),
                now=frozen.now(),
            )
        assert (record.status, record.proposed_by, record.region_code) == ("proposed", "a1", COUNTY)

    @pytest.mark.parametrize(
        ("who", "document", "error"),
        [
            pytest.param(principal(), candidate(), Forbidden, id="not-admin"),
            pytest.param(
                principal("admin"), candidate(region_code="14"), Forbidden, id="wider-region"
            ),
            pytest.param(principal("admin"), candidate(region_code=""), Forbidden, id="national"),
            pytest.param(
                principal("admin"), candidate(income_line="-1"), ValidationFailed, id="invalid"
            ),
            pytest.param(
                principal("admin"),
                candidate(policy_id="national-default"),
                Conflict,
                id="packaged-id",
            ),
        ],
    )
    async def test_refuses(
        self,
        uow: UnitOfWork,
        frozen: FrozenClock,
        backend: str,
        who: Any,
        document: dict[str, Any],
        error: type[Exception],
    ) -> None:
        with pytest.raises(error):
            async with uow.transaction() as session:
                await service.propose_policy(
                    session, principal=who, document=document, now=frozen.now()
                )

    async def test_names_every_invalid_field(
        self, uow: UnitOfWork, frozen: FrozenClock, backend: str
    ) -> None:
        with pytest.raises(ValidationFailed) as caught:
            async with uow.transaction() as session:
                await service.propose_policy(
                    session,
                    principal=principal("admin"),
                    document=candidate(income_line="x", factor_weights={"RF-1": 5}),
                    now=frozen.now(),
                )
        assert {e.field for e in caught.value.errors} == {
            "policy.income_line",
            "policy.factor_weights",
        }

    async def test_refuses_a_used_version(
        self, uow: UnitOfWork, frozen: FrozenClock, backend: str
    ) -> None:
        async with uow.transaction() as session:
            await service.propose_policy(
                session, principal=principal("admin"), document=candidate(), now=frozen.now()
            )
        with pytest.raises(Conflict):
            async with uow.transaction() as session:
                await service.propose_policy(
                    session, principal=principal("admin"), document=candidate(), now=frozen.now()
                )


async def propose_and_review(uow: UnitOfWork, frozen: FrozenClock, **changes: Any) -> PolicyRecord:
    """Propose a version as one admin and review it as another."""
    async with uow.transaction() as session:
        record = await service.propose_policy(
            session,
            principal=principal("admin", sub="a1"),
            document=candidate(**changes),
            now=frozen.now(),
        )
        return await service.review_policy(
            session,
            principal=principal("admin", sub="a2"),
            policy_id=record.policy_id,
            version=record.version,
            now=frozen.now(),
        )


class TestReviewPolicy:
    async def test_another_admin_reviews(
        self, uow: UnitOfWork, frozen: FrozenClock, backend: str
    ) -> None:
        record = await propose_and_review(uow, frozen)
        assert (record.status, record.reviewed_by) == ("reviewed", "a2")

    async def test_the_proposer_may_not_review(
        self, uow: UnitOfWork, frozen: FrozenClock, backend: str
    ) -> None:
        async with uow.transaction() as session:
            await service.propose_policy(
                session,
                principal=principal("admin", sub="a1"),
                document=candidate(),
                now=frozen.now(),
            )
        with pytest.raises(Forbidden):
            async with uow.transaction() as session:
                await service.review_policy(
                    session,
                    principal=principal("admin", sub="a1"),
                    policy_id="jiaocheng",
                    version=1,
                    now=frozen.now(),
                )

    @pytest.mark.parametrize(
        ("version", "error"),
        [pytest.param(1, Conflict, id="already-reviewed"), pytest.param(9, NotFound, id="unknown")],
    )
    async def test_refuses(
        self,
        uow: UnitOfWork,
        frozen: FrozenClock,
        backend: str,
        version: int,
        error: type[Exception],
    ) -> None:
        await propose_and_review(uow, frozen)
        with pytest.raises(error):
            async with uow.transaction() as session:
                await service.review_policy(
                    session,
                    principal=principal("admin", sub="a3"),
                    policy_id="jiaocheng",
                    version=version,
                    now=frozen.now(),
                )


class TestActivatePolicy:
    async def test_activates_and_retires_the_previous_version(
        self, uow: UnitOfWork, frozen: FrozenClock, backend: str
    ) -> None:
        await propose_and_review(uow, frozen)
        async with uow.transaction() as session:
            await service.activate_policy(
                session,
                principal=principal("admin"),
                policy_id="jiaocheng",
                version=1,
                now=frozen.now(),
            )
        await propose_and_review(uow, frozen, version=2, income_line="6500")
        async with uow.transaction() as session:
            record, retired = await service.activate_policy(
                session,
                principal=principal("admin"),
                policy_id="jiaocheng",
                version=2,
                now=frozen.now(),
            )
        assert record.status == "active"
        assert [(r.version, r.status) for r in retired] == [(1, "retired")]
        async with uow.read() as session:
            chosen = assess.policy_for(
                await PolicyRepository(session).active(), VILLAGE, china_date(frozen.now())
            )
        # Scoring now uses it; each assessment records this id and version.
        assert (chosen.policy_id, chosen.version, chosen.income_line) == (
            "jiaocheng",
            2,
            Decimal("6500"),
        )

    async def test_a_future_version_leaves_the_current_one_active_until_its_day(
        self, uow: UnitOfWork, frozen: FrozenClock, backend: str
    ) -> None:
        await propose_and_review(uow, frozen)
        async with uow.transaction() as session:
            await service.activate_policy(
                session,
                principal=principal("admin"),
                policy_id="jiaocheng",
                version=1,
                now=frozen.now(),
            )
        await propose_and_review(uow, frozen, version=2, effective_from="2027-01-01")
        async with uow.transaction() as session:
            _, retired = await service.activate_policy(
                session,
                principal=principal("admin"),
                policy_id="jiaocheng",
                version=2,
                now=frozen.now(),
            )
        assert retired == []
        async with uow.read() as session:
            active = await PolicyRepository(session).active()
        assert assess.policy_for(active, VILLAGE, date(2026, 12, 31)).version == 1
        assert assess.policy_for(active, VILLAGE, date(2027, 1, 1)).version == 2

    async def test_only_a_reviewed_version_can_be_activated(
        self, uow: UnitOfWork, frozen: FrozenClock, backend: str
    ) -> None:
        async with uow.transaction() as session:
            await service.propose_policy(
                session,
                principal=principal("admin", sub="a1"),
                document=candidate(),
                now=frozen.now(),
            )
        with pytest.raises(Conflict):
            async with uow.transaction() as session:
                await service.activate_policy(
                    session,
                    principal=principal("admin"),
                    policy_id="jiaocheng",
                    version=1,
                    now=frozen.now(),
                )


class TestListPolicies:
    async def test_shows_the_region_and_wider_policies_only(
        self, uow: UnitOfWork, frozen: FrozenClock, backend: str
    ) -> None:
        await propose_and_review(uow, frozen)
        async with uow.transaction() as session:
            session.add(
                PolicyRecord(
                    id=uuid.uuid4(),
                    policy_id="other-county",
                    version=1,
                    region_code="141123",
                    effective_from=date(2026, 1, 1),
                    status="active",
                    body=candidate(policy_id="other-county", region_code="141123"),
                    proposed_by="x",
                    created_at=frozen.now(),
                )
            )
        async with uow.read() as session:
            mine = await service.list_policies(session, principal=principal("admin"), status=None)
        assert [r.policy_id for r in mine] == ["jiaocheng"]


class TestSimulatePolicy:
    async def test_counts_both_policies_by_township_and_lists_the_changes(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, backend: str
    ) -> None:
        now = frozen.now()
        async with uow.transaction() as session:
            # Two households with a large medical bill (RF-14, 40 points: medium by default).
            for serial, village in ((1, VILLAGE), (2, OTHER_VILLAGE)):
                await seed_household(session, cipher, serials=[serial], now=now, region=village)
        stricter = candidate(factor_weights={**load_default_policy().factor_weights, "RF-14": 10})
        request = service.SimulationRequest(
            candidate=service.parse_candidate(stricter),
            start=date(2026, 1, 1),
            end=china_date(now),
            region=COUNTY,
        )
        async with uow.read() as session:
            report = await service.simulate_policy(
                session, principal=principal("admin"), request=request, regions=REGIONS
            )
        assert (report.episodes, report.signals) == (2, 2)
        assert report.active.by_level["medium"] == 2
        assert report.candidate.by_level["medium"] == 0
        assert report.transitions == {"medium→low": 2} or report.transitions == {"medium→none": 2}
        assert [(t.township_code, t.township_name, t.active.flagged) for t in report.townships] == [
            ("141122100", "天宁镇", 1),
            ("141122101", "夏家营镇", 1),
        ]
        assert report.changes_total == 2

    @pytest.mark.parametrize(
        ("changes", "start", "end", "region", "field"),
        [
            pytest.param({}, date(2026, 2, 1), date(2026, 1, 1), COUNTY, "period", id="reversed"),
            pytest.param({}, date(2020, 1, 1), date(2026, 1, 1), COUNTY, "period", id="too-long"),
            pytest.param(
                {"region_code": "141122"},
                date(2026, 1, 1),
                date(2026, 2, 1),
                "14",
                "region",
                id="wider-than-candidate",
            ),
            pytest.param({}, date(2026, 1, 1), date(2026, 2, 1), "abc", "region", id="bad-region"),
        ],
    )
    async def test_refuses_bad_requests(
        self,
        uow: UnitOfWork,
        backend: str,
        changes: dict[str, Any],
        start: date,
        end: date,
        region: str,
        field: str,
    ) -> None:
        request = service.SimulationRequest(
            candidate=service.parse_candidate(candidate(**changes)),
            start=start,
            end=end,
            region=region,
        )
        with pytest.raises(ValidationFailed) as caught:
            async with uow.read() as session:
                await service.simulate_policy(
                    session, principal=principal("admin"), request=request, regions=REGIONS
                )
        assert [e.field for e in caught.value.errors] == [field]

    @pytest.mark.slow
    async def test_answers_per_township_over_a_hundred_thousand_signals(
        self, uow: UnitOfWork, cipher: PiiCipher, frozen: FrozenClock, backend: str
    ) -> None:
        from services.screening.repository import bulk_insert

        now = frozen.now()
        villages = [r.code for r in REGIONS.villages_of(COUNTY)]
        households, members, episodes, signals = [], [], [], []
        for n in range(20000):
            household_id, episode_id, member_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            village = villages[n % len(villages)]
            households.append(
                {
                    "id": household_id,
                    "roster_no": f"S-{n}",
                    "village_code": village,
                    "region_code": village,
                    "address": None,
                    "provisional": False,
                    "labels": ["tuopin"] if n % 3 == 0 else [],
                    "facts": {},
                    "previous_year_income": None,
                    "content_hash": None,
                    "merged_into_id": None,
                    "merged_at": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            members.append(
                {
                    "id": member_id,
                    "household_id": household_id,
                    "person_ref": f"ref-{n}",
                    "id_cipher": "x",
                    "id_masked": "*" * 18,
                    "name": None,
                    "relation": "head",
                    "birth_date": date(1960 + n % 40, 1, 1),
                    "labour_capacity": "weak" if n % 4 == 0 else "full",
                    "is_main_labourer": True,
                    "disability_grade": None,
                    "health": None,
                    "schooling": None,
                    "student_aided": False,
                    "migrant_worker": False,
                    "receives_basic_pension": False,
                    "medical_insured": True,
                    "dropout_risk": False,
                    "in_roster": True,
                    "removed_at": None,
                }
            )
            episodes.append(
                {
                    "id": episode_id,
                    "household_id": household_id,
                    "opened_at": now,
                    "last_signal_at": now,
                    "closed_at": None,
                }
            )
            for k in range(5):
                signals.append(
                    {
                        "id": uuid.uuid4(),
                        "event_id": uuid.uuid4(),
                        "household_id": household_id,
                        "episode_id": episode_id,
                        "member_id": member_id,
                        "channel": "alert",
                        "receipt_no": None,
                        "department": "medical_insurance",
                        "alert_id": f"{n}-{k}",
                        "report_id": None,
                        "alert_type": (
                            "medical_insurance.large_out_of_pocket",
                            "housing.unsafe_house_appraisal",
                            "education.dropout_risk",
                            "water.supply_unsafe",
                            "human_resources.returned_migrant",
                        )[n % 5],
                        "difficulty_types": [],
                        "amount": Decimal(3000 * (n % 7)),
                        "count": None,
                        "grade": 3 + n % 2,
                        "self_reported_income": None,
                        "occurred_on": date(2026, 1 + (n + k) % 10, 1 + k),
                        "received_at": now,
                    }
                )
        async with uow.transaction() as session:
            for model, rows in (
                (Household, households),
                (Member, members),
                (RiskEpisode, episodes),
                (Signal, signals),
            ):
                for start in range(0, len(rows), 20000):
                    await bulk_insert(session, model.__table__, rows[start : start + 20000])  # type: ignore[arg-type]
        assert await count(uow, Signal) == 100000
        stricter = candidate(
            factor_weights={**load_default_policy().factor_weights, "RF-14": 10, "RF-19": 40}
        )
        request = service.SimulationRequest(
            candidate=service.parse_candidate(stricter),
            start=date(2026, 1, 1),
            end=date(2026, 11, 30),
            region=COUNTY,
            changes_limit=50,
        )
        async with uow.read() as session:
            report = await service.simulate_policy(
                session, principal=principal("admin"), request=request, regions=REGIONS
            )
        assert report.signals == 100000
        assert report.active.households == report.candidate.households == 20000
        assert {t.township_code for t in report.townships} == {v[:9] for v in villages}
        assert sum(t.active.households for t in report.townships) == 20000
        assert report.changes_total > 0
        assert len(report.changes) == 50

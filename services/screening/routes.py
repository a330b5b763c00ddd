"""Screening's HTTP routes: the registry and assessments, read inside the caller's region."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from services.screening import schemas, service
from services.screening.dependencies import ScreeningState
from services.screening.models import Household, Member, RiskAssessment, RiskEpisode, Signal
from services.screening.repository import EpisodeRepository, RegistryRepository, scope_prefix
from shared.db import UnitOfWork
from shared.problems import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from shared.regions import in_scope
from shared.web import Caseworker

# Who may read the registry, its episodes and their scores: the caseworkers of a region.
# A department liaison reads only its department's feedback (report_routes.py).
REGISTRY_READERS = ("village_officer", "township_officer", "county_officer", "admin")


async def _registry_reader(principal: Caseworker) -> None:
    if principal.role not in REGISTRY_READERS:
        raise Forbidden(
            "your role cannot read the household registry",
            detail_zh="您的角色无权查看农户台账与研判结果",
        )


router = APIRouter(prefix="/v1", dependencies=[Depends(_registry_reader)])


def _uow(request: Request) -> UnitOfWork:
    uow: UnitOfWork = request.app.state.uow
    return uow


def _assessment(a: RiskAssessment) -> schemas.AssessmentRead:
    return schemas.AssessmentRead(
        assessment_id=str(a.id),
        episode_id=str(a.episode_id),
        score=a.score,
        level=a.level,
        categories=list(a.categories),
        reasons=list(a.reasons),
        review_flags=list(a.review_flags),
        must_verify=a.must_verify,
        opens_case=a.opens_case,
        policy_id=a.policy_id,
        policy_version=a.policy_version,
        assessed_at=a.assessed_at,
    )


def _visible(principal_region: str, household: Household | None) -> Household:
    if household is None or not in_scope(principal_region, household.region_code):
        raise NotFound("no such household in your region", detail_zh="您的辖区内没有该农户")
    return household


def _member(m: Member) -> schemas.MemberDetail:
    return schemas.MemberDetail(
        member_id=str(m.id),
        name=m.name,
        id_masked=m.id_masked,
        relation=m.relation,
        birth_date=m.birth_date,
        labour_capacity=m.labour_capacity,
        disability_grade=m.disability_grade,
        health=m.health,
        is_main_labourer=m.is_main_labourer,
        schooling=m.schooling,
        student_aided=m.student_aided,
        dropout_risk=m.dropout_risk,
        migrant_worker=m.migrant_worker,
        receives_basic_pension=m.receives_basic_pension,
        medical_insured=m.medical_insured,
        in_roster=m.in_roster,
    )


@router.get(
    "/households",
    tags=["registry 农户台账"],
    summary="辖区内的农户列表（分页，身份证号脱敏）/ households of a region, paged, masked",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_households(
    request: Request,
    principal: Caseworker,
    region: str | None = None,
    provisional: bool | None = None,
    roster_no: Annotated[str | None, Query(max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> schemas.HouseholdList:
    target = region or principal.region
    prefix = scope_prefix(target)
    if prefix is None or not in_scope(principal.region, target):
        raise Forbidden("the region is outside yours", detail_zh="所选区域不在您的辖区内")
    async with _uow(request).read() as session:
        repo = RegistryRepository(session)
        households, total = await repo.list_households(
            prefix,
            provisional=provisional,
            roster_no=roster_no,
            offset=(page - 1) * page_size,
            limit=page_size,
        )
        members: dict[uuid.UUID, list[Member]] = {}
        for m in await repo.members_of_many([h.id for h in households]):
            members.setdefault(m.household_id, []).append(m)
    items = []
    for h in households:
        people = members.get(h.id, [])
        head = next((m for m in people if m.relation in ("head", "self")), None)
        items.append(
            schemas.HouseholdSummary(
                household_id=str(h.id),
                roster_no=h.roster_no,
                village_code=h.village_code,
                region_code=h.region_code,
                provisional=h.provisional,
                labels=list(h.labels or []),
                head_name=head.name if head else None,
                head_id_masked=head.id_masked if head else None,
                members=len(people),
                updated_at=h.updated_at,
            )
        )
    return schemas.HouseholdList(items=items, total=total, page=page, page_size=page_size)


@router.get(
    "/households/{household_id}",
    tags=["registry 农户台账"],
    summary="农户及家庭成员（身份证号脱敏）/ a household and its members, masked",
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def get_household(
    request: Request, principal: Caseworker, household_id: uuid.UUID
) -> schemas.HouseholdDetail:
    async with _uow(request).read() as session:
        repo = RegistryRepository(session)
        household = _visible(principal.region, await repo.household(household_id))
        members = await repo.members_of(household.id)
    return schemas.HouseholdDetail(
        household_id=str(household.id),
        roster_no=household.roster_no,
        village_code=household.village_code,
        region_code=household.region_code,
        address=household.address,
        provisional=household.provisional,
        merged_into=str(household.merged_into_id) if household.merged_into_id else None,
        labels=list(household.labels or []),
        facts=dict(household.facts or {}),
        previous_year_income=household.previous_year_income,
        members=[_member(m) for m in members],
        updated_at=household.updated_at,
    )


@router.post(
    "/households/{household_id}:link",
    tags=["registry 农户台账"],
    summary="将临时农户关联到台账农户 / link a provisional household to a roster household",
    description=(
        "Moves the provisional household's members, signals and open episode onto the "
        "roster household. If the roster household never had a risk episode, the "
        "provisional household is the one kept (casework may already know its id) and takes "
        "over the roster number and data; `household_id` in the answer is the household "
        "that now stands for the family either way."
    ),
    responses=problem_responses(Unauthorized, Forbidden, NotFound, Conflict, ValidationFailed),
)
async def link_household(
    request: Request, principal: Caseworker, household_id: uuid.UUID, body: schemas.LinkRequest
) -> schemas.LinkRead:
    state: ScreeningState = request.app.state.screening
    async with state.uow.transaction() as session:
        result = await service.link_household(
            session,
            principal=principal,
            household_id=household_id,
            target_id=body.target_household_id,
            now=state.clock.now(),
        )
    return schemas.LinkRead(
        household_id=str(result.survivor.id),
        merged_household_id=str(result.absorbed.id),
        members_moved=result.members_moved,
        signals_moved=result.signals_moved,
        open_episode_id=str(result.episode_id) if result.episode_id else None,
    )


@router.get(
    "/households/{household_id}/episodes",
    tags=["assessments 风险研判"],
    summary="农户的风险事件及评分历史 / a household's risk episodes and their assessments",
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def household_episodes(
    request: Request, principal: Caseworker, household_id: uuid.UUID
) -> list[schemas.EpisodeRead]:
    async with _uow(request).read() as session:
        _visible(principal.region, await RegistryRepository(session).household(household_id))
        episodes = list(
            (
                await session.execute(
                    select(RiskEpisode)
                    .where(RiskEpisode.household_id == household_id)
                    .order_by(RiskEpisode.opened_at)
                )
            ).scalars()
        )
        repo = EpisodeRepository(session)
        out = [
            _episode_read(ep, await repo.signals_of(ep.id), await repo.assessments_of(ep.id))
            for ep in episodes
        ]
    return out


def _episode_read(
    ep: RiskEpisode, signals: list[Signal], assessments: list[RiskAssessment]
) -> schemas.EpisodeRead:
    return schemas.EpisodeRead(
        episode_id=str(ep.id),
        household_id=str(ep.household_id),
        opened_at=ep.opened_at,
        last_signal_at=ep.last_signal_at,
        closed_at=ep.closed_at,
        signals=[
            {
                "channel": s.channel,
                "receipt_no": s.receipt_no,
                "department": s.department,
                "alert_id": s.alert_id,
                "report_id": s.report_id,
                "alert_type": s.alert_type,
                "occurred_on": s.occurred_on.isoformat(),
            }
            for s in signals
        ],
        assessments=[_assessment(a) for a in assessments],
    )


@router.get(
    "/episodes",
    tags=["assessments 风险研判"],
    summary="辖区内的风险事件（最近在前，含最新评分）/ risk episodes of a region, latest first",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_episodes(
    request: Request,
    principal: Caseworker,
    region: str | None = None,
    open_only: Annotated[bool, Query(alias="open")] = True,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> schemas.EpisodeList:
    target = region or principal.region
    prefix = scope_prefix(target)
    if prefix is None or not in_scope(principal.region, target):
        raise Forbidden("the region is outside yours", detail_zh="所选区域不在您的辖区内")
    async with _uow(request).read() as session:
        repo = EpisodeRepository(session)
        rows, total = await repo.list_in_region(
            prefix, open_only=open_only, offset=(page - 1) * page_size, limit=page_size
        )
        ids = [ep.id for ep, _ in rows]
        counts = await repo.signal_counts(ids)
        latest = await repo.latest_assessments(ids)
    return schemas.EpisodeList(
        items=[
            schemas.EpisodeSummary(
                episode_id=str(ep.id),
                household_id=str(ep.household_id),
                region_code=region_code,
                opened_at=ep.opened_at,
                last_signal_at=ep.last_signal_at,
                closed_at=ep.closed_at,
                signals=counts.get(ep.id, 0),
                latest=_assessment(latest[ep.id]) if ep.id in latest else None,
            )
            for ep, region_code in rows
        ],
        total=total,
        page=page,
        page_size=page_size,
    )


@router.get(
    "/episodes/{episode_id}",
    tags=["assessments 风险研判"],
    summary="风险事件的信号及评分历史 / an episode with its signals and assessment history",
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def get_episode(
    request: Request, principal: Caseworker, episode_id: uuid.UUID
) -> schemas.EpisodeRead:
    async with _uow(request).read() as session:
        repo = EpisodeRepository(session)
        episode = await repo.episode(episode_id)
        household = (
            await RegistryRepository(session).household(episode.household_id) if episode else None
        )
        if (
            episode is None
            or household is None
            or not in_scope(principal.region, household.region_code)
        ):
            raise NotFound("no such episode in your region", detail_zh="您的辖区内没有该风险事件")
        return _episode_read(
            episode, await repo.signals_of(episode.id), await repo.assessments_of(episode.id)
        )


@router.get(
    "/assessments/{assessment_id}",
    tags=["assessments 风险研判"],
    summary="一次评分及其全部理由（含所用政策版本）/ one assessment with every reason",
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def get_assessment(
    request: Request, principal: Caseworker, assessment_id: uuid.UUID
) -> schemas.AssessmentRead:
    async with _uow(request).read() as session:
        assessment = await EpisodeRepository(session).assessment(assessment_id)
        household = (
            await RegistryRepository(session).household(assessment.household_id)
            if assessment
            else None
        )
    if (
        assessment is None
        or household is None
        or not in_scope(principal.region, household.region_code)
    ):
        raise NotFound("no such assessment in your region", detail_zh="您的辖区内没有该评分记录")
    return _assessment(assessment)

"""Screening's HTTP routes: the registry and assessments, read inside the caller's region."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from sqlalchemy import select

from services.screening import schemas
from services.screening.models import Household, RiskAssessment, RiskEpisode
from services.screening.repository import EpisodeRepository, RegistryRepository
from shared.db import UnitOfWork
from shared.problems import Forbidden, NotFound, Unauthorized, problem_responses
from shared.regions import in_scope
from shared.web import Caseworker

router = APIRouter(prefix="/v1")


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


@router.get(
    "/households/{household_id}",
    tags=["registry 农户台账"],
    summary="农户及家庭成员（身份证号脱敏）/ a household and its members, masked",
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def get_household(
    request: Request, principal: Caseworker, household_id: uuid.UUID
) -> schemas.HouseholdRead:
    async with _uow(request).read() as session:
        repo = RegistryRepository(session)
        household = _visible(principal.region, await repo.household(household_id))
        members = await repo.members_of(household.id)
    return schemas.HouseholdRead(
        household_id=str(household.id),
        village_code=household.village_code,
        region_code=household.region_code,
        provisional=household.provisional,
        labels=list(household.labels or []),
        members=[
            schemas.MemberRead(
                member_id=str(m.id),
                name=m.name,
                id_masked=m.id_masked,
                relation=m.relation,
                birth_date=m.birth_date,
                labour_capacity=m.labour_capacity,
                disability_grade=m.disability_grade,
                health=m.health,
            )
            for m in members
        ],
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
        out = []
        for ep in episodes:
            signals = await repo.signals_of(ep.id)
            assessments = await repo.assessments_of(ep.id)
            out.append(
                schemas.EpisodeRead(
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
            )
    return out

"""Scoring-policy admin routes: propose, review, activate, list, and simulate before activating."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path

from services.screening import schemas, service, simulation
from services.screening.dependencies import StateDep
from services.screening.models import PolicyRecord
from services.screening.policy import load_default_policy
from shared.problems import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from shared.web import Caseworker

router = APIRouter(prefix="/v1", tags=["policies 评分政策"])
# Bounded so that an absurd path value is a 422, not an integer the database cannot hold.
PolicyId = Annotated[str, Path(max_length=100, description="政策编号")]
Version = Annotated[int, Path(ge=1, le=1_000_000, description="版本号")]

Status = Literal["proposed", "reviewed", "active", "retired"]


def _version(record: PolicyRecord) -> schemas.PolicyVersionRead:
    return schemas.PolicyVersionRead(
        policy_id=record.policy_id,
        version=record.version,
        region_code=record.region_code,
        effective_from=record.effective_from,
        status=record.status,
        proposed_by=record.proposed_by,
        reviewed_by=record.reviewed_by,
        created_at=record.created_at,
        activated_at=record.activated_at,
        body=dict(record.body),
    )


def _packaged() -> schemas.PolicyVersionRead:
    policy = load_default_policy()
    return schemas.PolicyVersionRead(
        policy_id=policy.policy_id,
        version=policy.version,
        region_code=policy.region_code,
        effective_from=policy.effective_from,
        # Shipped with the code and used wherever no active version covers a region.
        status="packaged",
        proposed_by=None,
        reviewed_by=None,
        created_at=None,
        activated_at=None,
        body=policy.model_dump(mode="json"),
    )


@router.post(
    "/policies",
    status_code=201,
    summary="提出评分政策新版本（待审核）/ propose a policy version",
    description=(
        "The body is a whole ScoringPolicy document (policies/default.json shows one). It is "
        "validated, must name the admin's region (or a part of it) and a version not used "
        "yet, and is stored as `proposed`."
    ),
    responses=problem_responses(Unauthorized, Forbidden, Conflict, ValidationFailed),
)
async def propose(
    principal: Caseworker, state: StateDep, document: Annotated[dict[str, Any], Body()]
) -> schemas.PolicyVersionRead:
    async with state.uow.transaction() as session:
        record = await service.propose_policy(
            session, principal=principal, document=document, now=state.clock.now()
        )
        return _version(record)


@router.get(
    "/policies",
    summary="评分政策各版本（本辖区及上级适用的）/ policy versions for the admin's region",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_versions(
    principal: Caseworker, state: StateDep, status: Status | None = None
) -> list[schemas.PolicyVersionRead]:
    async with state.uow.read() as session:
        records = await service.list_policies(session, principal=principal, status=status)
        out = [_version(r) for r in records]
    return [*out, _packaged()] if status is None else out


@router.get(
    "/policies/{policy_id}/versions/{version}",
    summary="一个政策版本 / one policy version",
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def get_version(
    principal: Caseworker, state: StateDep, policy_id: PolicyId, version: Version
) -> schemas.PolicyVersionRead:
    async with state.uow.read() as session:
        records = await service.list_policies(session, principal=principal, status=None)
        found = next((r for r in records if (r.policy_id, r.version) == (policy_id, version)), None)
        if found is None:
            raise NotFound("no such policy version", detail_zh="没有该政策版本")
        return _version(found)


@router.post(
    "/policies/{policy_id}/versions/{version}:review",
    summary="审核政策版本（须由提出人以外的管理员）/ review a proposed version (four eyes)",
    responses=problem_responses(Unauthorized, Forbidden, NotFound, Conflict),
)
async def review(
    principal: Caseworker, state: StateDep, policy_id: PolicyId, version: Version
) -> schemas.PolicyVersionRead:
    async with state.uow.transaction() as session:
        record = await service.review_policy(
            session,
            principal=principal,
            policy_id=policy_id,
            version=version,
            now=state.clock.now(),
        )
        return _version(record)


@router.post(
    "/policies/{policy_id}/versions/{version}:activate",
    summary="启用已审核的政策版本（停用该政策此前的启用版本）/ activate a reviewed version",
    responses=problem_responses(Unauthorized, Forbidden, NotFound, Conflict),
)
async def activate(
    principal: Caseworker, state: StateDep, policy_id: PolicyId, version: Version
) -> schemas.ActivationRead:
    async with state.uow.transaction() as session:
        record, retired = await service.activate_policy(
            session,
            principal=principal,
            policy_id=policy_id,
            version=version,
            now=state.clock.now(),
        )
        return schemas.ActivationRead(
            activated=_version(record), retired=[_version(r) for r in retired]
        )


def _tally(t: simulation.Tally) -> schemas.TallyRead:
    return schemas.TallyRead(
        households=t.households,
        flagged=t.flagged,
        opens_case=t.opens_case,
        by_level=dict(t.by_level),
        by_category=dict(t.by_category),
    )


def _outcome(o: simulation.Outcome) -> schemas.OutcomeRead:
    return schemas.OutcomeRead(
        score=o.score,
        level=o.level,
        categories=list(o.categories),
        opens_case=o.opens_case,
        policy_id=o.policy_id,
        policy_version=o.policy_version,
    )


@router.post(
    "/policies/simulate",
    summary="启用前模拟：候选政策与现行政策对同期信号的研判结果对比 / simulate a candidate",
    description=(
        "Replays the candidate and the active policy over the signals stored for the "
        "period (grouped by episode, household facts from today's registry) in the region "
        "(default: the admin's). Answers households flagged by level, category and "
        "township under both, level transitions, and the households whose outcome changes "
        "(biggest changes first, up to changes_limit). The candidate is replayed as if in "
        "force throughout the period."
    ),
    responses=problem_responses(Unauthorized, Forbidden, ValidationFailed),
)
async def simulate(
    principal: Caseworker, state: StateDep, body: schemas.SimulationRequestBody
) -> schemas.SimulationRead:
    candidate = service.parse_candidate(body.candidate)
    region = body.region or principal.region
    async with state.uow.read() as session:
        report = await service.simulate_policy(
            session,
            principal=principal,
            request=service.SimulationRequest(
                candidate=candidate,
                start=body.period_from,
                end=body.period_to,
                region=region,
                changes_limit=body.changes_limit,
            ),
            regions=state.regions,
        )
    return schemas.SimulationRead(
        region=region,
        period_from=body.period_from,
        period_to=body.period_to,
        candidate_policy=f"{candidate.policy_id} v{candidate.version}",
        episodes=report.episodes,
        signals=report.signals,
        active=_tally(report.active),
        candidate=_tally(report.candidate),
        townships=[
            schemas.TownshipRead(
                township_code=t.township_code,
                township_name=t.township_name,
                active=_tally(t.active),
                candidate=_tally(t.candidate),
            )
            for t in report.townships
        ],
        transitions=report.transitions,
        changes_total=report.changes_total,
        changes=[
            schemas.ChangeRead(
                household_id=c.household_ref,
                region_code=c.region_code,
                township_code=c.township_code,
                active=_outcome(c.active),
                candidate=_outcome(c.candidate),
            )
            for c in report.changes
        ],
    )

"""The casework API alone, in-process, on a real database, with a clock the test moves."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.casework import service
from services.casework.app import create_app
from services.casework.deadlines import CST
from services.casework.models import outbox_table
from services.casework.procedure import (
    ProcedureTemplate,
    ProcedureTemplates,
    load_procedure_templates,
)
from services.casework.service import CaseworkContext
from services.casework.settings import CaseworkSettings
from services.casework.sweeper import DeadlineSweeper
from shared.auth import Role, issue_token
from shared.clock import FrozenClock, utc_now
from shared.contracts.common import PersonV1, SourceRefV1
from shared.contracts.screening import RiskAssessedV1
from shared.db import create_engine, make_sessionmaker
from shared.secrets import Secrets
from shared.settings import DatabaseSettings

COUNTY = "141122"
TOWNSHIP = "141122100"  # 天宁镇
VILLAGE = "141122100201"  # 东关村, in 天宁镇
NEIGHBOUR = "141122100202"  # 西关村, same township
OTHER_TOWNSHIP_VILLAGE = "141122101201"  # 夏家营村, in 夏家营镇

GUARANTEES_SECURE = {
    "food": "secure",
    "clothing": "secure",
    "compulsory_education": "not_applicable",
    "basic_medical": "secure",
    "housing_safety": "secure",
    "drinking_water": "secure",
}


def template(**changes: Any) -> ProcedureTemplate:
    """Return the default procedure template with some fields replaced."""
    data = load_procedure_templates().for_region("default").model_dump(mode="json")
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return ProcedureTemplate.model_validate(data)


def verification(
    *, on: str, income: str = "5200.00", labour: str = "full", **guarantees: str
) -> dict[str, Any]:
    """Return home-verification findings."""
    return {
        "visited_on": on,
        "household_size": 4,
        "verified_income_per_capita": income,
        "labour_capacity": labour,
        "guarantees": {**GUARANTEES_SECURE, **guarantees},
        "findings": "主要劳动力患病，医疗支出大",
    }


class Casework:
    """The app, its database, its clock and caseworker tokens."""

    def __init__(
        self,
        app: FastAPI,
        http: httpx.AsyncClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: FrozenClock,
        secrets: Secrets,
    ) -> None:
        self.app = app
        self.http = http
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.secrets = secrets

    @property
    def ctx(self) -> CaseworkContext:
        """The context the app runs its use cases with."""
        ctx: CaseworkContext = self.app.state.ctx
        return ctx

    def use_templates(self, *templates: ProcedureTemplate) -> None:
        """Run with these procedure templates besides the packaged default."""
        default = load_procedure_templates().for_region("default")
        chosen = ProcedureTemplates([default, *templates])
        self.app.state.ctx = replace(self.ctx, templates=chosen)

    # -------------------------------------------------------------- time and people

    def at(self, day: str, hour: int = 10) -> None:
        """Move the business clock to a Beijing local day and hour."""
        self.clock.set(datetime.combine(date.fromisoformat(day), time(hour), tzinfo=CST))

    def today(self) -> date:
        """Return the Beijing local date of the business clock."""
        return self.clock.now().astimezone(CST).date()

    def token(self, role: Role, region: str, sub: str | None = None) -> str:
        """Return a caseworker JWT (issued against real time, which JWT checks)."""
        return issue_token(
            self.secrets.jwt_secret,
            sub=sub or f"{role}@{region}",
            role=role,
            region=region,
            now=utc_now(),
            ttl=timedelta(hours=1),
        )

    @property
    def village(self) -> str:
        """A village officer of the case's village."""
        return self.token("village_officer", VILLAGE)

    @property
    def township(self) -> str:
        """A township officer of 天宁镇."""
        return self.token("township_officer", TOWNSHIP)

    @property
    def county(self) -> str:
        """A county officer of 交城县."""
        return self.token("county_officer", COUNTY)

    @property
    def admin(self) -> str:
        """An admin."""
        return self.token("admin", COUNTY)

    # -------------------------------------------------------------- cases

    def assessment(
        self,
        *,
        village: str = VILLAGE,
        household_id: uuid.UUID | None = None,
        episode_id: uuid.UUID | None = None,
        opens_case: bool = True,
        score: int = 72,
        receipt_no: str | None = None,
    ) -> RiskAssessedV1:
        """Return a screening assessment as casework receives it."""
        return RiskAssessedV1(
            assessment_id=uuid.uuid4(),
            household_id=household_id or uuid.uuid4(),
            episode_id=episode_id or uuid.uuid4(),
            village_code=village,
            head=PersonV1(
                person_ref="ref-" + uuid.uuid4().hex[:8],
                id_cipher="v1.x",
                id_masked="141122********0012",
                name="张三",
            ),
            score=score,
            level="high",
            categories=("marginal",),
            must_verify=True,
            opens_case=opens_case,
            policy_id="default",
            policy_version=1,
            source_event_id=uuid.uuid4(),
            sources=(
                SourceRefV1(
                    kind="declaration", receipt_no=receipt_no or "SB" + uuid.uuid4().hex[:10]
                ),
            ),
            assessed_at=self.clock.now(),
        )

    async def assess(self, assessed: RiskAssessedV1) -> uuid.UUID | None:
        """Feed an assessment to casework as its consumer would; return the case id."""
        async with self.sessionmaker() as session, session.begin():
            case = await service.on_risk_assessed(
                session, self.ctx, assessed, correlation_id=uuid.uuid4(), causation_id=uuid.uuid4()
            )
            return None if case is None else case.id

    async def open_case(self, **kwargs: Any) -> str:
        """Open a case through the assessment path; return its id."""
        case_id = await self.assess(self.assessment(**kwargs))
        assert case_id is not None
        return str(case_id)

    async def act(self, case_id: str, token: str, action: str, **body: Any) -> httpx.Response:
        """POST one action."""
        return await self.http.post(
            f"/v1/cases/{case_id}/actions",
            json={"action": action, **body},
            headers={"Authorization": f"Bearer {token}"},
        )

    async def ok(self, case_id: str, token: str, action: str, **body: Any) -> dict[str, Any]:
        """POST one action that must succeed; return the case detail."""
        response = await self.act(case_id, token, action, **body)
        assert response.status_code == 200, response.text
        detail: dict[str, Any] = response.json()
        return detail

    async def get(self, path: str, token: str, **params: Any) -> httpx.Response:
        """GET with a caseworker token."""
        return await self.http.get(
            path, params=params, headers={"Authorization": f"Bearer {token}"}
        )

    async def case(self, case_id: str, token: str | None = None, **params: Any) -> dict[str, Any]:
        """Return a case detail that must be readable."""
        response = await self.get(f"/v1/cases/{case_id}", token or self.county, **params)
        assert response.status_code == 200, response.text
        detail: dict[str, Any] = response.json()
        return detail

    # -------------------------------------------------------------- standard paths

    async def to_publicity(self, case_id: str, day: str, *, village: str = VILLAGE) -> None:
        """Verify and cross-check on `day`, then start the publicity that day."""
        officer = self.token("village_officer", village)
        self.at(day)
        await self.ok(case_id, officer, "start_verification")
        await self.ok(case_id, officer, "record_verification", verification=verification(on=day))
        await self.ok(
            case_id,
            self.county,
            "record_crosscheck",
            results=[
                {"department": "medical_insurance", "result": "consistent"},
                {"department": "civil_affairs", "result": "no_record"},
            ],
        )
        await self.ok(case_id, officer, "start_publicity", location="村务公开栏")

    async def to_monitoring(
        self, case_id: str, day: str, *, include_on: str, village: str = VILLAGE
    ) -> None:
        """Run the identification from `day` and include the household on `include_on`."""
        await self.to_publicity(case_id, day, village=village)
        self.at(include_on)
        await self.ok(case_id, self.token("village_officer", village), "end_publicity")
        await self.ok(case_id, self.token("township_officer", village[:9]), "township_approve")
        await self.ok(case_id, self.county, "county_include", categories=["marginal"])

    async def to_assistance(self, case_id: str, day: str, *, include_on: str) -> dict[str, Any]:
        """Include, name a helper, record a plan, start assistance; return the detail."""
        await self.to_monitoring(case_id, day, include_on=include_on)
        await self.ok(case_id, self.township, "assign_helper", helper=HELPER)
        await self.ok(
            case_id,
            self.village,
            "record_plan",
            items=[{"measure_code": "employment.workshop"}],
        )
        return await self.ok(case_id, self.village, "start_assistance")

    # -------------------------------------------------------------- plumbing

    async def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Return the payloads written to the outbox, oldest first (optionally of one type)."""
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(outbox_table.c.event_type, outbox_table.c.value).order_by(
                        outbox_table.c.id
                    )
                )
            ).all()
        out = []
        for kind, value in rows:
            if event_type is None or kind == event_type:
                payload: dict[str, Any] = json.loads(value)["payload"]
                out.append({"event_type": kind, **payload})
        return out

    async def sweep(self) -> int:
        """Run the deadline sweeper once."""
        sweeper = DeadlineSweeper(
            sessionmaker=self.sessionmaker, ctx=self.ctx, interval_seconds=60, batch_size=500
        )
        return await sweeper.sweep_once()


HELPER = {
    "helper_id": "TN-0007",
    "name": "李帮扶",
    "phone": "13900001111",
    "unit": "天宁镇人民政府",
}


@asynccontextmanager
async def running(url: str, secrets: Secrets, var: Path) -> AsyncIterator[Casework]:
    """Start the casework app on url with a clock frozen at 2026-03-02 10:00 Beijing."""
    clock = FrozenClock(datetime(2026, 3, 2, 10, 0, tzinfo=CST))
    settings = CaseworkSettings(database=DatabaseSettings(url=url), var_dir=var)
    app = create_app(settings, clock=clock, secrets=secrets)
    engine = create_engine(settings.database)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://casework.test"
            ) as http:
                yield Casework(app, http, make_sessionmaker(engine), clock, secrets)
    finally:
        await engine.dispose()

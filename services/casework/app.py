"""The casework API: create_app() builds it; `fangpin serve casework` runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.casework import report_routes, routes
from services.casework.dashboard import install_dashboard
from services.casework.service import CaseworkContext
from services.casework.settings import CaseworkSettings
from services.casework.worker import casework_outbox
from shared.clock import Clock, SystemClock
from shared.db import UnitOfWork, create_engine, make_sessionmaker
from shared.secrets import Secrets, load_secrets
from shared.web import install_common

DESCRIPTION = """
防贫监测「认定与帮扶」：入户核查、部门协查、村内公示、审核审批、帮扶责任人与一户一策、
每月走访、风险消除与退出，带法定时限计时、逐级预警和留痕。

Casework runs the statutory procedure with persisted deadline clocks (Asia/Shanghai local
dates; the official Chinese working-day calendar with make-up workdays), region-scoped access
and an append-only audit trail. Caseworkers authenticate with `Authorization: Bearer <JWT>`.
"""


def create_app(
    settings: CaseworkSettings | None = None,
    *,
    clock: Clock | None = None,
    secrets: Secrets | None = None,
) -> FastAPI:
    """Build the casework app; settings are read here, never at import."""
    cfg = settings or CaseworkSettings()
    engine_box: dict[str, AsyncEngine] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(cfg.database)
        engine_box["engine"] = engine
        keys = secrets or load_secrets(cfg.environment, cfg.var_dir)
        app.state.uow = UnitOfWork(make_sessionmaker(engine))
        app.state.jwt_secret = keys.jwt_secret
        app.state.ctx = CaseworkContext(outbox=casework_outbox(), clock=clock or SystemClock())
        yield
        await engine.dispose()

    app = FastAPI(
        title="Fangpin casework 防贫监测·认定帮扶",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_common(app, service="casework", settings=cfg, engine_of=lambda: engine_box["engine"])
    app.include_router(routes.router)
    app.include_router(report_routes.router)
    install_dashboard(app, screening_url=cfg.dashboard_screening_url)
    return app

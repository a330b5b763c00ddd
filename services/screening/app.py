"""The screening API: create_app() builds it; `fangpin serve screening` runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.screening import policy_routes, report_routes, roster_routes, routes
from services.screening.dependencies import ScreeningState
from services.screening.roster_routes import IMPORT_PATH
from services.screening.settings import ScreeningSettings
from shared.clock import Clock, SystemClock
from shared.db import UnitOfWork, create_engine, make_sessionmaker
from shared.regions import default_region_table
from shared.secrets import Secrets, load_secrets
from shared.web import install_common

DESCRIPTION = """
防贫监测「研判」：农户台账、信号匹配、一户一个风险事件、按区域版本化政策进行可解释评分。

Screening matches each signal to a household, merges signals into one risk episode per
household and scores it under versioned regional policy, every reason explained in Chinese.
Caseworkers authenticate with `Authorization: Bearer <JWT>`; resident IDs are always masked.
"""


def create_app(
    settings: ScreeningSettings | None = None,
    *,
    secrets: Secrets | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Build the screening app; settings are read here, never at import."""
    cfg = settings or ScreeningSettings()
    engine_box: dict[str, AsyncEngine] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(cfg.database)
        engine_box["engine"] = engine
        keys = secrets or load_secrets(cfg.environment, cfg.var_dir)
        app.state.uow = UnitOfWork(make_sessionmaker(engine))
        app.state.jwt_secret = keys.jwt_secret
        app.state.cipher = keys.cipher()
        app.state.screening = ScreeningState(
            uow=app.state.uow,
            cipher=app.state.cipher,
            clock=clock or SystemClock(),
            regions=default_region_table(),
            settings=cfg,
        )
        yield
        await engine.dispose()

    app = FastAPI(
        title="Fangpin screening 防贫监测·风险研判",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_common(
        app,
        service="screening",
        settings=cfg,
        engine_of=lambda: engine_box["engine"],
        # A county roster is far larger than any other body this API takes.
        body_limit_for=lambda path: cfg.roster_max_bytes if path == IMPORT_PATH else None,
    )
    app.include_router(routes.router)
    app.include_router(roster_routes.router)
    app.include_router(policy_routes.router)
    app.include_router(report_routes.router)
    return app

"""The screening API: create_app() builds it; `fangpin serve screening` runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.screening import report_routes, routes
from services.screening.settings import ScreeningSettings
from shared.db import UnitOfWork, create_engine, make_sessionmaker
from shared.secrets import Secrets, load_secrets
from shared.web import install_common

DESCRIPTION = """
防贫监测「研判」：农户台账、信号匹配、一户一个风险事件、按区域版本化政策进行可解释评分。

Screening matches each signal to a household, merges signals into one risk episode per
household and scores it under versioned regional policy, every reason explained in Chinese.
Caseworkers authenticate with `Authorization: Bearer <JWT>`; resident IDs are always masked.
"""


def create_app(
    settings: ScreeningSettings | None = None, *, secrets: Secrets | None = None
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
        yield
        await engine.dispose()

    app = FastAPI(
        title="Fangpin screening 防贫监测·风险研判",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_common(app, service="screening", settings=cfg, engine_of=lambda: engine_box["engine"])
    app.include_router(routes.router)
    app.include_router(report_routes.router)
    return app

"""The intake API: create_app() builds it; `fangpin serve intake` runs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake import routes
from services.intake.bulk import BulkJobs, ChunkJudge
from services.intake.catalogue import default_catalogue
from services.intake.dependencies import IntakeState
from services.intake.service import IntakeContext
from services.intake.service import intake_outbox as intake_outbox
from services.intake.settings import IntakeSettings, load_clients
from shared.auth import ClientRegistry, RateLimiter, ReplayGuard
from shared.clock import Clock, SystemClock
from shared.db import UnitOfWork, create_engine, make_sessionmaker
from shared.secrets import Secrets, load_secrets
from shared.web import install_common

DESCRIPTION = """
防贫监测「发现」入口：农户自主申报（小程序后端代提交）、部门数据比对预警、干部走访排查报告。

The front door of Fangpin: household self-declarations, department data-comparison alerts and
cadre reports. Machine clients sign every request with HMAC-SHA256 (`X-Client-Id`,
`X-Timestamp`, `X-Signature`); caseworkers use `Authorization: Bearer <JWT>`. Every error is an
RFC 9457 problem with Chinese and English text. Resident ID numbers are masked in every response.
"""


BULK_PATH = "/v1/alerts:bulk"


def create_app(
    settings: IntakeSettings | None = None,
    *,
    clock: Clock | None = None,
    secrets: Secrets | None = None,
    clients: ClientRegistry | None = None,
) -> FastAPI:
    """Build the intake app; settings are read here, never at import."""
    cfg = settings or IntakeSettings()
    engine_box: dict[str, AsyncEngine] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(cfg.database)
        engine_box["engine"] = engine
        keys = secrets or load_secrets(cfg.environment, cfg.var_dir)
        sessionmaker = make_sessionmaker(engine)
        uow = UnitOfWork(sessionmaker)
        ctx = IntakeContext(
            outbox=intake_outbox(),
            cipher=keys.cipher(),
            clock=clock or SystemClock(),
            catalogue=default_catalogue(),
        )
        registry = clients or load_clients(cfg)
        bulk = BulkJobs(
            sessionmaker=sessionmaker,
            ctx=ctx,
            clients=registry,
            directory=cfg.bulk_dir,
            chunk_rows=cfg.bulk_chunk_rows,
            max_rows=cfg.bulk_max_rows,
            lease_seconds=cfg.bulk_lease_seconds,
            judge=ChunkJudge(ctx, secrets=keys, processes=cfg.bulk_judge_processes),
        )
        app.state.intake = IntakeState(
            uow=uow,
            ctx=ctx,
            clients=registry,
            replay=ReplayGuard(),
            limiter=RateLimiter(),
            jwt_secret=keys.jwt_secret,
            settings=cfg,
            bulk=bulk,
        )
        app.state.jwt_secret = keys.jwt_secret
        # Bulk jobs a dead process left behind are resumed now, or by the watcher once
        # their lease runs out (see services/intake/bulk.py).
        await bulk.remove_orphan_files()
        await bulk.recover()
        stop = asyncio.Event()
        watcher = asyncio.create_task(bulk.watch(stop), name="intake-bulk-watch")
        try:
            yield
        finally:
            stop.set()
            await watcher
            await bulk.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Fangpin intake 防贫监测·发现受理",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_common(
        app,
        service="intake",
        settings=cfg,
        engine_of=lambda: engine_box["engine"],
        body_limit_for=lambda path: cfg.max_bulk_bytes if path == BULK_PATH else None,
    )
    app.include_router(routes.router)
    return app

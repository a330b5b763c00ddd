"""FastAPI dependencies of intake: state, unit of work, signed clients, caseworkers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.intake.service import IntakeContext
from shared.auth import (
    ClientRecord,
    ClientRegistry,
    RateLimiter,
    ReplayGuard,
    now_seconds,
    require_kind,
    verify_client_request,
)
from shared.db import UnitOfWork


@dataclass
class IntakeState:
    """Everything the routes share, built in the lifespan."""

    uow: UnitOfWork
    ctx: IntakeContext
    clients: ClientRegistry
    replay: ReplayGuard
    limiter: RateLimiter
    jwt_secret: str


def get_state(request: Request) -> IntakeState:
    """Return the app's state."""
    state: IntakeState = request.app.state.intake
    return state


StateDep = Annotated[IntakeState, Depends(get_state)]


async def signed_client(request: Request, state: StateDep) -> ClientRecord:
    """Authenticate an HMAC-signed machine client (contract.md)."""
    body = await request.body()
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return verify_client_request(
        registry=state.clients,
        replay=state.replay,
        limiter=state.limiter,
        method=request.method,
        path_with_query=path,
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        now=now_seconds(),
    )


async def miniprogram_client(
    client: Annotated[ClientRecord, Depends(signed_client)],
) -> ClientRecord:
    """Only the mini-program backend files and reads declarations."""
    require_kind(client, "miniprogram")
    return client


async def department_client(
    client: Annotated[ClientRecord, Depends(signed_client)],
) -> ClientRecord:
    """Only department systems push alerts."""
    require_kind(client, "department")
    return client


MiniProgram = Annotated[ClientRecord, Depends(miniprogram_client)]
DepartmentClient = Annotated[ClientRecord, Depends(department_client)]

"""FastAPI dependencies of screening: what the lifespan builds, handed to the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.screening.settings import ScreeningSettings
from shared.clock import Clock
from shared.db import UnitOfWork
from shared.pii import PiiCipher
from shared.regions import RegionTable


@dataclass(frozen=True)
class ScreeningState:
    """Everything the roster, policy and registry routes share."""

    uow: UnitOfWork
    cipher: PiiCipher
    clock: Clock
    regions: RegionTable
    settings: ScreeningSettings


def get_state(request: Request) -> ScreeningState:
    """Return the app's state."""
    state: ScreeningState = request.app.state.screening
    return state


StateDep = Annotated[ScreeningState, Depends(get_state)]

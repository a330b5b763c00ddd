"""Alembic environment of the casework service."""

from services.casework.models import metadata
from services.casework.settings import CaseworkSettings
from shared.migrations import run_env

run_env(metadata, lambda: CaseworkSettings().database.url)

"""Alembic environment of the screening service."""

from services.screening.models import metadata
from services.screening.settings import ScreeningSettings
from shared.migrations import run_env

run_env(metadata, lambda: ScreeningSettings().database.url)

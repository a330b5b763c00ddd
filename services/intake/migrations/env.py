"""Alembic environment of the intake service."""

from services.intake.models import metadata
from services.intake.settings import IntakeSettings
from shared.migrations import run_env

run_env(metadata, lambda: IntakeSettings().database.url)

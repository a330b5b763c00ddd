"""Intake's configuration (environment prefix INTAKE_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from shared.settings import DatabaseSettings, KafkaSettings, ServiceSettings


class IntakeSettings(ServiceSettings):
    """Settings of the intake API and worker."""

    model_config = SettingsConfigDict(
        env_prefix="INTAKE_", env_nested_delimiter="__", extra="ignore"
    )

    database: DatabaseSettings = DatabaseSettings(url="sqlite+aiosqlite:///./var/intake.db")
    kafka: KafkaSettings = KafkaSettings(client_id="intake")
    port: int = 8001
    # Machine clients: a JSON document {"clients": [...]} given inline (production, from a
    # secret store) or as a file (embedded mode writes var/demo-credentials.json).
    clients_json: str | None = None
    clients_file: Path | None = None
    max_batch_items: int = 1000
    max_bulk_bytes: int = 512 * 1024 * 1024

"""Screening's configuration (environment prefix SCREENING_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import DatabaseSettings, KafkaSettings, ServiceSettings


class ScreeningSettings(ServiceSettings):
    """Settings of the screening API and worker."""

    model_config = SettingsConfigDict(
        env_prefix="SCREENING_", env_nested_delimiter="__", extra="ignore"
    )

    database: DatabaseSettings = DatabaseSettings(url="sqlite+aiosqlite:///./var/screening.db")
    kafka: KafkaSettings = KafkaSettings(client_id="screening")
    port: int = 8002
    # A county roster upload (POST /v1/roster:import) may be this large; other bodies keep
    # max_body_bytes. 64 MiB holds well over 100,000 member rows as XLSX or CSV.
    roster_max_bytes: int = 64 * 1024 * 1024

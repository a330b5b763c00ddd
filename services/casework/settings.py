"""Casework's configuration (environment prefix CASEWORK_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import DatabaseSettings, KafkaSettings, ServiceSettings


class CaseworkSettings(ServiceSettings):
    """Settings of the casework API and worker."""

    model_config = SettingsConfigDict(
        env_prefix="CASEWORK_", env_nested_delimiter="__", extra="ignore"
    )

    database: DatabaseSettings = DatabaseSettings(url="sqlite+aiosqlite:///./var/casework.db")
    kafka: KafkaSettings = KafkaSettings(client_id="casework")
    port: int = 8003
    sweep_interval_seconds: float = 30.0
    sweep_batch_size: int = 1000
    # Where the dashboard page (served at /dashboard) finds the screening API, whose reports
    # it shows beside casework's. Screening must list this service's origin in its
    # SCREENING_CORS_ORIGINS for the browser to be allowed the call.
    dashboard_screening_url: str = "http://127.0.0.1:8002"

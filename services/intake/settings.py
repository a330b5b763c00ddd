"""Intake's configuration (environment prefix INTAKE_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from shared.auth import ClientRegistry
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
    # Bulk pushes: rows per transaction, the row ceiling, and how long a job's owner may go
    # without renewing its lease before another API process (or its own restart) takes over.
    bulk_chunk_rows: int = 1000
    bulk_max_rows: int = 1_000_000
    bulk_lease_seconds: float = 120.0
    # Child processes that validate, encrypt and build events for bulk chunks, beside the API
    # process (0: a thread of the API process does it).
    bulk_judge_processes: int = 1
    # Progress callbacks: the worker loop's pace and the retry curve towards a callback URL.
    callback_batch_size: int = 50
    callback_idle_poll_seconds: float = 1.0
    callback_timeout_seconds: float = 10.0
    callback_initial_backoff_seconds: float = 5.0
    callback_max_backoff_seconds: float = 3600.0

    @property
    def bulk_dir(self) -> Path:
        """Return where uploaded bulk files wait for their job (deleted when it ends)."""
        return self.var_dir / "intake-bulk"


def load_clients(settings: IntakeSettings) -> ClientRegistry:
    """Return the machine clients from the inline JSON or the file the settings name."""
    if settings.clients_json:
        return ClientRegistry.from_json(settings.clients_json)
    path = settings.clients_file or settings.var_dir / "demo-credentials.json"
    if path.exists():
        return ClientRegistry.from_file(path)
    return ClientRegistry([])

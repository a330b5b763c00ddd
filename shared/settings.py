"""Typed configuration shared by the services; each service composes these with its prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["local", "test", "production"]
BusKind = Literal["memory", "kafka"]


class DatabaseSettings(BaseModel):
    """Where a service keeps its own database."""

    url: str = "sqlite+aiosqlite:///./var/service.db"
    echo: bool = False
    pool_size: int = 10
    # PostgreSQL's compression of large values (a case binds its ~8 KB deadline policy and
    # procedure template as JSON): lz4 costs about half of the default pglz per case opened.
    # Empty keeps the server's default, for a server built without lz4.
    toast_compression: str = "lz4"

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite default."""
        return self.url.startswith("sqlite")


class KafkaSettings(BaseModel):
    """How a worker reaches Apache Kafka."""

    bootstrap_servers: str = "127.0.0.1:19092"
    client_id: str = "fangpin"
    # Prefixed to every topic and group name; empty in production. Tests give each run its
    # own namespace on a shared broker so one test's records never reach another's workers.
    namespace: str = ""
    # linger trades a few milliseconds of latency for far fewer produce requests in bursts.
    linger_ms: int = 5
    request_timeout_ms: int = 30000
    session_timeout_ms: int = 10000
    max_poll_records: int = 500


class RelaySettings(BaseModel):
    """Outbox relay tuning."""

    batch_size: int = 500
    idle_poll_seconds: float = 0.2
    max_backoff_seconds: float = 30.0
    prune_after_days: int = 7


class ConsumerSettings(BaseModel):
    """Consumer retry behaviour for transient failures."""

    max_attempts: int = 6
    initial_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 10.0
    fetch_timeout_ms: int = 500
    # Apply a fetched batch in one transaction (one BEGIN/COMMIT instead of one per record);
    # any failure rolls the batch back and replays it one record per transaction.
    batch_transaction: bool = True


class ServiceSettings(BaseSettings):
    """Settings every service has; subclasses set the env prefix and database default."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    environment: Environment = "local"
    database: DatabaseSettings = DatabaseSettings()
    bus: BusKind = "memory"
    kafka: KafkaSettings = KafkaSettings()
    relay: RelaySettings = RelaySettings()
    consumer: ConsumerSettings = ConsumerSettings()
    host: str = "127.0.0.1"
    port: int = 8000
    # Largest request body an API accepts; bulk uploads have their own, larger limit.
    max_body_bytes: int = 1_048_576
    var_dir: Path = Path("var")
    log_level: str = "INFO"
    # Browser origins allowed to call this API from another port or host (the dashboard
    # served by casework calls screening). Exact origins only; empty means no CORS at all.
    cors_origins: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _refuse_embedded_parts_in_production(self) -> ServiceSettings:
        # The embedded defaults lose data across processes; production must never run on them.
        if self.environment == "production":
            if self.bus == "memory":
                raise ValueError("production needs bus=kafka, not the in-process bus")
            if self.database.is_sqlite:
                raise ValueError("production needs PostgreSQL, not SQLite")
        return self


class SecretSettings(BaseSettings):
    """Key material shared by the services, only ever from the environment in production."""

    model_config = SettingsConfigDict(env_prefix="FANGPIN_", extra="ignore")

    pii_encryption_key: str | None = Field(default=None, repr=False)
    pii_hash_key: str | None = Field(default=None, repr=False)
    jwt_secret: str | None = Field(default=None, repr=False)

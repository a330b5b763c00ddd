"""Fixtures of the cross-process tests: a Pipeline on its own databases and topics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.secrets import Secrets
from tests.conftest import create_pg_databases, drop_pg_databases
from tests.e2e.pipeline import Pipeline, create_topics


@pytest.fixture
async def pipeline(
    pg_templates: dict[str, str], secrets: Secrets, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    """Fresh databases and a topic namespace; the test starts the processes it needs."""
    namespace = f"t{uuid.uuid4().hex[:8]}."
    await create_topics(namespace)
    urls = await create_pg_databases(pg_templates)
    pipe = Pipeline(urls, secrets, tmp_path, namespace)
    try:
        yield pipe
    finally:
        await pipe.close()
        await drop_pg_databases(urls)

"""Unhandled errors: a database outage is a 503 to retry, anything else an opaque 500."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from shared.problems import PROBLEM_JSON, add_problem_handlers


def _app(exc: Exception) -> FastAPI:
    app = FastAPI()
    add_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return app


async def _get(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/boom")


class TestAddProblemHandlers:
    @pytest.mark.parametrize(
        "exc",
        [
            OperationalError("SELECT 1", {}, Exception("the database system is shutting down")),
            ConnectionRefusedError(111, "Connect call failed"),
        ],
    )
    async def test_an_unreachable_database_is_a_503_with_retry_after(self, exc: Exception) -> None:
        response = await _get(_app(exc))
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["retry-after"] == "5"
        body = response.json()
        assert body["type"].endswith("/unavailable")
        assert body["title_zh"] == "服务暂时不可用"
        assert "shutting down" not in response.text

    async def test_any_other_error_is_an_opaque_500(self) -> None:
        response = await _get(_app(RuntimeError("secret detail")))
        assert response.status_code == 500
        assert response.json()["type"].endswith("/internal-error")
        assert "secret detail" not in response.text

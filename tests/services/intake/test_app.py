"""The intake app as built by create_app: its OpenAPI document against the contract."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.services.intake.harness import Intake

# contract.md, "Intake API (v1)": every path with its methods.
CONTRACT = {
    ("post", "/v1/declarations"),
    ("get", "/v1/declarations/{receipt_no}"),
    ("post", "/v1/alerts"),
    ("post", "/v1/alerts:batch"),
    ("post", "/v1/alerts:bulk"),
    ("get", "/v1/jobs/{job_id}"),
    ("post", "/v1/reports"),
}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not ref:
        return schema
    name = ref.rsplit("/", 1)[-1]
    resolved: dict[str, Any] = document["components"]["schemas"][name]
    return resolved


def _has_example(document: dict[str, Any], content: dict[str, Any]) -> bool:
    for media in content.values():
        if "example" in media or "examples" in media:
            return True
        schema = _resolve(document, media.get("schema", {}))
        if "example" in schema or "examples" in schema:
            return True
    return False


@pytest.fixture
async def openapi(intake: Intake) -> dict[str, Any]:
    """The served /openapi.json."""
    response = await intake.http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        if path.startswith("/v1/")
        for method, operation in item.items()
    ]


class TestCreateApp:
    async def test_openapi_has_every_path_of_the_contract(self, openapi: dict[str, Any]) -> None:
        served = {(method, path) for method, path, _ in _operations(openapi)}

        assert served >= CONTRACT, CONTRACT - served

    @pytest.mark.parametrize("part", ["summary", "description"])
    async def test_every_route_is_described_in_chinese(
        self, openapi: dict[str, Any], part: str
    ) -> None:
        missing = [
            f"{method} {path}"
            for method, path, operation in _operations(openapi)
            if not CJK.search(operation.get(part, ""))
        ]

        assert not missing

    async def test_every_route_has_examples_of_what_it_takes_and_answers(
        self, openapi: dict[str, Any]
    ) -> None:
        missing = []
        for method, path, operation in _operations(openapi):
            body = operation.get("requestBody")
            if body and not _has_example(openapi, body["content"]):
                missing.append(f"{method} {path} request")
            success = next(v for k, v in operation["responses"].items() if k.startswith("2"))
            if not _has_example(openapi, success.get("content", {})):
                missing.append(f"{method} {path} response")

        assert not missing

    async def test_the_bulk_route_documents_its_three_formats(
        self, openapi: dict[str, Any]
    ) -> None:
        content = openapi["paths"]["/v1/alerts:bulk"]["post"]["requestBody"]["content"]

        assert set(content) == {
            "application/x-ndjson",
            "text/csv",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }

    async def test_the_progress_callback_is_documented(self, openapi: dict[str, Any]) -> None:
        callbacks = openapi["paths"]["/v1/declarations"]["post"]["callbacks"]
        [callback] = callbacks.values()
        [operation] = callback["{$request.body#/callback_url}"].values()

        assert CJK.search(operation["description"])
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert _resolve(openapi, schema)["examples"]

    async def test_problems_are_declared_per_route(self, openapi: dict[str, Any]) -> None:
        declarations = openapi["paths"]["/v1/declarations"]["post"]["responses"]

        assert {"401", "403", "409", "413", "422", "429"} <= set(declarations)
        assert "application/problem+json" in declarations["422"]["content"]

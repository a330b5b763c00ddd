"""RFC 9457 problem details: domain errors carry their HTTP meaning, one handler renders them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db import is_unavailable
from shared.logs import mask_resident_ids_in

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://fangpin.example/problems/"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldError:
    """One invalid field, explained in Chinese and English."""

    field: str
    code: str
    message_zh: str
    message_en: str

    def as_dict(self) -> dict[str, str]:
        """Return the JSON form used in a 422 problem's errors list."""
        return {
            "field": self.field,
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }


class DomainError(Exception):
    """A refusal the client can act on; rendered as application/problem+json."""

    status: ClassVar[int] = 400
    type: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    title_zh: ClassVar[str] = "请求有误"

    def __init__(
        self,
        detail: str,
        *,
        detail_zh: str | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.detail_zh = detail_zh or self.title_zh
        self.extensions = extensions or {}

    def body(self, instance: str) -> dict[str, Any]:
        """Return the problem document."""
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            "title_zh": self.title_zh,
            "detail_zh": self.detail_zh,
        }
        body.update(self.extensions)
        # A problem may repeat what the caller sent (a path, a receipt number they typed);
        # resident IDs are masked there as everywhere else.
        masked: dict[str, Any] = mask_resident_ids_in(body)  # type: ignore[assignment]
        return masked


class ValidationFailed(DomainError):
    """The request has invalid fields; every one of them is listed."""

    status = 422
    type = "validation-failed"
    title = "Validation failed"
    title_zh = "数据校验未通过"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__(
            f"{len(self.errors)} field(s) are invalid",
            detail_zh=f"有 {len(self.errors)} 个字段不符合要求",
            extensions={"errors": [e.as_dict() for e in self.errors]},
        )


class Unauthorized(DomainError):
    """No valid credentials."""

    status = 401
    type = "unauthorized"
    title = "Unauthorized"
    title_zh = "未通过身份认证"


class Forbidden(DomainError):
    """Authenticated but not allowed."""

    status = 403
    type = "forbidden"
    title = "Forbidden"
    title_zh = "无权执行此操作"


class NotFound(DomainError):
    """The resource does not exist (or is outside the caller's region)."""

    status = 404
    type = "not-found"
    title = "Not found"
    title_zh = "未找到"


class Conflict(DomainError):
    """The request conflicts with the resource's state."""

    status = 409
    type = "conflict"
    title = "Conflict"
    title_zh = "状态冲突"


class PayloadTooLarge(DomainError):
    """The body is larger than this endpoint accepts."""

    status = 413
    type = "payload-too-large"
    title = "Payload too large"
    title_zh = "请求体过大"


class TooManyRequests(DomainError):
    """The client exceeded its rate limit."""

    status = 429
    type = "rate-limited"
    title = "Too many requests"
    title_zh = "请求过于频繁"


class UnsupportedMediaType(DomainError):
    """The body's media type is not accepted here."""

    status = 415
    type = "unsupported-media-type"
    title = "Unsupported media type"
    title_zh = "不支持的内容类型"


class Unavailable(DomainError):
    """A dependency is down; try again later."""

    status = 503
    type = "unavailable"
    title = "Service unavailable"
    title_zh = "服务暂不可用"


class ProblemModel(BaseModel):
    """Schema of a problem document, for OpenAPI."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    title_zh: str
    detail_zh: str
    errors: list[dict[str, str]] | None = None


def problem_responses(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """Declare a route's problem responses so the OpenAPI document is accurate."""
    out: dict[int | str, dict[str, Any]] = {}
    for err in errors:
        out[err.status] = {
            "model": ProblemModel,
            "description": f"{err.title} / {err.title_zh}",
            "content": {PROBLEM_JSON: {}},
        }
    return out


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the problem handlers send.

    FastAPI files a declared model under application/json and adds its own 422 (an
    HTTPValidationError, application/json) to every route with parameters. The handlers
    answer every error as application/problem+json with the ProblemModel shape, so each
    error response is rewritten to exactly that: clients and schemathesis validate against
    what really comes back.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        _problem_content(document.get("paths", {}))
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ProblemModel", ProblemModel.model_json_schema())
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _problem_content(node: Any) -> None:
    """Point every 4xx/5xx response under node (callbacks included) at the problem schema."""
    if isinstance(node, list):
        for item in node:
            _problem_content(item)
        return
    if not isinstance(node, dict):
        return
    for status, response in (node.get("responses") or {}).items():
        if isinstance(response, dict) and str(status).startswith(("4", "5")):
            response["content"] = {
                PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemModel"}}
            }
            if response.get("description") == "Validation Error":
                response["description"] = "Validation failed / 数据校验未通过"
    for key, value in node.items():
        if key != "responses":
            _problem_content(value)


# Chinese wording for pydantic's error types; anything unlisted falls back to a generic line.
_ZH_BY_PYDANTIC_TYPE = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "string_type": "应为文本",
    "string_pattern_mismatch": "格式不正确",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "decimal_parsing": "应为数字",
    "decimal_type": "应为数字",
    "greater_than_equal": "数值过小",
    "greater_than": "数值过小",
    "less_than_equal": "数值过大",
    "less_than": "数值过大",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "date_type": "应为日期 YYYY-MM-DD",
    "date_parsing": "应为日期 YYYY-MM-DD",
    "date_from_datetime_parsing": "应为日期 YYYY-MM-DD",
    "list_type": "应为列表",
    "too_short": "条目过少",
    "too_long": "条目过多",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "json_invalid": "不是合法的 JSON",
    "uuid_parsing": "应为 UUID",
    "value_error": "取值无效",
}


def field_errors_from_pydantic(errors: Sequence[Any]) -> list[FieldError]:
    """Turn pydantic/FastAPI error dicts into bilingual field errors."""
    out: list[FieldError] = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or "body"
        kind = str(err.get("type", "value_error"))
        ctx = err.get("ctx") or {}
        custom = ctx.get("error") if isinstance(ctx, dict) else None
        message_en = str(err.get("msg", "invalid value"))
        message_zh = _ZH_BY_PYDANTIC_TYPE.get(kind, "取值无效")
        code = kind
        # Our own validators raise FieldValueError to carry a stable code and Chinese text.
        if isinstance(custom, FieldValueError):
            code, message_zh, message_en = custom.code, custom.message_zh, custom.message_en
        out.append(FieldError(field=field, code=code, message_zh=message_zh, message_en=message_en))
    return out


class FieldValueError(ValueError):
    """Raised inside pydantic validators to give a field error a code and Chinese text."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(message_en)
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


def _problem(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        mask_resident_ids_in(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def add_problem_handlers(app: FastAPI) -> None:
    """Render every error the app can raise as application/problem+json."""

    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        headers = {"Retry-After": "1"} if isinstance(exc, TooManyRequests) else None
        return _problem(exc.body(request.url.path), exc.status, headers)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problem = ValidationFailed(field_errors_from_pydantic(exc.errors()))
        return _problem(problem.body(request.url.path), problem.status)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        unreadable = unreadable_body(exc)
        if unreadable is not None:
            return _problem(unreadable.body(request.url.path), unreadable.status)
        body = {
            "type": "about:blank",
            "title": str(exc.detail),
            "status": exc.status_code,
            "detail": str(exc.detail),
            "instance": request.url.path,
            "title_zh": _ZH_BY_STATUS.get(exc.status_code, "请求未能处理"),
            "detail_zh": _ZH_BY_STATUS.get(exc.status_code, "请求未能处理"),
        }
        return _problem(body, exc.status_code, dict(exc.headers or {}))

    async def on_unhandled(request: Request, exc: Exception) -> JSONResponse:
        if is_unavailable(exc):
            # The database is down or restarting (the fault suite restarts it under load): not
            # a bug to page anyone about, and the caller should simply try again shortly.
            logger.warning(
                "database unavailable on %s %s: %s",
                request.method,
                request.url.path,
                type(exc).__name__,
            )
            body = {
                "type": TYPE_BASE + "unavailable",
                "title": "Service temporarily unavailable",
                "status": 503,
                "detail": "The database cannot be reached right now. Retry shortly.",
                "instance": request.url.path,
                "title_zh": "服务暂时不可用",
                "detail_zh": "数据库暂时无法连接，请稍后重试。",
            }
            return _problem(body, 503, {"Retry-After": "5"})
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {
            "type": TYPE_BASE + "internal-error",
            "title": "Internal server error",
            "status": 500,
            "detail": "The server could not complete the request.",
            "instance": request.url.path,
            "title_zh": "服务器内部错误",
            "detail_zh": "服务器未能完成请求，请稍后重试。",
        }
        return _problem(body, 500)

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unhandled)


def unreadable_body(exc: StarletteHTTPException) -> ValidationFailed | None:
    """Turn FastAPI's bare 400 for a body it could not parse into a 422 naming the cause.

    FastAPI answers 400 when decoding the JSON body fails with anything but a JSON syntax
    error: bytes that are not UTF-8 (a GBK or Latin-1 client), or nesting so deep that the
    decoder gives up. Both are invalid input like any other, so they get the documented 422
    with a field error, as a syntax error already does.
    """
    if exc.status_code != 400 or exc.__cause__ is None:
        return None
    cause = exc.__cause__
    if isinstance(cause, UnicodeError):
        error = FieldError(
            "body", "encoding.not_utf8", "请求体须为 UTF-8 编码", "the body must be UTF-8 encoded"
        )
    elif isinstance(cause, RecursionError):
        error = FieldError(
            "body", "json.too_deep", "JSON 嵌套层级过深", "the JSON nests too deeply to read"
        )
    else:
        error = FieldError("body", "json_invalid", "不是合法的 JSON", "the body is not valid JSON")
    return ValidationFailed([error])


_ZH_BY_STATUS = {
    400: "请求体无法解析",
    404: "未找到",
    405: "不允许的请求方法",
    406: "无法提供请求的格式",
    415: "不支持的内容类型",
}

"""Who is calling: HMAC-signed machine clients and caseworkers with JWTs."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import jwt

from shared.problems import Forbidden, TooManyRequests, Unauthorized

ClientKind = Literal["department", "miniprogram"]
Role = Literal[
    "village_officer", "township_officer", "county_officer", "department_officer", "admin"
]
ROLES: tuple[Role, ...] = (
    "village_officer",
    "township_officer",
    "county_officer",
    "department_officer",
    "admin",
)
SIGNATURE_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class ClientRecord:
    """A machine client allowed to call intake."""

    client_id: str
    secret: str = field(repr=False)
    kind: ClientKind
    department: str | None = None
    # Requests per minute; a department's monthly push goes through bulk, not this path.
    rate_per_minute: int = 6000


@dataclass(frozen=True)
class Principal:
    """A caseworker (or admin) as a JWT describes them."""

    sub: str
    role: Role
    region: str
    # Only department officers carry one: the department whose feedback they may read.
    department: str | None = None


def body_digest(body: bytes) -> str:
    """Return hex(SHA-256(body)), the body part of the string to sign."""
    return hashlib.sha256(body).hexdigest()


def string_to_sign(method: str, path_with_query: str, timestamp: str, digest: str) -> bytes:
    """Return the canonical string a client signs (contract.md)."""
    return f"{method.upper()}\n{path_with_query}\n{timestamp}\n{digest}".encode()


def sign(secret: str, method: str, path_with_query: str, timestamp: str, body: bytes) -> str:
    """Return the X-Signature value for a request."""
    message = string_to_sign(method, path_with_query, timestamp, body_digest(body))
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    client_id: str, secret: str, method: str, path_with_query: str, body: bytes, now: float
) -> dict[str, str]:
    """Return the three auth headers a client sends (used by the demo, tests and tools)."""
    ts = str(int(now))
    return {
        "X-Client-Id": client_id,
        "X-Timestamp": ts,
        "X-Signature": sign(secret, method, path_with_query, ts, body),
    }


class ReplayGuard:
    """Remembers signatures seen inside the window so a captured request cannot be resent.

    It lives in the API process: with several API replicas behind a balancer, put the
    clients on sticky routing or accept that a replay to another replica is caught only by
    the idempotency rules of the endpoint (a repeated alert id or Idempotency-Key).
    """

    def __init__(self, window_seconds: int = SIGNATURE_WINDOW_SECONDS) -> None:
        self._window = window_seconds
        self._seen: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    def check_and_remember(
        self, client_id: str, timestamp: str, signature: str, now: float
    ) -> bool:
        """Return False if this exact signed request was seen inside the window."""
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            self._seen.popitem(last=False)
        key = (client_id, timestamp, signature)
        if key in self._seen:
            return False
        self._seen[key] = now + 2 * self._window
        return True


class RateLimiter:
    """A token bucket per client."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: ClientRecord, now: float) -> bool:
        """Take one token from the client's bucket if there is one."""
        capacity = float(client.rate_per_minute)
        tokens, last = self._buckets.get(client.client_id, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * capacity / 60.0)
        if tokens < 1.0:
            self._buckets[client.client_id] = (tokens, now)
            return False
        self._buckets[client.client_id] = (tokens - 1.0, now)
        return True


class ClientRegistry:
    """The machine clients intake knows, loaded from a JSON file or a JSON string."""

    def __init__(self, clients: list[ClientRecord]) -> None:
        self._by_id = {c.client_id: c for c in clients}

    @classmethod
    def from_json(cls, text: str) -> ClientRegistry:
        """Load from the JSON document shape of var/demo-credentials.json (its "clients")."""
        data = json.loads(text)
        items = data["clients"] if isinstance(data, dict) else data
        return cls(
            [
                ClientRecord(
                    client_id=str(item["client_id"]),
                    secret=str(item["secret"]),
                    kind=item["kind"],
                    department=item.get("department"),
                    rate_per_minute=int(item.get("rate_per_minute", 6000)),
                )
                for item in items
            ]
        )

    @classmethod
    def from_file(cls, path: Path) -> ClientRegistry:
        """Load from a JSON file."""
        return cls.from_json(path.read_text(encoding="utf-8"))

    def get(self, client_id: str) -> ClientRecord | None:
        """Return the client with that id, if any."""
        return self._by_id.get(client_id)

    def __len__(self) -> int:
        return len(self._by_id)


def verify_client_request(
    *,
    registry: ClientRegistry,
    replay: ReplayGuard,
    limiter: RateLimiter,
    method: str,
    path_with_query: str,
    headers: dict[str, str],
    body: bytes,
    now: float,
) -> ClientRecord:
    """Authenticate a signed request or raise a 401/429 problem."""
    client_id = headers.get("x-client-id", "")
    timestamp = headers.get("x-timestamp", "")
    signature = headers.get("x-signature", "")
    if not client_id or not timestamp or not signature:
        raise Unauthorized(
            "X-Client-Id, X-Timestamp and X-Signature headers are required",
            detail_zh="缺少签名请求头 X-Client-Id、X-Timestamp、X-Signature",
        )
    client = registry.get(client_id)
    if client is None:
        raise Unauthorized("unknown client", detail_zh="未知的调用方")
    try:
        ts = int(timestamp)
    except ValueError:
        raise Unauthorized(
            "X-Timestamp must be unix seconds", detail_zh="X-Timestamp 应为秒级时间戳"
        ) from None
    if abs(now - ts) > SIGNATURE_WINDOW_SECONDS:
        raise Unauthorized(
            "the request timestamp is more than 300 s from server time",
            detail_zh="请求时间戳与服务器时间相差超过 300 秒",
        )
    expected = sign(client.secret, method, path_with_query, timestamp, body)
    if not hmac.compare_digest(expected, signature.lower()):
        raise Unauthorized("bad signature", detail_zh="签名不正确")
    if not replay.check_and_remember(client_id, timestamp, signature.lower(), now):
        raise Unauthorized("replayed request refused", detail_zh="重复提交的签名请求已被拒绝")
    if not limiter.allow(client, now):
        raise TooManyRequests("rate limit exceeded", detail_zh="超过调用频率限制，请稍后重试")
    return client


def require_kind(client: ClientRecord, kind: ClientKind) -> None:
    """Refuse a client of the wrong kind with a 403 problem."""
    if client.kind != kind:
        raise Forbidden(
            f"this endpoint is for {kind} clients",
            detail_zh="该接口不对此类调用方开放",
        )


def issue_token(
    secret: str,
    *,
    sub: str,
    role: Role,
    region: str,
    now: datetime,
    ttl: timedelta,
    department: str | None = None,
) -> str:
    """Return a signed caseworker JWT."""
    claims: dict[str, str | int] = {
        "sub": sub,
        "role": role,
        "region": region,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    if department is not None:
        claims["department"] = department
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_token(secret: str, token: str, *, now: float | None = None) -> Principal:
    """Verify a caseworker JWT and return the principal, or raise a 401 problem."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["sub", "role", "region", "exp"]},
            leeway=0,
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired", detail_zh="登录凭证已过期") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid token", detail_zh="登录凭证无效") from None
    role = claims.get("role")
    region = str(claims.get("region", ""))
    if role not in ROLES or not region.isdigit():
        raise Unauthorized(
            "token has no valid role and region", detail_zh="登录凭证缺少有效的角色或辖区"
        )
    del now
    department = claims.get("department")
    return Principal(
        sub=str(claims["sub"]),
        role=role,
        region=region,
        department=str(department) if department else None,
    )


def bearer_token(authorization: str | None) -> str:
    """Extract the token from an Authorization header or raise a 401 problem."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("Bearer token required", detail_zh="需要 Bearer 登录凭证")
    return authorization[7:].strip()


def now_seconds() -> float:
    """Return wall-clock unix seconds (signature windows are about real time)."""
    return time.time()

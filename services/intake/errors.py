"""Intake's domain errors."""

from __future__ import annotations

from shared.problems import Conflict, Forbidden, NotFound


class IdempotencyKeyReused(Conflict):
    """The same Idempotency-Key came back with a different body."""

    type = "idempotency-key-reused"
    title = "Idempotency-Key reused with a different body"
    title_zh = "幂等键已用于另一份不同的申报"


class DeclarationNotFound(NotFound):
    """No declaration with that receipt number (for this client)."""

    type = "declaration-not-found"
    title = "Declaration not found"
    title_zh = "未找到该申报"


class AlertTypeNotAllowed(Forbidden):
    """A department pushed an alert type of another department."""

    type = "alert-type-not-allowed"
    title = "Alert type belongs to another department"
    title_zh = "无权推送其他部门的预警类型"


class OutsideRegion(Forbidden):
    """The caseworker acted outside their region."""

    type = "outside-region"
    title = "Outside the caller's region"
    title_zh = "超出本人辖区范围"


class JobNotFound(NotFound):
    """No bulk job with that id (for the caller's department)."""

    type = "job-not-found"
    title = "Bulk job not found"
    title_zh = "未找到该批量任务"

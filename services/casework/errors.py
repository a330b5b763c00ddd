"""Casework's refusals as problem details."""

from __future__ import annotations

from services.casework.workdays import CalendarUnavailable
from services.casework.workflow import IllegalTransition
from shared.problems import Conflict, DomainError, FieldError, Forbidden, ValidationFailed


class ActionRefused(Conflict):
    """The procedure does not allow this action now; the problem says why."""

    type = "action-refused"
    title = "Action refused"
    title_zh = "当前不能办理该事项"

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(
            message_en,
            detail_zh=message_zh,
            extensions={"code": code, "message_zh": message_zh, "message_en": message_en},
        )
        self.code = code


class ActionForbidden(Forbidden):
    """The caller's role may not take this action under the region's procedure."""

    type = "action-forbidden"

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(
            message_en,
            detail_zh=message_zh,
            extensions={"code": code, "message_zh": message_zh, "message_en": message_en},
        )
        self.code = code


def refusal(error: IllegalTransition) -> DomainError:
    """Return the problem for a refused transition: 403 for a role, 409 for anything else."""
    if error.code == "role_not_allowed":
        return ActionForbidden(error.code, error.message_zh, error.message_en)
    return ActionRefused(error.code, error.message_zh, error.message_en)


def calendar_unavailable(error: CalendarUnavailable, field: str = "calendar") -> ValidationFailed:
    """Return the 422 problem for a computation that needs a year without official data."""
    return ValidationFailed(
        [
            FieldError(
                field,
                "calendar.unavailable",
                f"{error.year} 年尚无国务院公布的节假日安排，无法计算工作日；"
                "请管理员录入并声明该年度安排",
                f"no official holiday arrangement for {error.year} yet; "
                "an admin must enter and declare that year",
            )
        ]
    )


def invalid(field: str, code: str, message_zh: str, message_en: str) -> ValidationFailed:
    """Return a 422 problem about one field of the request."""
    return ValidationFailed([FieldError(field, code, message_zh, message_en)])

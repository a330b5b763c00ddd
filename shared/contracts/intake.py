"""Events intake publishes on intake.events."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, Field

from shared.contracts.common import PersonV1
from shared.contracts.envelope import Payload


class DeclarationReceivedV1(Payload):
    """A household's self-declaration (农户自主申报) was accepted."""

    receipt_no: str
    village_code: str
    applicant: PersonV1
    members: tuple[PersonV1, ...] = ()
    difficulty_types: tuple[str, ...] = ()
    description: str = ""
    income_last_12_months: Decimal | None = None
    proxy_relation: str | None = None
    received_at: AwareDatetime


class AlertReceivedV1(Payload):
    """A department's data-comparison alert (部门筛查预警) was accepted."""

    department: str
    alert_id: str
    alert_type: str
    subject: PersonV1
    village_code: str | None = None
    amount: Decimal | None = None
    count: int | None = None
    grade: int | None = None
    occurred_on: date
    details: dict[str, Any] = Field(default_factory=dict)
    received_at: AwareDatetime


class ReportReceivedV1(Payload):
    """A cadre's visit report (干部走访排查) was accepted."""

    report_id: str
    reporter: str
    reporter_role: str
    village_code: str
    subject: PersonV1
    members: tuple[PersonV1, ...] = ()
    difficulty_types: tuple[str, ...] = ()
    description: str = ""
    income_last_12_months: Decimal | None = None
    visit_date: date
    received_at: AwareDatetime

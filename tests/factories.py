"""Plain functions that build valid request bodies and people for tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from deploy.demo import make_resident_id

VILLAGE = "141122100201"  # 东关村, 天宁镇, 交城县 (demo)
OTHER_VILLAGE = "141122101201"  # 夏家营村, 夏家营镇 (demo)


def resident_id(serial: int, born: date | None = None, region: str = "141122") -> str:
    """Return a valid resident ID number, distinct per serial."""
    day = born or date(1960, 1, 1) + timedelta(days=serial // 1000)
    return make_resident_id(region, day, serial % 1000)


def declaration(serial: int = 1, **overrides: Any) -> dict[str, Any]:
    """Return a valid declaration body."""
    body: dict[str, Any] = {
        "applicant": {"name": "张三", "id_number": resident_id(serial), "phone": "13800138000"},
        "village_code": VILLAGE,
        "difficulty_types": ["illness"],
        "description": "家中主要劳动力患大病，医疗支出大",
        "income_last_12_months": 5200.0,
        "members": [],
        "consent": True,
    }
    body.update(overrides)
    return body


def alert(alert_id: str, id_number: str, **overrides: Any) -> dict[str, Any]:
    """Return a valid medical-insurance alert body."""
    body: dict[str, Any] = {
        "alert_id": alert_id,
        "alert_type": "medical_insurance.large_out_of_pocket",
        "subject_id_number": id_number,
        "village_code": VILLAGE,
        "amount": 52000.0,
        "occurred_on": "2026-11-01",
        "details": {},
    }
    body.update(overrides)
    return body

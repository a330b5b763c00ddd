"""Field rules shared by intake's request schemas, each failing with a bilingual FieldValueError."""

from __future__ import annotations

import re
from datetime import date

from shared.clock import today_in_china
from shared.problems import FieldValueError
from shared.regions import default_region_table
from shared.resident_id import InvalidResidentId, validate_resident_id

# Mainland mobile numbers, or a landline with its area code (a household may have no mobile).
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")

DIFFICULTY_TYPES: dict[str, str] = {
    "illness": "因病",
    "disability": "因残",
    "education_costs": "因学",
    "disaster": "因灾",
    "accident": "意外事故",
    "business_loss": "经营亏损",
    "unemployment": "失业",
    "unsafe_housing": "住房不安全",
    "drinking_water": "饮水不安全",
    "other": "其他",
}

RELATIONS: dict[str, str] = {
    "self": "本人",
    "spouse": "配偶",
    "child": "子女",
    "parent": "父母",
    "grandchild": "孙子女",
    "grandparent": "祖父母",
    "sibling": "兄弟姐妹",
    "child_in_law": "儿媳/女婿",
    "other": "其他",
}

PROXY_RELATIONS: dict[str, str] = {
    **RELATIONS,
    "village_cadre": "村干部",
    "helper": "帮扶责任人",
    "information_officer": "信息员",
}


def resident_id(value: str) -> str:
    """Validate a resident ID number and return it normalized."""
    try:
        return validate_resident_id(value, today=today_in_china())
    except InvalidResidentId as exc:
        raise FieldValueError(f"resident_id.{exc.code}", exc.message_zh, exc.message_en) from None


def phone(value: str) -> str:
    """Validate a mobile or landline number and return it without spaces."""
    compact = re.sub(r"[\s]", "", value)
    if _MOBILE.match(compact) or _LANDLINE.match(compact):
        return compact
    raise FieldValueError(
        "phone.format",
        "电话号码格式不正确（应为11位手机号或带区号的固定电话）",
        "not a valid mainland mobile or landline number",
    )


def village_code(value: str) -> str:
    """Check that a 12-digit code names a village in the region table."""
    code = value.strip()
    if not re.fullmatch(r"\d{12}", code):
        raise FieldValueError(
            "village_code.format", "村级区划代码应为12位数字", "a village code has 12 digits"
        )
    if not default_region_table().is_village(code):
        raise FieldValueError(
            "village_code.unknown",
            "区划代码不存在或不是村级单位",
            "no village with this code in the region table",
        )
    return code


def not_future(value: date) -> date:
    """Refuse a date after today in China."""
    if value > today_in_china():
        raise FieldValueError("date.future", "日期不能晚于今天", "the date is in the future")
    return value


def enum_value(value: str, allowed: dict[str, str], field: str) -> str:
    """Check a code against a catalogue, naming the allowed values."""
    if value not in allowed:
        choices = ", ".join(allowed)
        raise FieldValueError(
            f"{field}.unknown",
            f"取值不在允许范围内（可选：{'、'.join(allowed.values())}）",
            f"unknown value; allowed: {choices}",
        )
    return value

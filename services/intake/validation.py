"""Field rules shared by intake's request schemas, each failing with a bilingual FieldValueError."""

from __future__ import annotations

import functools
import re
from datetime import date

from stdnum.cn import ric

from shared.clock import today_in_china
from shared.problems import FieldValueError
from shared.regions import default_region_table
from shared.resident_id import (
    RESIDENCE_PERMIT_PREFIXES,
    InvalidResidentId,
    normalize_resident_id,
    validate_resident_id,
)
from shared.web import bad_text

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
    today = today_in_china()
    if isinstance(value, str):
        number = normalize_resident_id(value)
        if _plainly_valid(number, today):
            return number
    try:
        return validate_resident_id(value, today=today)
    except InvalidResidentId as exc:
        raise FieldValueError(f"resident_id.{exc.code}", exc.message_zh, exc.message_en) from None


# The shape shared.resident_id requires: 17 ASCII digits (never other Unicode digits), then a
# digit or X.
_SHAPE = re.compile(r"[0-9]{17}[0-9X]")


def _plainly_valid(number: str, today: date) -> bool:
    """True when shared.resident_id would accept the number, decided without its slow part.

    python-stdnum's region lookup costs about a millisecond a number, too slow for a
    million-row bulk push; its verdict depends only on the region code and the birth year.
    So the number's own shape, check digit and birth date are checked here (cheaply), and the
    full shared validation runs once per (region, birth year) on a stand-in number born on
    1 January of that year, then is remembered. Anything not plainly valid goes through the
    full validation, which alone decides what error to report. test_validation.py holds this
    shortcut to the same answers as the full rule.
    """
    if not _SHAPE.fullmatch(number):
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if (
        born > today
        or number.startswith(RESIDENCE_PERMIT_PREFIXES)
        or number[-1] != ric.calc_check_digit(number)
    ):
        return False
    return _region_and_year_valid(number[:6], born.year, today)


@functools.lru_cache(maxsize=65536)
def _region_and_year_valid(region: str, year: int, today: date) -> bool:
    # Born on 1 January, the stand-in is at least as old as anyone born that year, so if it
    # passes the age limit they do too; its birth date is never later than theirs.
    body = f"{region}{year:04d}0101000"
    stand_in = body + ric.calc_check_digit(body + "0")
    try:
        validate_resident_id(stand_in, today=today)
    except InvalidResidentId:
        return False
    return True


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
    if not re.fullmatch(r"[0-9]{12}", code):
        raise FieldValueError(
            "village_code.format", "村级区划代码应为12位数字", "a village code has 12 digits"
        )
    if not _is_village(code):
        raise FieldValueError(
            "village_code.unknown",
            "区划代码不存在或不是村级单位",
            "no village with this code in the region table",
        )
    return code


@functools.lru_cache(maxsize=16384)
def _is_village(code: str) -> bool:
    # The region table is fixed for the life of the process; bulk pushes repeat villages.
    return default_region_table().is_village(code)


def not_future(value: date) -> date:
    """Refuse a date after today in China."""
    if value > today_in_china():
        raise FieldValueError("date.future", "日期不能晚于今天", "the date is in the future")
    return value


# A department's extra information is a flat record in practice; anything nested deeper than
# this is refused before it reaches the JSON encoders (pydantic's serializer, and the event
# envelope's, give up at a few hundred levels, which made such a body a 500).
MAX_DETAILS_DEPTH = 8


def json_depth(value: object) -> int:
    """Return how deeply lists and objects nest in a JSON value (a scalar is 0), iteratively."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = list(item)
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def bounded_details(value: dict[str, object]) -> dict[str, object]:
    """Refuse extra information nested too deeply or too long to store and publish."""
    if json_depth(value) > MAX_DETAILS_DEPTH:
        raise FieldValueError(
            "details.too_deep",
            f"附加信息嵌套层级超过 {MAX_DETAILS_DEPTH} 层",
            f"details nest more than {MAX_DETAILS_DEPTH} levels deep",
        )
    if len(str(value)) > 4000:
        raise FieldValueError("details.too_large", "附加信息过长", "details too large")
    # Rows of a bulk file never pass the HTTP body check, so NUL is refused here as well.
    if bad_text(value) is not None:
        raise FieldValueError(
            "details.bad_text",
            "附加信息含有无法保存的字符（NUL 或不成对的代理字符）",
            "details hold characters that cannot be stored (NUL or a lone surrogate)",
        )
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

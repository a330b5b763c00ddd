"""Resident ID numbers (公民身份号码, GB 11643-1999): normalize, validate, mask, read."""

from __future__ import annotations

from datetime import date
from typing import Final, Literal

from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidFormat, InvalidLength

LENGTH: Final = 18
LEGACY_LENGTH: Final = 15
MAX_AGE_YEARS: Final = 130

# Stable machine codes carried by InvalidResidentId.code; API clients may branch on them.
CODE_LENGTH: Final = "length"
CODE_FORMAT: Final = "format"
CODE_CHECKSUM: Final = "checksum"
CODE_BIRTH_DATE: Final = "birth_date"
CODE_FUTURE_BIRTH_DATE: Final = "future_birth_date"
CODE_IMPLAUSIBLE_AGE: Final = "implausible_age"
CODE_REGION: Final = "region"
CODE_RESIDENCE_PERMIT: Final = "residence_permit"

# Prefixes of the residence permits for Hong Kong, Macao and Taiwan residents (港澳台居民居住证).
# They share the 18-character layout and check digit, but they are not household-registered
# resident IDs, and the rural monitoring programme is tied to household registration (户籍).
# They are refused with their own code so that a front desk can explain why, instead of
# letting them through (stdnum accepts 810000 for births from 1997 on) or failing on "region".
RESIDENCE_PERMIT_PREFIXES: Final = ("81", "82", "83")

# Characters removed by normalization besides str.isspace() ones: zero-width characters and the
# byte-order mark turn up in numbers pasted from spreadsheets and chat apps.
_INVISIBLE: Final = frozenset("\u200b\u200c\u200d\u2060\ufeff")

# Full-width digits and X come from Chinese input methods; they mean the same number.
_FULL_WIDTH: Final = str.maketrans(
    {**{chr(0xFF10 + d): str(d) for d in range(10)}, "\uff38": "X", "\uff58": "X", "x": "X"}
)

_ASCII_DIGITS: Final = frozenset("0123456789")


class InvalidResidentId(ValueError):
    """A resident ID number that cannot be accepted, with a stable code and bilingual message."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        # The number itself is never part of the message: exceptions end up in logs.
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


def normalize_resident_id(raw: str) -> str:
    """Remove every kind of whitespace, map full-width digits to ASCII and upper-case x."""
    kept = "".join(ch for ch in raw if not ch.isspace() and ch not in _INVISIBLE)
    return kept.translate(_FULL_WIDTH)


def validate_resident_id(raw: str, *, today: date) -> str:
    """Return the normalized 18-character number or raise InvalidResidentId."""
    if not isinstance(raw, str):
        raise _error(CODE_FORMAT)
    number = normalize_resident_id(raw)
    _check_shape(number)
    if number.startswith(RESIDENCE_PERMIT_PREFIXES):
        raise _error(CODE_RESIDENCE_PERMIT)
    if number[-1] != ric.calc_check_digit(number):
        raise _error(CODE_CHECKSUM)
    birth = _birth_date(number)
    if birth > today:
        raise _error(CODE_FUTURE_BIRTH_DATE)
    if _full_years(birth, today) > MAX_AGE_YEARS:
        raise _error(CODE_IMPLAUSIBLE_AGE)
    _check_with_stdnum(number, birth)
    return number


def mask_resident_id(value: str) -> str:
    """Show the first 6 and last 4 characters only; anything not 18 characters is all stars."""
    number = normalize_resident_id(value) if isinstance(value, str) else ""
    if len(number) != LENGTH:
        # A fixed-width mask, so that not even the length of a malformed value leaks.
        return "*" * LENGTH
    return number[:6] + "*" * 8 + number[14:]


def birth_date_of(value: str) -> date:
    """Return the birth date encoded in a resident ID number."""
    number = normalize_resident_id(value)
    _check_shape(number)
    return _birth_date(number)


def sex_of(value: str) -> Literal["male", "female"]:
    """Return the sex encoded in the 17th character (odd: male, even: female)."""
    number = normalize_resident_id(value)
    _check_shape(number)
    return "male" if int(number[16]) % 2 == 1 else "female"


def age_on(value: str, day: date) -> int:
    """Return the age in full years (周岁) on the given day."""
    return _full_years(birth_date_of(value), day)


def _full_years(birth: date, day: date) -> int:
    """Count completed years; someone born on 29 February has a birthday on 1 March."""
    years = day.year - birth.year
    if (day.month, day.day) < (birth.month, birth.day):
        years -= 1
    return years


def _check_shape(number: str) -> None:
    """Check the length and the characters (17 ASCII digits, then a digit or X)."""
    if len(number) == LEGACY_LENGTH and set(number) <= _ASCII_DIGITS:
        raise InvalidResidentId(
            CODE_LENGTH,
            "不支持15位旧身份证号码，请填写18位公民身份号码",
            "15-digit legacy numbers are not accepted; enter the 18-character number",
        )
    if len(number) != LENGTH:
        raise _error(CODE_LENGTH)
    # Checked here rather than left to int(): Python's int() also accepts other Unicode digits.
    if not set(number[:17]) <= _ASCII_DIGITS or not (
        number[17] in _ASCII_DIGITS or number[17] == "X"
    ):
        raise _error(CODE_FORMAT)


def _birth_date(number: str) -> date:
    """Read characters 7-14 as a calendar date."""
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise _error(CODE_BIRTH_DATE) from None


def _check_with_stdnum(number: str, birth: date) -> None:
    """Run python-stdnum's checks, turning every failure into InvalidResidentId."""
    try:
        ric.validate(number)
    except InvalidLength:
        raise _error(CODE_LENGTH) from None
    except InvalidFormat:
        raise _error(CODE_FORMAT) from None
    except InvalidChecksum:
        raise _error(CODE_CHECKSUM) from None
    # Broad on purpose: stdnum 2.2 lets a KeyError escape for codes whose province is known but
    # whose county is not (133100...). Shape, checksum and date were already checked above, so
    # whatever is left is about the region code.
    except Exception:
        if not _introduced_after(number[:6], birth.year):
            raise _error(CODE_REGION) from None


def _introduced_after(region: str, birth_year: int) -> bool:
    """Tell whether the region code only came into use after the birth year."""
    # stdnum refuses such a number, but it is legitimate: the address code is the one in force
    # when the number was assigned, which after a late household registration (补登户口) or a
    # first card at 16 is years after birth. Jiaocheng's 141122 (since 2003) is exactly this case
    # for people born there before 2003 who got their number late. A code retired before the
    # birth year stays refused: nobody can be assigned a code that no longer existed.
    try:
        found = numdb.get("cn/loc").info(region)
        counties = [props["county"] for _part, props in found if "county" in props]
        for county in ",".join(counties).split(","):
            if county.startswith("["):
                start = county[1:].split("]")[0].split("-")[0]
                if start and int(start) > birth_year:
                    return True
    except Exception:
        return False
    return False


_MESSAGES: Final[dict[str, tuple[str, str]]] = {
    CODE_LENGTH: ("身份证号码应为18位", "a resident ID number has 18 characters"),
    CODE_FORMAT: (
        "身份证号码前17位应为数字，最后一位为数字或X",
        "the first 17 characters must be digits and the last a digit or X",
    ),
    CODE_CHECKSUM: (
        "身份证号码校验位不正确，请核对",
        "the check character does not match; please check the number",
    ),
    CODE_BIRTH_DATE: (
        "身份证号码中的出生日期无效",
        "the birth date in the number is not a real date",
    ),
    CODE_FUTURE_BIRTH_DATE: (
        "身份证号码中的出生日期晚于今天",
        "the birth date in the number is in the future",
    ),
    CODE_IMPLAUSIBLE_AGE: (
        f"身份证号码中的出生日期对应年龄超过{MAX_AGE_YEARS}岁，请核对",
        f"the birth date in the number means an age over {MAX_AGE_YEARS} years; please check it",
    ),
    CODE_REGION: (
        "身份证号码中的地址码不存在或在出生时已撤销",
        "the region code in the number does not exist or was retired before the birth date",
    ),
    CODE_RESIDENCE_PERMIT: (
        "港澳台居民居住证号码（81/82/83开头）不能作为户籍居民身份证号码使用",
        "residence permit numbers for Hong Kong, Macao and Taiwan residents (81/82/83) "
        "are not accepted; a household-registered resident ID number is required",
    ),
}


def _error(code: str) -> InvalidResidentId:
    """Build the exception for one of the stable codes."""
    message_zh, message_en = _MESSAGES[code]
    return InvalidResidentId(code, message_zh, message_en)

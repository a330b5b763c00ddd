"""Tests for resident ID validation, normalization, masking and the values read from a number."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.resident_id import (
    InvalidResidentId,
    age_on,
    birth_date_of,
    mask_resident_id,
    normalize_resident_id,
    sex_of,
    validate_resident_id,
)

TODAY = date(2026, 11, 22)

# Written out here rather than taken from stdnum, so the tests check the library too.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def with_check(first17: str) -> str:
    """Append the ISO 7064 MOD 11-2 check character to 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def number(region: str, birth: date, sequence: int = 1) -> str:
    """Build a number with a correct check character."""
    return with_check(f"{region}{birth:%Y%m%d}{sequence:03d}")


def wrong_check(valid: str) -> str:
    """Return the number with a check character that does not match."""
    return valid[:17] + ("0" if valid[17] != "0" else "1")


SAMPLE = "11010519491231002X"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(SAMPLE, SAMPLE, id="plain"),
        pytest.param("11010519491231002x", SAMPLE, id="lowercase-x"),
        pytest.param("110105 19491231 002X", SAMPLE, id="inner-spaces"),
        pytest.param("\u3000110105\u300019491231002X\u3000", SAMPLE, id="full-width-spaces"),
        pytest.param("\t110105\n19491231\u00a0002X\r\n", SAMPLE, id="tabs-newlines-nbsp"),
        pytest.param("\ufeff110105\u200b19491231002X", SAMPLE, id="bom-zero-width"),
        pytest.param("１１０１０５１９４９１２３１００２ｘ", SAMPLE, id="full-width-digits"),
        pytest.param(number("110105", date(2000, 2, 29)), None, id="leap-day"),
        pytest.param(number("110105", TODAY), None, id="born-today"),
        pytest.param(number("110105", date(1896, 11, 22)), None, id="130th-birthday"),
        pytest.param(number("110105", date(1895, 11, 23)), None, id="day-before-131st-birthday"),
        # 141122 exists since 2003; a number assigned late to someone born earlier is legitimate.
        pytest.param(number("141122", date(1990, 1, 1)), None, id="late-registration-jiaocheng"),
        pytest.param(number("142323", date(1990, 1, 1)), None, id="old-jiaocheng-code"),
        pytest.param(number("110103", date(1990, 1, 1)), None, id="retired-code-born-before"),
        pytest.param(number("500241", date(2005, 6, 1)), None, id="xiushan"),
        pytest.param(number("640423", date(1970, 3, 8), 2), None, id="longde"),
    ],
)
def test_valid_numbers_are_returned_normalized(raw: str, expected: str | None) -> None:
    assert validate_resident_id(raw, today=TODAY) == (expected or raw)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param("", "length", id="empty"),
        pytest.param("   \u3000", "length", id="only-spaces"),
        pytest.param(SAMPLE[:17], "length", id="17-chars"),
        pytest.param(SAMPLE + "1", "length", id="19-chars"),
        pytest.param("110105491231002", "length", id="15-digit-legacy"),
        pytest.param("11010519491231002Y", "format", id="last-not-digit-or-x"),
        pytest.param("1101051949123100X2", "format", id="x-not-last"),
        pytest.param("11010519491231-02X", "format", id="hyphen"),
        pytest.param("١١٠١٠٥19491231002X", "format", id="arabic-indic-digits"),
        pytest.param(wrong_check(SAMPLE), "checksum", id="bad-check-character"),
        pytest.param(with_check("11010519490230002"), "birth_date", id="february-30"),
        pytest.param(with_check("11010519491301002"), "birth_date", id="month-13"),
        pytest.param(with_check("11010500000101002"), "birth_date", id="year-0"),
        pytest.param(
            number("110105", TODAY + timedelta(days=1)), "future_birth_date", id="tomorrow"
        ),
        pytest.param(number("110105", date(2099, 1, 1)), "future_birth_date", id="year-2099"),
        pytest.param(number("110105", date(1895, 11, 22)), "implausible_age", id="131st-birthday"),
        pytest.param(number("990101", date(1990, 1, 1)), "region", id="unknown-region"),
        # stdnum 2.2 raises KeyError for this one instead of a validation error.
        pytest.param(number("133100", date(1990, 1, 1)), "region", id="stdnum-keyerror-region"),
        pytest.param(
            number("110103", date(2015, 1, 1)), "region", id="region-retired-before-birth"
        ),
        pytest.param(number("810000", date(2000, 1, 1)), "residence_permit", id="hong-kong-permit"),
        pytest.param(number("820000", date(2000, 1, 1)), "residence_permit", id="macao-permit"),
        pytest.param(number("830000", date(2000, 1, 1)), "residence_permit", id="taiwan-permit"),
    ],
)
def test_invalid_numbers_raise_with_stable_code(raw: str, code: str) -> None:
    with pytest.raises(InvalidResidentId) as caught:
        validate_resident_id(raw, today=TODAY)
    error = caught.value
    assert error.code == code
    assert error.message_zh
    assert error.message_en
    assert isinstance(error, ValueError)
    # The number must never travel inside an exception that may end up in a log.
    compact = normalize_resident_id(raw)
    if len(compact) >= 8:
        assert compact not in str(error)
        assert compact not in error.message_zh


def test_non_string_input_is_a_format_error() -> None:
    with pytest.raises(InvalidResidentId) as caught:
        validate_resident_id(None, today=TODAY)  # type: ignore[arg-type]
    assert caught.value.code == "format"


def test_legacy_and_permit_messages_say_why() -> None:
    with pytest.raises(InvalidResidentId) as legacy:
        validate_resident_id("110105491231002", today=TODAY)
    assert "15" in legacy.value.message_zh
    assert "15" in legacy.value.message_en
    with pytest.raises(InvalidResidentId) as permit:
        validate_resident_id(number("810000", date(2000, 1, 1)), today=TODAY)
    assert "居住证" in permit.value.message_zh
    assert "residence permit" in permit.value.message_en


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(" 1101 05\u3000x ", "110105X", id="spaces-and-x"),
        pytest.param("ａｂｃ", "ａｂｃ", id="other-full-width-kept"),
        pytest.param("", "", id="empty"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize_resident_id(raw) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(SAMPLE, "110105********002X", id="valid"),
        pytest.param("11010519491231002x", "110105********002X", id="lowercase"),
        pytest.param("110105 19491231 002X", "110105********002X", id="spaces"),
        pytest.param("110105491231002", "*" * 18, id="legacy-15"),
        pytest.param(SAMPLE + "9", "*" * 18, id="too-long"),
        pytest.param("1101", "*" * 18, id="too-short"),
        pytest.param("", "*" * 18, id="empty"),
    ],
)
def test_mask(value: str, expected: str) -> None:
    assert mask_resident_id(value) == expected


@pytest.mark.parametrize(
    ("value", "birth", "sex"),
    [
        pytest.param(SAMPLE, date(1949, 12, 31), "female", id="sequence-002"),
        pytest.param(number("110105", date(1980, 5, 17), 1), date(1980, 5, 17), "male", id="odd"),
        pytest.param(
            number("110105", date(1980, 5, 17), 998), date(1980, 5, 17), "female", id="even"
        ),
        pytest.param(" 110105 19491231 002x", date(1949, 12, 31), "female", id="raw-form"),
    ],
)
def test_birth_date_and_sex(value: str, birth: date, sex: str) -> None:
    assert birth_date_of(value) == birth
    assert sex_of(value) == sex


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        pytest.param(date(1949, 12, 31), date(2026, 11, 22), 76, id="before-birthday"),
        pytest.param(date(1949, 12, 31), date(2026, 12, 31), 77, id="on-birthday"),
        pytest.param(date(2000, 2, 29), date(2026, 2, 28), 25, id="leap-day-not-yet"),
        pytest.param(date(2000, 2, 29), date(2026, 3, 1), 26, id="leap-day-passed"),
        pytest.param(date(2000, 2, 29), date(2028, 2, 29), 28, id="leap-day-in-leap-year"),
        pytest.param(date(2026, 11, 22), date(2026, 11, 22), 0, id="newborn"),
    ],
)
def test_age_on(birth: date, day: date, age: int) -> None:
    assert age_on(number("110105", birth), day) == age


@pytest.mark.parametrize(
    ("value", "code"),
    [
        pytest.param("110105491231002", "length", id="legacy"),
        pytest.param("11010519491231002Y", "format", id="format"),
    ],
)
def test_readers_refuse_malformed_numbers(value: str, code: str) -> None:
    for read in (birth_date_of, sex_of):
        with pytest.raises(InvalidResidentId) as caught:
            read(value)
        assert caught.value.code == code
    with pytest.raises(InvalidResidentId):
        age_on(value, TODAY)


def test_birth_date_of_refuses_an_impossible_date() -> None:
    with pytest.raises(InvalidResidentId) as caught:
        birth_date_of(with_check("11010519490230002"))
    assert caught.value.code == "birth_date"


# Region codes never retired, so a number is valid whatever the birth year (a code introduced
# after the birth year is accepted as a late assignment).
_STABLE_REGIONS = ("110101", "110105", "110108", "310115", "440305", "510107")

valid_numbers = st.builds(
    number,
    st.sampled_from(_STABLE_REGIONS),
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    st.integers(min_value=0, max_value=999),
)


@given(valid_numbers, st.sampled_from([" ", "\u3000", "\t", ""]), st.booleans())
def test_valid_numbers_round_trip(value: str, separator: str, lower: bool) -> None:
    messy = separator.join([value[:6], value[6:14], value[14:]])
    if lower:
        messy = messy.lower()
    assert validate_resident_id(messy, today=TODAY) == value
    assert birth_date_of(messy) == birth_date_of(value)
    assert sex_of(value) == ("male" if int(value[16]) % 2 else "female")


@given(valid_numbers, st.integers(min_value=0, max_value=16), st.integers(1, 9))
def test_any_single_digit_change_is_refused(value: str, position: int, delta: int) -> None:
    changed = value[:position] + str((int(value[position]) + delta) % 10) + value[position + 1 :]
    with pytest.raises(InvalidResidentId):
        validate_resident_id(changed, today=TODAY)


@given(valid_numbers)
def test_mask_hides_the_middle_of_valid_numbers(value: str) -> None:
    masked = mask_resident_id(value)
    assert masked == value[:6] + "********" + value[14:]
    assert value[6:14] not in masked


@given(st.text(max_size=40))
def test_mask_never_reveals_the_middle(value: str) -> None:
    masked = mask_resident_id(value)
    assert len(masked) == 18
    assert masked[6:14] == "********"


@given(st.one_of(st.text(max_size=30), st.text(alphabet="0123456789X", min_size=18, max_size=18)))
def test_validation_only_ever_raises_invalid_resident_id(value: str) -> None:
    try:
        result = validate_resident_id(value, today=TODAY)
    except InvalidResidentId:
        return
    assert len(result) == 18

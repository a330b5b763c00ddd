"""Intake's field rules, and the resident-ID shortcut held to the shared rule's answers."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum.cn import ric

from deploy.demo import make_resident_id
from services.intake import validation
from shared.clock import today_in_china
from shared.problems import FieldValueError
from shared.resident_id import InvalidResidentId, validate_resident_id

REGIONS = ["141122", "110105", "133100", "999999", "810000", "140000", "141100", "500101"]


def _shared_answer(value: str) -> str:
    try:
        return "ok:" + validate_resident_id(value, today=today_in_china())
    except InvalidResidentId as exc:
        return f"resident_id.{exc.code}"


def _intake_answer(value: str) -> str:
    try:
        return "ok:" + validation.resident_id(value)
    except FieldValueError as exc:
        return exc.code


@st.composite
def _numbers(draw: st.DrawFn) -> str:
    """Numbers near the valid ones: real and made-up regions, odd dates, wrong check digits."""
    region = draw(st.sampled_from(REGIONS))
    born = draw(
        st.dates(min_value=date(1880, 1, 1), max_value=today_in_china() + timedelta(days=400))
    )
    number = make_resident_id(region, born, draw(st.integers(0, 999)))
    mutation = draw(st.sampled_from(["none", "check", "spaces", "lower", "month", "short"]))
    if mutation == "check":
        number = number[:-1] + ("0" if number[-1] != "0" else "1")
    elif mutation == "spaces":
        number = f" {number[:6]} {number[6:14]}\t{number[14:]} "
    elif mutation == "lower":
        number = number[:-1] + number[-1].lower()
    elif mutation == "month":
        body = number[:10] + "13" + number[12:17]
        number = body + ric.calc_check_digit(body + "0")
    elif mutation == "short":
        number = number[:-1]
    return number


class TestResidentId:
    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_numbers())
    def test_the_shortcut_gives_the_shared_rules_answer(self, number: str) -> None:
        assert _intake_answer(number) == _shared_answer(number)

    @pytest.mark.parametrize(
        ("value", "answer"),
        [
            pytest.param(make_resident_id("141122", date(1960, 1, 1), 1), "ok", id="valid"),
            pytest.param(
                make_resident_id("141122", date(1960, 1, 1), 1)[:-1] + "Ｘ",
                "ok",
                id="full-width-x",  # the check character of serial 001 is X
            ),
            pytest.param(
                make_resident_id("141122", date(1960, 1, 2), 1)[:-1] + "Ｘ",
                "resident_id.checksum",
                id="full-width-x-wrong",
            ),
            pytest.param("１４１１２２１９６０", "resident_id.length", id="full-width-short"),
            pytest.param("141122١٩٦٠0101001" + "0", "resident_id.format", id="arabic-indic-digits"),
            pytest.param(
                make_resident_id("141122", date(1850, 1, 1), 1),
                "resident_id.implausible_age",
                id="too-old",
            ),
            pytest.param(
                make_resident_id("810000", date(2001, 1, 1), 1),
                "resident_id.residence_permit",
                id="hong-kong-permit",
            ),
        ],
    )
    def test_answers(self, value: str, answer: str) -> None:
        got = _intake_answer(value)

        assert got.split(":")[0] == answer
        assert got.split(":")[0] == _shared_answer(value).split(":")[0]


class TestVillageCode:
    @pytest.mark.parametrize(
        ("value", "code"),
        [
            pytest.param("１４１１２２１００２０１", "village_code.format", id="full-width-digits"),
            pytest.param("14112210020", "village_code.format", id="eleven-digits"),
            pytest.param("141122100000", "village_code.unknown", id="a-township"),
            pytest.param("141122999999", "village_code.unknown", id="not-in-table"),
        ],
    )
    def test_refuses(self, value: str, code: str) -> None:
        with pytest.raises(FieldValueError) as caught:
            validation.village_code(value)

        assert caught.value.code == code

    def test_accepts_a_village_of_the_table(self) -> None:
        assert validation.village_code(" 141122100201 ") == "141122100201"


class TestPhone:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("13800138000", "13800138000", id="mobile"),
            pytest.param("138 0013 8000", "13800138000", id="mobile-spaced"),
            pytest.param("0358-1234567", "0358-1234567", id="landline"),
            pytest.param("010 12345678", "01012345678", id="beijing-landline"),
        ],
    )
    def test_accepts(self, value: str, expected: str) -> None:
        assert validation.phone(value) == expected

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("12800138000", id="mobile-bad-prefix"),
            pytest.param("1380013800", id="mobile-short"),
            pytest.param("+8613800138000", id="with-country-code"),
            pytest.param("358-1234567", id="landline-no-zero"),
        ],
    )
    def test_refuses(self, value: str) -> None:
        with pytest.raises(FieldValueError) as caught:
            validation.phone(value)

        assert caught.value.code == "phone.format"

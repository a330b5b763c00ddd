"""Intake's HTTP routes, driven over ASGI with signed requests against a real database."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from deploy.demo import make_resident_id
from services.intake.repository import DeclarationRepository
from shared.clock import today_in_china
from tests import factories
from tests.services.intake.harness import Intake, assert_problem

STORED = ("declaration", "declaration_progress", "alert", "report", "outbox_message")


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy of body with a dotted path set (list indexes allowed)."""
    out = copy.deepcopy(body)
    target: Any = out
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return out


def _tomorrow() -> date:
    return today_in_china() + timedelta(days=1)


class TestCreateDeclaration:
    async def test_a_signed_declaration_gets_a_receipt(self, intake: Intake, backend: str) -> None:
        body = factories.declaration(serial=1)
        response = await intake.signed(
            "POST", "/v1/declarations", intake.client("miniprogram"), body
        )

        assert response.status_code == 202, response.text
        receipt = response.json()
        assert receipt["receipt_no"].startswith("SB")
        assert receipt["status_url"] == f"/v1/declarations/{receipt['receipt_no']}"
        assert receipt["stage"] == "received"
        assert response.headers["location"] == receipt["status_url"]
        assert body["applicant"]["id_number"] not in response.text
        assert await intake.counts("declaration", "declaration_progress", "outbox_message") == {
            "declaration": 1,
            "declaration_progress": 1,
            "outbox_message": 1,
        }

    async def test_a_retry_with_the_same_key_returns_the_same_receipt_and_creates_nothing(
        self, intake: Intake, backend: str
    ) -> None:
        mp = intake.client("miniprogram")
        body = factories.declaration(serial=2)
        key = {"Idempotency-Key": "mp-2026-0001"}

        first = await intake.signed("POST", "/v1/declarations", mp, body, headers=key)
        before = await intake.counts(*STORED)
        second = await intake.signed("POST", "/v1/declarations", mp, body, headers=key)

        assert first.status_code == second.status_code == 202
        assert second.json() == first.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert await intake.counts(*STORED) == before
        assert before["declaration"] == 1
        assert before["outbox_message"] == 1

    async def test_the_same_key_with_another_body_is_a_conflict(
        self, intake: Intake, backend: str
    ) -> None:
        mp = intake.client("miniprogram")
        key = {"Idempotency-Key": "mp-2026-0002"}
        await intake.signed("POST", "/v1/declarations", mp, factories.declaration(3), headers=key)
        before = await intake.counts(*STORED)

        response = await intake.signed(
            "POST", "/v1/declarations", mp, factories.declaration(4), headers=key
        )

        assert_problem(response, 409, "idempotency-key-reused")
        assert await intake.counts(*STORED) == before

    async def test_a_department_client_may_not_file_declarations(self, intake: Intake) -> None:
        response = await intake.signed(
            "POST",
            "/v1/declarations",
            intake.client("department", "health"),
            factories.declaration(5),
        )

        assert_problem(response, 403, "forbidden")
        assert await intake.count("declaration") == 0

    async def test_a_422_lists_every_bad_field_and_stores_nothing(self, intake: Intake) -> None:
        body = factories.declaration(6)
        body["applicant"]["id_number"] = body["applicant"]["id_number"][:-1] + (
            "0" if body["applicant"]["id_number"][-1] != "0" else "1"
        )
        body["applicant"]["phone"] = "12345"
        body["village_code"] = "141122999999"
        body["difficulty_types"] = ["illness", "bad_luck"]
        body["income_last_12_months"] = -1
        body["consent"] = False
        body["members"] = [
            {
                "name": "王芳",
                "id_number": make_resident_id("141122", _tomorrow(), 7),
                "relation": "spouse",
            }
        ]

        response = await intake.signed(
            "POST", "/v1/declarations", intake.client("miniprogram"), body
        )

        problem = assert_problem(response, 422, "validation-failed")
        found = {(e["field"], e["code"]) for e in problem["errors"]}
        assert found == {
            ("applicant.id_number", "resident_id.checksum"),
            ("applicant.phone", "phone.format"),
            ("village_code", "village_code.unknown"),
            ("difficulty_types", "difficulty_types.unknown"),
            ("income_last_12_months", "greater_than_equal"),
            ("consent", "consent.required"),
            ("members.0.id_number", "resident_id.future_birth_date"),
        }
        for error in problem["errors"]:
            assert set(error) == {"field", "code", "message_zh", "message_en"}
            assert error["message_zh"]
            assert error["message_en"]
        assert await intake.counts("declaration", "alert", "outbox_message") == {
            "declaration": 0,
            "alert": 0,
            "outbox_message": 0,
        }

    @pytest.mark.parametrize(
        ("path", "value", "field", "code"),
        [
            pytest.param(
                "applicant.id_number",
                make_resident_id("141122", date(1960, 1, 1), 8)[:-1],
                "applicant.id_number",
                "resident_id.length",
                id="id-too-short",
            ),
            pytest.param(
                "applicant.id_number",
                "FUTURE",
                "applicant.id_number",
                "resident_id.future_birth_date",
                id="id-born-tomorrow",
            ),
            pytest.param(
                "applicant.id_number",
                make_resident_id("999999", date(1980, 1, 1), 12),
                "applicant.id_number",
                "resident_id.region",
                id="id-unknown-region",
            ),
            pytest.param(
                "applicant.id_number",
                make_resident_id("810000", date(2000, 1, 1), 12),
                "applicant.id_number",
                "resident_id.residence_permit",
                id="id-residence-permit",
            ),
            pytest.param(
                "applicant.phone",
                "23800138000",
                "applicant.phone",
                "phone.format",
                id="phone-not-mobile",
            ),
            pytest.param(
                "applicant.phone", "138001380", "applicant.phone", "phone.format", id="phone-short"
            ),
            pytest.param(
                "village_code",
                "14112210020",
                "village_code",
                "village_code.format",
                id="village-11-digits",
            ),
            pytest.param(
                "village_code",
                "141122100000",
                "village_code",
                "village_code.unknown",
                id="village-is-a-township",
            ),
            pytest.param(
                "village_code",
                "141122999999",
                "village_code",
                "village_code.unknown",
                id="village-not-in-table",
            ),
            pytest.param("consent", False, "consent", "consent.required", id="consent-false"),
            pytest.param(
                "difficulty_types", [], "difficulty_types", "too_short", id="no-difficulty"
            ),
            pytest.param(
                "description", "长" * 2001, "description", "string_too_long", id="description-long"
            ),
            pytest.param(
                "callback_url",
                "ftp://mp.example/cb",
                "callback_url",
                "callback_url.format",
                id="callback-not-http",
            ),
            pytest.param(
                "proxy",
                {"name": "赵六", "id_number": "x", "phone": "13900139000", "relation": "boss"},
                "proxy.relation",
                "proxy.relation.unknown",
                id="proxy-relation-unknown",
            ),
        ],
    )
    async def test_a_field_rule_refuses(
        self, intake: Intake, path: str, value: Any, field: str, code: str
    ) -> None:
        if value == "FUTURE":
            value = make_resident_id("141122", _tomorrow(), 9)
        body = _set(factories.declaration(10), path, value)

        response = await intake.signed(
            "POST", "/v1/declarations", intake.client("miniprogram"), body
        )

        problem = assert_problem(response, 422, "validation-failed")
        assert (field, code) in {(e["field"], e["code"]) for e in problem["errors"]}
        assert await intake.count("declaration") == 0

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            pytest.param("applicant.phone", "138 0013 8000", id="mobile-with-spaces"),
            pytest.param("applicant.phone", "0358-1234567", id="landline"),
            pytest.param("village_code", " 141122101201 ", id="village-padded"),
            pytest.param(
                "proxy",
                {
                    "name": "赵六",
                    "id_number": make_resident_id("141122", date(1970, 5, 5), 21),
                    "phone": "13900139000",
                    "relation": "village_cadre",
                },
                id="proxy-village-cadre",
            ),
        ],
    )
    async def test_a_field_rule_accepts(self, intake: Intake, path: str, value: Any) -> None:
        body = _set(factories.declaration(11), path, value)

        response = await intake.signed(
            "POST", "/v1/declarations", intake.client("miniprogram"), body
        )

        assert response.status_code == 202, response.text

    async def test_a_resident_id_with_spaces_is_normalized(self, intake: Intake) -> None:
        number = factories.resident_id(12)
        spaced = f"{number[:6]} {number[6:14]} {number[14:].lower()}"
        body = _set(factories.declaration(12), "applicant.id_number", spaced)
        mp = intake.client("miniprogram")

        filed = await intake.signed("POST", "/v1/declarations", mp, body)
        progress = await intake.signed("GET", filed.json()["status_url"], mp)

        assert filed.status_code == 202, filed.text
        assert progress.json()["applicant_id_masked"] == number[:6] + "********" + number[14:]
        ref = intake.secrets.cipher().keyed_hash(number)
        async with intake.sessionmaker() as session:
            stored = await DeclarationRepository(session).by_receipt(filed.json()["receipt_no"])
        assert stored is not None
        assert stored.applicant_ref == ref
        assert intake.secrets.cipher().decrypt(stored.applicant_id_cipher) == number

    async def test_an_oversized_body_is_a_413_problem(self, intake: Intake) -> None:
        body = factories.declaration(13, description="x" * (intake.settings.max_body_bytes + 1))

        response = await intake.signed(
            "POST", "/v1/declarations", intake.client("miniprogram"), body
        )

        assert_problem(response, 413, "payload-too-large")
        assert await intake.count("declaration") == 0

    async def test_an_oversized_streamed_body_is_a_413_problem_too(self, intake: Intake) -> None:
        body = json.dumps(
            factories.declaration(14, description="x" * (intake.settings.max_body_bytes + 1))
        ).encode()

        def chunks() -> Iterator[bytes]:
            # No Content-Length: the limit is found while reading, not up front.
            yield from (body[i : i + 65536] for i in range(0, len(body), 65536))

        response = await intake.signed(
            "POST", "/v1/declarations", intake.client("miniprogram"), raw=chunks
        )

        assert_problem(response, 413, "payload-too-large")
        assert await intake.count("declaration") == 0


class TestGetDeclaration:
    async def test_the_applicant_sees_stage_history_and_a_masked_id(self, intake: Intake) -> None:
        mp = intake.client("miniprogram")
        body = factories.declaration(20)
        filed = await intake.signed("POST", "/v1/declarations", mp, body)

        response = await intake.signed("GET", filed.json()["status_url"], mp)

        assert response.status_code == 200, response.text
        progress = response.json()
        assert progress["stage"] == "received"
        assert progress["stage_label_zh"] == "已受理"
        assert [h["stage"] for h in progress["history"]] == ["received"]
        assert progress["applicant_id_masked"].count("*") == 8
        assert body["applicant"]["id_number"] not in response.text

    async def test_an_unknown_receipt_is_not_found(self, intake: Intake) -> None:
        response = await intake.signed(
            "GET", "/v1/declarations/SB20260101XXXXXXXX", intake.client("miniprogram")
        )

        assert_problem(response, 404, "declaration-not-found")

    async def test_a_department_may_not_read_declarations(self, intake: Intake) -> None:
        mp = intake.client("miniprogram")
        filed = await intake.signed("POST", "/v1/declarations", mp, factories.declaration(21))

        response = await intake.signed(
            "GET", filed.json()["status_url"], intake.client("department", "health")
        )

        assert_problem(response, 403, "forbidden")


class TestCreateAlert:
    async def test_a_repeated_alert_is_a_duplicate_and_stored_once(
        self, intake: Intake, backend: str
    ) -> None:
        yb = intake.client("department", "medical_insurance")
        alert = factories.alert("YB-100", factories.resident_id(30))

        first = await intake.signed("POST", "/v1/alerts", yb, alert)
        second = await intake.signed("POST", "/v1/alerts", yb, alert)

        assert first.status_code == 202, first.text
        assert first.json() == {"alert_id": "YB-100", "status": "accepted"}
        assert second.status_code == 200, second.text
        assert second.json() == {"alert_id": "YB-100", "status": "duplicate"}
        assert await intake.counts("alert", "outbox_message") == {
            "alert": 1,
            "outbox_message": 1,
        }

    async def test_the_same_alert_id_from_another_department_is_another_alert(
        self, intake: Intake
    ) -> None:
        subject = factories.resident_id(31)
        await intake.signed(
            "POST",
            "/v1/alerts",
            intake.client("department", "medical_insurance"),
            factories.alert("X-1", subject),
        )

        response = await intake.signed(
            "POST",
            "/v1/alerts",
            intake.client("department", "health"),
            factories.alert(
                "X-1", subject, alert_type="health.serious_illness_diagnosis", amount=None
            ),
        )

        assert response.status_code == 202, response.text
        assert await intake.count("alert") == 2

    async def test_another_departments_alert_type_is_forbidden(self, intake: Intake) -> None:
        response = await intake.signed(
            "POST",
            "/v1/alerts",
            intake.client("department", "health"),
            factories.alert("YB-101", factories.resident_id(32)),
        )

        assert_problem(response, 403, "alert-type-not-allowed")
        assert await intake.counts("alert", "outbox_message") == {"alert": 0, "outbox_message": 0}

    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            pytest.param(
                {"alert_type": "medical_insurance.lottery_win"},
                {("alert_type", "alert_type.unknown")},
                id="unknown-type",
            ),
            pytest.param({"amount": None}, {("amount", "amount.required")}, id="typed-missing"),
            pytest.param(
                {"amount": None, "subject_id_number": "110105194912310021", "village_code": "1"},
                {
                    ("amount", "amount.required"),
                    ("subject_id_number", "resident_id.checksum"),
                    ("village_code", "village_code.format"),
                },
                id="typed-missing-with-field-errors",
            ),
            pytest.param(
                {"occurred_on": "FUTURE"}, {("occurred_on", "date.future")}, id="occurred-future"
            ),
            pytest.param({"amount": -5}, {("amount", "greater_than_equal")}, id="amount-negative"),
            pytest.param(
                {"alert_id": "YB 1"}, {("alert_id", "string_pattern_mismatch")}, id="alert-id-bad"
            ),
            pytest.param({"colour": "red"}, {("colour", "extra_forbidden")}, id="unknown-field"),
        ],
    )
    async def test_a_bad_alert_is_a_422_listing_every_problem(
        self, intake: Intake, overrides: dict[str, Any], expected: set[tuple[str, str]]
    ) -> None:
        if overrides.get("occurred_on") == "FUTURE":
            overrides = {"occurred_on": _tomorrow().isoformat()}
        alert = {**factories.alert("YB-102", factories.resident_id(33)), **overrides}

        response = await intake.signed(
            "POST", "/v1/alerts", intake.client("department", "medical_insurance"), alert
        )

        problem = assert_problem(response, 422, "validation-failed")
        assert {(e["field"], e["code"]) for e in problem["errors"]} == expected
        assert await intake.counts("alert", "outbox_message") == {"alert": 0, "outbox_message": 0}

    async def test_the_mini_program_may_not_push_alerts(self, intake: Intake) -> None:
        response = await intake.signed(
            "POST",
            "/v1/alerts",
            intake.client("miniprogram"),
            factories.alert("YB-103", factories.resident_id(34)),
        )

        assert_problem(response, 403, "forbidden")


class TestCreateAlertBatch:
    async def test_good_duplicate_and_invalid_items_get_three_kinds_of_result(
        self, intake: Intake, backend: str
    ) -> None:
        yb = intake.client("department", "medical_insurance")
        await intake.signed(
            "POST", "/v1/alerts", yb, factories.alert("B-0", factories.resident_id(40))
        )
        items = [
            factories.alert("B-1", factories.resident_id(41)),
            factories.alert("B-0", factories.resident_id(40)),  # pushed before
            factories.alert("B-2", "110105194912310021"),  # bad check digit
            factories.alert("B-3", factories.resident_id(43)),
            factories.alert("B-1", factories.resident_id(41)),  # repeated inside the batch
            factories.alert(
                "B-4", factories.resident_id(44), alert_type="health.serious_illness_diagnosis"
            ),  # another department's type
            "not an object",
        ]

        response = await intake.signed("POST", "/v1/alerts:batch", yb, {"alerts": items})

        assert response.status_code == 200, response.text
        result = response.json()
        assert [(r["index"], r["alert_id"], r["status"]) for r in result["results"]] == [
            (0, "B-1", "accepted"),
            (1, "B-0", "duplicate"),
            (2, "B-2", "rejected"),
            (3, "B-3", "accepted"),
            (4, "B-1", "duplicate"),
            (5, "B-4", "rejected"),
            (6, None, "rejected"),
        ]
        assert (result["accepted"], result["duplicate"], result["rejected"]) == (2, 2, 3)
        assert result["results"][2]["errors"] == [
            {
                "field": "subject_id_number",
                "code": "resident_id.checksum",
                "message_zh": "身份证号码校验位不正确，请核对",
                "message_en": "the check character does not match; please check the number",
            }
        ]
        assert [e["code"] for e in result["results"][5]["errors"]] == ["alert_type.not_allowed"]
        assert [e["code"] for e in result["results"][6]["errors"]] == ["row.not_object"]
        # B-0 from before, B-1 and B-3 now: each once, each with one event.
        assert await intake.counts("alert", "outbox_message") == {"alert": 3, "outbox_message": 3}

    async def test_a_second_identical_batch_stores_nothing(self, intake: Intake) -> None:
        yb = intake.client("department", "medical_insurance")
        items = [factories.alert(f"R-{n}", factories.resident_id(50 + n)) for n in range(5)]
        await intake.signed("POST", "/v1/alerts:batch", yb, {"alerts": items})

        again = await intake.signed("POST", "/v1/alerts:batch", yb, {"alerts": items})

        assert again.json()["duplicate"] == 5
        assert await intake.counts("alert", "outbox_message") == {"alert": 5, "outbox_message": 5}

    async def test_more_than_a_thousand_items_is_a_422(self, intake: Intake) -> None:
        items = [{"alert_id": f"T-{n}"} for n in range(1001)]

        response = await intake.signed(
            "POST",
            "/v1/alerts:batch",
            intake.client("department", "medical_insurance"),
            {"alerts": items},
        )

        problem = assert_problem(response, 422, "validation-failed")
        assert problem["errors"][0]["field"] == "alerts"


class TestCreateReport:
    def _report(self, village: str = factories.VILLAGE, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "subject": {"name": "李四", "id_number": factories.resident_id(60), "relation": "self"},
            "village_code": village,
            "difficulty_types": ["unsafe_housing"],
            "description": "住房墙体开裂",
            "visit_date": today_in_china().isoformat(),
        }
        body.update(overrides)
        return body

    async def test_a_village_officer_reports_inside_their_village(
        self, intake: Intake, backend: str
    ) -> None:
        response = await intake.http.post(
            "/v1/reports",
            json=self._report(),
            headers={
                "Authorization": f"Bearer {intake.token('village_officer', factories.VILLAGE)}"
            },
        )

        assert response.status_code == 202, response.text
        assert response.json()["report_id"].startswith("BG")
        assert await intake.counts("report", "outbox_message") == {"report": 1, "outbox_message": 1}

    async def test_a_village_officer_may_not_report_another_village(self, intake: Intake) -> None:
        response = await intake.http.post(
            "/v1/reports",
            json=self._report(village=factories.OTHER_VILLAGE),
            headers={
                "Authorization": f"Bearer {intake.token('village_officer', factories.VILLAGE)}"
            },
        )

        assert_problem(response, 403, "outside-region")
        assert await intake.count("report") == 0

    async def test_a_county_officer_reports_any_village_of_the_county(self, intake: Intake) -> None:
        response = await intake.http.post(
            "/v1/reports",
            json=self._report(village=factories.OTHER_VILLAGE),
            headers={"Authorization": f"Bearer {intake.token('county_officer')}"},
        )

        assert response.status_code == 202, response.text

    async def test_a_machine_client_is_not_a_caseworker(self, intake: Intake) -> None:
        response = await intake.signed(
            "POST", "/v1/reports", intake.client("miniprogram"), self._report()
        )

        assert_problem(response, 401, "unauthorized")
        assert await intake.count("report") == 0

    async def test_a_future_visit_date_is_refused(self, intake: Intake) -> None:
        response = await intake.http.post(
            "/v1/reports",
            json=self._report(visit_date=_tomorrow().isoformat()),
            headers={"Authorization": f"Bearer {intake.token('county_officer')}"},
        )

        problem = assert_problem(response, 422, "validation-failed")
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [
            ("visit_date", "date.future")
        ]

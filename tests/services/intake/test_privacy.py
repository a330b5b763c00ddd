"""No resident ID in clear text: not in intake's tables, its logs, its answers or on any topic."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date
from typing import Any

import pytest

from shared.clock import today_in_china
from tests import factories
from tests.support import Stack

pytestmark = pytest.mark.e2e


def _forms(number: str) -> list[str]:
    """Return the spellings a leak could take: the number, and its unmasked middle and tail."""
    return [number, number.lower(), number[6:]]


async def _wait_for_job(stack: Stack, client: dict[str, Any], job_id: str) -> dict[str, Any]:
    for _ in range(200):
        status = await stack.signed("GET", f"/v1/jobs/{job_id}", client)
        body: dict[str, Any] = status.json()
        if body["status"] in ("done", "failed"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("the bulk job did not finish")


class TestPrivacy:
    async def test_no_resident_id_in_clear_anywhere_intake_writes(
        self, stack: Stack, caplog: pytest.LogCaptureFixture
    ) -> None:
        # DEBUG everywhere, SQLAlchemy's statement and parameter logging included.
        caplog.set_level(logging.DEBUG)
        people = [factories.resident_id(n) for n in range(1, 10)]
        bulk_people = [factories.resident_id(n, born=date(1975, 5, 5)) for n in range(20, 26)]
        clear = people + bulk_people
        answers: list[str] = []
        mp = stack.client("miniprogram")
        yb = stack.client("department", "medical_insurance")

        spaced = f"{people[0][:6]} {people[0][6:14]} {people[0][14:]}"
        declaration = factories.declaration(
            applicant={"name": "张三", "id_number": spaced, "phone": "13800138000"},
            members=[{"name": "王芳", "id_number": people[1], "relation": "spouse"}],
            proxy={
                "name": "赵六",
                "id_number": people[2],
                "phone": "13900139000",
                "relation": "village_cadre",
            },
            callback_url="https://mp.example/cb",
        )
        filed = await stack.signed(
            "POST", "/v1/declarations", mp, declaration, headers={"Idempotency-Key": "p-1"}
        )
        assert filed.status_code == 202, filed.text
        answers += [filed.text]
        answers += [(await stack.signed("GET", filed.json()["status_url"], mp)).text]
        refused = factories.declaration(
            members=[{"name": "李", "id_number": people[3][:-1] + "0", "relation": "child"}]
        )
        answers += [(await stack.signed("POST", "/v1/declarations", mp, refused)).text]

        answers += [
            (await stack.signed("POST", "/v1/alerts", yb, factories.alert("P-1", people[4]))).text
        ]
        batch = {"alerts": [factories.alert("P-2", people[5]), factories.alert("P-3", "bad")]}
        answers += [(await stack.signed("POST", "/v1/alerts:batch", yb, batch)).text]

        lines = [factories.alert(f"P-B{n}", p) for n, p in enumerate(bulk_people)]
        lines.append(factories.alert("P-BX", bulk_people[0][:-1] + "0"))  # rejected row
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        pushed = await stack.signed(
            "POST",
            "/v1/alerts:bulk",
            yb,
            raw=body,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert pushed.status_code == 202, pushed.text
        job = await _wait_for_job(stack, yb, pushed.json()["job_id"])
        assert job["counts"]["accepted"] == len(bulk_people)
        answers += [(await stack.signed("GET", f"/v1/jobs/{job['job_id']}/rejections", yb)).text]

        report = {
            "subject": {"name": "李四", "id_number": people[6], "relation": "self"},
            "members": [{"name": "李小", "id_number": people[7], "relation": "child"}],
            "village_code": factories.VILLAGE,
            "difficulty_types": ["illness"],
            "visit_date": today_in_china().isoformat(),
        }
        filed_report = await stack.as_caseworker(
            "intake", "POST", "/v1/reports", stack.token("village_officer"), report
        )
        assert filed_report.status_code == 202, filed_report.text
        answers += [filed_report.text]

        await stack.pump()

        places = {
            "intake database": [
                text for texts in (await stack.database_text("intake")).values() for text in texts
            ],
            "bus": stack.bus_text(),
            "logs": [r.getMessage() for r in caplog.records]
            + [str(r.args) for r in caplog.records]
            + [caplog.text],
            "answers": answers,
        }
        assert places["bus"], "nothing reached the bus: the scan would prove nothing"
        assert any("********" in text for text in places["intake database"])
        for where, texts in places.items():
            for number in clear:
                for form in _forms(number):
                    leaks = [t[:120] for t in texts if form in t]
                    assert not leaks, f"{number} in clear in the {where}: {leaks[:3]}"

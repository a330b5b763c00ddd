"""No resident ID in clear text anywhere the three services write, after a whole flow.

Intake's own scan (tests/services/intake/test_privacy.py) covers what intake writes. This
one follows the signals on: screening and casework tables, every topic of the bus, the logs
of all three services, and the answers (successes and refusals) of all three APIs, after a
declaration, an alert and a cadre report have become a case that caseworkers work on, and
after requests that carry resident IDs where they do not belong (free text, queries, paths).
"""

from __future__ import annotations

import logging

import httpx
import pytest

from shared.clock import today_in_china
from shared.logs import JsonFormatter, mask_resident_ids
from tests import factories
from tests.figures import record
from tests.security.world import HOME, World, visible_text

pytestmark = pytest.mark.e2e


def _forms(number: str) -> list[str]:
    """The spellings a leak could take: the number, lower-cased, and its unmasked tail."""
    return [number, number.lower(), number[6:]]


class TestNoResidentIdInClear:
    async def test_not_in_any_table_topic_log_or_answer_of_the_three_services(
        self, world: World, backend: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        stack = world.stack
        ids = [factories.resident_id(n) for n in range(60, 75)]
        clear = list(ids)
        answers: list[httpx.Response] = []
        mp = stack.client("miniprogram")
        yb = stack.client("department", "medical_insurance")
        village = stack.token("village_officer", HOME)
        county = stack.token("county_officer")

        # Signals, with IDs also where no ID field is: free text and free-form details.
        declaration = factories.declaration(
            applicant={"name": "孙七", "id_number": ids[0], "phone": "13800138000"},
            members=[{"name": "孙小", "id_number": ids[1], "relation": "child"}],
            description=f"户主身份证{ids[2]}，患病住院",
        )
        answers.append(await stack.signed("POST", "/v1/declarations", mp, declaration))
        alert = factories.alert("PRIV-1", ids[1], details={"备注": f"经办人 {ids[3]}"})
        answers.append(await stack.signed("POST", "/v1/alerts", yb, alert))
        report = {
            "subject": {"name": "周八", "id_number": ids[4], "relation": "self"},
            "village_code": HOME,
            "difficulty_types": ["illness"],
            "description": f"邻居{ids[5]}反映",
            "visit_date": today_in_china().isoformat(),
        }
        answers.append(await stack.as_caseworker("intake", "POST", "/v1/reports", village, report))
        for response in answers:
            assert response.status_code in (200, 202), response.text
        await stack.pump()

        cases = (await stack.as_caseworker("casework", "GET", "/v1/cases", county)).json()
        assert cases["total"] >= 2, cases
        for item in cases["items"]:
            case = f"/v1/cases/{item['case_id']}"
            answers.append(
                await stack.as_caseworker(
                    "casework",
                    "POST",
                    f"{case}/actions",
                    village,
                    {"action": "start_verification", "reason": f"核对{ids[6]}本人"},
                )
            )
            answers.append(
                await stack.as_caseworker(
                    "casework",
                    "POST",
                    f"{case}/visits",
                    village,
                    {
                        "visited_on": today_in_china().isoformat(),
                        "visitor_name": "王五",
                        "findings": f"见到{ids[7]}本人",
                    },
                )
            )
            for tail in ("", "/history", "/visits", "/plan/suggestions"):
                answers.append(await stack.as_caseworker("casework", "GET", case + tail, county))
        await stack.pump()

        # Reads of everything the caseworkers may see.
        for service, path in [
            ("screening", "/v1/households"),
            ("screening", "/v1/episodes"),
            ("screening", "/v1/roster/export.csv"),
            ("screening", "/v1/roster/export.xlsx"),
            ("screening", "/v1/reports/township-distribution"),
            ("casework", "/v1/cases"),
            ("casework", "/v1/deadlines/overdue"),
            ("casework", "/v1/helpers"),
        ]:
            answers.append(await stack.as_caseworker(service, "GET", path, county))
        households = (
            await stack.as_caseworker("screening", "GET", "/v1/households", county)
        ).json()
        for household in households["items"]:
            base = f"/v1/households/{household['household_id']}"
            for tail in ("", "/episodes"):
                answers.append(await stack.as_caseworker("screening", "GET", base + tail, county))
        receipt = answers[0].json()["receipt_no"]
        answers.append(await stack.signed("GET", f"/v1/declarations/{receipt}", mp))

        # Refusals carrying IDs: in a query, in a path, in an invalid field, a bad checksum.
        bad = ids[8][:-1] + ("0" if ids[8][-1] != "0" else "1")
        clear.append(bad)
        refusals = [
            await stack.as_caseworker(
                "screening", "GET", f"/v1/households?roster_no={ids[9]}", county
            ),
            await stack.as_caseworker("screening", "GET", f"/v1/households/{ids[10]}", county),
            await stack.as_caseworker("casework", "GET", f"/v1/cases/{ids[11]}", county),
            await stack.signed("GET", f"/v1/declarations/{ids[12]}", mp),
            await stack.signed(
                "POST",
                "/v1/declarations",
                mp,
                factories.declaration(applicant={"name": "错", "id_number": bad, "phone": ids[13]}),
            ),
            await stack.as_caseworker(
                "casework",
                "POST",
                f"/v1/cases/{cases['items'][0]['case_id']}/visits",
                village,
                {"visited_on": ids[14], "visitor_name": ids[14], "findings": ids[14]},
            ),
        ]
        assert all(r.status_code >= 400 for r in refusals[2:]), [r.text for r in refusals]
        answers += refusals

        tables = {
            f"{service}.{table}": texts
            for service in ("intake", "screening", "casework")
            for table, texts in (await stack.database_text(service)).items()
        }
        places: dict[str, list[str]] = {
            **{f"table {name}": texts for name, texts in tables.items()},
            "bus": stack.bus_text(),
            # What reaches the log stream: every record, any library's, as the services'
            # formatter writes it (it masks as a last defence) ...
            "logs as written": [JsonFormatter("test").format(r) for r in caplog.records],
            # ... and what our own code logs, before that defence.
            "our log records": [
                f"{r.getMessage()} {r.args}"
                for r in caplog.records
                if r.name.startswith(("services", "shared", "deploy"))
            ],
            "answers": [visible_text(r) for r in answers]
            + [r.headers.get("location", "") for r in answers],
        }
        assert places["bus"], "nothing reached the bus: the scan would prove nothing"
        assert any(tables[f"casework.{t}"] for t in ("case", "case_event")), "no case to scan"
        scanned = sum(len(texts) for texts in places.values())
        leaks = [
            f"{number} in {where}: {text[:160]!r}"
            for where, texts in places.items()
            for number in clear
            for form in _forms(number)
            for text in texts
            if form in text
        ]
        record(
            "access",
            {
                "check": f"resident IDs in clear after a full flow: 3 databases, bus, logs, "
                f"answers ({backend})",
                "inputs_tried": len(clear),
                "refused": len(clear) - len({leak.split(" ")[0] for leak in leaks}),
                "server_errors": 0,
            },
        )
        # The typed-in IDs are there, masked: the scan reads the columns they went to.
        for number, table in [
            (ids[2], "intake.declaration"),
            (ids[3], "intake.alert"),
            (ids[5], "intake.report"),
            (ids[6], "casework.case_event"),
        ]:
            assert any(mask_resident_ids(number) in text for text in tables[table]), table
        assert scanned
        assert not leaks, "\n".join(leaks[:20])

"""The dashboard in real headless Chromium against a running `fangpin up`, seeded with Jiaocheng.

The test starts the embedded stack on spare ports, files department alerts through intake
(signed like a department's system) so an area alert is raised, opens the page with a
county officer's and a township officer's token, and checks every number the page shows
against the APIs it calls.  Screenshots go to the test's tmp dir; with
FANGPIN_UPDATE_SCREENSHOT=1 the county one is also copied to docs/dashboard.png.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy import seed
from services.casework.dashboard import vendor_ready
from shared.auth import signed_headers
from shared.clock import today_in_china
from shared.regions import default_region_table

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI") == "true"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # Lets the page finish its API calls and charts before the DOM or picture is taken.
    "--virtual-time-budget=20000",
)


def _need(ok: bool, message: str) -> None:
    if not ok:
        if IN_CI:
            pytest.fail("CI=true: " + message)
        pytest.skip(message)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    _need(
        found is not None, "needs Debian's chromium (apt-get install chromium fonts-wqy-microhei)"
    )
    assert found is not None
    return found


def _free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@contextlib.contextmanager
def running_stack(var: Path, ports: dict[str, int]) -> Iterator[dict[str, str]]:
    """Seed, then run `fangpin up` in a subprocess; stop it (SIGTERM) afterwards."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INTAKE_", "SCREENING_", "CASEWORK_", "FANGPIN_"))
    }
    env.update({f"{name.upper()}_PORT": str(port) for name, port in ports.items()})
    seeded = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "seed", "jiaocheng", "--var", str(var)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stderr
    log = (var / "up.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.cli", "up", "--var", str(var)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        deadline = time.monotonic() + 90
        waiting = set(urls)
        while waiting and time.monotonic() < deadline:
            assert process.poll() is None, (var / "up.log").read_text()
            for name in list(waiting):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(urls[name] + "/healthz", timeout=1).status_code == 200:
                        waiting.discard(name)
            time.sleep(0.3)
        assert not waiting, f"not up: {waiting}"
        yield urls
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def file_alerts(intake: str, creds: dict[str, Any], township: str, count: int) -> None:
    """Send illness alerts about `count` households of a township, signed as 卫健委."""
    client = next(c for c in creds["clients"] if c.get("department") == "health")
    _, households = seed.jiaocheng_dataset(default_region_table())
    chosen = [h for h in households if h.township_code == township][:count]
    for index, household in enumerate(chosen):
        body = {
            "alert_id": f"DASH-{index}",
            "alert_type": "health.serious_illness_diagnosis",
            "subject_id_number": household.people[0].id_number,
            "occurred_on": today_in_china().isoformat(),
            "details": {},
        }
        raw = json.dumps(body).encode()
        headers = signed_headers(
            client["client_id"], client["secret"], "POST", "/v1/alerts", raw, time.time()
        )
        headers["Content-Type"] = "application/json"
        sent = httpx.post(intake + "/v1/alerts", content=raw, headers=headers, timeout=10)
        assert sent.status_code == 202, sent.text


class Page(HTMLParser):
    """Collects the text of every element carrying one of the dashboard's data attributes."""

    KEYS = ("data-kpi", "data-cell", "data-sla", "data-alert", "data-department", "data-error")

    def __init__(self, html: str) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}
        self.body: dict[str, str] = {}
        self.charts: dict[str, bool] = {}
        self._open: list[tuple[str, tuple[str, str] | None]] = []
        self._chart: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "body":
            self.body = {k: v or "" for k, v in found.items()}
        if found.get("data-chart") == "ready":
            self._chart = found.get("id") or ""
            self.charts[self._chart] = False
        if tag == "canvas" and self._chart is not None:
            self.charts[self._chart] = True
        key = next(((k, found[k] or "") for k in self.KEYS if k in found), None)
        if key is not None:
            self.values[key] = ""
        self._open.append((tag, key))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            open_tag, _ = self._open.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, key in self._open:
            if key is not None:
                self.values[key] += data

    def get(self, attribute: str, name: str) -> str:
        return self.values[(attribute, name)].strip()

    def all(self, attribute: str) -> dict[str, str]:
        return {
            name: text.strip() for (attr, name), text in self.values.items() if attr == attribute
        }


def browse(chromium: str, url: str, profile: Path, *extra: str) -> str:
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def api(url: str, token: str) -> Any:
    got = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert got.status_code == 200, got.text
    return got.json()


def token_of(creds: dict[str, Any], role: str) -> str:
    return str(next(c["token"] for c in creds["caseworkers"] if c["role"] == role))


def test_dashboard_shows_what_the_apis_answer(tmp_path: Path) -> None:
    chromium = _chromium()
    _need(
        vendor_ready(),
        "needs ECharts in services/casework/web/assets/vendor: make dashboard-assets",
    )
    var = tmp_path / "var"
    var.mkdir()
    names = ("intake", "screening", "casework")
    ports = dict(zip(names, _free_ports(3), strict=True))
    regions = default_region_table()
    dongpodi = seed.township_for(regions, "东坡底乡").code
    with running_stack(var, ports) as urls:
        creds = json.loads((var / "demo-credentials.json").read_text(encoding="utf-8"))
        county = token_of(creds, "county_officer")
        file_alerts(urls["intake"], creds, dongpodi, 6)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            alerts = api(urls["screening"] + "/v1/reports/area-alerts?weeks=12", county)
            if alerts["items"]:
                break
            time.sleep(0.5)
        assert [a["township_code"] for a in alerts["items"]] == [dongpodi]

        table = api(urls["screening"] + "/v1/reports/township-distribution", county)
        pipeline = api(urls["casework"] + "/v1/reports/pipeline", county)
        sla = api(urls["casework"] + "/v1/reports/sla?months=6", county)
        departments = api(urls["screening"] + "/v1/reports/departments", county)
        page_url = f"{urls['casework']}/dashboard/#token={county}"
        page = Page(browse(chromium, page_url, tmp_path / "profile-dom", "--dump-dom"))
        shot = tmp_path / "dashboard.png"
        browse(
            chromium,
            page_url,
            tmp_path / "profile-shot",
            "--window-size=1400,3400",
            f"--screenshot={shot}",
        )

        township = token_of(creds, "township_officer")
        own_table = api(urls["screening"] + "/v1/reports/township-distribution", township)
        township_page = Page(
            browse(
                chromium,
                f"{urls['casework']}/dashboard/#token={township}",
                tmp_path / "profile-township",
                "--dump-dom",
            )
        )

    assert page.all("data-error") == {}
    assert page.body.get("data-ready") == "1"
    assert page.body.get("data-charts") == "6"
    assert len(page.charts) == 6
    assert all(page.charts.values()), page.charts

    total = table["total"]
    assert page.get("data-kpi", "escaped_households") == str(total["escaped_households"]) == "11055"
    monitored = (
        total["unstable_households"] + total["marginal_households"] + total["sudden_households"]
    )
    assert page.get("data-kpi", "monitored_households") == str(monitored)
    assert page.get("data-kpi", "cases") == str(pipeline["cases"])
    assert page.get("data-kpi", "overdue_total") == str(sla["overdue_total"])
    assert page.get("data-kpi", "area_alerts") == str(len(alerts["items"])) == "1"

    cells = page.all("data-cell")
    keys = [c["key"] for c in table["columns"]]
    for row in [*table["rows"], total]:
        name = "total" if row is total else row["township_code"]
        for key in keys:
            assert cells[f"{name}:{key}"] == str(row[key]), (name, key)
    assert len(cells) == (len(table["rows"]) + 1) * len(keys)

    # The SLA table's 合计 row: on time / decided over the window, from the API's totals.
    sla_cells = page.all("data-sla")
    for metric in sla["metrics"]:
        cells_of = [c for c in sla["totals"] if c["metric"] == metric["key"]]
        on_time = sum(c["on_time"] for c in cells_of)
        decided = on_time + sum(c["late"] for c in cells_of)
        if decided:
            assert sla_cells[f"total:{metric['key']}"].startswith(
                f"{on_time / decided * 100:.1f}%（{on_time}/{decided}"
            )

    alert = alerts["items"][0]
    assert f"{alert['township_code']}:{alert['cause']}:{alert['week_start']}" in page.all(
        "data-alert"
    )
    shown = page.all("data-department")
    assert set(shown) == {d["department"] for d in departments["departments"]} == {"health"}
    health = departments["departments"][0]
    assert health["alerts"] == 6
    assert (
        shown["health"]
        == f"卫健委{health['alerts']}{health['included']}{health['share_included'] * 100:.1f}%"
    )

    assert shot.is_file()
    assert shot.stat().st_size > 50_000
    if os.environ.get("FANGPIN_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")

    # A township officer's page shows only that township, like the API.
    assert township_page.all("data-error") == {}
    own_rows = {k.split(":")[0] for k in township_page.all("data-cell")}
    assert own_rows == {r["township_code"] for r in own_table["rows"]} | {"total"}
    assert own_rows == {"141122100000", "total"}
    assert township_page.get("data-cell", "total:escaped_households") == str(
        own_table["total"]["escaped_households"]
    )

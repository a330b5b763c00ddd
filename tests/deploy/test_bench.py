"""`fangpin bench --quick`: every scenario runs on the real stack and stays correct.

The smoke run asserts correctness, not speed: every alert scored, the cases opened, no
duplicate case, nothing lost across the screening crash, every overdue clock breached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.bench import load, report
from tests.conftest import KAFKA, PG_ADMIN_URL, PG_URL

ROOT = Path(__file__).resolve().parents[2]


class TestPercentiles:
    def test_nearest_rank(self) -> None:
        values = [float(v) for v in range(1, 101)]
        assert load.percentiles(values) == {"p50": 51.0, "p95": 96.0, "p99": 100.0, "max": 100.0}

    def test_empty(self) -> None:
        assert load.percentiles([])["p99"] == 0.0


class TestMedian:
    def test_odd_and_single(self) -> None:
        assert report.median([3.0, 1.0, 2.0]) == 2.0
        assert report.median([5.0]) == 5.0


@pytest.mark.postgres
@pytest.mark.kafka
@pytest.mark.e2e
class TestQuickBench:
    def test_every_scenario_runs_and_nothing_is_lost_or_duplicated(self, tmp_path: Path) -> None:
        assert PG_URL
        assert PG_ADMIN_URL
        assert KAFKA
        out = tmp_path / "bench.json"
        md = tmp_path / "bench.md"
        env = dict(os.environ)
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "deploy.cli",
                "bench",
                "--quick",
                "--pg-url",
                PG_URL,
                "--pg-admin-url",
                PG_ADMIN_URL,
                "--kafka",
                KAFKA,
                "--json",
                str(out),
                "--markdown",
                str(md),
                "--var",
                str(tmp_path / "var"),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        assert time.monotonic() - started < 300
        results = json.loads(out.read_text())
        assert results["failures"] == []
        assert set(results["scenarios"]) == {"S1", "S2", "S3", "S4", "S5"}
        for name in (
            "http_noop_rate",
            "produce_rate",
            "consume_rate",
            "pg_copy_rate",
            "pg_batch_rate",
            "chain_rate",
        ):
            assert results["limits"][name] > 0, name
        s1 = results["scenarios"]["S1"]["runs"][0]
        assert s1["stored"] == s1["alerts"] == s1["distinct_assessed_events"]
        assert s1["cases"] == s1["expected_cases"] == s1["case_households"] > 0
        assert s1["people"] < s1["alerts"]  # the cross-department repeats collapsed
        s2 = results["scenarios"]["S2"]["runs"][0]
        assert s2["lost"] == 0
        assert s2["matched_to_registry"] == s2["alerts"]
        s4 = results["scenarios"]["S4"]["runs"][0]
        assert s4["lost"] == 0
        assert s4["duplicate_cases"] == 0
        assert s4["cases"] == s4["expected_cases"] > 0
        s5 = results["scenarios"]["S5"]["runs"][0]
        assert s5["breached"] == s5["expected_overdue"] > 0
        assert s5["transitions"]["errors"] == 0
        # Every goal line carries its scenario, its ratio or bound, and its verdict.
        assert {g["scenario"] for g in results["goals"]} == {"S1", "S2", "S3", "S4", "S5"}
        assert results["machine"]["cpus"]
        assert results["loadavg_start"]
        assert "| S1 |" in md.read_text()

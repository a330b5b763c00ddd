"""`fangpin up` from nothing: three APIs healthy, a signed declaration becomes a visible case."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PORTS = {"intake": 18401, "screening": 18402, "casework": 18403}

pytestmark = pytest.mark.e2e


def test_fangpin_up_serves_the_demo_end_to_end(tmp_path: Path) -> None:
    env = dict(os.environ)
    for service, port in PORTS.items():
        env[f"{service.upper()}_PORT"] = str(port)
    var = tmp_path / "var"
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.cli", "up", "--var", str(var)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        started = time.monotonic()
        while True:
            try:
                if all(
                    httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=1).status_code == 200
                    for p in PORTS.values()
                ):
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() - started < 120, "not healthy within 120 s"
            time.sleep(0.3)
        assert (var / "demo-credentials.json").exists()
        demo = subprocess.run(
            [
                sys.executable,
                "-m",
                "deploy.cli",
                "demo",
                "--var",
                str(var),
                "--intake",
                f"http://127.0.0.1:{PORTS['intake']}",
                "--casework",
                f"http://127.0.0.1:{PORTS['casework']}",
                "--wait",
                "10",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "→ 202" in demo.stdout
        assert "case " in demo.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    assert proc.returncode == 0, (tmp_path / "up.log").read_text()[-2000:]

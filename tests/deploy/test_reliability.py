"""`python -m deploy.reliability`: every suite's rows become one table, absent counts a dash."""

from __future__ import annotations

import json
from pathlib import Path

from deploy import reliability


def _write(directory: Path, suite: str, rows: list[dict[str, object]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{suite}.json").write_text(json.dumps(rows), encoding="utf-8")


class TestMain:
    def test_renders_every_suite_with_totals(self, tmp_path: Path) -> None:
        figures = tmp_path / "figures"
        _write(
            figures,
            "faults",
            [
                {
                    "check": "kafka down",
                    "faults_injected": 9,
                    "alerts_sent": 10000,
                    "lost": 0,
                    "duplicated": 0,
                    "server_errors": 2,
                }
            ],
        )
        _write(
            figures,
            "access",
            [
                {
                    "check": "forged | expired",
                    "inputs_tried": 120,
                    "refused": 120,
                    "server_errors": 0,
                }
            ],
        )
        out = tmp_path / "reliability.md"
        assert reliability.main(["--figures", str(figures), "--output", str(out)]) == 0
        text = out.read_text(encoding="utf-8")
        lines = [line for line in text.splitlines() if line.startswith("| ")]
        # Known suites keep their documented order: faults before access.
        assert lines[1].startswith("| faults | kafka down | 9 | 10,000 | 0 | 0 | – | – | 2 |")
        assert lines[2].startswith(
            "| access | forged \\| expired | – | – | – | – | 120 | 120 | 0 |"
        )
        assert lines[3] == (
            "| **all** | | **9** | **10,000** | **0** | **0** | **120** | **120** | **2** |"
        )
        assert "### Access control (`access`)" in text
        assert "make reliability" in text

    def test_an_empty_directory_says_how_to_get_figures(self, tmp_path: Path) -> None:
        out = tmp_path / "reliability.md"
        assert reliability.main(["--figures", str(tmp_path), "--output", str(out)]) == 0
        assert "no figures recorded yet" in out.read_text(encoding="utf-8")

    def test_an_unknown_suite_still_renders(self, tmp_path: Path) -> None:
        _write(tmp_path, "zeta", [{"check": "something", "lost": 1}])
        out = tmp_path / "reliability.md"
        reliability.main(["--figures", str(tmp_path), "--output", str(out)])
        text = out.read_text(encoding="utf-8")
        assert "| zeta | something | – | – | 1 |" in text
        assert "### zeta (`zeta`)" in text

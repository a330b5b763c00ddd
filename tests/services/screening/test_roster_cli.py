"""Tests for `fangpin roster import`: the progress bar and the command end to end."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from deploy.cli import main as fangpin
from services.screening import roster
from services.screening.roster_cli import ProgressBar
from tests.services.screening.harness import household_rows, member_row, person, write_roster


class TestProgressBar:
    def test_draws_one_line_per_phase_and_throttles_redraws(self) -> None:
        stream = io.StringIO()
        ticks = iter([0.0, 0.01, 0.02, 0.03, 0.5, 0.6])
        bar = ProgressBar(stream, clock=lambda: next(ticks))
        bar("read", 0, 0)
        bar("read", 10, 10)
        bar("import", 0, 4)
        bar("import", 1, 4)  # 10 ms after the last drawing: skipped
        bar("import", 2, 4)
        bar("import", 4, 4)
        bar.close()
        lines = stream.getvalue().split("\n")
        assert lines[0].endswith("[" + "#" * 30 + "] 10/10 100%")
        assert "1/4" not in lines[1]
        assert lines[1].endswith("[" + "#" * 30 + "] 4/4 100%")
        assert "[" + "#" * 15 + "." * 15 + "] 2/4  50%" in lines[1]


class TestMain:
    def run(self, *args: str) -> int:
        return fangpin(["roster", "import", *args])

    def test_imports_and_reports_counts(
        self, screening_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = write_roster(
            tmp_path / "r.xlsx", [*household_rows("A", [1, 2]), *household_rows("B", [3])]
        )
        common = ("--url", screening_url, "--var", str(tmp_path / "var"), "--region", "141122")
        assert self.run(str(path), *common) == 0
        first = capsys.readouterr()
        assert "households created 2" in first.out
        assert "importing [" in first.err
        assert self.run(str(path), *common) == 0
        assert "unchanged 2" in capsys.readouterr().out

    def test_writes_the_rejection_report_and_exits_2(
        self, screening_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = write_roster(
            tmp_path / "r.csv", [member_row("A", person(1), relation="配偶")], "csv"
        )
        report = tmp_path / "report.csv"
        status = self.run(
            str(path), "--url", screening_url, "--var", str(tmp_path), "--report", str(report)
        )
        assert status == 2
        rows = list(csv.reader(io.StringIO(report.read_text(encoding="utf-8-sig"))))
        assert rows[0] == list(roster.REPORT_HEADERS)
        assert rows[1][5] == "no_head"
        assert "1 rows refused" in capsys.readouterr().out

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            pytest.param(b"\xef\xbb\xbfname,address\n", "no header", id="not-a-roster"),
            pytest.param(None, "no such file", id="missing-file"),
        ],
    )
    def test_exits_1_when_the_file_cannot_be_read(
        self,
        screening_url: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        content: bytes | None,
        message: str,
    ) -> None:
        path = tmp_path / "bad.csv"
        if content is not None:
            path.write_bytes(content)
        assert self.run(str(path), "--url", screening_url, "--var", str(tmp_path)) == 1
        assert message in capsys.readouterr().err

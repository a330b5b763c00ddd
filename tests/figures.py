"""Figures the reliability suites record for docs/reliability.md.

Each suite appends rows to ``var/reliability/<suite>.json``; `python -m deploy.reliability`
renders every file there into the table of docs/reliability.md. Rows are plain dicts with the
columns below, so a suite records what it measured and nothing is computed twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TypedDict

COLUMNS = (
    "check",
    "faults_injected",
    "alerts_sent",
    "lost",
    "duplicated",
    "inputs_tried",
    "refused",
    "server_errors",
)


class FigureRow(TypedDict, total=False):
    """One line of the reliability table; absent counts render as a dash."""

    check: str
    faults_injected: int
    alerts_sent: int
    lost: int
    duplicated: int
    inputs_tried: int
    refused: int
    server_errors: int


def figures_dir() -> Path:
    """Where suites write their figures: $FANGPIN_FIGURES_DIR or var/reliability."""
    root = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("FANGPIN_FIGURES_DIR", root / "var" / "reliability"))


def record(suite: str, row: FigureRow) -> None:
    """Replace the row of the same `check` in the suite's file, or append it."""
    path = figures_dir() / f"{suite}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows: list[FigureRow] = json.loads(path.read_text("utf-8")) if path.exists() else []
    rows = [r for r in rows if r.get("check") != row.get("check")] + [row]
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", "utf-8")

"""Render the reliability figures into docs/reliability.md.

The reliability suites record what they measured through `tests/figures.py`, one JSON file
per suite under var/reliability/. `python -m deploy.reliability` turns every such file into
the table of docs/reliability.md; `make reliability` runs the suites first. Nothing here
computes a figure: a count absent from a row is shown as a dash.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = (
    ("faults_injected", "faults injected"),
    ("alerts_sent", "alerts sent"),
    ("lost", "lost"),
    ("duplicated", "duplicated"),
    ("inputs_tried", "inputs tried"),
    ("refused", "refused"),
    ("server_errors", "server errors"),
)

# What each suite is, for the reader of the table; a suite not listed here still renders.
SUITES: dict[str, tuple[str, str]] = {
    "faults": (
        "Faults on real PostgreSQL and Apache Kafka",
        "`tests/e2e/test_faults.py` runs the three workers and the intake API as separate "
        "processes and pushes signed alert batches (four alerts per person, so one household "
        "episode collects signals from before and after several faults). During the push, in "
        "order: the Kafka broker stops for 30 s while intake keeps accepting alerts, and "
        "every relay must publish what waited without a restart; the intake worker (its "
        "outbox relay) is SIGKILLed just after a batch arrived and restarted; the screening "
        "worker is SIGKILLed mid-stream and restarted; PostgreSQL is stopped and started "
        "under the API and all workers while a batch is being pushed; a batch is pushed a "
        "second time; already delivered events are relayed again on both hops (outbox rows "
        "marked unpublished, as after a relay that died before marking them); two poison "
        "records (not JSON, unknown schema version) are put on intake.events; the casework "
        "worker is SIGKILLed with records in hand and restarted. It then waits until every outbox is "
        "relayed and every consumer group has committed to the end of its topic, and counts "
        "across the three databases: each alert stored once in intake, one signal and one "
        "assessment per alert in screening, one episode per household, one case per episode "
        "whose assessment called for one, and each later assessment recorded once on its "
        "case. *Lost* and *duplicated* sum every miss and every extra at each of these "
        "levels. While PostgreSQL is down the API answers 503 with Retry-After and the "
        "department retries; *server errors* counts any other answer ≥ 500 (there must be "
        "none). "
        "`tests/deploy/test_dlq.py` puts an event that its handler refuses on a real broker, "
        "checks it lands on `screening.dlq` with its error headers, replays it with "
        "`fangpin dlq replay` after the fix, replays again (nothing is sent), and redelivers "
        "it once more as a replay that died before committing would (the inbox drops it).",
    ),
    "hostile": (
        "Hostile input",
        "Generated requests against every operation of the three APIs, valid and invalid, "
        "signed and authenticated (`tests/security/test_schemathesis.py`). A refusal is an "
        "answer in the 4xx range; a server error is any answer ≥ 500 and must be zero.",
    ),
    "access": (
        "Access control",
        "Missing, malformed, forged, expired, stale and replayed credentials, and credentials "
        "of the wrong kind, against every protected route (`tests/security/test_access.py`).",
    ),
}


def figures_dir() -> Path:
    """Where the suites wrote their figures: $FANGPIN_FIGURES_DIR or var/reliability."""
    return Path(os.environ.get("FANGPIN_FIGURES_DIR", ROOT / "var" / "reliability"))


def load(directory: Path) -> dict[str, tuple[list[dict[str, Any]], datetime]]:
    """Return each suite's rows with the time its file was last written, in suite order."""
    found: dict[str, tuple[list[dict[str, Any]], datetime]] = {}
    for path in sorted(directory.glob("*.json")):
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise SystemExit(f"{path}: expected a JSON array of rows")
        written = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        found[path.stem] = (rows, written)
    known = [s for s in SUITES if s in found]
    return {s: found[s] for s in [*known, *sorted(set(found) - set(known))]}


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def render(suites: dict[str, tuple[list[dict[str, Any]], datetime]]) -> str:
    """Return the whole of docs/reliability.md."""
    lines = [
        "# Reliability figures",
        "",
        "Measured by the reliability suites on real PostgreSQL and Apache Kafka and rendered "
        "by `python -m deploy.reliability` from `var/reliability/*.json`. Do not edit the "
        "table by hand: `make reliability` runs the suites and regenerates this page.",
        "",
        "| suite | check | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    totals: dict[str, int] = {}
    for suite, (rows, _) in suites.items():
        for row in rows:
            cells = [suite, _cell(row.get("check"))]
            for key, _title in COLUMNS:
                value = row.get(key)
                cells.append(_cell(value))
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
            lines.append("| " + " | ".join(cells) + " |")
    if suites:
        lines.append(
            "| **all** | | "
            + " | ".join(f"**{_cell(totals.get(key))}**" for key, _ in COLUMNS)
            + " |"
        )
    else:
        lines.append("| – | no figures recorded yet: run `make reliability` |" + " – |" * 7)
    lines += ["", "## What the checks do", ""]
    for suite, (rows, written) in suites.items():
        title, text = SUITES.get(suite, (suite, f"Rows recorded by the `{suite}` suite."))
        lines += [
            f"### {title} (`{suite}`)",
            "",
            text,
            "",
            f"{len(rows)} row(s), last recorded {written:%Y-%m-%d %H:%M} UTC.",
            "",
        ]
    lines += [
        "## Regenerating",
        "",
        "```bash",
        "make reliability                 # servers up, the reliability suites, then this page",
        "python -m deploy.reliability     # only re-render from var/reliability/*.json",
        "```",
        "",
        "Each suite replaces its own rows (by check) in `var/reliability/<suite>.json` "
        "through `tests/figures.py`; `FANGPIN_FIGURES_DIR` points both sides elsewhere. "
        "`FANGPIN_FAULT_ALERTS` changes the size of the fault suite's push (default 10,000).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Render the figures into docs/reliability.md (or --output)."""
    parser = argparse.ArgumentParser(prog="python -m deploy.reliability", description=__doc__)
    parser.add_argument("--figures", type=Path, default=None, help="default: var/reliability")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args(argv)
    suites = load(args.figures or figures_dir())
    args.output.write_text(render(suites), encoding="utf-8")
    rows = sum(len(r) for r, _ in suites.values())
    print(f"{args.output.name}: {rows} row(s) from {len(suites)} suite(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`fangpin roster import FILE`: a county roster into screening's registry, with progress.

The command talks to the screening database directly (like `fangpin migrate`), with the
same PII keys as the services: production reads them from FANGPIN_* variables, local runs
from var/secrets.json. Exit status: 0 when every row was imported, 2 when some rows were
refused (see the rejection report), 1 when the file could not be read as a roster.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

if TYPE_CHECKING:
    from services.screening import service
    from shared.pii import PiiCipher

BAR_WIDTH: Final = 30
_PHASES: Final = {"read": "读取校验 reading", "import": "写入台账 importing"}


class ProgressBar:
    """Draws `phase [#####.....] done/total` on one terminal line, at most ten times a second."""

    def __init__(
        self, stream: IO[str], *, clock: Callable[[], float] = time.monotonic, interval: float = 0.1
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.interval = interval
        self._last = float("-inf")
        self._phase: str | None = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        """Report progress of a phase; a finished phase keeps its line."""
        finished = total > 0 and done >= total
        now = self.clock()
        if phase == self._phase and not finished and now - self._last < self.interval:
            return
        if self._phase is not None and phase != self._phase:
            self.stream.write("\n")
        self._phase, self._last = phase, now
        label = _PHASES.get(phase, phase)
        if total > 0:
            filled = BAR_WIDTH * done // total
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            line = f"\r{label} [{bar}] {done}/{total} {100 * done // total:3d}%"
        else:
            line = f"\r{label} …"
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        """End the last line."""
        if self._phase is not None:
            self.stream.write("\n")
            self.stream.flush()


async def import_file(
    path: Path,
    *,
    url: str,
    cipher: PiiCipher,
    scope: str | None,
    actor: str,
    options: service.ImportOptions,
    progress: service.Progress,
) -> service.ImportSummary:
    """Import one roster file into the screening database at url."""
    from services.screening import roster, service
    from shared.clock import SystemClock
    from shared.db import UnitOfWork, create_engine, make_sessionmaker
    from shared.regions import default_region_table
    from shared.settings import DatabaseSettings

    with path.open("rb") as fh:
        head = fh.read(8)
    fmt = roster.detect_format(head, name=path.name)
    engine = create_engine(DatabaseSettings(url=url))
    try:
        return await service.import_roster(
            UnitOfWork(make_sessionmaker(engine)),
            path=path,
            fmt=fmt,
            cipher=cipher,
            clock=SystemClock(),
            actor=actor,
            scope=scope,
            regions=default_region_table(),
            options=options,
            progress=progress,
        )
    finally:
        await engine.dispose()


def main(
    args: argparse.Namespace, *, out: IO[str] | None = None, err: IO[str] | None = None
) -> int:
    """Run `fangpin roster import` with parsed arguments; return the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    # Imported here, not at the top: `fangpin` builds every subcommand's parser at start-up
    # and should not load the spreadsheet and database stack for the others.
    from services.screening import roster, service
    from services.screening.settings import ScreeningSettings
    from shared.secrets import load_secrets

    settings = ScreeningSettings()
    path = Path(args.file)
    if not path.is_file():
        err.write(f"no such file: {path}\n")
        return 1
    keys = load_secrets(
        args.environment or settings.environment, Path(args.var) if args.var else settings.var_dir
    )
    end_month = roster.parse_month(args.income_end_month) if args.income_end_month else None
    bar = ProgressBar(err)
    started = time.monotonic()
    try:
        summary = asyncio.run(
            import_file(
                path,
                url=args.url or settings.database.url,
                cipher=keys.cipher(),
                scope=args.region,
                actor=args.actor,
                options=service.ImportOptions(
                    dry_run=args.dry_run, file_name=path.name, default_end_month=end_month
                ),
                progress=bar,
            )
        )
    except roster.RosterFileError as exc:
        bar.close()
        err.write(f"{exc.message_zh} / {exc.message_en}\n")
        return 1
    bar.close()
    elapsed = time.monotonic() - started
    counts = summary.counts
    out.write(
        f"{'dry run: ' if summary.dry_run else ''}{summary.rows} rows in {elapsed:.1f} s; "
        f"households created {counts['households_created']}, updated {counts['households_updated']}, "
        f"unchanged {counts['households_unchanged']}, refused {counts['households_rejected']}, "
        f"provisional linked {counts['provisional_linked']}; members created "
        f"{counts['members_created']}, updated {counts['members_updated']}, removed "
        f"{counts['members_removed']}, moved {counts['members_moved']}\n"
    )
    if summary.rejections_total:
        report = Path(args.report) if args.report else path.with_name(path.stem + ".rejections.csv")
        report.write_bytes(roster.rejection_csv(summary.rejections))
        out.write(f"{summary.rejected_rows} rows refused; report: {report}\n")
        return 2
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `fangpin roster import`."""
    parser.add_argument("file", help="the roster, XLSX or CSV (columns: docs/roster.md)")
    parser.add_argument("--url", default=None, help="screening database URL (default: settings)")
    parser.add_argument(
        "--region", default=None, help="only accept rows of this region (e.g. the county 141122)"
    )
    parser.add_argument("--dry-run", action="store_true", help="validate and count, write nothing")
    parser.add_argument(
        "--income-end-month", default=None, help="YYYY-MM for rows that leave 收入截止月份 blank"
    )
    parser.add_argument("--report", default=None, help="where to write the rejection report")
    parser.add_argument("--actor", default="cli", help="who is importing (kept with the import)")
    parser.add_argument("--environment", default=None, help="local, test or production")
    parser.add_argument("--var", default=None, help="directory of var/secrets.json (local runs)")

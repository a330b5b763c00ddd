"""The embedded default: three APIs and their workers in one process, SQLite and an in-process bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Generator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from deploy import demo
from deploy.migrate import migrate
from services.casework import app as casework_app
from services.casework import worker as casework_worker
from services.casework.settings import CaseworkSettings
from services.intake import app as intake_app
from services.intake import worker as intake_worker
from services.intake.settings import IntakeSettings
from services.screening import app as screening_app
from services.screening import worker as screening_worker
from services.screening.settings import ScreeningSettings
from shared.clock import SystemClock
from shared.db import create_engine, make_sessionmaker
from shared.logs import configure_logging
from shared.messaging.memory import InMemoryBus
from shared.secrets import load_secrets
from shared.settings import DatabaseSettings
from shared.worker import run_worker

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the embedded runner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _sqlite(var_dir: Path, name: str) -> DatabaseSettings:
    return DatabaseSettings(url=f"sqlite+aiosqlite:///{var_dir / f'{name}.db'}")


async def run_embedded(var_dir: Path = Path("var"), host: str = "127.0.0.1") -> None:
    """Migrate, seed the demo, then serve everything until SIGINT/SIGTERM (var_dir must exist)."""
    configure_logging("fangpin")
    intake_cfg = IntakeSettings(database=_sqlite(var_dir, "intake"), var_dir=var_dir, host=host)
    screening_cfg = ScreeningSettings(
        database=_sqlite(var_dir, "screening"), var_dir=var_dir, host=host
    )
    casework_cfg = CaseworkSettings(
        database=_sqlite(var_dir, "casework"), var_dir=var_dir, host=host, sweep_interval_seconds=10
    )
    screening_cfg, casework_cfg = wire_dashboard(screening_cfg, casework_cfg, host)
    for name, cfg in (
        ("intake", intake_cfg),
        ("screening", screening_cfg),
        ("casework", casework_cfg),
    ):
        await migrate(name, cfg.database.url)
    clock = SystemClock()
    keys = load_secrets("local", var_dir)
    creds_path = var_dir / "demo-credentials.json"
    demo.write_demo_credentials(creds_path, keys.jwt_secret, clock.now())
    engine = create_engine(screening_cfg.database)
    async with make_sessionmaker(engine)() as session, session.begin():
        await demo.seed_demo_households(session, keys.cipher(), clock.now())
    await engine.dispose()

    bus = InMemoryBus()
    stop = asyncio.Event()
    apps: list[tuple[str, FastAPI, int]] = [
        ("intake", intake_app.create_app(intake_cfg, secrets=keys), intake_cfg.port),
        ("screening", screening_app.create_app(screening_cfg, secrets=keys), screening_cfg.port),
        ("casework", casework_app.create_app(casework_cfg, secrets=keys), casework_cfg.port),
    ]
    servers = [
        _Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False))
        for _, app, port in apps
    ]

    def shutdown() -> None:
        stop.set()
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown)

    workers = [
        run_worker(
            intake_worker.worker_spec(clock), settings=intake_cfg, bus=bus, clock=clock, stop=stop
        ),
        run_worker(
            screening_worker.worker_spec(clock, keys.cipher()),
            settings=screening_cfg,
            bus=bus,
            clock=clock,
            stop=stop,
        ),
        run_worker(
            casework_worker.worker_spec(casework_cfg, clock),
            settings=casework_cfg,
            bus=bus,
            clock=clock,
            stop=stop,
        ),
    ]
    serving = [asyncio.create_task(s.serve()) for s in servers]
    worker_tasks = [asyncio.create_task(w) for w in workers]
    while not all(s.started for s in servers):
        if any(t.done() for t in serving):
            break
        await asyncio.sleep(0.05)
    print_banner(apps, host, creds_path)
    await asyncio.gather(*serving)
    stop.set()
    await asyncio.gather(*worker_tasks)


def wire_dashboard(
    screening: ScreeningSettings, casework: CaseworkSettings, host: str
) -> tuple[ScreeningSettings, CaseworkSettings]:
    """Point casework's dashboard at screening and let its origin call screening (CORS).

    Settings given in the environment win; these are only the embedded defaults.
    """
    names = {host, "127.0.0.1", "localhost"} if host in {"127.0.0.1", "localhost"} else {host}
    if not screening.cors_origins:
        origins = tuple(sorted(f"http://{name}:{casework.port}" for name in names))
        screening = screening.model_copy(update={"cors_origins": origins})
    if "dashboard_screening_url" not in casework.model_fields_set:
        casework = casework.model_copy(
            update={"dashboard_screening_url": f"http://{host}:{screening.port}"}
        )
    return screening, casework


def print_banner(apps: list[tuple[str, FastAPI, int]], host: str, creds: Path) -> None:
    """Tell the person at the terminal where everything is."""
    lines = [
        "",
        "Fangpin 防贫 is running (embedded: SQLite + in-process bus). Ctrl-C stops it.",
        "",
    ]
    for name, _, port in apps:
        lines.append(f"  {name:<10} http://{host}:{port}   docs: http://{host}:{port}/docs")
    casework_port = next(port for name, _, port in apps if name == "casework")
    lines += [
        "",
        f"  dashboard  http://{host}:{casework_port}/dashboard/#token=<a caseworker JWT>",
        f"  demo credentials: {creds}",
        "",
    ]
    print("\n".join(lines), flush=True)  # noqa: T201

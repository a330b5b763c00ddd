"""The `fangpin` command: run, serve, work, migrate, and small operator tools."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import cast

from deploy.migrate import SERVICES, migrate
from shared.auth import ROLES, Role, issue_token
from shared.clock import SystemClock
from shared.contracts.registry import json_schemas
from shared.logs import configure_logging
from shared.secrets import load_secrets
from shared.settings import ServiceSettings
from shared.worker import bus_for, install_stop_signals, run_worker

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "shared" / "contracts" / "schemas"


def settings_for(service: str) -> ServiceSettings:
    """Return a service's settings read from the environment."""
    if service == "intake":
        from services.intake.settings import IntakeSettings

        return IntakeSettings()
    if service == "screening":
        from services.screening.settings import ScreeningSettings

        return ScreeningSettings()
    from services.casework.settings import CaseworkSettings

    return CaseworkSettings()


def cmd_up(args: argparse.Namespace) -> int:
    """Run everything embedded (what `make run` calls)."""
    from deploy.local import run_embedded

    var = Path(args.var)
    var.mkdir(parents=True, exist_ok=True)
    asyncio.run(run_embedded(var, host=args.host))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve one service's API in production shape."""
    import uvicorn

    settings = settings_for(args.service)
    configure_logging(args.service, settings.log_level)
    if args.service == "intake":
        from services.intake.app import create_app as make_intake

        app = make_intake(settings)  # type: ignore[arg-type]
    elif args.service == "screening":
        from services.screening.app import create_app as make_screening

        app = make_screening(settings)  # type: ignore[arg-type]
    else:
        from services.casework.app import create_app as make_casework

        app = make_casework(settings)  # type: ignore[arg-type]
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
    )
    return 0


async def _work(service: str) -> None:
    settings = settings_for(service)
    configure_logging(f"{service}-worker", settings.log_level)
    clock = SystemClock()
    stop = asyncio.Event()
    install_stop_signals(stop)
    if service == "intake":
        from services.intake.worker import worker_spec as intake_spec

        spec = intake_spec(clock)
    elif service == "screening":
        from services.screening.worker import worker_spec as screening_spec

        keys = load_secrets(settings.environment, settings.var_dir)
        spec = screening_spec(clock, keys.cipher())
    else:
        from services.casework.settings import CaseworkSettings
        from services.casework.worker import worker_spec as casework_spec

        spec = casework_spec(cast(CaseworkSettings, settings), clock)
    await run_worker(spec, settings=settings, bus=bus_for(settings), clock=clock, stop=stop)


def cmd_worker(args: argparse.Namespace) -> int:
    """Run one service's worker (relay, consumers, sweeper) in production shape."""
    asyncio.run(_work(args.service))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply migrations to one service's database (or all)."""
    targets = SERVICES if args.service == "all" else (args.service,)
    for service in targets:
        url = args.url or settings_for(service).database.url
        asyncio.run(migrate(service, url, action="upgrade", revision=args.revision))
        print(f"{service}: migrated to {args.revision}")
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    """Write (or check) the JSON Schemas of every event."""
    schemas = json_schemas()
    stale = []
    for name, schema in schemas.items():
        text = json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        path = SCHEMA_DIR / name
        if args.action == "write":
            SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        elif not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    if stale:
        print("stale event schemas (run `make schemas`): " + ", ".join(stale), file=sys.stderr)
        return 1
    print(f"{len(schemas)} event schemas {'written' if args.action == 'write' else 'current'}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Issue a caseworker JWT with the configured secret (an operator's tool)."""
    keys = load_secrets(args.environment, Path(args.var))
    token = issue_token(
        keys.jwt_secret,
        sub=args.sub,
        role=cast(Role, args.role),
        region=args.region,
        now=SystemClock().now(),
        ttl=timedelta(hours=args.hours),
        department=args.department,
    )
    print(token)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """File a signed demo declaration and show the case it opens (try it after `make run`)."""
    import time as _time
    from datetime import date

    import httpx

    from deploy.demo import DEMO_VILLAGES, make_resident_id
    from shared.auth import signed_headers

    creds = json.loads((Path(args.var) / "demo-credentials.json").read_text(encoding="utf-8"))
    mp = next(c for c in creds["clients"] if c["kind"] == "miniprogram")
    county = next(c for c in creds["caseworkers"] if c["role"] == "county_officer")
    serial = int(_time.time()) % 900 + 100
    body = {
        "applicant": {
            "name": "张三",
            "id_number": make_resident_id("141122", date(1972, 5, 1), serial),
            "phone": "13800138000",
        },
        "village_code": DEMO_VILLAGES[0],
        "difficulty_types": ["illness"],
        "description": "家中主要劳动力患大病，医疗支出大",
        "income_last_12_months": 5200.0,
        "consent": True,
    }
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = signed_headers(
        mp["client_id"], mp["secret"], "POST", "/v1/declarations", raw, _time.time()
    )
    headers["Content-Type"] = "application/json"
    filed = httpx.post(f"{args.intake}/v1/declarations", content=raw, headers=headers, timeout=10)
    print(f"POST /v1/declarations → {filed.status_code} {filed.text}")
    if filed.status_code != 202:
        return 1
    receipt = filed.json()["receipt_no"]
    auth = {"Authorization": f"Bearer {county['token']}"}
    deadline = _time.monotonic() + args.wait
    while _time.monotonic() < deadline:
        cases = httpx.get(f"{args.casework}/v1/cases", headers=auth, timeout=10).json()
        for item in cases.get("items", []):
            if any(s.get("receipt_no") == receipt for s in item["sources"]):
                print(
                    f"case {item['case_id']} opened: stage {item['stage']}, "
                    f"identification due {item['deadlines'][0]['due']}"
                )
                return 0
        _time.sleep(0.5)
    print(f"no case for {receipt} after {args.wait}s", file=sys.stderr)
    return 1


def _seed_url(service: str, settings: ServiceSettings, given: str | None, var: Path) -> str:
    if given:
        return given
    if "database" in settings.model_fields_set:
        return settings.database.url
    # The file `fangpin up --var` uses, so the seed is what the embedded stack serves.
    return f"sqlite+aiosqlite:///{var / f'{service}.db'}"


def cmd_seed(args: argparse.Namespace) -> int:
    """Load a demo dataset into screening and casework (refused in production)."""
    from deploy.seed import seed_jiaocheng, seed_jiaocheng_cases
    from shared.db import create_engine, make_sessionmaker
    from shared.regions import default_region_table
    from shared.settings import DatabaseSettings

    screening = settings_for("screening")
    casework = settings_for("casework")
    if "production" in (screening.environment, casework.environment):
        print("demo datasets are never loaded into production", file=sys.stderr)
        return 2
    var = Path(args.var)
    screening_url = _seed_url("screening", screening, args.screening_url, var)
    casework_url = _seed_url("casework", casework, args.casework_url, var)
    keys = load_secrets(screening.environment, var)
    regions = default_region_table()
    now = SystemClock().now()

    async def load() -> None:
        await migrate("screening", screening_url)
        engine = create_engine(DatabaseSettings(url=screening_url))
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                summary = await seed_jiaocheng(session, keys.cipher(), now, regions)
        finally:
            await engine.dispose()
        print(
            f"jiaocheng registry: {summary.households} households, {summary.members} members, "
            f"{summary.villages} villages loaded"
            if summary.loaded
            else "jiaocheng registry: already loaded, nothing changed"
        )
        if args.registry_only:
            return
        await migrate("casework", casework_url)
        engine = create_engine(DatabaseSettings(url=casework_url))
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                cases = await seed_jiaocheng_cases(session, now, regions)
        finally:
            await engine.dispose()
        print(
            f"jiaocheng cases: {cases.cases} cases with {cases.clocks} deadline clocks loaded"
            if cases.loaded
            else "jiaocheng cases: casework already has cases, nothing changed"
        )

    asyncio.run(load())
    return 0


def cmd_roster(args: argparse.Namespace) -> int:
    """Import a county roster (XLSX or CSV) into screening's registry, with a progress bar."""
    from services.screening import roster_cli

    return roster_cli.main(args)


def cmd_dlq(args: argparse.Namespace) -> int:
    """List or replay a consumer group's dead letters on Kafka."""
    from deploy import dlq

    return dlq.main(args)


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the load scenarios and the raw limits on real PostgreSQL and Kafka."""
    import os

    from deploy.bench import run as bench_run
    from deploy.bench.stack import Servers

    if args.render:
        # Rewrite the markdown from a finished run's JSON (after editing the notes).
        source = Path(args.json or "docs/benchmarks.json")
        bench_run.write(
            json.loads(source.read_text(encoding="utf-8")),
            source,
            Path(args.markdown or "docs/benchmarks.md"),
        )
        return 0
    pg_url = args.pg_url or os.environ.get("TEST_POSTGRES_URL")
    pg_admin = args.pg_admin_url or os.environ.get("TEST_POSTGRES_ADMIN_URL")
    kafka = args.kafka or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not (pg_url and pg_admin and kafka):
        print(
            "fangpin bench needs PostgreSQL and Kafka: --pg-url, --pg-admin-url, --kafka "
            "(or TEST_POSTGRES_URL, TEST_POSTGRES_ADMIN_URL, KAFKA_BOOTSTRAP_SERVERS, which "
            "`bash deploy/servers.sh up` writes to var/servers.env)",
            file=sys.stderr,
        )
        return 2
    scenarios = [s.upper() for s in args.scenarios] or list(bench_run.SCENARIOS)
    unknown = sorted(set(scenarios) - set(bench_run.SCENARIOS))
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    out_json = Path(args.json or ("var/bench/quick.json" if args.quick else "docs/benchmarks.json"))
    out_md = (
        None
        if args.no_markdown
        else Path(args.markdown or ("var/bench/quick.md" if args.quick else "docs/benchmarks.md"))
    )
    results = asyncio.run(
        bench_run.run(
            servers=Servers(pg_url=pg_url, pg_admin_dsn=pg_admin, kafka=kafka),
            scenarios=scenarios,
            quick=args.quick,
            var=Path(args.var) / "bench",
        )
    )
    if args.update:
        previous = json.loads(out_json.read_text(encoding="utf-8"))
        results = bench_run.merge(previous, results)
    bench_run.write(results, out_json, out_md)
    for goal in results["goals"]:
        mark = "met " if goal["met"] else "MISS"
        print(f"{mark} {goal['scenario']} {goal['what']}: {goal['measured']:.4g} {goal['unit']}")
    if results["failures"]:
        print("correctness failures: " + "; ".join(results["failures"]), file=sys.stderr)
        return 1
    print(f"wrote {out_json}" + (f" and {out_md}" if out_md else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser."""
    parser = argparse.ArgumentParser(prog="fangpin", description="防贫 Fangpin")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run everything embedded (SQLite + in-process bus)")
    up.add_argument("--var", default="var")
    up.add_argument("--host", default="127.0.0.1")
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser("serve", help="serve one API (production shape)")
    serve.add_argument("service", choices=SERVICES)
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run one worker (production shape)")
    worker.add_argument("service", choices=SERVICES)
    worker.set_defaults(func=cmd_worker)

    mig = sub.add_parser("migrate", help="apply Alembic migrations")
    mig.add_argument("service", choices=(*SERVICES, "all"))
    mig.add_argument("--url", default=None)
    mig.add_argument("--revision", default="head")
    mig.set_defaults(func=cmd_migrate)

    sch = sub.add_parser("schemas", help="write or check the event JSON Schemas")
    sch.add_argument("action", choices=("write", "check"))
    sch.set_defaults(func=cmd_schemas)

    dem = sub.add_parser("demo", help="file a signed demo declaration and wait for its case")
    dem.add_argument("--var", default="var")
    dem.add_argument("--intake", default="http://127.0.0.1:8001")
    dem.add_argument("--casework", default="http://127.0.0.1:8003")
    dem.add_argument("--wait", type=float, default=10.0)
    dem.set_defaults(func=cmd_demo)

    sd = sub.add_parser("seed", help="load a demo dataset into screening (never in production)")
    sd.add_argument("dataset", choices=("jiaocheng",), help="jiaocheng: reproduces 表七/1")
    sd.add_argument("--var", default="var")
    sd.add_argument(
        "--screening-url", default=None, help="default: SCREENING_DATABASE__URL or var/"
    )
    sd.add_argument("--casework-url", default=None, help="default: CASEWORK_DATABASE__URL or var/")
    sd.add_argument("--registry-only", action="store_true", help="skip the demo casework history")
    sd.set_defaults(func=cmd_seed)

    tok = sub.add_parser("token", help="issue a caseworker JWT")
    tok.add_argument("--sub", required=True)
    tok.add_argument("--role", required=True, choices=ROLES)
    tok.add_argument("--region", required=True)
    tok.add_argument("--hours", type=int, default=12)
    tok.add_argument("--department", default=None, help="for department_officer tokens")
    tok.add_argument("--environment", default="local")
    tok.add_argument("--var", default="var")
    tok.set_defaults(func=cmd_token)
    dl = sub.add_parser("dlq", help="list or replay a consumer group's dead letters (Kafka)")
    from deploy.dlq import add_arguments as dlq_arguments

    dlq_arguments(dl)
    dl.set_defaults(func=cmd_dlq)
    ben = sub.add_parser("bench", help="load scenarios and raw limits on PostgreSQL and Kafka")
    ben.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="S1 … S5 (default: all)")
    ben.add_argument("--quick", action="store_true", help="small sizes; asserts correctness")
    ben.add_argument("--pg-url", default=None, help="default: TEST_POSTGRES_URL")
    ben.add_argument("--pg-admin-url", default=None, help="default: TEST_POSTGRES_ADMIN_URL")
    ben.add_argument("--kafka", default=None, help="default: KAFKA_BOOTSTRAP_SERVERS")
    ben.add_argument("--json", default=None, help="default: docs/benchmarks.json")
    ben.add_argument("--markdown", default=None, help="default: docs/benchmarks.md")
    ben.add_argument("--no-markdown", action="store_true")
    ben.add_argument(
        "--render", action="store_true", help="only rewrite the markdown from the JSON"
    )
    ben.add_argument(
        "--update",
        action="store_true",
        help="replace only the scenarios run now in the existing JSON (a re-run is listed)",
    )
    ben.add_argument("--var", default="var")
    ben.set_defaults(func=cmd_bench)
    ros = sub.add_parser("roster", help="county roster (农户台账) tools")
    ros_sub = ros.add_subparsers(dest="roster_command", required=True)
    ros_import = ros_sub.add_parser("import", help="import a roster file into screening")
    from services.screening.roster_cli import add_arguments as roster_import_arguments

    roster_import_arguments(ros_import)
    ros_import.set_defaults(func=cmd_roster)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

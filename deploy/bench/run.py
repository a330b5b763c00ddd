"""Run the raw limits and the chosen scenarios; write docs/benchmarks.json and .md.

Quick mode (CI smoke) uses small sizes and asserts correctness only: every alert scored,
the cases opened, no duplicate case, nothing lost, every overdue clock breached.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from deploy.bench import data, limits, report, s1, s2, s3, s4, s5
from deploy.bench.stack import Servers, Stack

SCENARIOS = ("S1", "S2", "S3", "S4", "S5")


@dataclass(frozen=True)
class Sizes:
    """How big each scenario runs."""

    repeats: int
    limit_alerts: int
    http_seconds: float
    s1_alerts: int
    s2_alerts: int
    s2_persons: int
    s3_seconds: float
    s4_burst: int
    s4_burst_seconds: float
    s4_steady_rate: float
    s4_steady_seconds: float
    s5_cases: int
    s5_rate: float
    s5_seconds: float
    profile_alerts: int


QUICK = Sizes(
    repeats=1,
    limit_alerts=1_000,
    http_seconds=1.5,
    s1_alerts=200,
    s2_alerts=200,
    s2_persons=30_000,
    s3_seconds=1.5,
    s4_burst=200,
    s4_burst_seconds=3,
    s4_steady_rate=5,
    s4_steady_seconds=2,
    s5_cases=10_000,
    s5_rate=10,
    s5_seconds=2,
    profile_alerts=0,
)

FULL = Sizes(
    repeats=3,
    limit_alerts=20_000,
    http_seconds=10,
    s1_alerts=50_000,
    s2_alerts=50_000,
    s2_persons=2_000_000,
    s3_seconds=10,
    s4_burst=20_000,
    s4_burst_seconds=60,
    s4_steady_rate=5,
    s4_steady_seconds=10,
    s5_cases=1_000_000,
    s5_rate=20,
    s5_seconds=10,
    profile_alerts=1_000,
)


def _say(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def _median_of(runs: list[dict[str, Any]], keys: dict[str, Any]) -> dict[str, Any]:
    return {name: report.median([float(get(r)) for r in runs]) for name, get in keys.items()}


async def _limits(servers: Servers, var: Path, sizes: Sizes) -> dict[str, Any]:
    async with Stack(servers, var, name="limits") as stack:
        _say("L_http: no-op FastAPI endpoint")
        http = await limits.http_noop(stack, seconds=sizes.http_seconds)
        rows = limits.alert_rows(stack, sizes.limit_alerts)
        _say(f"L_produce / L_consume: {len(rows):,} alert envelopes")
        kafka = await limits.kafka_produce_consume(stack, [r["_value"].encode() for r in rows])
        _say("L_pg_copy / L_pg_batch")
        pg = await limits.pg_copy_and_batch(stack, rows)
        _say("L_chain: bare pipeline, the S1 push shape")
        chain = await limits.bare_chain(stack, data.county_push(sizes.limit_alerts))
    return {
        "http_noop_rate": http["rate"],
        "http_noop_p50": http["p50"],
        "http_noop_p99": http["p99"],
        "produce_rate": kafka["produce"]["rate"],
        "consume_rate": kafka["consume"]["rate"],
        "envelope_bytes": kafka["produce"]["bytes_per_message"],
        "pg_copy_rate": pg["copy"]["rate"],
        "pg_batch_rate": pg["batch"]["rate"],
        "chain_rate": chain["rate"],
        "raw": {"http": http, "kafka": kafka, "pg": pg, "chain": chain},
    }


def _check(condition: bool, what: str, failures: list[str]) -> None:
    if not condition:
        failures.append(what)


async def run(
    *,
    servers: Servers,
    scenarios: list[str],
    quick: bool,
    var: Path,
) -> dict[str, Any]:
    """Run everything asked for; return the results (write them with `write`)."""
    sizes = QUICK if quick else FULL
    started = time.perf_counter()
    results: dict[str, Any] = {
        "quick": quick,
        "repeats": sizes.repeats,
        "sizes": sizes.__dict__,
        "commit": report.commit(),
        "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "machine": report.machine(),
        "scenarios": {},
    }
    conn = await asyncpg.connect(servers.pg_admin_dsn)
    try:
        results["postgres"] = str(await conn.fetchval("SHOW server_version")).join(
            ("PostgreSQL ", "")
        )
    finally:
        await conn.close()
    failures: list[str] = []
    _say("migrating template databases")
    await servers.build_templates()
    try:
        results["limits"] = await _limits(servers, var, sizes)
        sc = results["scenarios"]
        if "S1" in scenarios:
            try:
                runs = []
                for r in range(sizes.repeats):
                    _say(f"S1 run {r + 1}/{sizes.repeats}: {sizes.s1_alerts:,} alerts")
                    runs.append(await s1.run_once(servers, var, alerts=sizes.s1_alerts, tag=str(r)))
                sc["S1"] = {
                    "runs": runs,
                    "median": {
                        **_median_of(runs, {k: (lambda x, k=k: x[k]) for k in ("seconds", "rate")}),
                        "alerts": sizes.s1_alerts,
                        "duplicate_cases": max(x["duplicate_cases"] for x in runs),
                        "lost": max(x["lost"] for x in runs),
                    },
                }
                for x in runs:
                    _check(x["lost"] == 0, "S1: alerts lost", failures)
                    _check(x["duplicate_cases"] == 0, "S1: duplicate cases", failures)
                    _check(x["cases"] == x["expected_cases"] > 0, "S1: cases missing", failures)
                    _check(x["stored"] == x["alerts"], "S1: intake refused alerts", failures)
            except Exception as exc:  # one scenario failing must not lose the others
                failures.append(f"S1 crashed: {exc!r}"[:2000])
                _say(f"S1 crashed: {exc!r}")
        if "S2" in scenarios:
            try:
                _say(f"S2: loading a registry of {sizes.s2_persons:,} persons")
                registry, keys, load_s = await s2.registry_template(
                    servers, alerts=sizes.s2_alerts, persons=sizes.s2_persons
                )
                runs = []
                try:
                    for r in range(sizes.repeats):
                        _say(f"S2 run {r + 1}/{sizes.repeats}: {sizes.s2_alerts:,} alerts")
                        runs.append(
                            await s2.run_once(
                                servers,
                                var,
                                alerts=sizes.s2_alerts,
                                registry=registry,
                                keys=keys,
                                tag=str(r),
                            )
                        )
                finally:
                    await s2.drop_database(servers, registry)
                for x in runs:
                    x["registry_load_seconds"] = round(load_s, 1)
                sc["S2"] = {
                    "runs": runs,
                    "median": {
                        **_median_of(
                            runs,
                            {
                                k: (lambda x, k=k: x[k])
                                for k in ("rate", "raw_consume_rate", "rss_growth", "seconds")
                            },
                        ),
                        "alerts": sizes.s2_alerts,
                        "persons": runs[0]["persons"],
                    },
                }
                for x in runs:
                    _check(x["lost"] == 0, "S2: alerts lost", failures)
                    _check(
                        x["matched_to_registry"] == x["alerts"], "S2: unmatched alerts", failures
                    )
            except Exception as exc:  # one scenario failing must not lose the others
                failures.append(f"S2 crashed: {exc!r}"[:2000])
                _say(f"S2 crashed: {exc!r}")
        if "S3" in scenarios:
            try:
                runs = []
                for r in range(sizes.repeats):
                    _say(f"S3 run {r + 1}/{sizes.repeats}")
                    runs.append(
                        await s3.run_once(servers, var, seconds=sizes.s3_seconds, tag=str(r))
                    )
                sc["S3"] = {
                    "runs": runs,
                    "median": {
                        **_median_of(
                            runs,
                            {
                                "saturation_rate": lambda x: x["saturation"]["rate"],
                                "p99_at_50": lambda x: x["at_50"]["p99"],
                                "p99_at_80": lambda x: x["at_80"]["p99"],
                                "rate_at_50": lambda x: x["at_50"]["offered_rate"],
                                "rate_at_80": lambda x: x["at_80"]["offered_rate"],
                            },
                        ),
                        "seconds": sizes.s3_seconds,
                    },
                }
                for x in runs:
                    _check(x["errors"] == 0, "S3: request errors", failures)
            except Exception as exc:  # one scenario failing must not lose the others
                failures.append(f"S3 crashed: {exc!r}"[:2000])
                _say(f"S3 crashed: {exc!r}")
        if "S4" in scenarios:
            try:
                runs = []
                for r in range(sizes.repeats):
                    _say(
                        f"S4 run {r + 1}/{sizes.repeats}: {sizes.s4_burst:,} alerts in "
                        f"{sizes.s4_burst_seconds:.0f} s, screening killed halfway"
                    )
                    runs.append(
                        await s4.run_once(
                            servers,
                            var,
                            burst=sizes.s4_burst,
                            burst_seconds=sizes.s4_burst_seconds,
                            steady_rate=sizes.s4_steady_rate,
                            steady_seconds=sizes.s4_steady_seconds,
                            tag=str(r),
                        )
                    )
                sc["S4"] = {
                    "runs": runs,
                    "median": {
                        **_median_of(
                            runs,
                            {
                                "steady_p99_ms": lambda x: x["steady_latency_ms"]["p99"],
                                "burst_p99_ms": lambda x: x["burst_latency_ms"]["p99"],
                                "drained_seconds_after_burst": lambda x: x[
                                    "drained_seconds_after_burst"
                                ],
                                "burst_seconds": lambda x: x["burst_seconds"],
                            },
                        ),
                        "burst_alerts": sizes.s4_burst,
                        "lost": max(x["lost"] for x in runs),
                        "duplicate_cases": max(x["duplicate_cases"] for x in runs),
                    },
                }
                for x in runs:
                    _check(x["lost"] == 0, "S4: alerts lost", failures)
                    _check(x["duplicate_cases"] == 0, "S4: duplicate cases", failures)
                    _check(x["cases"] == x["expected_cases"] > 0, "S4: cases missing", failures)
            except Exception as exc:  # one scenario failing must not lose the others
                failures.append(f"S4 crashed: {exc!r}"[:2000])
                _say(f"S4 crashed: {exc!r}")
        if "S5" in scenarios:
            try:
                _say(f"S5: {sizes.s5_cases:,} cases")
                out = await s5.run(
                    servers,
                    var,
                    cases=sizes.s5_cases,
                    repeats=max(2, sizes.repeats),
                    rate=sizes.s5_rate,
                    seconds=sizes.s5_seconds,
                )
                runs = out["runs"]
                sc["S5"] = {
                    **out,
                    "median": {
                        **_median_of(
                            runs,
                            {
                                "sweep_seconds": lambda x: x["sweep_seconds"],
                                "sweep_query_ms": lambda x: x["sweep_query_ms"],
                                "breached": lambda x: x["breached"],
                                "transition_p99_ms": lambda x: x["transitions"]["p99"],
                                "transition_errors": lambda x: x["transitions"]["errors"],
                            },
                        ),
                        "cases": out["cases"],
                        "transition_rate": sizes.s5_rate,
                    },
                }
                for x in runs:
                    _check(
                        x["breached"] == x["expected_overdue"] > 0,
                        "S5: sweep missed clocks",
                        failures,
                    )
                    _check(x["transitions"]["errors"] == 0, "S5: transition errors", failures)
            except Exception as exc:  # one scenario failing must not lose the others
                failures.append(f"S5 crashed: {exc!r}"[:2000])
                _say(f"S5 crashed: {exc!r}")
        if sizes.profile_alerts and "S1" in scenarios:
            try:
                _say(f"profile: S1 at {sizes.profile_alerts:,} alerts, one transaction per record")
                os.environ["SCREENING_CONSUMER__BATCH_TRANSACTION"] = "false"
                os.environ["CASEWORK_CONSUMER__BATCH_TRANSACTION"] = "false"
                try:
                    before = await s1.run_once(servers, var, alerts=sizes.profile_alerts, tag="p0")
                finally:
                    del os.environ["SCREENING_CONSUMER__BATCH_TRANSACTION"]
                    del os.environ["CASEWORK_CONSUMER__BATCH_TRANSACTION"]
                _say(f"profile: S1 at {sizes.profile_alerts:,} alerts, one transaction per batch")
                after = await s1.run_once(servers, var, alerts=sizes.profile_alerts, tag="p1")
                results["profile"] = {"before": before, "after": after}
            except Exception as exc:  # one scenario failing must not lose the others
                failures.append(f"profile crashed: {exc!r}"[:2000])
                _say(f"profile crashed: {exc!r}")
    finally:
        await servers.drop_templates()
    results["failures"] = failures
    results["goals"] = report.as_dicts(report.goals(results))
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    return results


def merge(previous: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
    """Replace the re-run scenarios of an earlier full run, keeping its limits; the page
    lists every re-run with its own commit, time and load."""
    names = set(rerun["scenarios"])
    merged = dict(previous)
    own_limits = {k: v for k, v in rerun["limits"].items() if k != "raw"}
    # A re-run scenario is judged against the limits measured in its own run.
    merged["scenarios"] = {
        **previous["scenarios"],
        **{name: {**sc, "limits": own_limits} for name, sc in rerun["scenarios"].items()},
    }
    merged["failures"] = [
        f for f in previous["failures"] if f.split(":")[0].split()[0] not in names
    ] + rerun["failures"]
    merged["reruns"] = [
        *previous.get("reruns", []),
        {
            "scenarios": sorted(names),
            "commit": rerun["commit"],
            "started_at": rerun["started_at"],
            "finished_at": rerun["finished_at"],
            "loadavg_start": rerun["loadavg_start"],
            "loadavg_end": rerun["loadavg_end"],
            "limits_of_that_run": own_limits,
        },
    ]
    if "profile" in rerun:
        merged["profile"] = {**rerun["profile"], "commit": rerun["commit"]}
    merged["goals"] = report.as_dicts(report.goals(merged))
    return merged


def write(results: dict[str, Any], out_json: Path, out_md: Path | None) -> None:
    """Write the JSON, and the markdown page with the notes kept beside it (NAME.notes.md)."""
    results["goals"] = report.as_dicts(report.goals(results))
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    if out_md is not None:
        notes_file = out_md.with_suffix(".notes.md")
        notes = _notes(notes_file.read_text(encoding="utf-8")) if notes_file.exists() else {}
        out_md.write_text(report.markdown(results, notes), encoding="utf-8")


def _notes(text: str) -> dict[str, str]:
    """Split a notes file into sections by its `## ` headings."""
    out: dict[str, str] = {}
    title = ""
    for line in text.splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            out[title] = ""
        elif title:
            out[title] += line + "\n"
    return out

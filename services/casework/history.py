"""A case rebuilt from its append-only history, the same way the service keeps it current.

Every change to a case is one `case_event` row whose `data` says what changed: the
procedure facts after a workflow action (`procedure`), the records it adds (verification,
objections, helper, plan items, ...) and the clock operations (`clocks`) it performs.  The
service applies each new entry with `apply_facts` and `apply_clock_ops` before storing the
result in its tables, and `replay` folds the stored entries with the very same functions,
so `GET /v1/cases/{id}?as_of=DATE` shows the case as it stood without a second copy of the
rules.  Dates travel as ISO strings so an entry is plain JSON.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.casework.workflow import CaseFacts, Stage

__all__ = [
    "CLOCK_ONLY_ACTIONS",
    "CaseView",
    "ClockView",
    "Entry",
    "apply",
    "apply_clock_ops",
    "apply_facts",
    "op_breach",
    "op_close",
    "op_escalate",
    "op_extend",
    "op_meet",
    "op_pause",
    "op_resume",
    "op_start",
    "procedure_facts",
    "procedure_record",
    "replay",
]

# Entries the sweeper writes: they touch clocks only, and their stage fields are informative
# (read without a lock on the case), so they never move the replayed stage.
CLOCK_ONLY_ACTIONS = frozenset({"deadline_breached", "deadline_escalated"})


@dataclass
class ClockView:
    """One deadline clock as the history describes it."""

    id: str
    kind: str
    bound: str
    due_date: date
    started_at: datetime
    citation: str
    met_at: datetime | None = None
    breached_at: datetime | None = None
    escalation_level: str | None = None
    escalate_at: datetime | None = None
    paused_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def live(self) -> bool:
        """Whether the clock is still running towards its due date."""
        return (
            self.met_at is None
            and self.breached_at is None
            and self.closed_at is None
            and self.bound != "minimum"
        )

    @property
    def owed(self) -> bool:
        """Whether the obligation is still open (running, paused or breached but unmet)."""
        return self.met_at is None and self.closed_at is None


@dataclass(frozen=True)
class Entry:
    """One history record, as stored in case_event."""

    at: datetime
    actor: str
    actor_role: str
    action: str
    from_stage: str | None
    to_stage: str
    reason: str | None
    data: Mapping[str, Any]


@dataclass
class CaseView:
    """A case as far as its history tells."""

    stage: str
    opened_at: datetime
    facts: dict[str, Any] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    score: int | None = None
    level: str | None = None
    clocks: dict[str, ClockView] = field(default_factory=dict)
    helper: dict[str, Any] | None = None
    plan: dict[str, dict[str, Any]] = field(default_factory=dict)
    closed_at: datetime | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------ procedure facts


def _day(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(str(value))


def procedure_facts(facts: Mapping[str, Any], stage: str) -> CaseFacts:
    """Return the state machine's view of a case from its stored facts."""
    stored: Mapping[str, Any] = facts.get("procedure") or {}
    return CaseFacts(
        stage=Stage(stage),
        publicity_started_on=_day(stored.get("publicity_started_on")),
        open_objections=int(stored.get("open_objections", 0)),
        verification_recorded=bool(stored.get("verification_recorded", False)),
        helper_assigned=bool(stored.get("helper_assigned", False)),
        plan_recorded=bool(stored.get("plan_recorded", False)),
        elimination_publicity_started_on=_day(stored.get("elimination_publicity_started_on")),
    )


def procedure_record(facts: CaseFacts) -> dict[str, Any]:
    """Return the facts worth storing; pending cross-checks and shortfalls are per request."""

    def iso(day: date | None) -> str | None:
        return None if day is None else day.isoformat()

    return {
        "publicity_started_on": iso(facts.publicity_started_on),
        "open_objections": facts.open_objections,
        "verification_recorded": facts.verification_recorded,
        "helper_assigned": facts.helper_assigned,
        "plan_recorded": facts.plan_recorded,
        "elimination_publicity_started_on": iso(facts.elimination_publicity_started_on),
    }


def apply_facts(facts: Mapping[str, Any], action: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Return the case facts after an entry (the input is left untouched)."""
    out: dict[str, Any] = copy.deepcopy(dict(facts))
    if "procedure" in data:
        out["procedure"] = dict(data["procedure"])
    if action == "open":
        out["must_verify"] = bool(data.get("must_verify", False))
        out.setdefault("labels", [])
    if "verification" in data:
        verification = dict(data["verification"])
        out["verification"] = verification
        out["labour_capacity"] = verification.get("labour_capacity")
        out["guarantees"] = dict(verification.get("guarantees") or {})
    if "crosscheck" in data:
        out["crosscheck"] = list(data["crosscheck"])
    if "appraisal" in data:
        out["appraisal"] = dict(data["appraisal"])
    if "publicity" in data:
        out.setdefault("publicities", []).append(dict(data["publicity"]))
    if "objection" in data:
        out.setdefault("objections", []).append({**data["objection"], "open": True})
    if "resolution" in data:
        resolution = data["resolution"]
        for objection in out.get("objections", []):
            if objection.get("no") == resolution.get("no"):
                objection.update(open=False, **{k: v for k, v in resolution.items() if k != "no"})
    if "labels" in data:
        out["labels"] = list(data["labels"])
    visit = data.get("visit")
    if isinstance(visit, Mapping) and visit.get("guarantees"):
        # A visit that re-checks the guarantees replaces what verification recorded.
        out["guarantees"] = {**out.get("guarantees", {}), **dict(visit["guarantees"])}
    return out


# ------------------------------------------------------------------ clock operations


def op_start(*, clock_id: str, kind: str, bound: str, due: date, citation: str) -> dict[str, Any]:
    """Return the operation that starts a clock."""
    return {
        "op": "start",
        "id": clock_id,
        "kind": kind,
        "bound": bound,
        "due": due.isoformat(),
        "citation": citation,
    }


def op_meet(clock_id: str) -> dict[str, Any]:
    """Return the operation that marks a clock met."""
    return {"op": "meet", "id": clock_id}


def op_close(clock_id: str) -> dict[str, Any]:
    """Return the operation that ends a clock whose obligation lapsed (case closed, etc.)."""
    return {"op": "close", "id": clock_id}


def op_breach(clock_id: str, level: str, escalate_at: datetime | None) -> dict[str, Any]:
    """Return the operation that marks a clock breached at an escalation level."""
    return {
        "op": "breach",
        "id": clock_id,
        "level": level,
        "escalate_at": None if escalate_at is None else escalate_at.isoformat(),
    }


def op_escalate(clock_id: str, level: str, escalate_at: datetime | None) -> dict[str, Any]:
    """Return the operation that moves a breached clock one level up."""
    return {
        "op": "escalate",
        "id": clock_id,
        "level": level,
        "escalate_at": None if escalate_at is None else escalate_at.isoformat(),
    }


def op_pause(clock_id: str) -> dict[str, Any]:
    """Return the operation that stops a clock."""
    return {"op": "pause", "id": clock_id}


def op_resume(clock_id: str, due: date, previous: date) -> dict[str, Any]:
    """Return the operation that restarts a clock with the due date the pause moved it to."""
    return {"op": "resume", "id": clock_id, "due": due.isoformat(), "from": previous.isoformat()}


def op_extend(clock_id: str, due: date, previous: date, *, days: int, unit: str) -> dict[str, Any]:
    """Return the operation that extends a clock."""
    return {
        "op": "extend",
        "id": clock_id,
        "due": due.isoformat(),
        "from": previous.isoformat(),
        "days": days,
        "unit": unit,
    }


def _instant(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def apply_clock_ops(
    clocks: dict[str, ClockView], ops: Iterable[Mapping[str, Any]], at: datetime
) -> None:
    """Apply clock operations recorded at `at`; unknown clock ids are ignored."""
    for op in ops:
        name = op["op"]
        clock_id = str(op["id"])
        if name == "start":
            clocks[clock_id] = ClockView(
                id=clock_id,
                kind=str(op["kind"]),
                bound=str(op["bound"]),
                due_date=date.fromisoformat(str(op["due"])),
                started_at=at,
                citation=str(op["citation"]),
            )
            continue
        clock = clocks.get(clock_id)
        if clock is None:
            continue
        if name == "meet":
            clock.met_at = at
            clock.escalate_at = None
            clock.paused_at = None
        elif name == "close":
            clock.closed_at = at
            clock.escalate_at = None
            clock.paused_at = None
        elif name in ("breach", "escalate"):
            if name == "breach":
                clock.breached_at = at
            clock.escalation_level = str(op["level"])
            clock.escalate_at = _instant(op.get("escalate_at"))
        elif name == "pause":
            clock.paused_at = at
        elif name in ("resume", "extend"):
            clock.paused_at = None
            clock.due_date = date.fromisoformat(str(op["due"]))
        else:
            raise ValueError(f"unknown clock operation {name!r}")


# ------------------------------------------------------------------ the fold


def apply(view: CaseView | None, entry: Entry) -> CaseView:
    """Return the case after one more history entry (view is updated in place)."""
    data = entry.data
    if view is None:
        view = CaseView(stage=entry.to_stage, opened_at=entry.at)
    view.facts = apply_facts(view.facts, entry.action, data)
    if entry.action not in CLOCK_ONLY_ACTIONS:
        view.stage = entry.to_stage
    if "categories" in data:
        view.categories = list(data["categories"])
    if "score" in data:
        view.score = int(data["score"])
    if "level" in data:
        view.level = str(data["level"])
    for source in data.get("sources", ()):
        if source not in view.sources:
            view.sources.append(dict(source))
    if "helper" in data:
        view.helper = dict(data["helper"])
    for item in data.get("plan_items", ()):
        view.plan[str(item["id"])] = dict(item)
    update = data.get("plan_update")
    if isinstance(update, Mapping) and str(update.get("id")) in view.plan:
        view.plan[str(update["id"])].update(
            status=update.get("status"), note=update.get("note"), updated_at=entry.at.isoformat()
        )
    apply_clock_ops(view.clocks, data.get("clocks", ()), entry.at)
    if data.get("closes_case"):
        view.closed_at = entry.at
    return view


def replay(entries: Iterable[Entry], *, until: datetime | None = None) -> CaseView | None:
    """Fold entries (oldest first) recorded before `until`; None if the case did not exist."""
    view: CaseView | None = None
    for entry in entries:
        if until is not None and entry.at >= until:
            continue
        view = apply(view, entry)
    return view

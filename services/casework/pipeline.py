"""Pipeline and sources: cases by stage, discovery channel, risk factor and category (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from services.casework.workflow import STAGE_LABELS_ZH, Stage

CHANNEL_LABELS_ZH: Final = {
    "declaration": "农户自主申报",
    "alert": "部门筛查预警",
    "report": "干部走访排查",
}
CATEGORY_LABELS_ZH: Final = {
    "unstable_escaped": "脱贫不稳定户",
    "marginal": "边缘易致贫户",
    "sudden_difficulty": "突发严重困难户",
}


@dataclass(frozen=True)
class Count:
    """A labelled count."""

    key: str
    label_zh: str
    count: int


@dataclass(frozen=True)
class Pipeline:
    """Every figure of the pipeline report."""

    cases: int
    by_stage: list[Count]
    by_first_channel: list[Count]
    signals_by_channel: list[Count]
    by_risk_factor: list[Count]
    by_category: list[Count]


def stage_label(stage: str) -> str:
    """Return the Chinese name of a stage (the key itself for a stage this code lacks)."""
    try:
        return STAGE_LABELS_ZH[Stage(stage)]
    except ValueError:
        return stage


def pipeline(cases: Iterable[Any]) -> Pipeline:
    """Count cases (anything with stage, sources, reasons and categories)."""
    stages: Counter[str] = Counter()
    first: Counter[str] = Counter()
    signals: Counter[str] = Counter()
    factors: Counter[str] = Counter()
    factor_titles: dict[str, str] = {}
    categories: Counter[str] = Counter()
    total = 0
    for case in cases:
        total += 1
        stages[case.stage] += 1
        # Sources are kept in arrival order, so the first one is the channel that found it.
        if case.sources:
            first[str(case.sources[0].get("kind"))] += 1
        for source in case.sources:
            signals[str(source.get("kind"))] += 1
        # A factor counts once per case however many signals fired it.
        for code in {str(r.get("code")) for r in case.reasons if r.get("code")}:
            factors[code] += 1
        for reason in case.reasons:
            if reason.get("code"):
                factor_titles.setdefault(str(reason["code"]), str(reason.get("title_zh", "")))
        for category in set(case.categories):
            categories[category] += 1
    stage_order = [s.value for s in Stage]
    return Pipeline(
        cases=total,
        # Every stage is listed, empty ones too, in procedure order: a funnel with gaps.
        by_stage=[Count(s, STAGE_LABELS_ZH[Stage(s)], stages.get(s, 0)) for s in stage_order]
        + [Count(s, s, n) for s, n in sorted(stages.items()) if s not in stage_order],
        by_first_channel=[
            Count(k, CHANNEL_LABELS_ZH.get(k, k), first.get(k, 0)) for k in CHANNEL_LABELS_ZH
        ],
        signals_by_channel=[
            Count(k, CHANNEL_LABELS_ZH.get(k, k), signals.get(k, 0)) for k in CHANNEL_LABELS_ZH
        ],
        by_risk_factor=[
            Count(code, factor_titles.get(code, code), n)
            for code, n in sorted(factors.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        by_category=[
            Count(k, CATEGORY_LABELS_ZH[k], categories.get(k, 0)) for k in CATEGORY_LABELS_ZH
        ],
    )

"""Pure risk scoring of a household: facts and signals in, an explained Assessment out.

No I/O happens here. Every threshold and weight comes from the ScoringPolicy (policy.py,
policies/default.json). Each risk factor of domain.md §4 is a small pure function
``(household, signals, policy, as_of) -> Reason | None`` registered in ``FACTORS``; the
engine walks that table and sums the weights of the factors that fire.

Factors and the facts or signals that evidence them (alert types: contract.md catalogue;
difficulty types: declarations and cadre reports):

======  ===========================================================================
code    implemented from
======  ===========================================================================
RF-01   per-capita income of the rolling window below the line; else the declared
        household income (self_reported_income / members), marked unverified
RF-02   per-capita income in [line, line x near_line_ratio) and rigid spending above
        the window's household income ("far below the average" is not evidencable)
RF-03   window income fell >= sharp_income_fall_ratio below previous_year_income
RF-04   rigid spending (medical out-of-pocket, disaster and business losses, amounts
        declared or reported) >= rigid_expenditure_ratio x previous_year_income
RF-05   脱贫户 whose transfer income share > transfer_income_share;
        civil_affairs.dibao_termination (a transfer-dependent household loses 低保)
RF-06   window income below previous_year_income, by less than the sharp-fall ratio
        (a sharp fall is RF-03 only, so one fact is not counted twice)
RF-07   agriculture.business_loss (amount >= business_loss_min_amount); business_loss
RF-08   the only labourer of the household is weak or half labour
RF-09   >= 1 labourer, industry_covered is False and nobody is a migrant worker
RF-10   human_resources.unemployment_registered; unemployment ("insufficient internal
        motivation" is not evidencable)
RF-11   main labourer with weak/half/no labour capacity or a disability grade <=
        labour_loss_disability_max_grade; disability.certificate_issued for a main
        labourer (matched by member_ref)
RF-12   human_resources.returned_migrant
RF-13   a weak or half labourer who is not a migrant worker, industry_covered False
RF-14   member with serious illness; health.serious_illness_diagnosis; illness;
        medical out-of-pocket total >= large_out_of_pocket_medical (or the department's
        own "large" alert without an amount); chronic illness (roster or
        health.chronic_illness_registered) with out-of-pocket >= chronic threshold
RF-15   member with a disability grade; disability.certificate_issued; disability
RF-16   >= college_students_min unaided college students (roster, or
        education.college_students count minus aided students on the roster);
        >= children_in_school_min children at school; education_costs
RF-17   member dropout_risk; education.dropout_risk
RF-18   housing.mud_brick_only
RF-19   housing.unsafe / housing.disaster_damaged; housing.unsafe_house_appraisal
        (grade >= unsafe_house_min_grade); housing.disaster_damaged_house; unsafe_housing
RF-20   hazard_zone; natural_resources.hazard_zone
RF-21   water_unsafe; water.supply_unsafe; drinking_water
RF-22   emergency.disaster_loss (amount >= disaster_loss_min_amount);
        housing.disaster_damaged_house; disaster
RF-23   traffic_police.accident_injury; accident
RF-24   public_security.member_death
RF-26   minors whose parents' generation is absent (migrant or not in the household)
        while grandparents' generation is present
RF-27   special-group labels; 低保 or grade 1-2 disabled without a capable supporter;
        civil_affairs.tekun_application
RF-28   member aged >= elderly_age without basic pension
RF-29   a negative-list hit (review flag) AND a 两不愁三保障 / water shortfall
        (RF-17, RF-18, RF-19, RF-21, RF-30 or RF-31 evidence)
RF-30   civil_affairs.dibao_application; civil_affairs.temporary_assistance
RF-31   member not enrolled in basic medical insurance
======  ===========================================================================

Not implemented: RF-25 (epidemic impact) — neither the alert catalogue, the difficulty
types nor the household facts carry any evidence of it.

Negative-list hits (vehicle, business, public payroll, commercial housing, large deposits;
from household facts and the four negative-list alert types) become review flags NEG-01..05
with contribution 0: a prompt to review, never an exclusion (domain.md §9 A17).

A reason with ``kind="note"`` and contribution 0 says a factor could not be judged (income
unknown, previous year's income unknown) and what 入户核查 must verify.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Final, Literal

from services.screening.policy import LEVEL_RANK, CategoryRule, Level, ScoringPolicy

LabourCapacity = Literal["full", "weak", "half", "none"]
Health = Literal["healthy", "chronic", "serious_illness"]
Schooling = Literal[
    "none", "preschool", "compulsory", "high_school", "college", "vocational_college"
]
Relation = Literal[
    "head",
    "spouse",
    "child",
    "child_in_law",
    "grandchild",
    "parent",
    "parent_in_law",
    "grandparent",
    "sibling",
    "other",
]
IncomeComponent = Literal["wages", "operating", "property", "transfer"]
Channel = Literal["declaration", "alert", "report"]
DifficultyType = Literal[
    "illness",
    "disability",
    "education_costs",
    "disaster",
    "accident",
    "business_loss",
    "unemployment",
    "unsafe_housing",
    "drinking_water",
    "other",
]
Category = Literal["unstable_escaped", "marginal", "sudden_difficulty"]
ReasonKind = Literal["factor", "note", "review"]

CENT: Final = Decimal("0.01")


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberFacts:
    """One household member as the roster describes them."""

    member_ref: str
    relation: Relation
    age: int
    labour_capacity: LabourCapacity
    is_main_labourer: bool = False
    disability_grade: int | None = None  # 1 (most severe) .. 4
    health: Health = "healthy"
    schooling: Schooling = "none"
    student_aided: bool = False
    migrant_worker: bool = False
    receives_basic_pension: bool = False
    dropout_risk: bool = False
    medical_insured: bool = True

    def __post_init__(self) -> None:
        if self.age < 0:
            raise ValueError("age must not be negative")
        if self.disability_grade is not None and not 1 <= self.disability_grade <= 4:
            raise ValueError("disability_grade must be 1..4")


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomeRecord:
    """One month's income of one component for the whole household (yuan)."""

    month: date  # first day of the month
    component: IncomeComponent
    amount: Decimal  # may be negative: operating losses

    def __post_init__(self) -> None:
        if self.month.day != 1:
            raise ValueError("IncomeRecord.month must be the first day of a month")


@dataclass(frozen=True, slots=True, kw_only=True)
class HousingFacts:
    """The state of the household's only house."""

    mud_brick_only: bool = False
    unsafe: bool = False
    disaster_damaged: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class NegativeListFacts:
    """Negative-list (“五无”) indicators found for the household or its close relatives."""

    vehicle: bool = False
    business: bool = False
    public_payroll: bool = False
    commercial_housing: bool = False
    large_deposits: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HouseholdFacts:
    """What the registry knows about one household."""

    household_ref: str
    village_code: str
    labels: frozenset[str] = frozenset()  # "tuopin", "monitored", "dibao", "tekun", …
    members: tuple[MemberFacts, ...] = ()
    incomes: tuple[IncomeRecord, ...] = ()
    # Household total income of the 12 months before the current income window (上年度收入).
    previous_year_income: Decimal | None = None
    housing: HousingFacts = field(default_factory=HousingFacts)
    hazard_zone: bool = False
    water_unsafe: bool = False
    industry_covered: bool | None = None  # None: unknown, so RF-09 / RF-13 cannot fire
    negative_list: NegativeListFacts = field(default_factory=NegativeListFacts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """A declaration, department alert or cadre report about the household."""

    signal_id: str
    channel: Channel
    occurred_on: date
    alert_type: str | None = None
    difficulty_types: tuple[DifficultyType, ...] = ()
    department: str | None = None
    amount: Decimal | None = None
    count: int | None = None
    grade: int | None = None
    # Household total income of the last 12 months as declared (income_last_12_months).
    self_reported_income: Decimal | None = None
    member_ref: str | None = None  # the member an alert is about, when known

    def __post_init__(self) -> None:
        if self.channel == "alert" and not self.alert_type:
            raise ValueError("an alert signal needs an alert_type")
        if self.amount is not None and self.amount < 0:
            raise ValueError("amount must not be negative")
        if self.count is not None and self.count < 0:
            raise ValueError("count must not be negative")
        if self.self_reported_income is not None and self.self_reported_income < 0:
            raise ValueError("self_reported_income must not be negative")


# -------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Reason:
    """One explained part of an assessment."""

    code: str  # RF-xx or NEG-xx
    title_zh: str
    title_en: str
    evidence: str  # readable Chinese, with the numbers used
    contribution: int
    kind: ReasonKind = "factor"


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    """A household's risk score, level, categories and their reasons."""

    score: int  # 0..100
    uncapped_score: int  # sum of the reasons' contributions before the cap at 100
    level: Level
    categories: tuple[Category, ...]
    reasons: tuple[Reason, ...]
    review_flags: tuple[Reason, ...]
    must_verify: bool
    opens_case: bool
    policy_id: str
    policy_version: int
    per_capita_income: Decimal | None = None


# ------------------------------------------------------------------ catalogue maps


@dataclass(frozen=True, slots=True)
class SignalRule:
    """How one alert or difficulty type reads in Chinese and what it evidences."""

    label_zh: str
    factors: tuple[str, ...] = ()
    review: str | None = None  # NEG code for negative-list alert types


# Department alert types (contract.md) → the factors they evidence or the review flag.
ALERT_RULES: Final[Mapping[str, SignalRule]] = MappingProxyType(
    {
        "medical_insurance.large_out_of_pocket": SignalRule(
            "医保：大额个人自付医疗费用", ("RF-14",)
        ),
        "health.serious_illness_diagnosis": SignalRule("卫健：重大疾病确诊", ("RF-14",)),
        # Counts only with out-of-pocket spending: domain §3.2 (b) item 1.
        "health.chronic_illness_registered": SignalRule("卫健：慢性病登记", ("RF-14",)),
        "civil_affairs.dibao_application": SignalRule("民政：申请低保", ("RF-30",)),
        "civil_affairs.dibao_termination": SignalRule("民政：低保终止", ("RF-05",)),
        "civil_affairs.tekun_application": SignalRule("民政：申请特困供养", ("RF-27",)),
        "civil_affairs.temporary_assistance": SignalRule("民政：临时救助", ("RF-30",)),
        "education.college_students": SignalRule("教育：在读大学生", ("RF-16",)),
        "education.dropout_risk": SignalRule("教育：辍学风险", ("RF-17",)),
        "housing.unsafe_house_appraisal": SignalRule("住建：危房鉴定", ("RF-19",)),
        "housing.disaster_damaged_house": SignalRule("住建：因灾受损农房", ("RF-19", "RF-22")),
        "disability.certificate_issued": SignalRule("残联：核发残疾人证", ("RF-15", "RF-11")),
        "human_resources.unemployment_registered": SignalRule("人社：失业登记", ("RF-10",)),
        "human_resources.returned_migrant": SignalRule("人社：返乡回流", ("RF-12",)),
        "human_resources.public_payroll": SignalRule("人社：财政供养人员", review="NEG-03"),
        "emergency.disaster_loss": SignalRule("应急管理：灾害损失", ("RF-22",)),
        "traffic_police.accident_injury": SignalRule("交警：交通事故伤害", ("RF-23",)),
        "traffic_police.vehicle_registered": SignalRule("交警：登记机动车", review="NEG-01"),
        "public_security.member_death": SignalRule("公安：家庭成员死亡", ("RF-24",)),
        "water.supply_unsafe": SignalRule("水利：供水不安全", ("RF-21",)),
        "agriculture.business_loss": SignalRule("农业农村：经营亏损", ("RF-07",)),
        "market_regulation.business_registered": SignalRule(
            "市场监管：登记经营主体", review="NEG-02"
        ),
        "natural_resources.commercial_housing": SignalRule("自然资源：商品房登记", review="NEG-04"),
        "natural_resources.hazard_zone": SignalRule("自然资源：地质灾害隐患点", ("RF-20",)),
    }
)

# Difficulty types of declarations and cadre reports → label and factors. "other" names no
# factor: it still opens a case through must_verify.
DIFFICULTY_RULES: Final[Mapping[DifficultyType, SignalRule]] = MappingProxyType(
    {
        "illness": SignalRule("因病", ("RF-14",)),
        "disability": SignalRule("因残", ("RF-15",)),
        "education_costs": SignalRule("因学", ("RF-16",)),
        "disaster": SignalRule("因灾", ("RF-22",)),
        "accident": SignalRule("意外事故", ("RF-23",)),
        "business_loss": SignalRule("经营亏损", ("RF-07",)),
        "unemployment": SignalRule("失业、就业不稳", ("RF-10",)),
        "unsafe_housing": SignalRule("住房不安全", ("RF-19",)),
        "drinking_water": SignalRule("饮水不安全", ("RF-21",)),
        "other": SignalRule("其他困难"),
    }
)

# Alert types whose amount is money the household must spend or has lost (刚性支出).
# Temporary assistance is money received, so it is not here.
_RIGID_ALERT_TYPES: Final = frozenset(
    {
        "medical_insurance.large_out_of_pocket",
        "emergency.disaster_loss",
        "agriculture.business_loss",
    }
)
_MEDICAL_OOP: Final = "medical_insurance.large_out_of_pocket"

FACTOR_TITLES: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "RF-01": ("人均收入低于监测标准", "Per-capita income below the monitoring line"),
        "RF-02": (
            "收入略高于标准但刚性支出大大超过收入",
            "Income just above the line with rigid spending above income",
        ),
        "RF-03": ("收入大幅缩减", "Sharp income fall"),
        "RF-04": ("刚性支出较大", "Large rigid expenditure"),
        "RF-05": ("转移性收入占比过高", "High share of transfer income"),
        "RF-06": ("收入负增长", "Negative income growth"),
        "RF-07": ("经营亏损（产业失败）", "Business loss or industry failure"),
        "RF-08": ("家中只有一个弱劳力或半劳力", "Only one weak or half labourer"),
        "RF-09": (
            "有劳动力但无产业覆盖且未转移就业",
            "Labour without industry coverage or migrant employment",
        ),
        "RF-10": ("就业不稳、增收乏力", "Unstable employment, weak income growth"),
        "RF-11": ("主要劳动力丧失或部分丧失劳动能力", "Main labourer lost labour capacity"),
        "RF-12": ("返乡回流人员", "Returned migrant worker"),
        "RF-13": ("弱劳力、半劳力无法外出、无业可就", "Weak or half labour without work"),
        "RF-14": (
            "大病重病或大额自付医疗费用",
            "Serious illness or large out-of-pocket medical costs",
        ),
        "RF-15": ("因残", "Disability"),
        "RF-16": ("因学（多子女上学或大学生无资助）", "Education costs"),
        "RF-17": ("义务教育失学辍学风险", "Compulsory-education dropout risk"),
        "RF-18": ("唯一住房是土坯房", "Only house is mud-brick"),
        "RF-19": ("住房安全隐患（危房）", "Unsafe house"),
        "RF-20": ("在灾害隐患点居住", "Living at a geological-hazard point"),
        "RF-21": ("饮水不安全", "Unsafe drinking water"),
        "RF-22": ("因灾", "Natural disaster"),
        "RF-23": ("意外事故", "Accident"),
        "RF-24": ("突发重大变故", "Sudden major change in the family"),
        "RF-26": ("隔代抚养", "Skipped-generation child rearing"),
        "RF-27": ("特殊困难群体", "Special-difficulty group"),
        "RF-28": ("60周岁以上未领取基本养老保险待遇", "Elderly person without basic pension"),
        "RF-29": (
            "负面清单个别现象但“两不愁三保障”实现程度不高",
            "Negative-list anomaly with low 两不愁三保障 achievement",
        ),
        "RF-30": ("基本生活（吃穿）未保障", "Basic living not guaranteed"),
        "RF-31": ("未参加基本医疗保险", "Not enrolled in basic medical insurance"),
    }
)

NEGATIVE_LIST_TITLES: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "NEG-01": ("负面清单：登记有机动车", "Negative list: vehicle registered"),
        "NEG-02": ("负面清单：经商办企业", "Negative list: business registered"),
        "NEG-03": ("负面清单：财政供养人员", "Negative list: public payroll"),
        "NEG-04": ("负面清单：拥有商品房", "Negative list: commercial housing"),
        "NEG-05": ("负面清单：大额存款", "Negative list: large deposits"),
    }
)
_NEGATIVE_LIST_FACTS: Final[tuple[tuple[str, str, str], ...]] = (
    ("vehicle", "NEG-01", "家庭登记有机动车"),
    ("business", "NEG-02", "共同生活人员或直系亲属经商办企业"),
    ("public_payroll", "NEG-03", "共同生活人员或直系亲属中有财政供养人员"),
    ("commercial_housing", "NEG-04", "家庭拥有商品房"),
    ("large_deposits", "NEG-05", "家庭有大额存款"),
)

_CHANNEL_ZH: Final[Mapping[Channel, str]] = MappingProxyType(
    {"declaration": "农户自主申报", "alert": "部门筛查预警", "report": "干部走访排查"}
)
_RELATION_ZH: Final[Mapping[Relation, str]] = MappingProxyType(
    {
        "head": "户主",
        "spouse": "配偶",
        "child": "子女",
        "child_in_law": "儿媳或女婿",
        "grandchild": "孙子女",
        "parent": "父母",
        "parent_in_law": "公婆或岳父母",
        "grandparent": "祖父母",
        "sibling": "兄弟姐妹",
        "other": "其他成员",
    }
)
_LABOUR_ZH: Final[Mapping[LabourCapacity, str]] = MappingProxyType(
    {"full": "全劳力", "weak": "弱劳力", "half": "半劳力", "none": "无劳动能力"}
)
_CONCEPT_ZH: Final[Mapping[str, str]] = MappingProxyType(
    {
        "per_capita_disposable": "人均可支配收入",
        "household_annual_per_capita": "年人均收入",
        "per_capita_net": "人均纯收入",
    }
)
_LABEL_ZH: Final[Mapping[str, str]] = MappingProxyType(
    {
        "tekun": "特困人员",
        "orphan": "孤儿",
        "de_facto_unsupported_child": "事实无人抚养儿童",
        "seriously_ill_child": "重病儿童",
        "abused_child": "受虐待儿童",
        "left_behind_elderly": "留守老年人",
        "left_behind_child": "留守儿童",
        "left_behind_woman": "留守妇女",
    }
)
# Generation relative to the household head, for skipped-generation care (RF-26).
_GENERATION: Final[Mapping[Relation, int]] = MappingProxyType(
    {
        "grandparent": 2,
        "parent": 1,
        "parent_in_law": 1,
        "head": 0,
        "spouse": 0,
        "sibling": 0,
        "child": -1,
        "child_in_law": -1,
        "grandchild": -2,
    }
)
_AT_SCHOOL: Final = frozenset({"compulsory", "high_school", "college", "vocational_college"})
_COLLEGE: Final = frozenset({"college", "vocational_college"})
# Housing-safety appraisal grades A (safe) to D (whole house dangerous) as 1..4.
_HOUSE_GRADE: Final = {1: "A", 2: "B", 3: "C", 4: "D"}


# ------------------------------------------------------------------ formatting


def _money(value: Decimal) -> str:
    if value == value.to_integral_value():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _pct(ratio: Decimal) -> str:
    return f"{ratio * 100:.1f}%"


def _month_span(start: date, end: date) -> str:
    return f"{start.year}年{start.month}月至{end.year}年{end.month}月"


def _who(member: MemberFacts) -> str:
    return f"{_RELATION_ZH[member.relation]}（{member.age}岁）"


def describe_signal(signal: Signal) -> str:
    """Return a short Chinese description of a signal, with its date and numbers."""
    parts = [signal.occurred_on.isoformat()]
    if signal.amount is not None:
        parts.append(f"金额 {_money(signal.amount)} 元")
    if signal.count is not None:
        parts.append(f"人数 {signal.count}")
    if signal.grade is not None:
        parts.append(f"等级 {signal.grade}")
    detail = "，".join(parts)
    if signal.channel == "alert":
        rule = ALERT_RULES.get(signal.alert_type or "")
        label = rule.label_zh if rule else (signal.alert_type or "")
        return f"部门预警「{label}」（{detail}）"
    kinds = "、".join(DIFFICULTY_RULES[d].label_zh for d in signal.difficulty_types) or "困难"
    return f"{_CHANNEL_ZH[signal.channel]}「{kinds}」（{detail}）"


# ------------------------------------------------------------------ income


def income_window(as_of: date, months: int) -> tuple[date, date]:
    """Return the first and last day of the rolling income window for a determination date."""
    if months < 1:
        raise ValueError("months must be at least 1")
    # Domain §3.4: from the same month of the previous year to the month before as_of.
    end = date(as_of.year, as_of.month, 1) - timedelta(days=1)
    index = as_of.year * 12 + (as_of.month - 1) - months
    start = date(index // 12, index % 12 + 1, 1)
    return start, end


def _window_records(
    household: HouseholdFacts, policy: ScoringPolicy, as_of: date
) -> tuple[IncomeRecord, ...]:
    start, end = income_window(as_of, policy.income_window_months)
    return tuple(r for r in household.incomes if start <= r.month <= end)


def household_income(
    household: HouseholdFacts, policy: ScoringPolicy, as_of: date
) -> Decimal | None:
    """Return the household's total income over the window; None when it has no records."""
    records = _window_records(household, policy, as_of)
    if not records:
        return None
    return sum((r.amount for r in records), Decimal(0))


def per_capita_income(
    household: HouseholdFacts, policy: ScoringPolicy, as_of: date
) -> Decimal | None:
    """Return the window's income per member (to the cent); None without records or members."""
    total = household_income(household, policy, as_of)
    if total is None or not household.members:
        return None
    return (total / len(household.members)).quantize(CENT, rounding=ROUND_HALF_UP)


def _income_fall(
    household: HouseholdFacts, policy: ScoringPolicy, as_of: date
) -> tuple[Decimal, Decimal, Decimal] | None:
    """(window income, previous year's income, fall ratio), when both are known."""
    current = household_income(household, policy, as_of)
    previous = household.previous_year_income
    if current is None or previous is None or previous <= 0:
        return None
    return current, previous, (previous - current) / previous


def episode_signals(
    signals: Iterable[Signal], policy: ScoringPolicy, as_of: date
) -> tuple[Signal, ...]:
    """Return the signals that are evidence on as_of: inside the episode window, not later."""
    earliest = as_of - timedelta(days=policy.thresholds.episode_window_days)
    return tuple(s for s in signals if earliest < s.occurred_on <= as_of)


def rigid_expenditure(signals: Iterable[Signal]) -> tuple[Decimal, tuple[Signal, ...]]:
    """Return the total rigid spending the signals show, and the signals it came from."""
    # A declared or reported amount is the cost of the difficulty the household names.
    used = tuple(
        s
        for s in signals
        if s.amount is not None
        and (
            (s.channel == "alert" and s.alert_type in _RIGID_ALERT_TYPES)
            or s.channel in ("declaration", "report")
        )
    )
    return sum((s.amount or Decimal(0) for s in used), Decimal(0)), used


# ------------------------------------------------------------------ factor helpers


def _alerts_for(signals: Sequence[Signal], code: str) -> list[Signal]:
    out = []
    for s in signals:
        rule = ALERT_RULES.get(s.alert_type or "") if s.channel == "alert" else None
        if rule is not None and code in rule.factors:
            out.append(s)
    return out


def _declared_for(signals: Sequence[Signal], code: str) -> list[Signal]:
    return [
        s
        for s in signals
        if s.channel in ("declaration", "report")
        and any(code in DIFFICULTY_RULES[d].factors for d in s.difficulty_types)
    ]


def _reason(policy: ScoringPolicy, code: str, evidence: Sequence[str]) -> Reason | None:
    if not evidence:
        return None
    title_zh, title_en = FACTOR_TITLES[code]
    return Reason(code, title_zh, title_en, "；".join(evidence), policy.weight(code))


def _signal_evidence(signals: Iterable[Signal]) -> list[str]:
    return [describe_signal(s) for s in signals]


def _labourers(household: HouseholdFacts) -> list[MemberFacts]:
    return [m for m in household.members if m.labour_capacity != "none"]


def _capable_supporters(household: HouseholdFacts, policy: ScoringPolicy) -> list[MemberFacts]:
    t = policy.thresholds
    return [
        m
        for m in household.members
        if m.labour_capacity == "full"
        and t.adult_age <= m.age < t.elderly_age
        and (m.disability_grade is None or m.disability_grade > t.severe_disability_max_grade)
    ]


# ------------------------------------------------------------------ factors


def rf01_income_below_line(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, as_of: date
) -> Reason | None:
    """RF-01: per-capita income below the monitoring line."""
    line = policy.income_line
    months = policy.income_window_months
    per_capita = per_capita_income(household, policy, as_of)
    if per_capita is not None:
        if per_capita >= line:
            return None
        start, end = income_window(as_of, months)
        concept = _CONCEPT_ZH[policy.income_concept]
        return _reason(
            policy,
            "RF-01",
            [
                f"近{months}个月（{_month_span(start, end)}）家庭{concept} {_money(per_capita)} 元，"
                f"低于监测标准 {_money(line)} 元"
            ],
        )
    if not household.members:
        return None
    # Without income records, a declared household income below the line still counts,
    # marked unverified; the lowest declaration is used so a new one never lowers the score.
    size = len(household.members)
    declared = [
        (s, (s.self_reported_income / size).quantize(CENT, rounding=ROUND_HALF_UP))
        for s in signals
        if s.self_reported_income is not None
    ]
    below = [(s, pc) for s, pc in declared if pc < line]
    if not below:
        return None
    signal, pc = min(below, key=lambda item: item[1])
    return _reason(
        policy,
        "RF-01",
        [
            f"无近{months}个月收入记录；{describe_signal(signal)}申报家庭收入 "
            f"{_money(signal.self_reported_income or Decimal(0))} 元，"
            f"按 {size} 人计人均 {_money(pc)} 元，低于监测标准 {_money(line)} 元"
            "（申报数，未经核实，须在入户核查时核实）"
        ],
    )


def rf02_near_line_rigid_spending(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, as_of: date
) -> Reason | None:
    """RF-02: income slightly above the line while rigid spending exceeds income."""
    line = policy.income_line
    per_capita = per_capita_income(household, policy, as_of)
    total = household_income(household, policy, as_of)
    if per_capita is None or total is None:
        return None
    if not line <= per_capita < line * policy.thresholds.near_line_ratio:
        return None
    rigid, _ = rigid_expenditure(signals)
    if rigid <= 0 or rigid <= total:
        return None
    return _reason(
        policy,
        "RF-02",
        [
            f"家庭人均收入 {_money(per_capita)} 元，略高于监测标准 {_money(line)} 元"
            f"（不足 {policy.thresholds.near_line_ratio} 倍）；刚性支出 {_money(rigid)} 元，"
            f"超过近{policy.income_window_months}个月家庭收入 {_money(total)} 元"
        ],
    )


def rf03_sharp_income_fall(
    household: HouseholdFacts, _signals: Sequence[Signal], policy: ScoringPolicy, as_of: date
) -> Reason | None:
    """RF-03: income fell sharply against the previous year."""
    fall = _income_fall(household, policy, as_of)
    threshold = policy.thresholds.sharp_income_fall_ratio
    if fall is None or fall[2] < threshold:
        return None
    current, previous, ratio = fall
    return _reason(
        policy,
        "RF-03",
        [
            f"近{policy.income_window_months}个月家庭收入 {_money(current)} 元，较上年度 "
            f"{_money(previous)} 元下降 {_pct(ratio)}，达到“收入大幅缩减”标准 {_pct(threshold)}"
        ],
    )


def rf04_large_rigid_expenditure(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-04: rigid spending large against the previous year's income."""
    rigid, used = rigid_expenditure(signals)
    previous = household.previous_year_income
    if rigid <= 0 or previous is None:
        return None
    sources = "、".join(describe_signal(s) for s in used)
    threshold = policy.thresholds.rigid_expenditure_ratio
    if previous <= 0:
        return _reason(
            policy,
            "RF-04",
            [
                f"刚性支出合计 {_money(rigid)} 元（{sources}），上年度家庭收入为 {_money(previous)} 元"
            ],
        )
    ratio = rigid / previous
    if ratio < threshold:
        return None
    return _reason(
        policy,
        "RF-04",
        [
            f"刚性支出合计 {_money(rigid)} 元（{sources}），为上年度家庭收入 "
            f"{_money(previous)} 元的 {_pct(ratio)}，达到“刚性支出较大”标准 {_pct(threshold)}"
        ],
    )


def rf05_transfer_income_share(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, as_of: date
) -> Reason | None:
    """RF-05: 脱贫户 relying on transfer income, or losing 低保."""
    evidence: list[str] = []
    if policy.escaped_label in household.labels:
        records = _window_records(household, policy, as_of)
        total = sum((r.amount for r in records), Decimal(0))
        transfer = sum((r.amount for r in records if r.component == "transfer"), Decimal(0))
        threshold = policy.thresholds.transfer_income_share
        if total > 0 and transfer / total > threshold:
            evidence.append(
                f"脱贫户近{policy.income_window_months}个月转移性收入 {_money(transfer)} 元，"
                f"占家庭收入 {_money(total)} 元的 {_pct(transfer / total)}，超过 {_pct(threshold)}"
            )
    evidence.extend(
        f"{describe_signal(s)}：低保待遇终止，家庭失去主要转移性收入，需核实收入能否稳定"
        for s in _alerts_for(signals, "RF-05")
    )
    return _reason(policy, "RF-05", evidence)


def rf06_negative_income_growth(
    household: HouseholdFacts, _signals: Sequence[Signal], policy: ScoringPolicy, as_of: date
) -> Reason | None:
    """RF-06: income below the previous year's, short of a sharp fall."""
    fall = _income_fall(household, policy, as_of)
    if fall is None or not 0 < fall[2] < policy.thresholds.sharp_income_fall_ratio:
        return None
    current, previous, ratio = fall
    return _reason(
        policy,
        "RF-06",
        [
            f"近{policy.income_window_months}个月家庭收入 {_money(current)} 元，较上年度 "
            f"{_money(previous)} 元下降 {_pct(ratio)}，收入负增长"
        ],
    )


def rf07_business_loss(
    _household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-07: business loss or industry failure."""
    minimum = policy.thresholds.business_loss_min_amount
    alerts = [s for s in _alerts_for(signals, "RF-07") if s.amount is None or s.amount >= minimum]
    evidence = [
        f"{describe_signal(s)}，达到经营亏损标准 {_money(minimum)} 元"
        if s.amount is not None
        else describe_signal(s)
        for s in alerts
    ]
    evidence += _signal_evidence(_declared_for(signals, "RF-07"))
    return _reason(policy, "RF-07", evidence)


def rf08_single_weak_labourer(
    household: HouseholdFacts, _signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-08: the household's only labourer is weak or half labour."""
    labourers = _labourers(household)
    if len(labourers) != 1 or labourers[0].labour_capacity not in ("weak", "half"):
        return None
    only = labourers[0]
    return _reason(
        policy,
        "RF-08",
        [f"家中唯一劳动力为{_LABOUR_ZH[only.labour_capacity]}（{_who(only)}），无其他劳动力"],
    )


def rf09_labour_without_coverage(
    household: HouseholdFacts, _signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-09: labour in the household but no industry coverage and no migrant employment."""
    labourers = _labourers(household)
    if household.industry_covered is not False or not labourers:
        return None
    if any(m.migrant_worker for m in household.members):
        return None
    return _reason(
        policy,
        "RF-09",
        [f"家中有 {len(labourers)} 个劳动力，但无产业覆盖，也无人转移就业"],
    )


def rf10_unstable_employment(
    _household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-10: unstable employment (unemployment registered or declared)."""
    evidence = _signal_evidence(_alerts_for(signals, "RF-10") + _declared_for(signals, "RF-10"))
    return _reason(policy, "RF-10", evidence)


def rf11_main_labourer_lost_capacity(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-11: a main labourer fully or partly lost labour capacity."""
    max_grade = policy.thresholds.labour_loss_disability_max_grade
    evidence: list[str] = []
    main = {m.member_ref: m for m in household.members if m.is_main_labourer}
    for m in main.values():
        if m.labour_capacity in ("weak", "half", "none"):
            evidence.append(f"主要劳动力{_who(m)}为{_LABOUR_ZH[m.labour_capacity]}")
        elif m.disability_grade is not None and m.disability_grade <= max_grade:
            evidence.append(f"主要劳动力{_who(m)}持 {m.disability_grade} 级残疾人证")
    for s in _alerts_for(signals, "RF-11"):
        member = main.get(s.member_ref or "")
        if member is not None and (s.grade is None or s.grade <= max_grade):
            evidence.append(f"{describe_signal(s)}：持证人为主要劳动力{_who(member)}")
    return _reason(policy, "RF-11", evidence)


def rf12_returned_migrant(
    _household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-12: a returned migrant worker."""
    return _reason(policy, "RF-12", _signal_evidence(_alerts_for(signals, "RF-12")))


def rf13_weak_labour_without_work(
    household: HouseholdFacts, _signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-13: weak or half labour that cannot work away and has no job at home."""
    if household.industry_covered is not False:
        return None
    stuck = [
        m
        for m in household.members
        if m.labour_capacity in ("weak", "half") and not m.migrant_worker
    ]
    evidence = [
        f"{_who(m)}为{_LABOUR_ZH[m.labour_capacity]}，未外出务工，家庭无产业覆盖" for m in stuck
    ]
    return _reason(policy, "RF-13", evidence)


def rf14_serious_illness(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-14: serious illness, or large out-of-pocket medical costs."""
    t = policy.thresholds
    evidence = [f"{_who(m)}患重大疾病" for m in household.members if m.health == "serious_illness"]
    alerts = _alerts_for(signals, "RF-14")
    evidence += _signal_evidence(
        s for s in alerts if s.alert_type == "health.serious_illness_diagnosis"
    )
    evidence += _signal_evidence(_declared_for(signals, "RF-14"))
    bills = [s for s in alerts if s.alert_type == _MEDICAL_OOP]
    out_of_pocket = sum((s.amount for s in bills if s.amount is not None), Decimal(0))
    chronic = [_who(m) for m in household.members if m.health == "chronic"]
    chronic += [
        describe_signal(s) for s in alerts if s.alert_type == "health.chronic_illness_registered"
    ]
    if out_of_pocket >= t.large_out_of_pocket_medical:
        evidence.append(
            f"医保个人自付医疗费用合计 {_money(out_of_pocket)} 元，"
            f"达到大额标准 {_money(t.large_out_of_pocket_medical)} 元"
        )
    elif chronic and bills and out_of_pocket >= t.chronic_out_of_pocket_medical:
        evidence.append(
            f"家有长期慢性病患者（{'、'.join(chronic)}），医保个人自付医疗费用合计 "
            f"{_money(out_of_pocket)} 元，达到慢性病自付标准 {_money(t.chronic_out_of_pocket_medical)} 元"
        )
    # The medical-insurance alert type itself means "large"; without an amount the
    # department's own judgement stands.
    evidence += [
        f"{describe_signal(s)}（未提供金额，按医保部门判定的大额自付计）"
        for s in bills
        if s.amount is None
    ]
    return _reason(policy, "RF-14", evidence)


def rf15_disability(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-15: a disabled member."""
    evidence = [
        f"{_who(m)}持 {m.disability_grade} 级残疾人证"
        for m in household.members
        if m.disability_grade is not None
    ]
    evidence += _signal_evidence(_alerts_for(signals, "RF-15") + _declared_for(signals, "RF-15"))
    return _reason(policy, "RF-15", evidence)


def rf16_education_costs(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-16: several children at school, or unaided college students."""
    t = policy.thresholds
    evidence: list[str] = []
    college = [m for m in household.members if m.schooling in _COLLEGE]
    unaided = [m for m in college if not m.student_aided]
    if len(unaided) >= t.college_students_min:
        evidence.append(
            f"家中有 {len(unaided)} 名全日制大学（含高职）学生未获学生资助，"
            f"达到 {t.college_students_min} 名的标准"
        )
    aided = len(college) - len(unaided)
    for s in _alerts_for(signals, "RF-16"):
        if s.count is not None and s.count - aided >= t.college_students_min:
            evidence.append(
                f"{describe_signal(s)}：在读 {s.count} 人，其中已知获资助 {aided} 人，"
                f"未获资助达到 {t.college_students_min} 名的标准"
            )
    at_school = [m for m in household.members if m.schooling in _AT_SCHOOL]
    if len(at_school) >= t.children_in_school_min:
        evidence.append(f"家中有 {len(at_school)} 个孩子在上学（多子女上学）")
    evidence += _signal_evidence(_declared_for(signals, "RF-16"))
    return _reason(policy, "RF-16", evidence)


def rf17_dropout_risk(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-17: a school-age child at risk of dropping out."""
    evidence = [f"{_who(m)}有失学辍学风险" for m in household.members if m.dropout_risk]
    evidence += _signal_evidence(_alerts_for(signals, "RF-17"))
    return _reason(policy, "RF-17", evidence)


def rf18_mud_brick_house(
    household: HouseholdFacts, _signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-18: the only house is mud-brick."""
    return _reason(
        policy, "RF-18", ["唯一住房是土坯房"] if household.housing.mud_brick_only else []
    )


def rf19_unsafe_house(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-19: the only house is unsafe."""
    min_grade = policy.thresholds.unsafe_house_min_grade
    evidence: list[str] = []
    if household.housing.unsafe:
        evidence.append("唯一住房存在安全隐患（危房）")
    if household.housing.disaster_damaged:
        evidence.append("住房因灾受损")
    for s in _alerts_for(signals, "RF-19"):
        if s.alert_type != "housing.unsafe_house_appraisal":
            evidence.append(describe_signal(s))
        elif s.grade is None:
            evidence.append(f"{describe_signal(s)}（未提供等级，按危房计）")
        elif s.grade >= min_grade:
            evidence.append(
                f"{describe_signal(s)}：鉴定为{_HOUSE_GRADE.get(s.grade, str(s.grade))}级，"
                f"属危房（{'、'.join(_HOUSE_GRADE[g] for g in range(min_grade, 5))}级）"
            )
    evidence += _signal_evidence(_declared_for(signals, "RF-19"))
    return _reason(policy, "RF-19", evidence)


def rf20_hazard_zone(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-20: living at or near a geological-hazard point."""
    evidence = ["居住在地质灾害隐患点（附近）"] if household.hazard_zone else []
    evidence += _signal_evidence(_alerts_for(signals, "RF-20"))
    return _reason(policy, "RF-20", evidence)


def rf21_unsafe_water(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-21: drinking water unsafe."""
    evidence = ["饮水不安全（水质、水量或供水设施不达标）"] if household.water_unsafe else []
    evidence += _signal_evidence(_alerts_for(signals, "RF-21") + _declared_for(signals, "RF-21"))
    return _reason(policy, "RF-21", evidence)


def rf22_disaster(
    _household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-22: a natural disaster hit the household."""
    minimum = policy.thresholds.disaster_loss_min_amount
    evidence: list[str] = []
    for s in _alerts_for(signals, "RF-22"):
        if s.alert_type != "emergency.disaster_loss" or s.amount is None:
            evidence.append(describe_signal(s))
        elif s.amount >= minimum:
            evidence.append(f"{describe_signal(s)}，达到灾害损失标准 {_money(minimum)} 元")
    evidence += _signal_evidence(_declared_for(signals, "RF-22"))
    return _reason(policy, "RF-22", evidence)


def rf23_accident(
    _household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-23: an accident or accidental injury."""
    evidence = _signal_evidence(_alerts_for(signals, "RF-23") + _declared_for(signals, "RF-23"))
    return _reason(policy, "RF-23", evidence)


def rf24_sudden_change(
    _household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-24: a sudden major change in the family (a member's death)."""
    return _reason(policy, "RF-24", _signal_evidence(_alerts_for(signals, "RF-24")))


def rf26_skipped_generation(
    household: HouseholdFacts, _signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-26: grandparents raise children whose parents are away."""
    adult = policy.thresholds.adult_age

    def present_adults(generation: int) -> list[MemberFacts]:
        return [
            m
            for m in household.members
            if _GENERATION.get(m.relation) == generation and m.age >= adult and not m.migrant_worker
        ]

    minors = [m for m in household.members if m.age < adult and m.relation in _GENERATION]
    raised = [
        m
        for m in minors
        if not present_adults(_GENERATION[m.relation] + 1)
        and present_adults(_GENERATION[m.relation] + 2)
    ]
    if not raised:
        return None
    return _reason(
        policy,
        "RF-26",
        [
            f"{len(raised)} 名未成年人（{'、'.join(_who(m) for m in raised)}）由祖辈抚养，"
            "父母一代外出务工或不在户"
        ],
    )


def rf27_special_group(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-27: a special-difficulty group."""
    evidence = [
        f"民政标注为{_LABEL_ZH.get(label, label)}"
        for label in policy.special_group_labels
        if label in household.labels
    ]
    supporters = _capable_supporters(household, policy)
    if not supporters:
        if policy.dibao_label in household.labels:
            evidence.append("低保户，家中无具备劳动能力的赡养或扶养人")
        evidence += [
            f"{_who(m)}为 {m.disability_grade} 级重度残疾，家中无具备劳动能力的扶养人"
            for m in household.members
            if m.disability_grade is not None
            and m.disability_grade <= policy.thresholds.severe_disability_max_grade
        ]
    evidence += _signal_evidence(_alerts_for(signals, "RF-27"))
    return _reason(policy, "RF-27", evidence)


def rf28_elderly_without_pension(
    household: HouseholdFacts, _signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-28: an elderly member without basic pension."""
    age = policy.thresholds.elderly_age
    evidence = [
        f"{_who(m)}已满 {age} 周岁，未领取基本养老保险待遇"
        for m in household.members
        if m.age >= age and not m.receives_basic_pension
    ]
    return _reason(policy, "RF-28", evidence)


def rf29_negative_list_low_achievement(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, as_of: date
) -> Reason | None:
    """RF-29: a negative-list anomaly while 两不愁三保障 is poorly met."""
    flags = review_flags(household, signals)
    if not flags:
        return None
    shortfalls = [
        FACTOR_TITLES[code][0]
        for code, factor in _SHORTFALL_FACTORS
        if factor(household, signals, policy, as_of) is not None
    ]
    if not shortfalls:
        return None
    return _reason(
        policy,
        "RF-29",
        [
            f"存在负面清单个别现象（{'、'.join(f.title_zh for f in flags)}），"
            f"但“两不愁三保障”实现程度不高：{'、'.join(shortfalls)}；负面清单不作为排除依据"
        ],
    )


def rf30_basic_living(
    _household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-30: basic living (food, clothing) not guaranteed."""
    return _reason(policy, "RF-30", _signal_evidence(_alerts_for(signals, "RF-30")))


def rf31_not_medically_insured(
    household: HouseholdFacts, _signals: Sequence[Signal], policy: ScoringPolicy, _as_of: date
) -> Reason | None:
    """RF-31: a member not enrolled in basic medical insurance."""
    missing = [m for m in household.members if not m.medical_insured]
    if not missing:
        return None
    return _reason(
        policy,
        "RF-31",
        [f"{len(missing)} 名成员未参加基本医疗保险（{'、'.join(_who(m) for m in missing)}）"],
    )


Factor = Callable[[HouseholdFacts, Sequence[Signal], ScoringPolicy, date], Reason | None]

FACTORS: Final[Mapping[str, Factor]] = MappingProxyType(
    {
        "RF-01": rf01_income_below_line,
        "RF-02": rf02_near_line_rigid_spending,
        "RF-03": rf03_sharp_income_fall,
        "RF-04": rf04_large_rigid_expenditure,
        "RF-05": rf05_transfer_income_share,
        "RF-06": rf06_negative_income_growth,
        "RF-07": rf07_business_loss,
        "RF-08": rf08_single_weak_labourer,
        "RF-09": rf09_labour_without_coverage,
        "RF-10": rf10_unstable_employment,
        "RF-11": rf11_main_labourer_lost_capacity,
        "RF-12": rf12_returned_migrant,
        "RF-13": rf13_weak_labour_without_work,
        "RF-14": rf14_serious_illness,
        "RF-15": rf15_disability,
        "RF-16": rf16_education_costs,
        "RF-17": rf17_dropout_risk,
        "RF-18": rf18_mud_brick_house,
        "RF-19": rf19_unsafe_house,
        "RF-20": rf20_hazard_zone,
        "RF-21": rf21_unsafe_water,
        "RF-22": rf22_disaster,
        "RF-23": rf23_accident,
        "RF-24": rf24_sudden_change,
        "RF-26": rf26_skipped_generation,
        "RF-27": rf27_special_group,
        "RF-28": rf28_elderly_without_pension,
        "RF-29": rf29_negative_list_low_achievement,
        "RF-30": rf30_basic_living,
        "RF-31": rf31_not_medically_insured,
    }
)

# The 两不愁三保障 + water dimensions RF-29 looks at (domain §3.5): food and clothing
# (RF-30), compulsory education (RF-17), basic medical care (RF-31), housing (RF-18, RF-19)
# and drinking water (RF-21).
_SHORTFALL_FACTORS: Final[tuple[tuple[str, Factor], ...]] = tuple(
    (code, FACTORS[code]) for code in ("RF-17", "RF-18", "RF-19", "RF-21", "RF-30", "RF-31")
)


# ------------------------------------------------------------------ review flags


def review_flags(household: HouseholdFacts, signals: Sequence[Signal]) -> tuple[Reason, ...]:
    """Return the negative-list hits as review prompts (contribution 0, never an exclusion)."""
    found: dict[str, list[str]] = {}
    for attribute, code, text in _NEGATIVE_LIST_FACTS:
        if getattr(household.negative_list, attribute):
            found.setdefault(code, []).append(f"入户信息：{text}")
    for s in signals:
        rule = ALERT_RULES.get(s.alert_type or "") if s.channel == "alert" else None
        if rule is not None and rule.review is not None:
            found.setdefault(rule.review, []).append(describe_signal(s))
    flags = []
    for code in sorted(found):
        title_zh, title_en = NEGATIVE_LIST_TITLES[code]
        evidence = "；".join(found[code]) + "。负面清单仅提示复核，不作为排除依据"
        flags.append(Reason(code, title_zh, title_en, evidence, 0, "review"))
    return tuple(flags)


# ------------------------------------------------------------------ categories


@dataclass(frozen=True, slots=True)
class ShockSeverity:
    """How hard a shock hit, against the previous year's income (shock rule ratios)."""

    rigid_expenditure: Decimal
    previous_year_income: Decimal | None
    rigid_ratio: Decimal | None  # rigid spending / previous year's income
    income_fall: Decimal | None  # (previous - current) / previous
    severe: bool


def assess_severity(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, as_of: date
) -> ShockSeverity:
    """Judge whether rigid spending or an income fall reaches the shock rule's ratios."""
    rule = policy.shock_rule
    rigid, _ = rigid_expenditure(signals)
    previous = household.previous_year_income
    ratio: Decimal | None = None
    rigid_severe = False
    if previous is not None and rigid > 0:
        if previous <= 0:
            rigid_severe = True
        else:
            ratio = rigid / previous
            rigid_severe = ratio >= rule.rigid_expenditure_ratio
    fall = _income_fall(household, policy, as_of)
    fall_ratio = fall[2] if fall is not None else None
    fall_severe = fall_ratio is not None and fall_ratio >= rule.income_fall_ratio
    return ShockSeverity(rigid, previous, ratio, fall_ratio, rigid_severe or fall_severe)


def _has_cause(rule: CategoryRule, fired: frozenset[str], severity: ShockSeverity) -> bool:
    if any(code in fired for code in rule.direct_causes):
        return True
    return severity.severe and any(code in fired for code in rule.severity_causes)


def _below_line(per_capita: Decimal | None, policy: ScoringPolicy) -> bool:
    return per_capita is not None and per_capita < policy.income_line


def is_unstable_escaped(
    household: HouseholdFacts,
    per_capita: Decimal | None,
    fired: frozenset[str],
    severity: ShockSeverity,
    policy: ScoringPolicy,
) -> bool:
    """脱贫不稳定户: 脱贫户, income below the line, and one of its listed risk causes."""
    return (
        policy.escaped_label in household.labels
        and _below_line(per_capita, policy)
        and _has_cause(policy.categories.unstable_escaped, fired, severity)
    )


def is_marginal(
    household: HouseholdFacts,
    per_capita: Decimal | None,
    fired: frozenset[str],
    severity: ShockSeverity,
    policy: ScoringPolicy,
) -> bool:
    """边缘易致贫户: not 脱贫户, income below the line, and one of its listed risk causes."""
    return (
        policy.escaped_label not in household.labels
        and _below_line(per_capita, policy)
        and _has_cause(policy.categories.marginal, fired, severity)
    )


def is_sudden_difficulty(
    fired: frozenset[str], severity: ShockSeverity, policy: ScoringPolicy
) -> bool:
    """突发严重困难户: a shock plus severe rigid spending or a sharp income fall; no income line."""
    return severity.severe and any(code in fired for code in policy.shock_rule.shock_factors)


def categorize(
    household: HouseholdFacts,
    per_capita: Decimal | None,
    fired: frozenset[str],
    severity: ShockSeverity,
    policy: ScoringPolicy,
) -> tuple[Category, ...]:
    """Return every monitoring category the household meets (several may hold)."""
    found: list[Category] = []
    if is_unstable_escaped(household, per_capita, fired, severity, policy):
        found.append("unstable_escaped")
    if is_marginal(household, per_capita, fired, severity, policy):
        found.append("marginal")
    if is_sudden_difficulty(fired, severity, policy):
        found.append("sudden_difficulty")
    return tuple(found)


# ------------------------------------------------------------------ engine


def _notes(
    household: HouseholdFacts,
    signals: Sequence[Signal],
    policy: ScoringPolicy,
    as_of: date,
    fired: frozenset[str],
) -> list[Reason]:
    """Zero-weight notes for what could not be judged and must be verified on the visit."""
    notes: list[Reason] = []
    if "RF-01" not in fired and per_capita_income(household, policy, as_of) is None:
        start, end = income_window(as_of, policy.income_window_months)
        notes.append(
            Reason(
                "RF-01",
                "收入情况未知，需入户核查",
                "Income unknown: verify at the household visit",
                f"{_month_span(start, end)}无家庭收入记录（或无成员信息），人均收入未知；"
                "未判定“脱贫不稳定户”“边缘易致贫户”，须在入户核查时核实收入",
                0,
                "note",
            )
        )
    rigid, _ = rigid_expenditure(signals)
    if policy.enables("RF-04") and rigid > 0 and household.previous_year_income is None:
        notes.append(
            Reason(
                "RF-04",
                "上年度收入未知，刚性支出待核实",
                "Previous year's income unknown: verify rigid spending",
                f"刚性支出合计 {_money(rigid)} 元，但上年度家庭收入未知，无法判断是否"
                "“明显超过上年度收入”（突发严重困难户），须在入户核查时核实",
                0,
                "note",
            )
        )
    return notes


def score(
    household: HouseholdFacts, signals: Sequence[Signal], policy: ScoringPolicy, *, as_of: date
) -> Assessment:
    """Score a household's risk on as_of under a policy, with reasons and categories."""
    evidence = episode_signals(signals, policy, as_of)
    reasons: list[Reason] = []
    for code, factor in FACTORS.items():
        # A factor the policy does not list is switched off in that region.
        if not policy.enables(code):
            continue
        found = factor(household, evidence, policy, as_of)
        if found is not None:
            reasons.append(found)
    fired = frozenset(r.code for r in reasons)
    reasons.sort(key=lambda r: (-r.contribution, r.code))
    reasons += _notes(household, evidence, policy, as_of, fired)

    uncapped = sum(r.contribution for r in reasons)
    capped = min(100, uncapped)
    level = policy.level_cutoffs.level_of(capped)
    per_capita = per_capita_income(household, policy, as_of)
    severity = assess_severity(household, evidence, policy, as_of)
    # 应纳尽纳: a household's own declaration or a cadre's report is always verified, whatever
    # its age or score; the caller decides which signals belong to the episode.
    must_verify = any(s.channel in ("declaration", "report") for s in signals)
    opens_case = must_verify or LEVEL_RANK[level] >= LEVEL_RANK[policy.case_opening_level]
    return Assessment(
        score=capped,
        uncapped_score=uncapped,
        level=level,
        categories=categorize(household, per_capita, fired, severity, policy),
        reasons=tuple(reasons),
        review_flags=review_flags(household, evidence),
        must_verify=must_verify,
        opens_case=opens_case,
        policy_id=policy.policy_id,
        policy_version=policy.version,
        per_capita_income=per_capita,
    )

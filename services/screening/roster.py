"""The county roster (农户台账) as XLSX or CSV: its columns, reading, validation and writing.

One row per household member; household columns repeat on every row of the household (or sit
on one of its rows only, as in sheets with merged cells). docs/roster.md documents every
column. Nothing here touches the database: the service reads a file into RosterHousehold
records (or row errors) and writes registry rows into XLSX or CSV.

Resident ID numbers live in clear text only inside MemberRow.id_number, in memory, long enough
to be encrypted; errors, fingerprints and reports carry the keyed hash or the mask.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Final, Literal

import openpyxl
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from stdnum.cn import ric

from services.screening import xlsx
from services.screening.xlsx import XlsxError
from shared.resident_id import (
    MAX_AGE_YEARS,
    RESIDENCE_PERMIT_PREFIXES,
    InvalidResidentId,
    mask_resident_id,
    normalize_resident_id,
    validate_resident_id,
)

Format = Literal["xlsx", "csv"]
Level = Literal["household", "member"]
IncomeLayout = Literal["annual", "monthly", "none"]

XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE: Final = "text/csv; charset=utf-8"
SHEET_NAME: Final = "农户台账"
HELP_SHEET_NAME: Final = "填写说明"
# Bumped whenever the fingerprint's content changes, so that every household is rewritten
# once instead of being compared with a fingerprint of another shape.
FINGERPRINT_VERSION: Final = "roster-v1"
COMPONENTS: Final = ("wages", "operating", "property", "transfer")
CENT: Final = Decimal("0.01")
MAX_AMOUNT: Final = Decimal("10000000000")
EXCEL_EPOCH: Final = date(1899, 12, 30)
# The header row is searched for near the top: county sheets often start with a title line.
HEADER_SEARCH_ROWS: Final = 20
# Drop-down lists in the template cover this many data rows.
TEMPLATE_ROWS: Final = 5000


class RosterFileError(ValueError):
    """The file as a whole cannot be read as a roster (no rows are imported)."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


class CellError(ValueError):
    """One cell's value cannot be accepted."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


# ------------------------------------------------------------------------ vocabularies

# Every accepted spelling → the registry's code. The first spelling of each code is the one
# exports and the template use; the others are the wordings counties and the national
# system's exports use (之子/之女 …), plus the English codes for machine-made files.
RELATIONS: Final[dict[str, tuple[str, ...]]] = {
    "head": ("户主", "本人", "self"),
    "spouse": ("配偶", "妻", "夫", "妻子", "丈夫"),
    "child": ("子女", "之子", "之女", "儿子", "女儿", "子", "女", "养子", "养女", "继子", "继女"),
    "child_in_law": ("子女配偶", "之儿媳", "之女婿", "儿媳", "女婿"),
    "grandchild": (
        "孙子女",
        "之孙子",
        "之孙女",
        "之外孙子",
        "之外孙女",
        "孙子",
        "孙女",
        "外孙子",
        "外孙女",
    ),
    "parent": ("父母", "之父", "之母", "父亲", "母亲"),
    "parent_in_law": (
        "岳父母公婆",
        "之岳父",
        "之岳母",
        "之公公",
        "之婆婆",
        "岳父",
        "岳母",
        "公公",
        "婆婆",
    ),
    "grandparent": (
        "祖父母",
        "之祖父",
        "之祖母",
        "之外祖父",
        "之外祖母",
        "祖父",
        "祖母",
        "外祖父",
        "外祖母",
    ),
    "sibling": ("兄弟姐妹", "之兄弟姐妹", "兄", "弟", "姐", "妹", "哥哥", "弟弟", "姐姐", "妹妹"),
    "other": ("其他",),
}
LABOUR: Final[dict[str, tuple[str, ...]]] = {
    "full": ("普通劳动力", "技能劳动力", "健全劳动力", "全劳动力"),
    # The national system offers one option for both, 弱劳动力或半劳动力; it counts as weak.
    "weak": ("弱劳动力", "弱劳动力或半劳动力"),
    "half": ("半劳动力",),
    # 无劳动力 is how the national system marks children, students and the very old.
    "none": ("无劳动力", "丧失劳动力", "无劳动能力", "丧失劳动能力"),
}
HEALTH: Final[dict[str, tuple[str, ...]]] = {
    "healthy": ("健康", "残疾"),  # disability is its own column (残疾等级)
    "chronic": ("长期慢性病", "慢性病"),
    "serious_illness": ("患有大病", "大病", "重病", "重大疾病"),
}
SCHOOLING: Final[dict[str, tuple[str, ...]]] = {
    "none": ("非在校生", "不在校", "未上学", "已毕业", "失学", "辍学"),
    "preschool": ("学前教育", "幼儿园", "学前"),
    "compulsory": ("义务教育", "小学", "初中", "九年义务教育"),
    "high_school": ("高中", "普通高中", "中职", "中专", "职业高中", "技校", "高中及中职"),
    "vocational_college": ("大专", "高职", "高职高专", "专科"),
    "college": ("本科", "大学", "本科及以上", "研究生"),
}
LABELS: Final[dict[str, tuple[str, ...]]] = {
    "tuopin": ("脱贫户", "脱贫"),
    "monitored": ("监测户", "监测对象", "防返贫监测户"),
    "unstable_escaped": ("脱贫不稳定户", "脱贫不稳定"),
    "marginal": ("边缘易致贫户", "边缘户", "边缘易致贫", "低收入边缘户"),
    "sudden_difficulty": ("突发严重困难户", "突发严重困难"),
    "dibao": ("低保户", "低保", "低保对象"),
    "tekun": ("特困户", "特困", "特困人员", "特困供养"),
    "orphan": ("孤儿",),
    "de_facto_unsupported_child": ("事实无人抚养儿童",),
    "seriously_ill_child": ("重病儿童",),
    "abused_child": ("受虐待儿童",),
    "left_behind_elderly": ("留守老年人", "留守老人"),
    "left_behind_child": ("留守儿童",),
    "left_behind_woman": ("留守妇女",),
}
# Household types that carry no label (一般农户 is every household not otherwise labelled).
NO_LABEL: Final = frozenset({"一般农户", "一般户", "无", "普通农户"})
PENSION_RECEIVING: Final = frozenset(
    {"领取待遇", "已领取", "领取", "领取养老金", "已领取养老金", "是"}
)
PENSION_NOT_RECEIVING: Final = frozenset(
    {"未领取", "已参保", "参保", "已参保未领取", "缴费", "未参保", "否", "无"}
)
MEDICAL_INSURED: Final = frozenset(
    {"已参保", "参保", "是", "城乡居民医保", "居民医保", "职工医保", "新农合"}
)
MEDICAL_NOT_INSURED: Final = frozenset({"未参保", "否", "无"})
MIGRANT_NOT: Final = frozenset({"未务工", "否", "无", "务农", "在家务农", "不务工"})
TRUE_WORDS: Final = frozenset({"是", "有", "y", "yes", "true", "1", "√", "✓"})
FALSE_WORDS: Final = frozenset({"否", "无", "没有", "n", "no", "false", "0", "×", "✗"})
GRADES: Final[dict[str, int]] = {
    **{f"{zh}{suffix}": n for n, zh in enumerate("一二三四", 1) for suffix in ("", "级", "级残疾")},
    **{f"{n}{suffix}": n for n in range(1, 5) for suffix in ("", "级", "级残疾")},
}
GRADE_NONE: Final = frozenset({"无", "否", "非残疾"})
COMPONENT_HEADERS: Final[dict[str, tuple[str, ...]]] = {
    "wages": ("工资性收入",),
    "operating": ("生产经营性收入", "经营性收入", "家庭经营性收入"),
    "property": ("财产性收入",),
    "transfer": ("转移性收入",),
}


def _index(vocab: dict[str, tuple[str, ...]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for code, words in vocab.items():
        out[code] = code
        for word in words:
            out[_fold(word)] = code
    return out


def _fold(text: str) -> str:
    """Fold full-width forms and drop every space, for comparing words and headers."""
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


_RELATION_INDEX: Final = _index(RELATIONS)
_LABOUR_INDEX: Final = _index(LABOUR)
_HEALTH_INDEX: Final = _index(HEALTH)
_SCHOOLING_INDEX: Final = _index(SCHOOLING)
_LABEL_INDEX: Final = _index(LABELS)
_COMPONENT_INDEX: Final = _index(COMPONENT_HEADERS)


def display(vocab: dict[str, tuple[str, ...]], code: str | None) -> str:
    """Return the Chinese word a file shows for a code ('' for None; unknown codes as is)."""
    if code is None:
        return ""
    words = vocab.get(code)
    return words[0] if words else code


# ----------------------------------------------------------------------------- columns


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the roster."""

    key: str
    header: str
    level: Level
    required: bool
    help_zh: str
    help_en: str
    example: str = ""
    choices: tuple[str, ...] = ()


_YES_NO: Final = ("是", "否")

COLUMNS: Final[tuple[Column, ...]] = (
    Column(
        "roster_no",
        "户编号",
        "household",
        True,
        "台账中的户编号，全县唯一；同一户的各成员行填写相同户编号",
        "household number, unique in the county; the same on every member row",
        "JC-DG-0001",
    ),
    Column(
        "village_code",
        "村代码",
        "household",
        True,
        "12位统计用区划代码（村/社区）",
        "12-digit statistical code of the village",
        "141122100201",
    ),
    Column("address", "地址", "household", False, "住址（村组门牌）", "address", "东关村三组12号"),
    Column(
        "labels",
        "户类型/标签",
        "household",
        False,
        "可填多个，用顿号或分号分隔，如：脱贫户、监测户、低保户",
        "several allowed, separated by 、 or ;",
        "脱贫户、低保户",
        tuple(words[0] for words in LABELS.values()),
    ),
    Column("name", "姓名", "member", True, "成员姓名", "member's name", "王建国"),
    Column(
        "id_number",
        "身份证号",
        "member",
        True,
        "18位公民身份号码，请将本列设为文本格式，避免Excel改为科学计数法",
        "18-character resident ID; keep the column as text",
        "141122196803021239",
    ),
    Column(
        "relation",
        "与户主关系",
        "member",
        True,
        "每户有且只有一位户主",
        "relation to the head; exactly one 户主 per household",
        "户主",
        tuple(words[0] for words in RELATIONS.values()),
    ),
    Column(
        "labour_capacity",
        "劳动能力",
        "member",
        False,
        "普通劳动力、技能劳动力、弱劳动力、半劳动力、丧失劳动力、无劳动力（未成年、在校生）",
        "labour capacity",
        "普通劳动力",
        ("普通劳动力", "技能劳动力", "弱劳动力", "半劳动力", "丧失劳动力", "无劳动力"),
    ),
    Column(
        "is_main_labourer",
        "是否主要劳动力",
        "member",
        False,
        "是/否；全户都未填时，户主视为主要劳动力（丧失劳动力者除外）",
        "yes/no; when blank for the whole household, the head is",
        "是",
        _YES_NO,
    ),
    Column(
        "disability_grade",
        "残疾等级",
        "member",
        False,
        "一级至四级；无残疾留空或填“无”",
        "disability grade 1-4, blank if none",
        "",
        ("无", "一级", "二级", "三级", "四级"),
    ),
    Column(
        "health",
        "健康状况",
        "member",
        False,
        "健康、长期慢性病、患有大病",
        "health",
        "健康",
        ("健康", "长期慢性病", "患有大病"),
    ),
    Column(
        "schooling",
        "在校情况",
        "member",
        False,
        "非在校生、学前教育、义务教育、高中（含中职）、大专（高职）、本科",
        "schooling",
        "非在校生",
        ("非在校生", "学前教育", "义务教育", "高中", "大专", "本科"),
    ),
    Column(
        "student_aided",
        "是否享受学生资助",
        "member",
        False,
        "在校生是否享受资助（雨露计划、助学金等）",
        "whether a student receives aid",
        "否",
        _YES_NO,
    ),
    Column(
        "dropout_risk",
        "是否有辍学风险",
        "member",
        False,
        "义务教育阶段辍学或有辍学风险",
        "dropout or dropout risk",
        "否",
        _YES_NO,
    ),
    Column(
        "migrant_worker",
        "务工情况",
        "member",
        False,
        "省外务工、省内县外务工、县内务工、未务工",
        "migrant work",
        "未务工",
        ("省外务工", "省内县外务工", "县内务工", "未务工"),
    ),
    Column(
        "receives_basic_pension",
        "养老保险",
        "member",
        False,
        "领取待遇、已参保（未领取）、未参保",
        "basic pension: receiving / contributing / not insured",
        "未参保",
        ("领取待遇", "已参保", "未参保"),
    ),
    Column(
        "medical_insured",
        "医保参保",
        "member",
        False,
        "已参保、未参保；留空视为已参保",
        "basic medical insurance; blank counts as insured",
        "已参保",
        ("已参保", "未参保"),
    ),
    Column(
        "income_end_month",
        "收入截止月份",
        "household",
        False,
        "年收入统计期的最后一个月（YYYY-MM），填写年收入时必填（或导入时统一指定）",
        "last month of the 12-month income period (YYYY-MM)",
        "2026-10",
    ),
    Column(
        "wages",
        "工资性收入",
        "household",
        False,
        "全户近12个月工资性收入（元）",
        "household wages of the 12 months (yuan)",
        "24000",
    ),
    Column(
        "operating",
        "生产经营性收入",
        "household",
        False,
        "全户近12个月生产经营性净收入（元），亏损可填负数",
        "household net operating income (yuan), may be negative",
        "3000",
    ),
    Column(
        "property",
        "财产性收入",
        "household",
        False,
        "全户近12个月财产性收入（元）",
        "household property income (yuan)",
        "0",
    ),
    Column(
        "transfer",
        "转移性收入",
        "household",
        False,
        "全户近12个月转移性收入（元），含低保金、养老金、各类补贴",
        "household transfer income (yuan)",
        "3600",
    ),
    Column(
        "previous_year_income",
        "上年度家庭收入",
        "household",
        False,
        "收入统计期之前12个月的全户总收入（元），用于判断收入骤减和刚性支出",
        "household income of the 12 months before the period (yuan)",
        "32000",
    ),
    Column(
        "mud_brick_only",
        "唯一住房为土坯房",
        "household",
        False,
        "是/否",
        "the only house is mud-brick",
        "否",
        _YES_NO,
    ),
    Column(
        "house_unsafe",
        "住房为危房",
        "household",
        False,
        "是/否（经鉴定为C级或D级危房）",
        "the house is appraised unsafe",
        "否",
        _YES_NO,
    ),
    Column(
        "house_disaster_damaged",
        "住房因灾受损",
        "household",
        False,
        "是/否",
        "the house was damaged by a disaster",
        "否",
        _YES_NO,
    ),
    Column(
        "hazard_zone",
        "居住在地质灾害隐患点",
        "household",
        False,
        "是/否",
        "lives at a geological-hazard point",
        "否",
        _YES_NO,
    ),
    Column(
        "water_unsafe",
        "饮水不安全",
        "household",
        False,
        "是/否",
        "drinking water is unsafe",
        "否",
        _YES_NO,
    ),
    Column(
        "industry_covered",
        "有产业覆盖",
        "household",
        False,
        "是/否；留空表示未知",
        "covered by an industry project; blank = unknown",
        "是",
        _YES_NO,
    ),
    Column(
        "vehicle",
        "有机动车",
        "household",
        False,
        "负面清单：是/否（仅提示复核，不作排除）",
        "negative list: vehicle (review prompt only)",
        "否",
        _YES_NO,
    ),
    Column(
        "business",
        "有经营主体",
        "household",
        False,
        "负面清单：是/否",
        "negative list: registered business",
        "否",
        _YES_NO,
    ),
    Column(
        "public_payroll",
        "有财政供养人员",
        "household",
        False,
        "负面清单：是/否",
        "negative list: public payroll in the family",
        "否",
        _YES_NO,
    ),
    Column(
        "commercial_housing",
        "有商品房",
        "household",
        False,
        "负面清单：是/否",
        "negative list: commercial housing",
        "否",
        _YES_NO,
    ),
    Column(
        "large_deposits",
        "有大额存款",
        "household",
        False,
        "负面清单：是/否",
        "negative list: large deposits",
        "否",
        _YES_NO,
    ),
)
COLUMN_BY_KEY: Final[dict[str, Column]] = {c.key: c for c in COLUMNS}
HEADERS: Final[tuple[str, ...]] = tuple(c.header for c in COLUMNS)
ANNUAL_KEYS: Final = ("income_end_month", *COMPONENTS)
FACT_FLAGS: Final[dict[str, tuple[str, ...]]] = {
    # column key → path inside Household.facts
    "mud_brick_only": ("housing", "mud_brick_only"),
    "house_unsafe": ("housing", "unsafe"),
    "house_disaster_damaged": ("housing", "disaster_damaged"),
    "hazard_zone": ("hazard_zone",),
    "water_unsafe": ("water_unsafe",),
    "industry_covered": ("industry_covered",),
    "vehicle": ("negative_list", "vehicle"),
    "business": ("negative_list", "business"),
    "public_payroll": ("negative_list", "public_payroll"),
    "commercial_housing": ("negative_list", "commercial_housing"),
    "large_deposits": ("negative_list", "large_deposits"),
}
# Header spellings accepted besides the column's own header: other wordings, English keys.
HEADER_ALIASES: Final[dict[str, str]] = {
    "户号": "roster_no",
    "户编码": "roster_no",
    "行政区划代码": "village_code",
    "村(社区)代码": "village_code",
    "家庭住址": "address",
    "住址": "address",
    "户类型": "labels",
    "户标签": "labels",
    "户属性": "labels",
    "证件号码": "id_number",
    "身份证号码": "id_number",
    "公民身份号码": "id_number",
    "与户主关系": "relation",
    "劳动技能": "labour_capacity",
    "残疾类别及等级": "disability_grade",
    "在校生情况": "schooling",
    "务工状况": "migrant_worker",
    "是否参加城乡居民基本养老保险": "receives_basic_pension",
    "养老保险情况": "receives_basic_pension",
    "是否参加基本医疗保险": "medical_insured",
    "医疗保险": "medical_insured",
    "经营性收入": "operating",
    "家庭经营性收入": "operating",
    "上年家庭总收入": "previous_year_income",
}
_HEADER_INDEX: Final[dict[str, str]] = {
    **{_fold(c.header): c.key for c in COLUMNS},
    **{_fold(c.key): c.key for c in COLUMNS},
    **{_fold(k): v for k, v in HEADER_ALIASES.items()},
}
_UNIT_SUFFIX: Final = re.compile(r"\((?:元|元/年|元/月|yuan)\)$")
_MONTHLY_HEADER: Final = re.compile(
    r"^(?P<component>[^\d(\[:]+?)[(\[:]?(?P<year>\d{4})[-/.年](?P<month>\d{1,2})月?[)\]]?(?:\(元\))?$"
)
_MONTH_TEXT: Final = re.compile(r"^(\d{4})(?:[-/.年]?)(\d{1,2})月?$")
_LABEL_SPLIT: Final = re.compile(r"[、;,，；/|]+")
_AMOUNT_NOISE: Final = re.compile(r"[,，￥¥元\s]")


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one row was refused; masked, so it can be stored and shown."""

    row: int
    roster_no: str | None
    name: str | None
    id_masked: str | None
    column: str
    code: str
    message_zh: str
    message_en: str

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form stored with the import and returned by the API."""
        return {
            "row": self.row,
            "roster_no": self.roster_no,
            "name": self.name,
            "id_masked": self.id_masked,
            "column": self.column,
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }


@dataclass(slots=True, kw_only=True)
class MemberRow:
    """One member as the roster gives it, validated."""

    row: int
    person_ref: str
    id_number: str = field(repr=False)
    id_masked: str
    name: str
    relation: str
    birth_date: date
    labour_capacity: str | None = None
    is_main_labourer: bool | None = None  # None: left blank
    disability_grade: int | None = None
    health: str | None = None
    schooling: str | None = None
    student_aided: bool = False
    dropout_risk: bool = False
    migrant_worker: bool = False
    receives_basic_pension: bool = False
    medical_insured: bool = True

    def fingerprint_fields(self) -> list[Any]:
        """Return the member's values that the fingerprint covers."""
        return [
            self.person_ref,
            self.name,
            self.relation,
            self.labour_capacity,
            self.is_main_labourer,
            self.disability_grade,
            self.health,
            self.schooling,
            self.student_aided,
            self.dropout_risk,
            self.migrant_worker,
            self.receives_basic_pension,
            self.medical_insured,
        ]


@dataclass(frozen=True, slots=True, order=True)
class IncomeLine:
    """One month's income of one component for the whole household."""

    month: date
    component: str
    amount: Decimal


@dataclass(frozen=True, slots=True, order=True)
class IncomeSpread:
    """An annual total of one component, for the twelve months ending at end_month."""

    component: str
    end_month: date
    amount: Decimal

    def shares(self) -> tuple[Decimal, Decimal]:
        """Return (each of the first eleven months, the last month): they sum to the amount."""
        share = (self.amount / 12).quantize(CENT, rounding=ROUND_DOWN)
        # The cents lost to rounding go to the last month, so the twelve add up exactly.
        return share, self.amount - share * 11

    def lines(self) -> list[IncomeLine]:
        """Return the twelve monthly records."""
        share, last = self.shares()
        months = months_ending(self.end_month, 12)
        return [IncomeLine(m, self.component, share) for m in months[:-1]] + [
            IncomeLine(months[-1], self.component, last)
        ]


@dataclass(slots=True, kw_only=True)
class RosterHousehold:
    """One household of the roster with its members, validated."""

    roster_no: str
    village_code: str
    address: str | None
    labels: tuple[str, ...]
    facts: dict[str, Any]
    previous_year_income: Decimal | None
    # Annual totals (spread over twelve months when written) or monthly amounts, by layout.
    annual: tuple[IncomeSpread, ...] = ()
    monthly: tuple[IncomeLine, ...] = ()
    members: list[MemberRow]

    @property
    def incomes(self) -> tuple[IncomeLine, ...]:
        """Return every monthly record the import writes for this household."""
        return tuple(sorted([*self.monthly, *(line for a in self.annual for line in a.lines())]))

    def fingerprint(self) -> str:
        """Return a digest of everything the import would write for this household."""
        doc = {
            "roster_no": self.roster_no,
            "village_code": self.village_code,
            "address": self.address,
            "labels": sorted(self.labels),
            "facts": self.facts,
            "previous_year_income": _money(self.previous_year_income),
            "annual": [
                [a.component, a.end_month.isoformat(), _money(a.amount)] for a in self.annual
            ],
            "monthly": [[i.month.isoformat(), i.component, _money(i.amount)] for i in self.monthly],
            "members": sorted(m.fingerprint_fields() for m in self.members),
        }
        text = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(f"{FINGERPRINT_VERSION}\n{text}".encode()).hexdigest()


@dataclass(slots=True)
class ParsedRoster:
    """What a file holds: valid households, refused rows, and what was ignored."""

    format: Format
    rows: int = 0
    layout: IncomeLayout = "none"
    households: list[RosterHousehold] = field(default_factory=list)
    rejections: list[RowError] = field(default_factory=list)
    rejected_households: int = 0
    ignored_columns: list[str] = field(default_factory=list)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(CENT))


# ----------------------------------------------------------------------------- cells


def _text(raw: object) -> str:
    """Return a cell as stripped, NFKC-folded text ('' for empty)."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "是" if raw else "否"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        return str(int(raw)) if raw.is_integer() else repr(raw)
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    return unicodedata.normalize("NFKC", str(raw)).strip()


def _word(raw: object) -> str:
    if isinstance(raw, str):
        return _folded(raw)
    return "".join(_text(raw).split()).lower()


@functools.lru_cache(maxsize=8192)
def _folded(text: str) -> str:
    # Rosters repeat a few dozen words (是, 否, 普通劳动力 …) tens of thousands of times.
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


def _blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _choice(raw: object, index: dict[str, str], what_zh: str, what_en: str) -> str | None:
    word = _word(raw)
    if not word:
        return None
    found = index.get(word)
    if found is None:
        raise CellError(
            "unknown_value",
            f"{what_zh}“{_text(raw)}”不在可选值中",
            f"{what_en} {_text(raw)!r} is not one of the accepted values",
        )
    return found


def parse_bool(raw: object, *, default: bool | None) -> bool | None:
    """Read 是/否 (and 有/无, yes/no, 1/0); blank gives the default."""
    word = _word(raw)
    if not word:
        return default
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CellError(
        "not_yes_no",
        f"应填“是”或“否”，而不是“{_text(raw)}”",
        f"expected 是 or 否, not {_text(raw)!r}",
    )


def parse_amount(raw: object, *, allow_negative: bool = False) -> Decimal | None:
    """Read an amount in yuan (commas, ¥ and 元 tolerated), to the cent."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        text = repr(raw) if isinstance(raw, float) else str(raw)
    else:
        text = _AMOUNT_NOISE.sub("", _text(raw))
    if not text:
        return None
    try:
        value = Decimal(text).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        raise CellError(
            "not_amount", f"“{_text(raw)}”不是有效金额", f"{_text(raw)!r} is not an amount"
        ) from None
    if not value.is_finite() or abs(value) >= MAX_AMOUNT:
        raise CellError("not_amount", "金额超出范围", "the amount is out of range")
    if value < 0 and not allow_negative:
        raise CellError("negative_amount", "金额不能为负数", "the amount must not be negative")
    return value


def parse_month(raw: object) -> date | None:
    """Read a month as YYYY-MM, YYYY/MM, YYYYMM, 2026年10月 or a spreadsheet date."""
    if isinstance(raw, datetime):
        return date(raw.year, raw.month, 1)
    if isinstance(raw, date):
        return date(raw.year, raw.month, 1)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _month_of_number(raw)
    text = _word(raw)
    if not text:
        return None
    # A date typed in full (2026-10-31) names its month.
    text = re.sub(r"^(\d{4}[-/.]\d{1,2})[-/.]\d{1,2}$", r"\1", text)
    match = _MONTH_TEXT.fullmatch(text)
    if match is not None and 1 <= int(match.group(2)) <= 12 and int(match.group(1)) >= 1900:
        return date(int(match.group(1)), int(match.group(2)), 1)
    raise CellError(
        "not_month",
        f"“{_text(raw)}”不是有效月份（YYYY-MM）",
        f"{_text(raw)!r} is not a month (YYYY-MM)",
    )


def _month_of_number(value: float) -> date:
    whole = int(value)
    # 202610 typed as a number means October 2026; smaller numbers are Excel date serials
    # (days since 1899-12-30), which is how a date cell arrives without its style.
    if 190001 <= whole <= 999912 and 1 <= whole % 100 <= 12:
        return date(whole // 100, whole % 100, 1)
    if 1 <= whole < 100000:
        day = EXCEL_EPOCH + timedelta(days=whole)
        return date(day.year, day.month, 1)
    raise CellError("not_month", f"“{value}”不是有效月份（YYYY-MM）", f"{value!r} is not a month")


def parse_grade(raw: object) -> int | None:
    """Read a disability grade 一级..四级 (or 1..4); blank or 无 is none."""
    word = _word(raw)
    if not word or word in GRADE_NONE:
        return None
    grade = GRADES.get(word)
    if grade is None:
        raise CellError(
            "unknown_value",
            f"残疾等级应为一级至四级，而不是“{_text(raw)}”",
            f"disability grade must be 1-4, not {_text(raw)!r}",
        )
    return grade


def parse_labels(raw: object) -> tuple[str, ...]:
    """Read the household's labels, several separated by 、 ; , or /."""
    out: list[str] = []
    for part in _LABEL_SPLIT.split(_text(raw)):
        word = _word(part)
        if not word or word in NO_LABEL:
            continue
        code = _LABEL_INDEX.get(word)
        if code is None:
            raise CellError(
                "unknown_label",
                f"户类型/标签“{part.strip()}”无法识别",
                f"household label {part.strip()!r} is not known",
            )
        if code not in out:
            out.append(code)
    return tuple(sorted(out))


def parse_migrant(raw: object) -> bool:
    """Read 务工情况: any kind of 务工 counts as migrant work (转移就业)."""
    word = _word(raw)
    if not word or word in MIGRANT_NOT:
        return False
    if word in TRUE_WORDS or "务工" in word or "外出" in word or "就业" in word:
        return True
    raise CellError(
        "unknown_value",
        f"务工情况“{_text(raw)}”无法识别",
        f"migrant work {_text(raw)!r} is not known",
    )


def parse_pension(raw: object) -> bool:
    """Read 养老保险: only 领取待遇 (receiving) counts as receiving a basic pension."""
    word = _word(raw)
    if not word or word in PENSION_NOT_RECEIVING:
        return False
    if word in PENSION_RECEIVING:
        return True
    raise CellError(
        "unknown_value",
        f"养老保险“{_text(raw)}”无法识别",
        f"pension value {_text(raw)!r} is not known",
    )


def parse_medical(raw: object) -> bool:
    """Read 医保参保; blank counts as insured, so RF-31 never fires on a missing cell."""
    word = _word(raw)
    if not word or word in MEDICAL_INSURED:
        return True
    if word in MEDICAL_NOT_INSURED:
        return False
    raise CellError(
        "unknown_value",
        f"医保参保“{_text(raw)}”无法识别",
        f"medical insurance value {_text(raw)!r} is not known",
    )


class ResidentIdValidator:
    """validate_resident_id, remembering per region code and birth year what stdnum said.

    The region check (python-stdnum's table of codes, plus codes introduced after a birth
    year) costs more than everything else in reading a roster. Its outcome depends only on
    the first six digits and the birth year once the shape, check character and birth date
    are right, so those are checked here for every number and the full validation runs
    once per region and year. Any number failing the quick checks goes through the full
    validation, which raises with the proper code.
    """

    def __init__(self, today: date) -> None:
        self.today = today
        self._regions_ok: set[tuple[str, int]] = set()

    def __call__(self, raw: str) -> str:
        number = normalize_resident_id(raw)
        birth = self._quick(number)
        if birth is not None and (number[:6], birth.year) in self._regions_ok:
            return number
        valid = validate_resident_id(raw, today=self.today)
        if birth is not None:
            self._regions_ok.add((number[:6], birth.year))
        return valid

    def _quick(self, number: str) -> date | None:
        if (
            len(number) != 18
            or not number[:17].isascii()
            or not number[:17].isdigit()
            or not (number[17] == "X" or "0" <= number[17] <= "9")
            or number.startswith(RESIDENCE_PERMIT_PREFIXES)
            or number[17] != ric.calc_check_digit(number)
        ):
            return None
        try:
            birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        except ValueError:
            return None
        age = (
            self.today.year
            - birth.year
            - ((self.today.month, self.today.day) < (birth.month, birth.day))
        )
        if birth > self.today or age > MAX_AGE_YEARS:
            return None
        return birth


def parse_resident_id(raw: object, *, validate: Callable[[str], str]) -> str:
    """Validate a resident ID cell; numbers typed by Excel get their own explanation."""
    as_number = isinstance(raw, int | float) and not isinstance(raw, bool)
    text = _text(raw)
    if not text:
        raise CellError("required", "身份证号不能为空", "the resident ID is required")
    if "*" in text:
        raise CellError(
            "masked_id",
            "身份证号已脱敏，无法导入；请使用原始台账或管理员导出的明文文件",
            "the resident ID is masked; import the original roster or an unmasked admin export",
        )
    try:
        return validate(text)
    except InvalidResidentId as exc:
        if as_number:
            raise CellError(
                "id_stored_as_number",
                "身份证号被Excel存成了数字，末几位可能已丢失；请将该列设为文本格式后重新填写",
                "the resident ID was stored as a number and may have lost digits; "
                "format the column as text and enter it again",
            ) from None
        raise CellError(f"resident_id.{exc.code}", exc.message_zh, exc.message_en) from None


# ------------------------------------------------------------------------ reading files


def detect_format(
    head: bytes, *, content_type: str | None = None, name: str | None = None
) -> Format:
    """Tell XLSX from CSV by the file's first bytes (a ZIP), else by its type or name."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if content_type and "spreadsheetml" in content_type:
        return "xlsx"
    if name and name.lower().endswith(".xlsx"):
        return "xlsx"
    return "csv"


def _fast_xlsx_rows(path: Path) -> Generator[tuple[int, Sequence[object]], None, None]:
    current: str | None = None
    try:
        for sheet, number, values in xlsx.read_rows(path, prefer_sheet=SHEET_NAME):
            if current is not None and sheet != current:
                yield -1, ()  # end of one sheet
            current = sheet
            yield number, values
    except XlsxError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise XlsxError("the package cannot be read") from None
    yield -1, ()


def _openpyxl_rows(path: Path) -> Generator[tuple[int, Sequence[object]], None, None]:
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception:
        raise RosterFileError(
            "unreadable_xlsx", "无法读取该XLSX文件", "the file cannot be read as XLSX"
        ) from None
    try:
        sheets = list(workbook.worksheets)
        # The roster sheet by its template name first; otherwise the sheets in order, the
        # caller stops at the first one with a header row.
        sheets.sort(key=lambda ws: ws.title != SHEET_NAME)
        for sheet in sheets:
            yield from enumerate(sheet.iter_rows(values_only=True), start=1)
            yield -1, ()  # end of one sheet
    finally:
        workbook.close()


def _csv_encoding(path: Path) -> str:
    """Return utf-8-sig when the whole file decodes as UTF-8, else GB18030 (Excel in China)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig"


def _csv_rows(path: Path) -> Generator[tuple[int, Sequence[object]], None, None]:
    encoding = _csv_encoding(path)
    try:
        with path.open(encoding=encoding, newline="") as fh:
            first = fh.readline()
            delimiter = "\t" if "\t" in first and "," not in first else ","
            fh.seek(0)
            # NUL is never roster data (Excel cannot type it, XLSX cannot hold it) and
            # PostgreSQL refuses it in text: it is dropped as the file is read.
            lines = (line.replace("\x00", "") for line in fh)
            reader = csv.reader(lines, delimiter=delimiter)
            yield from enumerate(reader, start=1)
    except UnicodeDecodeError:
        # Neither UTF-8 nor GB18030: a file in some other encoding, or not text at all.
        raise RosterFileError(
            "file.encoding",
            "文件编码无法识别，请以 UTF-8 或 GB18030（Excel 默认）保存 CSV",
            "the file is neither UTF-8 nor GB18030 text; save the CSV as UTF-8",
        ) from None
    yield -1, ()


def _header_key(raw: object) -> tuple[str, Any] | None:
    """Return ("column", key) or ("monthly", (component, month)) for a header cell."""
    folded = _fold(_text(raw)).replace("*", "").replace("（", "(").replace("）", ")")
    if not folded:
        return None
    bare = _UNIT_SUFFIX.sub("", folded)
    if bare in _HEADER_INDEX:
        return "column", _HEADER_INDEX[bare]
    monthly = _MONTHLY_HEADER.fullmatch(folded)
    if monthly is not None:
        component = _COMPONENT_INDEX.get(monthly.group("component").rstrip("(:["))
        month = int(monthly.group("month"))
        if component is not None and 1 <= month <= 12:
            return "monthly", (component, date(int(monthly.group("year")), month, 1))
    return None


@dataclass(slots=True)
class _Header:
    columns: dict[str, int]
    monthly: dict[tuple[str, date], int]
    ignored: list[str]
    names: list[str]


def _read_header(values: Sequence[object]) -> _Header | None:
    columns: dict[str, int] = {}
    monthly: dict[tuple[str, date], int] = {}
    ignored: list[str] = []
    for position, raw in enumerate(values):
        found = _header_key(raw)
        if found is None:
            if _text(raw):
                ignored.append(_text(raw))
            continue
        kind, key = found
        target: dict[Any, int] = columns if kind == "column" else monthly
        if key in target:
            raise RosterFileError(
                "duplicate_column",
                f"表头“{_text(raw)}”重复出现",
                f"the header {_text(raw)!r} appears twice",
            )
        target[key] = position
    if "roster_no" not in columns or "id_number" not in columns:
        return None
    return _Header(columns, monthly, ignored, [_text(v) for v in values])


def _check_header(header: _Header) -> IncomeLayout:
    missing = [c.header for c in COLUMNS if c.required and c.key not in header.columns]
    if missing:
        raise RosterFileError(
            "missing_columns",
            "缺少必填列：" + "、".join(missing),
            "required columns are missing: " + ", ".join(missing),
        )
    annual = [k for k in ANNUAL_KEYS if k in header.columns]
    if header.monthly and annual:
        raise RosterFileError(
            "mixed_income_layout",
            "年收入列与按月收入列不能同时出现，请只使用一种",
            "annual and monthly income columns cannot be mixed; use one layout",
        )
    if header.monthly:
        return "monthly"
    return "annual" if any(k in header.columns for k in COMPONENTS) else "none"


def iter_rows(
    path: Path, fmt: Format, *, fast: bool = True
) -> Generator[tuple[int, Sequence[object]], None, None]:
    """Yield (row number, cells) of a roster file; (-1, ()) marks the end of a sheet.

    With fast=True an XLSX file is read by the streaming reader of xlsx.py, which raises
    XlsxError on anything unusual; the caller then reads it again with openpyxl.
    """
    if fmt == "csv":
        return _csv_rows(path)
    return _fast_xlsx_rows(path) if fast else _openpyxl_rows(path)


# --------------------------------------------------------------------------- validation


@dataclass(slots=True)
class _RowValues:
    """One data row after cell parsing: the member (if valid), household values, errors."""

    row: int
    roster_no: str | None
    name: str | None
    id_masked: str | None
    member: MemberRow | None
    household: dict[str, Any]
    errors: list[tuple[str, CellError]]


@dataclass(slots=True)
class _Group:
    roster_no: str
    rows: list[_RowValues] = field(default_factory=list)


def _amount_parser(component: str) -> Callable[[object], Decimal | None]:
    # Only operating income can be negative: a business can lose money, wages cannot.
    def parse(raw: object) -> Decimal | None:
        return parse_amount(raw, allow_negative=component == "operating")

    return parse


def _required(header: str) -> CellError:
    return CellError("required", f"{header}不能为空", f"{header} is required")


def _too_long(header: str, limit: int) -> CellError:
    return CellError(
        "too_long", f"{header}过长（最多{limit}字）", f"{header} is longer than {limit} characters"
    )


def _chooser(index: dict[str, str], what_zh: str, what_en: str) -> Callable[[object], str | None]:
    return functools.partial(_choice, index=index, what_zh=what_zh, what_en=what_en)


def parse_yes_no(raw: object) -> bool | None:
    """Read 是/否 with blank meaning unknown."""
    return parse_bool(raw, default=None)


_AMOUNT_PARSERS: Final[dict[str, Callable[[object], Decimal | None]]] = {
    c: _amount_parser(c) for c in COMPONENTS
}
# Optional member columns: parser, and the value a blank cell means.
_MEMBER_PARSERS: Final[dict[str, tuple[Callable[[object], Any], Any]]] = {
    "labour_capacity": (_chooser(_LABOUR_INDEX, "劳动能力", "labour capacity"), None),
    "is_main_labourer": (parse_yes_no, None),
    "disability_grade": (parse_grade, None),
    "health": (_chooser(_HEALTH_INDEX, "健康状况", "health"), None),
    "schooling": (_chooser(_SCHOOLING_INDEX, "在校情况", "schooling"), None),
    "student_aided": (parse_yes_no, False),
    "dropout_risk": (parse_yes_no, False),
    "migrant_worker": (parse_migrant, False),
    "receives_basic_pension": (parse_pension, False),
    "medical_insured": (parse_medical, True),
}
# Household columns besides village and address; a blank cell is simply absent.
_HOUSEHOLD_PARSERS: Final[dict[str, Callable[[object], Any]]] = {
    "labels": parse_labels,
    "income_end_month": parse_month,
    **_AMOUNT_PARSERS,
    "previous_year_income": functools.partial(parse_amount, allow_negative=True),
    **dict.fromkeys(FACT_FLAGS, parse_yes_no),
}


class RosterReader:
    """Reads one roster file into households and row errors (pure apart from reading it)."""

    def __init__(
        self,
        *,
        person_ref: Callable[[str], str],
        today: date,
        is_village: Callable[[str], bool],
        in_scope: Callable[[str], bool],
        default_end_month: date | None = None,
    ) -> None:
        self.person_ref = person_ref
        self.today = today
        self.is_village = is_village
        self.in_scope = in_scope
        self.default_end_month = default_end_month
        self.validate_id = ResidentIdValidator(today)

    def read(self, path: Path, fmt: Format) -> ParsedRoster:
        """Read, validate and group the rows of a file."""
        try:
            return self._read(path, fmt, fast=True)
        except XlsxError:
            # Reading is free of side effects, so starting over with openpyxl is safe.
            return self._read(path, fmt, fast=False)

    def _read(self, path: Path, fmt: Format, *, fast: bool) -> ParsedRoster:
        parsed = ParsedRoster(format=fmt)
        header: _Header | None = None
        groups: dict[str, _Group] = {}
        orphans: list[_RowValues] = []
        rows = iter_rows(path, fmt, fast=fast)
        try:
            for number, values in rows:
                if number == -1:
                    if header is not None:
                        break  # the roster sheet is done; later sheets are notes
                    continue
                if header is None:
                    if number <= HEADER_SEARCH_ROWS:
                        header = _read_header(values)
                        if header is not None:
                            parsed.layout = _check_header(header)
                            parsed.ignored_columns = header.ignored
                    continue
                if all(_blank(v) for v in values):
                    continue
                parsed.rows += 1
                row = self._row(number, values, header)
                if row.roster_no is None:
                    orphans.append(row)
                else:
                    groups.setdefault(row.roster_no, _Group(row.roster_no)).rows.append(row)
        finally:
            rows.close()  # releases the workbook's file handle at once
        if header is None:
            raise RosterFileError(
                "no_header",
                f"前{HEADER_SEARCH_ROWS}行中未找到表头（需包含“户编号”和“身份证号”）",
                f"no header row (with 户编号 and 身份证号) in the first {HEADER_SEARCH_ROWS} rows",
            )
        for row in orphans:
            parsed.rejections.extend(_row_errors(row))
        owners: dict[str, list[str]] = {}
        for group in groups.values():
            for r in group.rows:
                if r.member is not None:
                    owners.setdefault(r.member.person_ref, []).append(group.roster_no)
        for group in groups.values():
            household, errors = self._household(group, owners, parsed.layout)
            if household is not None:
                parsed.households.append(household)
            else:
                parsed.rejected_households += 1
                parsed.rejections.extend(errors)
        parsed.rejections.sort(key=lambda e: (e.row, e.column))
        return parsed

    def _row(self, number: int, values: Sequence[object], header: _Header) -> _RowValues:
        # Runs once per member row: blanks are skipped before any parsing, and the parsers
        # come from tables rather than closures.
        size = len(values)
        raw: dict[str, object] = {}
        for key, position in header.columns.items():
            if position < size:
                value = values[position]
                if not _blank(value):
                    raw[key] = value
        errors: list[tuple[str, CellError]] = []
        roster_no = _text(raw.get("roster_no")) or None
        if roster_no is None:
            errors.append(("roster_no", _required("户编号")))
        elif len(roster_no) > 40:
            errors.append(("roster_no", _too_long("户编号", 40)))
            roster_no = roster_no[:40]
        name = _text(raw.get("name")) or None
        if name is None:
            errors.append(("name", _required("姓名")))
        elif len(name) > 50:
            errors.append(("name", _too_long("姓名", 50)))
        id_number: str | None = None
        try:
            id_number = parse_resident_id(raw.get("id_number"), validate=self.validate_id)
            id_masked = mask_resident_id(id_number)
        except CellError as exc:
            errors.append(("id_number", exc))
            id_masked = mask_resident_id(_text(raw.get("id_number")))
        relation: str | None = None
        if "relation" not in raw:
            errors.append(("relation", _required("与户主关系")))
        else:
            try:
                relation = _choice(raw["relation"], _RELATION_INDEX, "与户主关系", "relation")
            except CellError as exc:
                errors.append(("relation", exc))
        member_values: dict[str, Any] = {}
        for key, (parse, default) in _MEMBER_PARSERS.items():
            if key not in raw:
                member_values[key] = default
                continue
            try:
                member_values[key] = parse(raw[key])
            except CellError as exc:
                errors.append((key, exc))
        household: dict[str, Any] = {}
        if "village_code" in raw:
            household["village_code"] = _text(raw["village_code"])
        if "address" in raw:
            address = _text(raw["address"])
            if len(address) > 200:
                errors.append(("address", _too_long("地址", 200)))
            household["address"] = address[:200]
        for key, parse in _HOUSEHOLD_PARSERS.items():
            if key in raw:
                try:
                    household[key] = parse(raw[key])
                except CellError as exc:
                    errors.append((key, exc))
        for (component, month), position in header.monthly.items():
            value = values[position] if position < size else None
            if not _blank(value):
                try:
                    household[f"m:{component}:{month.isoformat()}"] = _AMOUNT_PARSERS[component](
                        value
                    )
                except CellError as exc:
                    errors.append((header.names[position], exc))
        member: MemberRow | None = None
        if id_number is not None and name is not None and relation is not None and not errors:
            member = MemberRow(
                row=number,
                person_ref=self.person_ref(id_number),
                id_number=id_number,
                id_masked=id_masked,
                name=name,
                relation=relation,
                birth_date=date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14])),
                **member_values,
            )
        return _RowValues(number, roster_no, name, id_masked, member, household, errors)

    def _household(
        self, group: _Group, owners: dict[str, list[str]], layout: IncomeLayout
    ) -> tuple[RosterHousehold | None, list[RowError]]:
        problems: list[tuple[_RowValues, str, CellError]] = [
            (row, key, exc) for row in group.rows for key, exc in row.errors
        ]
        merged: dict[str, Any] = {}
        for row in group.rows:
            for key, value in row.household.items():
                if value is None:
                    continue
                if key in merged and merged[key] != value:
                    problems.append(
                        (
                            row,
                            key,
                            CellError(
                                "household_conflict",
                                "同一户各行的户级字段不一致",
                                "rows of one household disagree on a household column",
                            ),
                        )
                    )
                else:
                    merged.setdefault(key, value)
        first = group.rows[0]
        village = merged.get("village_code")
        if village is None:
            problems.append(
                (
                    first,
                    "village_code",
                    CellError("required", "村代码不能为空", "村代码 is required"),
                )
            )
        elif not self.is_village(village):
            problems.append(
                (
                    first,
                    "village_code",
                    CellError(
                        "unknown_village",
                        f"村代码“{village}”不是已登记的村（社区）",
                        f"{village!r} is not a known village code",
                    ),
                )
            )
        elif not self.in_scope(village):
            problems.append(
                (
                    first,
                    "village_code",
                    CellError(
                        "out_of_region", "该村不在您的辖区内", "the village is outside your region"
                    ),
                )
            )
        members = [r.member for r in group.rows if r.member is not None]
        heads = [m for m in members if m.relation == "head"]
        if len(members) == len(group.rows) and len(heads) != 1:
            problems.append(
                (
                    first,
                    "relation",
                    CellError(
                        "no_head", "每户应有且只有一位户主", "a household needs exactly one 户主"
                    )
                    if not heads
                    else CellError(
                        "several_heads", "同一户有多位户主", "the household has more than one 户主"
                    ),
                )
            )
        seen: set[str] = set()
        for row in group.rows:
            m = row.member
            if m is None:
                continue
            if m.person_ref in seen:
                problems.append(
                    (
                        row,
                        "id_number",
                        CellError(
                            "duplicate_person",
                            "同一户内身份证号重复",
                            "the resident ID appears twice in the household",
                        ),
                    )
                )
            seen.add(m.person_ref)
            others = sorted(set(owners.get(m.person_ref, ())) - {group.roster_no})
            if others:
                problems.append(
                    (
                        row,
                        "id_number",
                        CellError(
                            "person_in_two_households",
                            f"同一身份证号同时出现在户编号 {others[0]} 中",
                            f"the resident ID also appears in household {others[0]}",
                        ),
                    )
                )
        annual: tuple[IncomeSpread, ...] = ()
        monthly: tuple[IncomeLine, ...] = ()
        try:
            annual, monthly = self._incomes(merged, layout)
        except CellError as exc:
            problems.append((first, "income_end_month", exc))
        if problems:
            return None, _household_errors(group, problems)
        _default_main_labourer(members)
        facts: dict[str, Any] = {}
        for key, path in FACT_FLAGS.items():
            if key in merged:
                _put(facts, path, merged[key])
        labels: tuple[str, ...] = merged.get("labels", ())
        return (
            RosterHousehold(
                roster_no=group.roster_no,
                village_code=str(village),
                address=merged.get("address"),
                labels=labels,
                facts=facts,
                previous_year_income=merged.get("previous_year_income"),
                annual=annual,
                monthly=monthly,
                members=members,
            ),
            [],
        )

    def _incomes(
        self, merged: dict[str, Any], layout: IncomeLayout
    ) -> tuple[tuple[IncomeSpread, ...], tuple[IncomeLine, ...]]:
        if layout == "monthly":
            lines = []
            for key, amount in merged.items():
                if key.startswith("m:") and amount:
                    _, component, month = key.split(":")
                    lines.append(IncomeLine(date.fromisoformat(month), component, amount))
            return (), tuple(sorted(lines))
        annual = {c: merged[c] for c in COMPONENTS if merged.get(c)}
        if not annual:
            return (), ()
        end = merged.get("income_end_month") or self.default_end_month
        if end is None:
            raise CellError(
                "income_end_month_required",
                "填写了年收入时，收入截止月份不能为空",
                "收入截止月份 is required when annual incomes are given",
            )
        return tuple(IncomeSpread(c, end, a) for c, a in sorted(annual.items())), ()


def spread_annual(component: str, amount: Decimal, end_month: date) -> list[IncomeLine]:
    """Split an annual amount into 12 monthly records ending at end_month, summing exactly."""
    return IncomeSpread(component, end_month, amount).lines()


def months_ending(end: date, count: int) -> list[date]:
    """Return the first days of the count months ending with end's month, oldest first."""
    return [
        _add_months(date(end.year, end.month, 1), -offset) for offset in range(count - 1, -1, -1)
    ]


def _add_months(month: date, delta: int) -> date:
    index = month.year * 12 + month.month - 1 + delta
    return date(index // 12, index % 12 + 1, 1)


def _put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def _default_main_labourer(members: list[MemberRow]) -> None:
    # A roster that says nothing about main labourers still has one: the head, unless the
    # head has no labour capacity. An explicit 否 everywhere is respected.
    if any(m.is_main_labourer is not None for m in members):
        for m in members:
            m.is_main_labourer = bool(m.is_main_labourer)
        return
    for m in members:
        m.is_main_labourer = m.relation == "head" and m.labour_capacity != "none"


def _row_errors(row: _RowValues) -> list[RowError]:
    return [
        RowError(
            row=row.row,
            roster_no=row.roster_no,
            name=row.name,
            id_masked=row.id_masked,
            column=_column_name(key),
            code=exc.code,
            message_zh=exc.message_zh,
            message_en=exc.message_en,
        )
        for key, exc in row.errors
    ]


def _household_errors(
    group: _Group, problems: list[tuple[_RowValues, str, CellError]]
) -> list[RowError]:
    out: list[RowError] = []
    bad_rows = {row.row for row, _, _ in problems}
    for row, key, exc in problems:
        out.append(
            RowError(
                row=row.row,
                roster_no=group.roster_no,
                name=row.name,
                id_masked=row.id_masked,
                column=_column_name(key),
                code=exc.code,
                message_zh=exc.message_zh,
                message_en=exc.message_en,
            )
        )
    # A household is imported whole or not at all: half a family would distort its
    # per-capita income. Its good rows are listed too, so the report accounts for every row.
    for row in group.rows:
        if row.row not in bad_rows:
            out.append(
                RowError(
                    row=row.row,
                    roster_no=group.roster_no,
                    name=row.name,
                    id_masked=row.id_masked,
                    column="",
                    code="household_rejected",
                    message_zh="同户其他行有错误，整户未导入",
                    message_en="another row of this household has errors; the household was not imported",
                )
            )
    return out


def _column_name(key: str) -> str:
    column = COLUMN_BY_KEY.get(key)
    return column.header if column is not None else key


# ------------------------------------------------------------------------------ writing


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportMember:
    """A registry member as an export row shows it."""

    id_display: str  # the mask, or the clear number for an admin's unmasked export
    name: str | None
    relation: str | None
    labour_capacity: str | None
    is_main_labourer: bool
    disability_grade: int | None
    health: str | None
    schooling: str | None
    student_aided: bool
    dropout_risk: bool
    migrant_worker: bool
    receives_basic_pension: bool
    medical_insured: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportHousehold:
    """A registry household with its members and incomes, for export."""

    roster_no: str | None
    village_code: str | None
    address: str | None
    labels: Sequence[str]
    facts: dict[str, Any]
    previous_year_income: Decimal | None
    incomes: Sequence[IncomeLine]
    members: Sequence[ExportMember]


_EXPORT_RELATION: Final = {"self": "head"}
_MIGRANT_TEXT: Final = {True: "务工", False: "未务工"}
_PENSION_TEXT: Final = {True: "领取待遇", False: "未领取"}
_MEDICAL_TEXT: Final = {True: "已参保", False: "未参保"}
_GRADE_TEXT: Final = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}


def _cents(value: Decimal | None) -> Decimal | str:
    return "" if value is None else value.quantize(CENT)


def _yes_no(value: object) -> str:
    if value is None:
        return ""
    return "是" if value else "否"


def _fact(facts: dict[str, Any], path: tuple[str, ...]) -> object:
    node: Any = facts
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def export_headers(monthly_months: Sequence[date] | None = None) -> list[str]:
    """Return the header row: the template's, or with monthly income columns instead."""
    if not monthly_months:
        return list(HEADERS)
    out = [c.header for c in COLUMNS if c.key not in ANNUAL_KEYS]
    position = out.index(COLUMN_BY_KEY["previous_year_income"].header)
    monthly = [
        f"{COMPONENT_HEADERS[component][0]}({month:%Y-%m})"
        for component in COMPONENTS
        for month in monthly_months
    ]
    return out[:position] + monthly + out[position:]


def export_rows(
    household: ExportHousehold, monthly_months: Sequence[date] | None = None
) -> Iterator[list[object]]:
    """Yield one row per member, household columns repeated on each."""
    values: dict[str, object] = {
        "roster_no": household.roster_no or "",
        "village_code": household.village_code or "",
        "address": household.address or "",
        "labels": "、".join(display(LABELS, label) for label in sorted(household.labels)),
        "previous_year_income": _cents(household.previous_year_income),
    }
    for key, path in FACT_FLAGS.items():
        values[key] = _yes_no(_fact(household.facts, path))
    by_month: dict[tuple[str, date], Decimal] = {
        (i.component, i.month): i.amount for i in household.incomes
    }
    if household.incomes:
        end = max(i.month for i in household.incomes)
        window = {_add_months(end, -offset) for offset in range(12)}
        values["income_end_month"] = f"{end:%Y-%m}"
        for component in COMPONENTS:
            total = sum(
                (
                    i.amount
                    for i in household.incomes
                    if i.component == component and i.month in window
                ),
                Decimal(0),
            )
            values[component] = _cents(total) if total else ""
    keys = [c.key for c in COLUMNS]
    if monthly_months:
        keys = [k for k in keys if k not in ANNUAL_KEYS]
        position = keys.index("previous_year_income")
        monthly_keys = [f"m:{c}:{m.isoformat()}" for c in COMPONENTS for m in monthly_months]
        keys = keys[:position] + monthly_keys + keys[position:]
        for component in COMPONENTS:
            for month in monthly_months:
                amount = by_month.get((component, month))
                values[f"m:{component}:{month.isoformat()}"] = _cents(amount) if amount else ""
    for member in household.members:
        relation = _EXPORT_RELATION.get(member.relation or "", member.relation)
        row = dict(values)
        row.update(
            {
                "name": member.name or "",
                "id_number": member.id_display,
                "relation": display(RELATIONS, relation) if relation else "",
                "labour_capacity": display(LABOUR, member.labour_capacity),
                "is_main_labourer": _yes_no(member.is_main_labourer),
                "disability_grade": _GRADE_TEXT.get(member.disability_grade or 0, ""),
                "health": display(HEALTH, member.health),
                "schooling": display(SCHOOLING, member.schooling),
                "student_aided": _yes_no(member.student_aided),
                "dropout_risk": _yes_no(member.dropout_risk),
                "migrant_worker": _MIGRANT_TEXT[member.migrant_worker],
                "receives_basic_pension": _PENSION_TEXT[member.receives_basic_pension],
                "medical_insured": _MEDICAL_TEXT[member.medical_insured],
            }
        )
        yield [row.get(k, "") for k in keys]


def write_xlsx(
    target: IO[bytes] | Path,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
) -> int:
    """Write one roster sheet, streaming; return the number of data rows written."""
    widths = [max(10, len(h) * 2 + 2) for h in headers]
    writer = xlsx.XlsxWriter(target, sheet_name=SHEET_NAME, widths=widths)
    writer.append(headers, bold=True)
    count = 0
    for row in rows:
        # Amounts stay numbers (counties sum them); everything else is written as text, since
        # a resident ID or village code stored as a number loses digits once Excel opens it.
        writer.append([v if isinstance(v, Decimal) else "" if v is None else str(v) for v in row])
        count += 1
    writer.close()
    return count


def write_csv(target: IO[str], headers: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write a CSV (the caller opens it UTF-8 with BOM, so Excel shows the Chinese)."""
    writer = csv.writer(target, lineterminator="\r\n")
    writer.writerow(headers)
    count = 0
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
        count += 1
    return count


def template_xlsx() -> bytes:
    """Return the downloadable XLSX template: the roster sheet and a sheet of instructions."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = SHEET_NAME
    sheet.append(list(HEADERS))
    bold = Font(bold=True)
    required_fill = PatternFill("solid", fgColor="FFF2CC")
    for position, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(position)
        cell = sheet.cell(row=1, column=position)
        cell.font = bold
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        if column.required:
            cell.fill = required_fill
        dimension = sheet.column_dimensions[letter]
        dimension.width = max(10, len(column.header) * 2 + 2)
        # Text format on the identifier columns, so Excel keeps all 18 digits of an ID.
        if column.key in ("roster_no", "village_code", "id_number", "income_end_month"):
            dimension.number_format = "@"
        if column.choices:
            validation = DataValidation(
                type="list",
                formula1='"' + ",".join(column.choices) + '"',
                allow_blank=True,
                showErrorMessage=column.key != "labels",  # labels may combine several values
            )
            validation.add(f"{letter}2:{letter}{TEMPLATE_ROWS + 1}")
            sheet.add_data_validation(validation)
    sheet.freeze_panes = "A2"
    notes = workbook.create_sheet(HELP_SHEET_NAME)
    notes.append(["列名", "是否必填", "级别", "填写说明", "示例", "可选值"])
    for cell in notes[1]:
        cell.font = bold
    for column in COLUMNS:
        notes.append(
            [
                column.header,
                "必填" if column.required else "选填",
                "户" if column.level == "household" else "成员",
                column.help_zh,
                column.example,
                "、".join(column.choices),
            ]
        )
    notes.append([])
    for line in TEMPLATE_NOTES:
        notes.append([line])
    for letter, width in zip("ABCDEF", (18, 10, 8, 60, 22, 40), strict=True):
        notes.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


TEMPLATE_NOTES: Final = (
    "一行填写一名家庭成员；同一户的各行填写相同的户编号。户级字段（村代码至有大额存款中标注“户”的列）每户填写一次即可，多行填写时必须一致。",
    "重复导入同一文件不会改变任何数据：按户编号和身份证号更新。某户任一行有错误时，整户不导入，并在拒绝报告中列出原因。",
    "年收入按“收入截止月份”往前12个月平均分摊到各月；也可改用按月收入列，列名如“工资性收入(2026-03)”。",
    "负面清单各列仅作为复核提示，不会自动排除。",
)


def template_csv() -> bytes:
    """Return the CSV template: the header row, UTF-8 with a BOM so Excel reads the Chinese."""
    buffer = io.StringIO()
    write_csv(buffer, HEADERS, ())
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


REPORT_HEADERS: Final = (
    "行号",
    "户编号",
    "姓名",
    "身份证号(脱敏)",
    "列",
    "错误代码",
    "错误说明",
    "error",
)


def rejection_rows(errors: Iterable[dict[str, Any]]) -> Iterator[list[object]]:
    """Yield the rejection report's rows from stored row errors."""
    for e in errors:
        yield [
            e.get("row"),
            e.get("roster_no") or "",
            e.get("name") or "",
            e.get("id_masked") or "",
            e.get("column") or "",
            e.get("code"),
            e.get("message_zh"),
            e.get("message_en"),
        ]


def rejection_csv(errors: Iterable[dict[str, Any]]) -> bytes:
    """Return the rejection report as CSV (UTF-8 with BOM)."""
    buffer = io.StringIO()
    write_csv(buffer, REPORT_HEADERS, rejection_rows(errors))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")

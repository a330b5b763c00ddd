"""Tests for the roster's columns, cell parsing, file reading, validation and writing."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import openpyxl
import pytest

from services.screening import roster, xlsx
from services.screening.roster import (
    CellError,
    IncomeLine,
    ResidentIdValidator,
    RosterFileError,
    RosterReader,
)
from services.screening.xlsx import XlsxError
from shared.pii import PiiCipher, generate_key_b64
from shared.resident_id import InvalidResidentId, validate_resident_id
from tests.services.screening.harness import (
    COUNTY,
    OTHER_VILLAGE,
    REGIONS,
    VILLAGE,
    household_rows,
    member_row,
    person,
    write_roster,
)

TODAY = date(2026, 11, 20)
CIPHER = PiiCipher.from_base64(generate_key_b64(), generate_key_b64())


def reader(scope: str = COUNTY, **kwargs: Any) -> RosterReader:
    """Return a reader for the demo county."""
    return RosterReader(
        person_ref=CIPHER.keyed_hash,
        today=TODAY,
        is_village=REGIONS.is_village,
        in_scope=lambda code: code.startswith(scope),
        **kwargs,
    )


def read(
    tmp_path: Path, rows: list[dict[str, Any]], fmt: roster.Format = "xlsx", **kw: Any
) -> roster.ParsedRoster:
    """Write rows to a file and read it back."""
    path = write_roster(tmp_path / f"r.{fmt}", rows, fmt)
    return reader(**kw).read(path, fmt)


def codes(parsed: roster.ParsedRoster) -> list[tuple[int, str]]:
    """Return (row, code) of every rejection."""
    return [(e.row, e.code) for e in parsed.rejections]


class TestParseBool:
    @pytest.mark.parametrize(
        ("raw", "default", "expected"),
        [
            ("是", None, True),
            (" 否 ", None, False),
            ("有", None, True),
            ("无", True, False),
            ("Y", None, True),
            ("true", None, True),
            (1, None, True),
            (0, None, False),
            (True, None, True),
            ("", None, None),
            (None, False, False),
        ],
    )
    def test_reads_yes_and_no(
        self, raw: object, default: bool | None, expected: bool | None
    ) -> None:
        assert roster.parse_bool(raw, default=default) is expected

    def test_refuses_anything_else(self) -> None:
        with pytest.raises(CellError) as caught:
            roster.parse_bool("也许", default=None)
        assert caught.value.code == "not_yes_no"


class TestParseAmount:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("1,200.50", Decimal("1200.50")),
            ("￥300元", Decimal("300.00")),
            (" 24000 ", Decimal("24000.00")),
            (3600, Decimal("3600.00")),
            (12.345, Decimal("12.35")),
            ("0", Decimal("0.00")),
            ("", None),
        ],
    )
    def test_reads_yuan_to_the_cent(self, raw: object, expected: Decimal | None) -> None:
        assert roster.parse_amount(raw) == expected

    @pytest.mark.parametrize(
        ("raw", "allow_negative", "code"),
        [
            ("-5", False, "negative_amount"),
            ("abc", False, "not_amount"),
            ("1e20", True, "not_amount"),
        ],
    )
    def test_refuses_bad_amounts(self, raw: str, allow_negative: bool, code: str) -> None:
        with pytest.raises(CellError) as caught:
            roster.parse_amount(raw, allow_negative=allow_negative)
        assert caught.value.code == code

    def test_lets_operating_losses_be_negative(self) -> None:
        assert roster.parse_amount("-1500", allow_negative=True) == Decimal("-1500.00")


class TestParseMonth:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("2026-10", date(2026, 10, 1)),
            ("2026/3", date(2026, 3, 1)),
            ("202610", date(2026, 10, 1)),
            ("2026年10月", date(2026, 10, 1)),
            ("2026-10-31", date(2026, 10, 1)),
            (202603, date(2026, 3, 1)),
            (46296, date(2026, 10, 1)),  # an Excel date serial (2026-10-01) without its style
            (datetime(2026, 10, 15, tzinfo=UTC), date(2026, 10, 1)),
            (date(2026, 9, 30), date(2026, 9, 1)),
            ("", None),
        ],
    )
    def test_reads_months(self, raw: object, expected: date | None) -> None:
        assert roster.parse_month(raw) == expected

    @pytest.mark.parametrize("raw", ["2026-13", "十月", "1899-01", 9999999])
    def test_refuses_what_is_no_month(self, raw: object) -> None:
        with pytest.raises(CellError):
            roster.parse_month(raw)


class TestParseGrade:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [("一级", 1), ("二级残疾", 2), ("3", 3), (4, 4), ("四", 4), ("无", None), ("", None)],
    )
    def test_reads_grades(self, raw: object, expected: int | None) -> None:
        assert roster.parse_grade(raw) == expected

    def test_refuses_a_fifth_grade(self) -> None:
        with pytest.raises(CellError):
            roster.parse_grade("五级")


class TestParseLabels:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("脱贫户、低保户", ("dibao", "tuopin")),
            ("监测户;边缘户", ("marginal", "monitored")),
            ("一般农户", ()),
            ("特困人员，留守儿童", ("left_behind_child", "tekun")),
            ("tuopin/dibao/tuopin", ("dibao", "tuopin")),
            ("", ()),
        ],
    )
    def test_reads_several_labels(self, raw: str, expected: tuple[str, ...]) -> None:
        assert roster.parse_labels(raw) == expected

    def test_refuses_an_unknown_label(self) -> None:
        with pytest.raises(CellError) as caught:
            roster.parse_labels("脱贫户、贫困户")
        assert caught.value.code == "unknown_label"


class TestParseMigrant:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("省外务工", True),
            ("县内务工", True),
            ("是", True),
            ("未务工", False),
            ("", False),
            ("在家务农", False),
        ],
    )
    def test_counts_any_migrant_work(self, raw: str, expected: bool) -> None:
        assert roster.parse_migrant(raw) is expected


class TestParsePension:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [("领取待遇", True), ("已参保", False), ("未参保", False), ("", False)],
    )
    def test_only_receiving_counts(self, raw: str, expected: bool) -> None:
        assert roster.parse_pension(raw) is expected


class TestParseMedical:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [("已参保", True), ("城乡居民医保", True), ("未参保", False), ("", True)],
    )
    def test_blank_counts_as_insured(self, raw: str, expected: bool) -> None:
        assert roster.parse_medical(raw) is expected


class TestParseResidentId:
    def validate(self) -> Callable[[str], str]:
        return ResidentIdValidator(TODAY)

    @pytest.mark.parametrize(
        ("raw", "code"),
        [
            ("", "required"),
            ("141122********1239", "masked_id"),
            ("141122196803021238", "resident_id.checksum"),
            (141122196803021000, "id_stored_as_number"),
            (1.41122196803021e17, "id_stored_as_number"),
            ("14112219680302123", "resident_id.length"),
        ],
    )
    def test_explains_each_refusal(self, raw: object, code: str) -> None:
        with pytest.raises(CellError) as caught:
            roster.parse_resident_id(raw, validate=self.validate())
        assert caught.value.code == code

    def test_accepts_an_exact_number_typed_as_a_number(self) -> None:
        number = person(5)
        assert roster.parse_resident_id(int(number), validate=self.validate()) == number


class TestResidentIdValidator:
    NUMBERS: ClassVar[tuple[str, ...]] = (
        person(1),
        person(2, date(1990, 5, 17)),
        person(3, date(1985, 2, 28))[:-1] + "0",  # wrong check character
        "110105194912310021",
        "110105194912310021".lower(),
        "１１０１０５１９４９１２３１００２１",  # full-width digits
        "990101199001011234",
        "810000199001011237",
        "141122203001011235",  # born in the future
        "11010519491231002",
        "141122198802301231",  # 30 February
    )

    @pytest.mark.parametrize("number", NUMBERS)
    def test_agrees_with_the_shared_validation(self, number: str) -> None:
        validator = ResidentIdValidator(TODAY)
        for _ in range(2):  # the second time from what the first remembered
            try:
                expected: str | None = validate_resident_id(number, today=TODAY)
            except InvalidResidentId as exc:
                expected = exc.code
            try:
                got: str | None = validator(number)
            except InvalidResidentId as exc:
                got = exc.code
            assert got == expected

    def test_runs_the_full_validation_once_per_region_and_year(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[str] = []

        def counting(raw: str, *, today: date) -> str:
            calls.append(raw)
            return validate_resident_id(raw, today=today)

        monkeypatch.setattr(roster, "validate_resident_id", counting)
        validator = ResidentIdValidator(TODAY)
        for serial in range(50):
            validator(person(serial, date(1970, 3, 1)))
        validator(person(60, date(1971, 3, 1)))
        assert len(calls) == 2


class TestDetectFormat:
    @pytest.mark.parametrize(
        ("head", "content_type", "name", "expected"),
        [
            (b"PK\x03\x04rest", None, None, "xlsx"),
            (b"\xef\xbb\xbf\xe6\x88", "text/csv", None, "csv"),
            (b"abc", roster.XLSX_MEDIA_TYPE, None, "xlsx"),
            (b"abc", "application/octet-stream", "台账.xlsx", "xlsx"),
            (b"abc", None, "roster.csv", "csv"),
        ],
    )
    def test_sniffs_the_zip_signature_first(
        self, head: bytes, content_type: str | None, name: str | None, expected: str
    ) -> None:
        assert roster.detect_format(head, content_type=content_type, name=name) == expected


class TestSpreadAnnual:
    @pytest.mark.parametrize("amount", ["24000", "1000.01", "-1500", "0.11", "7"])
    def test_twelve_months_add_up_to_the_amount(self, amount: str) -> None:
        lines = roster.spread_annual("wages", Decimal(amount), date(2026, 10, 1))
        assert [line.month for line in lines] == roster.months_ending(date(2026, 10, 1), 12)
        assert lines[0].month == date(2025, 11, 1)
        assert sum(line.amount for line in lines) == Decimal(amount)
        # Every month but the last carries the same share; the last takes the remainder.
        assert len({line.amount for line in lines[:-1]}) == 1


class TestRosterReaderRead:
    def test_reads_a_household_with_its_members_and_facts(self, tmp_path: Path) -> None:
        rows = [
            member_row(
                "JC-1",
                person(1),
                labels="脱贫户、低保户",
                address="东关村三组12号",
                labour_capacity="弱劳动力",
                disability_grade="二级",
                income_end_month="2026-10",
                wages="12000",
                transfer="3,600",
                previous_year_income="30000",
                mud_brick_only="是",
                industry_covered="否",
                vehicle="是",
            ),
            member_row("JC-1", person(2), name="李秀英", relation="配偶", health="长期慢性病"),
            member_row("JC-1", person(3), name="王磊", relation="之子", schooling="大专"),
        ]
        parsed = read(tmp_path, rows)
        assert (parsed.rows, parsed.rejections, parsed.layout) == (3, [], "annual")
        [h] = parsed.households
        assert (h.roster_no, h.village_code, h.address) == ("JC-1", VILLAGE, "东关村三组12号")
        assert h.labels == ("dibao", "tuopin")
        assert h.facts == {
            "housing": {"mud_brick_only": True},
            "industry_covered": False,
            "negative_list": {"vehicle": True},
        }
        assert h.previous_year_income == Decimal("30000.00")
        assert sum(i.amount for i in h.incomes) == Decimal("15600.00")
        assert {i.component for i in h.incomes} == {"wages", "transfer"}
        head, spouse, child = h.members
        assert (head.relation, head.labour_capacity, head.disability_grade) == ("head", "weak", 2)
        # Nobody was marked: the head is the main labourer.
        assert [m.is_main_labourer for m in h.members] == [True, False, False]
        assert (spouse.health, child.schooling) == ("chronic", "vocational_college")
        assert head.person_ref == CIPHER.keyed_hash(person(1))
        assert head.id_masked == person(1)[:6] + "********" + person(1)[14:]
        assert head.birth_date == date(1970, 1, 1)

    REFUSALS: ClassVar[list[Any]] = [
        pytest.param(
            [member_row("A", person(1), name=""), member_row("A", person(2), relation="配偶")],
            [(2, "required"), (3, "household_rejected")],
            id="missing-name-refuses-the-household",
        ),
        pytest.param(
            [member_row("A", person(1)), member_row("A", person(2))],
            [(2, "several_heads"), (3, "household_rejected")],
            id="two-heads",
        ),
        pytest.param(
            [member_row("A", person(1), relation="配偶")],
            [(2, "no_head")],
            id="no-head",
        ),
        pytest.param(
            [member_row("A", person(1), village="141122999999")],
            [(2, "unknown_village")],
            id="unknown-village",
        ),
        pytest.param(
            [member_row("A", person(1), village=OTHER_VILLAGE)],
            [(2, "out_of_region")],
            id="village-outside-the-importer's-region",
        ),
        pytest.param(
            [
                member_row("A", person(1), address="一组"),
                member_row("A", person(2), relation="配偶", address="二组"),
            ],
            [(2, "household_rejected"), (3, "household_conflict")],
            id="rows-disagree-on-the-household",
        ),
        pytest.param(
            [member_row("A", person(1)), member_row("B", person(1))],
            [(2, "person_in_two_households"), (3, "person_in_two_households")],
            id="one-person-two-households",
        ),
        pytest.param(
            [member_row("A", person(1)), member_row("A", person(1), relation="配偶")],
            [(2, "household_rejected"), (3, "duplicate_person")],
            id="same-person-twice",
        ),
        pytest.param(
            [member_row("A", person(1), wages="1000")],
            [(2, "income_end_month_required")],
            id="annual-income-without-its-month",
        ),
        pytest.param(
            [member_row("A", person(1), labels="贫困户")],
            [(2, "unknown_label")],
            id="unknown-label",
        ),
        pytest.param(
            [member_row("A", "141122********1239")],
            [(2, "masked_id")],
            id="masked-id-from-an-export",
        ),
        pytest.param(
            [member_row("", person(1))],
            [(2, "required")],
            id="row-without-roster-number",
        ),
        pytest.param(
            [member_row("A", person(1), relation="邻居")],
            [(2, "unknown_value")],
            id="unknown-relation",
        ),
    ]

    @pytest.mark.parametrize(("rows", "expected"), REFUSALS)
    def test_refuses_households_with_reasons(
        self, tmp_path: Path, rows: list[dict[str, Any]], expected: list[tuple[int, str]]
    ) -> None:
        parsed = read(tmp_path, rows, scope="141122100")
        assert parsed.households == []
        assert codes(parsed) == expected
        for error in parsed.rejections:
            assert error.message_zh
            assert error.message_en
            assert (
                error.id_masked is None
                or "********" in error.id_masked
                or set(error.id_masked) == {"*"}
            )

    def test_imports_the_good_households_beside_a_bad_one(self, tmp_path: Path) -> None:
        rows = [*household_rows("OK", [1, 2]), member_row("BAD", person(3), relation="配偶")]
        parsed = read(tmp_path, rows)
        assert [h.roster_no for h in parsed.households] == ["OK"]
        assert parsed.rejected_households == 1

    def test_takes_household_columns_from_any_one_row(self, tmp_path: Path) -> None:
        # Sheets with merged cells carry the household's values on its first row only.
        rows = [
            member_row("A", person(1), village="", relation="之子", name="子"),
            member_row("A", person(2), address="一组", labels="脱贫户"),
        ]
        rows[0]["village_code"] = ""
        parsed = read(tmp_path, rows)
        [h] = parsed.households
        assert (h.village_code, h.address, h.labels) == (VILLAGE, "一组", ("tuopin",))

    def test_finds_the_header_below_a_title_and_ignores_unknown_columns(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "t.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["交城县防返贫监测台账（2026年10月）"])
            writer.writerow([])
            writer.writerow(["户编号", "村代码", "姓名", "身份证号码", "与户主关系", "备注"])
            writer.writerow(["A", VILLAGE, "王", person(1), "户主", "随便写"])
        parsed = reader().read(path, "csv")
        assert len(parsed.households) == 1
        assert parsed.ignored_columns == ["备注"]

    def test_reads_csv_saved_by_excel_in_gb18030(self, tmp_path: Path) -> None:
        path = tmp_path / "g.csv"
        text = f"户编号,村代码,姓名,身份证号,与户主关系\r\nA,{VILLAGE},王建国,{person(1)},户主\r\n"
        path.write_bytes(text.encode("gb18030"))
        [h] = reader().read(path, "csv").households
        assert h.members[0].name == "王建国"

    def test_reads_tab_separated_text(self, tmp_path: Path) -> None:
        path = tmp_path / "t.csv"
        path.write_text(
            f"户编号\t村代码\t姓名\t身份证号\t与户主关系\nA\t{VILLAGE}\t王\t{person(1)}\t户主\n",
            encoding="utf-8",
        )
        assert len(reader().read(path, "csv").households) == 1

    def test_reads_monthly_income_columns(self, tmp_path: Path) -> None:
        path = tmp_path / "m.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(
                [
                    "户编号",
                    "村代码",
                    "姓名",
                    "身份证号",
                    "与户主关系",
                    "工资性收入(2026-09)",
                    "转移性收入2026年10月",
                ]
            )
            writer.writerow(["A", VILLAGE, "王", person(1), "户主", "2000", "300"])
        parsed = reader().read(path, "csv")
        assert parsed.layout == "monthly"
        assert parsed.households[0].incomes == (
            IncomeLine(date(2026, 9, 1), "wages", Decimal("2000.00")),
            IncomeLine(date(2026, 10, 1), "transfer", Decimal("300.00")),
        )

    def test_uses_the_default_month_for_blank_income_months(self, tmp_path: Path) -> None:
        parsed = read(
            tmp_path, [member_row("A", person(1), wages="1200")], default_end_month=date(2026, 6, 1)
        )
        assert max(i.month for i in parsed.households[0].incomes) == date(2026, 6, 1)

    @pytest.mark.parametrize(
        ("header", "code"),
        [
            (["户编号", "身份证号", "姓名"], "missing_columns"),
            (["姓名", "地址"], "no_header"),
            (["户编号", "村代码", "姓名", "身份证号", "与户主关系", "户编号"], "duplicate_column"),
            (
                [
                    "户编号",
                    "村代码",
                    "姓名",
                    "身份证号",
                    "与户主关系",
                    "工资性收入",
                    "工资性收入(2026-01)",
                ],
                "mixed_income_layout",
            ),
        ],
    )
    def test_refuses_files_it_cannot_read_as_a_roster(
        self, tmp_path: Path, header: list[str], code: str
    ) -> None:
        path = tmp_path / "h.csv"
        path.write_text(",".join(header) + "\n", encoding="utf-8")
        with pytest.raises(RosterFileError) as caught:
            reader().read(path, "csv")
        assert caught.value.code == code

    def test_reads_xlsx_files_made_by_other_tools(self, tmp_path: Path) -> None:
        path = tmp_path / "o.xlsx"
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(["说明：本表由村填报"])
        sheet.append(list(roster.HEADERS))
        row = {
            **member_row("A", person(1)),
            "income_end_month": date(2026, 10, 1),  # stored as a date cell
            "wages": 1200,
        }
        sheet.append([row.get(c.key) for c in roster.COLUMNS])
        book.save(path)
        [h] = reader().read(path, "xlsx").households
        assert max(i.month for i in h.incomes) == date(2026, 10, 1)

    def test_falls_back_to_openpyxl_for_shapes_the_fast_reader_refuses(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = write_roster(tmp_path / "f.xlsx", household_rows("A", [1, 2]))

        def refuse(*_args: object, **_kwargs: object) -> Any:
            raise XlsxError("unusual")
            yield  # pragma: no cover

        monkeypatch.setattr(xlsx, "read_rows", refuse)
        assert len(reader().read(path, "xlsx").households) == 1


class TestFingerprint:
    def base(self) -> list[dict[str, Any]]:
        return [
            member_row("A", person(1), wages="1200", income_end_month="2026-10", labels="脱贫户"),
            member_row("A", person(2), relation="配偶", name="妻"),
        ]

    def fingerprint(self, tmp_path: Path, rows: list[dict[str, Any]]) -> str:
        [h] = read(tmp_path, rows).households
        return h.fingerprint()

    def test_ignores_the_order_of_rows(self, tmp_path: Path) -> None:
        rows = self.base()
        assert self.fingerprint(tmp_path, rows) == self.fingerprint(tmp_path, rows[::-1])

    @pytest.mark.parametrize(
        ("row", "column", "value"),
        [
            (0, "wages", "1300"),
            (0, "income_end_month", "2026-11"),
            (0, "labels", "脱贫户、低保户"),
            (0, "address", "新址"),
            (1, "name", "另一人"),
            (1, "health", "患有大病"),
            (1, "medical_insured", "未参保"),
            (0, "water_unsafe", "是"),
            (0, "previous_year_income", "100"),
        ],
    )
    def test_changes_with_anything_the_import_writes(
        self, tmp_path: Path, row: int, column: str, value: str
    ) -> None:
        changed = self.base()
        changed[row][column] = value
        assert self.fingerprint(tmp_path, changed) != self.fingerprint(tmp_path, self.base())


class TestExportRows:
    @pytest.mark.parametrize("layout", ["annual", "monthly"])
    def test_an_exported_household_reads_back_the_same(self, tmp_path: Path, layout: str) -> None:
        rows = [
            member_row(
                "A",
                person(1),
                wages="12000",
                operating="-1500.50",
                income_end_month="2026-10",
                labels="脱贫户、监测户",
                disability_grade="一级",
                labour_capacity="丧失劳动力",
                is_main_labourer="否",
                hazard_zone="是",
                industry_covered="否",
                previous_year_income="20000",
            ),
            member_row(
                "A", person(2), relation="之女", name="女", schooling="义务教育", dropout_risk="是"
            ),
        ]
        [original] = read(tmp_path, rows).households
        exported = roster.ExportHousehold(
            roster_no=original.roster_no,
            village_code=original.village_code,
            address=original.address,
            labels=original.labels,
            facts=original.facts,
            previous_year_income=original.previous_year_income,
            incomes=original.incomes,
            members=[
                roster.ExportMember(
                    id_display=m.id_number,
                    name=m.name,
                    relation=m.relation,
                    labour_capacity=m.labour_capacity,
                    is_main_labourer=bool(m.is_main_labourer),
                    disability_grade=m.disability_grade,
                    health=m.health,
                    schooling=m.schooling,
                    student_aided=m.student_aided,
                    dropout_risk=m.dropout_risk,
                    migrant_worker=m.migrant_worker,
                    receives_basic_pension=m.receives_basic_pension,
                    medical_insured=m.medical_insured,
                )
                for m in original.members
            ],
        )
        months = roster.months_ending(date(2026, 10, 1), 12) if layout == "monthly" else None
        path = tmp_path / "e.xlsx"
        roster.write_xlsx(path, roster.export_headers(months), roster.export_rows(exported, months))
        [again] = reader().read(path, "xlsx").households
        assert again.incomes == original.incomes
        assert [m.fingerprint_fields() for m in again.members] == [
            m.fingerprint_fields() for m in original.members
        ]
        assert (again.labels, again.facts, again.previous_year_income) == (
            original.labels,
            original.facts,
            original.previous_year_income,
        )
        if layout == "annual":
            assert again.fingerprint() == original.fingerprint()


class TestTemplateXlsx:
    def test_has_every_column_instructions_and_drop_downs(self, tmp_path: Path) -> None:
        path = tmp_path / "t.xlsx"
        path.write_bytes(roster.template_xlsx())
        book = openpyxl.load_workbook(path)
        sheet = book[roster.SHEET_NAME]
        assert [c.value for c in sheet[1]] == list(roster.HEADERS)
        notes = book[roster.HELP_SHEET_NAME]
        documented = {row[0].value for row in notes.iter_rows(min_row=2) if row[1].value}
        assert documented == set(roster.HEADERS)
        lists = {str(v.sqref).split(":")[0] for v in sheet.data_validations.dataValidation}
        choice_columns = [i for i, c in enumerate(roster.COLUMNS, start=1) if c.choices]
        assert len(lists) == len(choice_columns)

    def test_an_empty_template_is_a_valid_empty_roster(self, tmp_path: Path) -> None:
        path = tmp_path / "t.xlsx"
        path.write_bytes(roster.template_xlsx())
        parsed = reader().read(path, "xlsx")
        assert (parsed.rows, parsed.households, parsed.rejections) == (0, [], [])


class TestTemplateCsv:
    def test_is_the_header_row_with_a_bom(self) -> None:
        data = roster.template_csv()
        assert data.startswith("\ufeff".encode())
        assert next(csv.reader(io.StringIO(data.decode("utf-8-sig")))) == list(roster.HEADERS)


class TestRejectionCsv:
    def test_lists_every_error_in_both_languages(self) -> None:
        error = roster.RowError(
            3,
            "A",
            "王",
            "141122********1239",
            "姓名",
            "required",
            "姓名不能为空",
            "姓名 is required",
        )
        lines = list(
            csv.reader(io.StringIO(roster.rejection_csv([error.as_dict()]).decode("utf-8-sig")))
        )
        assert lines == [
            list(roster.REPORT_HEADERS),
            [
                "3",
                "A",
                "王",
                "141122********1239",
                "姓名",
                "required",
                "姓名不能为空",
                "姓名 is required",
            ],
        ]

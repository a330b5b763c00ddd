"""Tests for the streaming XLSX reader and writer."""

from __future__ import annotations

import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from services.screening import xlsx
from services.screening.xlsx import XlsxError, XlsxWriter, column_index, column_letters, read_rows

MAIN = xlsx.MAIN_NS


def _package(path: Path, sheet_data: str, shared: str | None = None, *, prefix: str = "") -> Path:
    """Write a minimal workbook by hand, to feed the reader shapes other tools produce."""
    ns = f'xmlns{":" + prefix if prefix else ""}="{MAIN}"'
    tag = f"{prefix}:" if prefix else ""
    rels = (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    )
    if shared is not None:
        rels += (
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
        )
    rels += "</Relationships>"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            "_rels/.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        z.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{MAIN}" xmlns:r="{xlsx.REL_NS}"><sheets>'
            '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        z.writestr("xl/_rels/workbook.xml.rels", rels)
        z.writestr(
            "xl/worksheets/sheet1.xml",
            f"<{tag}worksheet {ns}><{tag}sheetData>{sheet_data}</{tag}sheetData></{tag}worksheet>",
        )
        if shared is not None:
            z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{MAIN}">{shared}</sst>')
    return path


def _rows(path: Path) -> list[tuple[int, list[xlsx.Cell]]]:
    return [(number, values) for _sheet, number, values in read_rows(path)]


class TestColumnIndex:
    @pytest.mark.parametrize(
        ("letters", "index"),
        [("A", 0), ("Z", 25), ("AA", 26), ("AZ", 51), ("BA", 52), ("XFD", 16383)],
    )
    def test_maps_letters_to_positions(self, letters: str, index: int) -> None:
        assert column_index(letters) == index


class TestColumnLetters:
    def test_inverts_column_index_over_every_excel_column(self) -> None:
        for index in range(16384):
            assert column_index(column_letters(index)) == index


class TestReadRows:
    def test_reads_what_the_writer_wrote(self, tmp_path: Path) -> None:
        path = tmp_path / "w.xlsx"
        writer = XlsxWriter(path, sheet_name="农户台账")
        writer.append(["户编号", "金额", "空", "是否"], bold=True)
        writer.append(["JC-1", Decimal("1200.50"), None, True])
        writer.append(["", 7, "尾"])
        writer.close()
        assert _rows(path) == [
            (1, ["户编号", "金额", "空", "是否"]),
            (2, ["JC-1", 1200.5, None, True]),
            (3, [None, 7, "尾"]),
        ]

    @pytest.mark.parametrize("write_only", [False, True], ids=["shared-strings", "inline-strings"])
    def test_agrees_with_openpyxl_on_its_files(self, tmp_path: Path, write_only: bool) -> None:
        path = tmp_path / "o.xlsx"
        book = openpyxl.Workbook(write_only=write_only)
        sheet = book.create_sheet("台账") if write_only else book.active
        assert sheet is not None
        data = [
            ["户编号", "身份证号", "金额"],
            ["A&B<1>", "141122196803021239", 3.25],
            ["x", None, -4],
        ]
        for row in data:
            sheet.append(row)
        book.save(path)
        got = [values for _n, values in _rows(path)]
        assert got == [
            ["户编号", "身份证号", "金额"],
            ["A&B<1>", "141122196803021239", 3.25],
            ["x", None, -4],
        ]

    def test_keeps_row_numbers_across_gaps_and_cells_across_holes(self, tmp_path: Path) -> None:
        path = _package(
            tmp_path / "g.xlsx",
            '<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
            '<row r="4" spans="1:3"><c r="C4" t="s"><v>1</v></c></row>',
            "<si><t>头</t></si><si><t>尾</t></si>",
        )
        assert _rows(path) == [(1, ["头"]), (4, [None, None, "尾"])]

    def test_joins_rich_text_and_drops_pinyin_guides(self, tmp_path: Path) -> None:
        path = _package(
            tmp_path / "r.xlsx",
            '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>',
            "<si><r><rPr><b/></rPr><t>王</t></r><r><t>五</t></r>"
            '<rPh sb="0" eb="1"><t>wang</t></rPh></si>'
            '<si><t xml:space="preserve"> a&amp;b_x000D_ </t></si>',
        )
        assert _rows(path) == [(1, ["王五", " a&b\r "])]

    def test_reads_booleans_formula_results_and_errors(self, tmp_path: Path) -> None:
        path = _package(
            tmp_path / "f.xlsx",
            '<row r="1"><c r="A1" t="b"><v>1</v></c><c r="B1" t="str"><f>A1</f><v>是</v></c>'
            '<c r="C1" t="e"><v>#N/A</v></c><c r="D1"><v>1.5E+3</v></c></row>',
        )
        assert _rows(path) == [(1, [True, "是", "#N/A", 1500.0])]

    @pytest.mark.parametrize(
        ("sheet", "prefix"),
        [
            pytest.param('<x:row r="1"><x:c r="A1"><x:v>1</x:v></x:c></x:row>', "x", id="prefixed"),
            pytest.param('<row><c r="A1"><v>1</v></c></row>', "", id="row-without-reference"),
            pytest.param('<row r="1"><c t="n" r="A1"><v>1</v></c></row>', "", id="attribute-order"),
            pytest.param(
                '<row r="1"><c r="A1"><f t="shared" si="0"/><v>1</v></c></row>', "", id="shared-f"
            ),
        ],
    )
    def test_refuses_shapes_it_does_not_follow(
        self, tmp_path: Path, sheet: str, prefix: str
    ) -> None:
        path = _package(tmp_path / "p.xlsx", sheet, prefix=prefix)
        with pytest.raises(XlsxError):
            _rows(path)

    def test_refuses_a_file_that_is_not_a_package(self, tmp_path: Path) -> None:
        path = tmp_path / "n.xlsx"
        path.write_bytes(b"not a zip")
        with pytest.raises(XlsxError):
            _rows(path)

    def test_puts_the_preferred_sheet_first(self, tmp_path: Path) -> None:
        path = tmp_path / "s.xlsx"
        book = openpyxl.Workbook()
        first = book.active
        assert first is not None
        first.title = "说明"
        first.append(["notes"])
        book.create_sheet("农户台账").append(["data"])
        book.save(path)
        names = [s for s, _n, _v in read_rows(path, prefer_sheet="农户台账")]
        assert names == ["农户台账", "说明"]


class TestXlsxWriter:
    def test_writes_a_workbook_excel_tools_open(self, tmp_path: Path) -> None:
        path = tmp_path / "e.xlsx"
        writer = XlsxWriter(path, sheet_name="农户台账", widths=[12, 20])
        writer.append(["户编号", "身份证号"], bold=True)
        writer.append(["JC\x01-1", "141122196803021239", Decimal("-1.50")])
        writer.close()
        book = openpyxl.load_workbook(path)
        sheet = book["农户台账"]
        assert sheet["A1"].font.b is True
        # Control characters are not allowed in XML: dropped rather than breaking the file.
        assert [c.value for c in sheet[2]] == ["JC-1", "141122196803021239", -1.5]
        assert sheet.freeze_panes == "A2"

"""A small streaming XLSX reader and writer for roster-sized sheets (standard library only).

openpyxl builds a Python object per cell: reading a 60,000-row roster took over half a minute
and writing one about as long, more than the whole import may take. These functions read
and write only what a roster needs (the cell values of one sheet) by walking the XML
directly. The reader understands shared strings, inline strings, numbers, booleans and
cached formula results, cells without references and sparse rows; anything it cannot
follow raises XlsxError, and the caller falls back to openpyxl.
"""

from __future__ import annotations

import codecs
import html
import posixpath
import re
import zipfile
from collections.abc import Generator, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Final
from xml.etree.ElementTree import iterparse
from xml.sax.saxutils import escape, quoteattr

MAIN_NS: Final = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRICT_NS: Final = "http://purl.oclc.org/ooxml/spreadsheetml/main"
REL_NS: Final = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
STRICT_REL_NS: Final = "http://purl.oclc.org/ooxml/officeDocument/relationships"
PKG_REL_NS: Final = "http://schemas.openxmlformats.org/package/2006/relationships"
_CELL_REF: Final = re.compile(r"([A-Z]+)(\d*)")
# XML 1.0 forbids most control characters; a stray one in a name would make Excel refuse
# the whole file, so they are dropped on the way out.
_XML_ILLEGAL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

Cell = str | float | int | bool | None


class XlsxError(ValueError):
    """The workbook uses something this reader does not follow."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def column_index(letters: str) -> int:
    """Return the 0-based index of a column name (A → 0, Z → 25, AA → 26)."""
    index = 0
    for ch in letters:
        index = index * 26 + (ord(ch) - 64)
    return index - 1


def column_letters(index: int) -> str:
    """Return the column name of a 0-based index."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# ----------------------------------------------------------------------------- reading

# Column names of the first 1,024 columns; wider sheets are computed per cell.
_POSITIONS: Final = {column_letters(i): i for i in range(1024)}


def _rels(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Return a part's relationships: id → (type, target path inside the archive)."""
    folder, name = posixpath.split(part)
    rels_name = posixpath.join(folder, "_rels", name + ".rels")
    if rels_name not in archive.NameToInfo:
        return {}
    out: dict[str, tuple[str, str]] = {}
    with archive.open(rels_name) as fh:
        for _, element in iterparse(fh):
            if _local(element.tag) == "Relationship":
                target = element.get("Target", "")
                path = (
                    target.lstrip("/")
                    if target.startswith("/")
                    else posixpath.normpath(posixpath.join(folder, target))
                )
                out[element.get("Id", "")] = (element.get("Type", ""), path)
    return out


def _workbook_part(archive: zipfile.ZipFile) -> str:
    for _, (kind, path) in _rels(archive, "").items():
        if kind.endswith("/officeDocument"):
            return path
    raise XlsxError("no workbook part in the package")


def sheet_names(archive: zipfile.ZipFile) -> list[tuple[str, str]]:
    """Return (sheet name, part path) for every worksheet, in workbook order."""
    workbook = _workbook_part(archive)
    rels = _rels(archive, workbook)
    sheets: list[tuple[str, str]] = []
    with archive.open(workbook) as fh:
        for _, element in iterparse(fh):
            if _local(element.tag) == "sheet":
                rid = element.get(f"{{{REL_NS}}}id") or element.get(f"{{{STRICT_REL_NS}}}id")
                kind, path = rels.get(rid or "", ("", ""))
                if kind.endswith("/worksheet"):
                    sheets.append((element.get("name", ""), path))
    return sheets


_SI: Final = re.compile(r"<si>(.*?)</si>|<si/>", re.S)
_T: Final = re.compile(r"<t(?:\s[^>]*)?>([^<]*)</t>|<t/>")
_PHONETIC: Final = re.compile(r"<rPh\b.*?</rPh>", re.S)
_ESCAPED_CHAR: Final = re.compile(r"_x([0-9A-Fa-f]{4})_")
# Rows and cells as Excel, WPS and openpyxl write them: the reference first, then the style
# and the type. Whatever else turns up makes the match counts disagree with the tag counts,
# and the caller falls back to a full XML parser rather than lose a cell.
_ROW: Final = re.compile(r'<row r="(\d+)"[^>]*?(?:/>|>(.*?)</row>)', re.S)
_CELL: Final = re.compile(
    r'<c r="([A-Z]+)\d+"(?: s="\d+")?(?: t="(\w+)")?(?: [a-z]+="[^"]*")*'
    r"(?:/>|>(?:<f>[^<]*</f>|<f/>)?(?:<v>([^<]*)</v>|<v/>)?(?:<is>(.*?)</is>)?</c>)",
    re.S,
)
_PREFIXED: Final = re.compile(r"<[A-Za-z_][\w.-]*:(?:row|c|sheetData)[\s>/]")
_CHUNK: Final = 1 << 22


def _unescape(text: str) -> str:
    if "&" in text:
        text = html.unescape(text)
    if "_x" in text:
        # OOXML writes control characters as _xHHHH_ inside strings.
        text = _ESCAPED_CHAR.sub(lambda m: chr(int(m.group(1), 16)), text)
    return text


def _string_item(body: str) -> str:
    if "<rPh" in body:
        body = _PHONETIC.sub("", body)  # pinyin guides are not part of the value
    return _unescape("".join(_T.findall(body)))


def _shared_strings(archive: zipfile.ZipFile) -> list[str]:
    workbook = _workbook_part(archive)
    for kind, path in _rels(archive, workbook).values():
        if kind.endswith("/sharedStrings"):
            text = archive.read(path).decode("utf-8")
            items = [_string_item(body) for body in (m.group(1) or "" for m in _SI.finditer(text))]
            if len(items) != text.count("<si>") + text.count("<si/>"):
                raise XlsxError("shared strings in an unexpected shape")
            return items
    return []


def _number(text: str) -> float | int:
    # Whole numbers come back as int so that a village code stays 141122100201, not 1.4e11.
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return float(text)
    except ValueError:
        raise XlsxError(f"cell value {text!r} is not a number") from None


def _value(kind: str, value: str, inline: str, shared: Sequence[str]) -> Cell:
    if kind == "s":
        try:
            return shared[int(value)]
        except (ValueError, IndexError):
            raise XlsxError("a shared-string index points nowhere") from None
    if kind == "inlineStr":
        return _string_item(inline)
    if not value:
        return None
    if kind in ("str", "e"):
        return _unescape(value)
    if kind == "b":
        return value == "1"
    return _number(value)


def read_rows(
    path: Path, *, prefer_sheet: str | None = None
) -> Generator[tuple[str, int, list[Cell]], None, None]:
    """Yield (sheet name, row number, values) for every row of every worksheet.

    The sheet called prefer_sheet comes first; the others follow in workbook order. Raises
    XlsxError (possibly after some rows) when the file is in a shape this reader does not
    follow; the caller then reads the file again with a full parser.
    """
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise XlsxError("not a ZIP package") from None
    with archive:
        sheets = sheet_names(archive)
        if not sheets:
            raise XlsxError("the workbook has no worksheet")
        sheets.sort(key=lambda s: s[0] != prefer_sheet)
        shared = _shared_strings(archive)
        for name, part in sheets:
            if part not in archive.NameToInfo:
                raise XlsxError(f"worksheet part {part} is missing")
            with archive.open(part) as fh:
                yield from _sheet_rows(name, fh, shared)


def _sheet_rows(
    name: str, fh: IO[bytes], shared: Sequence[str]
) -> Generator[tuple[str, int, list[Cell]], None, None]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    rest = ""
    while True:
        chunk = fh.read(_CHUNK)
        text = rest + decoder.decode(chunk, final=not chunk)
        rest = ""
        if chunk:
            # Cut after the last complete row; the tail waits for the next chunk.
            cut = text.rfind("</row>")
            if cut >= 0:
                cut += len("</row>")
                text, rest = text[:cut], text[cut:]
            else:
                text, rest = "", text
        if _PREFIXED.search(text):
            # <x:row> and the like would match nothing below; a full parser handles them.
            raise XlsxError("namespace prefixes on sheet elements")
        rows = 0
        cells = 0
        positions = _POSITIONS
        for row in _ROW.finditer(text):
            rows += 1
            values: list[Cell] = []
            found = _CELL.findall(row.group(2) or "")
            cells += len(found)
            # The loop below runs once per cell of the roster, so it stays this plain.
            for letters, kind, value, inline in found:
                position = positions.get(letters)
                if position is None:
                    position = column_index(letters)
                gap = position - len(values)
                if gap:
                    if gap < 0:
                        raise XlsxError("cells out of order")
                    values.extend([None] * gap)
                if kind == "s":
                    try:
                        values.append(shared[int(value)])
                    except (ValueError, IndexError):
                        raise XlsxError("a shared-string index points nowhere") from None
                else:
                    values.append(_value(kind, value, inline, shared))
            yield name, int(row.group(1)), values
        if rows != text.count("<row ") + text.count("<row>") or cells != text.count(
            "<c "
        ) + text.count("<c>"):
            raise XlsxError("rows or cells in an unexpected shape")
        if not chunk:
            return


# ----------------------------------------------------------------------------- writing

_CONTENT_TYPES: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<Relationships xmlns="{PKG_REL_NS}">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK_RELS: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<Relationships xmlns="{PKG_REL_NS}">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
    "</Relationships>"
)
# Style 0 is the default; style 1 is the bold header.
_STYLES: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<styleSheet xmlns="{MAIN_NS}">'
    '<fonts count="2"><font><sz val="11"/><name val="宋体"/></font>'
    '<font><b/><sz val="11"/><name val="宋体"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _clean(text: str) -> str:
    return escape(_XML_ILLEGAL.sub("", text))


class XlsxWriter:
    """Streams one worksheet into an XLSX file: a bold header row, then value rows."""

    def __init__(
        self, target: Path | IO[bytes], *, sheet_name: str, widths: Sequence[int] = ()
    ) -> None:
        self._archive = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED)
        self._sheet = self._archive.open("xl/worksheets/sheet1.xml", "w")
        self._strings: dict[str, int] = {}
        self._row = 0
        self._sheet_name = sheet_name
        head = [
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n',
            f'<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">',
            # The header stays in view while scrolling a long roster.
            '<sheetViews><sheetView workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            "</sheetView></sheetViews>",
        ]
        if widths:
            head.append("<cols>")
            head.extend(
                f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
                for i, w in enumerate(widths, start=1)
            )
            head.append("</cols>")
        head.append("<sheetData>")
        self._sheet.write("".join(head).encode("utf-8"))

    def _string(self, text: str) -> int:
        index = self._strings.get(text)
        if index is None:
            index = self._strings[text] = len(self._strings)
        return index

    def append(self, values: Iterable[object], *, bold: bool = False) -> None:
        """Write one row; strings go to the shared table, Decimal/int/float stay numbers."""
        self._row += 1
        row = self._row
        style = ' s="1"' if bold else ""
        cells: list[str] = [f'<row r="{row}">']
        for position, value in enumerate(values):
            if value is None or value == "":
                continue
            ref = f"{column_letters(position)}{row}"
            if isinstance(value, bool):
                cells.append(f'<c r="{ref}" t="b"{style}><v>{int(value)}</v></c>')
            elif isinstance(value, Decimal | int | float):
                cells.append(f'<c r="{ref}"{style}><v>{value}</v></c>')
            else:
                index = self._string(str(value))
                cells.append(f'<c r="{ref}" t="s"{style}><v>{index}</v></c>')
        cells.append("</row>")
        self._sheet.write("".join(cells).encode("utf-8"))

    def close(self) -> None:
        """Finish the sheet and write the package's other parts."""
        self._sheet.write(b"</sheetData></worksheet>")
        self._sheet.close()
        count = len(self._strings)
        with self._archive.open("xl/sharedStrings.xml", "w") as fh:
            fh.write(
                (
                    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                    f'<sst xmlns="{MAIN_NS}" count="{count}" uniqueCount="{count}">'
                ).encode()
            )
            batch: list[str] = []
            for text in self._strings:
                space = ' xml:space="preserve"' if text != text.strip() else ""
                batch.append(f"<si><t{space}>{_clean(text)}</t></si>")
                if len(batch) >= 5000:
                    fh.write("".join(batch).encode("utf-8"))
                    batch.clear()
            fh.write("".join(batch).encode("utf-8"))
            fh.write(b"</sst>")
        self._archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        self._archive.writestr("_rels/.rels", _ROOT_RELS)
        self._archive.writestr(
            "xl/workbook.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheets>'
            f'<sheet name={quoteattr(self._sheet_name)} sheetId="1" r:id="rId1"/>'
            "</sheets></workbook>",
        )
        self._archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        self._archive.writestr("xl/styles.xml", _STYLES)
        self._archive.close()

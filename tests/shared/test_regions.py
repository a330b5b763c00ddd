"""Tests for the packaged region table, its loader and the region scope rule."""

from __future__ import annotations

import csv
import importlib.resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.regions import (
    Region,
    RegionDataError,
    RegionTable,
    canonical_name,
    default_region_table,
    full_code,
    in_scope,
)

JIAOCHENG = "141122"

# Township rows of 表七/1 exactly as printed (domain.md §7.1), brackets and missing suffix included.
TABLE_7_1_TOWNSHIPS = (
    "东坡底乡",
    "庞泉沟镇",
    "（会立）",
    "水峪贯镇",
    "岭底",
    "洪相镇",
    "西社镇",
    "天宁镇",
    "西营镇",
    "夏家营镇",
)

# Current townships with their official codes (infra-notes §6, 民政部 国家地名信息库).
OFFICIAL_TOWNSHIPS = {
    "141122100000": "天宁镇",
    "141122101000": "夏家营镇",
    "141122102000": "西营镇",
    "141122103000": "水峪贯镇",
    "141122104000": "西社镇",
    "141122105000": "庞泉沟镇",
    "141122106000": "洪相镇",
    "141122202000": "东坡底乡",
}


@pytest.fixture(scope="module")
def table() -> RegionTable:
    return RegionTable.load()


def must_get(table: RegionTable, code: str) -> Region:
    region = table.get(code)
    assert region is not None, code
    return region


def _packaged_text() -> str:
    return (importlib.resources.files("shared") / "data" / "regions.csv").read_text("utf-8")


def _data_rows() -> list[dict[str, str]]:
    lines = [line for line in _packaged_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


def test_packaged_file_loads(table: RegionTable) -> None:
    assert len(table) > 30
    county = must_get(table, JIAOCHENG)
    assert (county.name, county.level, county.parent_code, county.status) == (
        "交城县",
        "county",
        "141100",
        "official",
    )


def test_version_is_read_from_the_first_line(table: RegionTable) -> None:
    first_line = _packaged_text().splitlines()[0]
    assert first_line == f"# version: {table.version}"
    assert table.version == "2026.11-1"


def test_codes_are_unique(table: RegionTable) -> None:
    codes = [row["code"] for row in _data_rows()]
    assert len(codes) == len(set(codes)) == len(table)


def test_every_parent_exists_one_level_up(table: RegionTable) -> None:
    for region in table:
        chain = table.parent_chain(region.code)
        assert chain[0] == region
        assert chain[-1].level == "province"
        levels = [r.level for r in reversed(chain)]
        assert levels == ["province", "city", "county", "township", "village"][: len(chain)]


def test_code_forms_follow_the_level(table: RegionTable) -> None:
    for region in table:
        expected = 12 if region.level in ("township", "village") else 6
        assert len(region.code) == expected, region
        assert region.source


@pytest.mark.parametrize("printed", TABLE_7_1_TOWNSHIPS)
def test_every_table_7_1_township_maps_to_one_region(table: RegionTable, printed: str) -> None:
    found = table.find(printed, within=JIAOCHENG, level="township")
    assert len(found) == 1, found
    assert found[0].parent_code == JIAOCHENG


@pytest.mark.parametrize(("code", "name"), OFFICIAL_TOWNSHIPS.items())
def test_current_townships_have_official_codes(table: RegionTable, code: str, name: str) -> None:
    region = table.get(code)
    assert region is not None
    assert (region.name, region.level, region.status) == (name, "township", "official")


def test_former_townships_are_historical(table: RegionTable) -> None:
    for name in ("会立乡", "岭底乡"):
        (region,) = table.find(name, within=JIAOCHENG)
        assert region.status == "historical"
        assert "not verified" in region.source


def test_jiaocheng_has_all_townships_and_no_others(table: RegionTable) -> None:
    townships = table.children(JIAOCHENG)
    assert {t.code for t in townships if t.status == "official"} == set(OFFICIAL_TOWNSHIPS)
    assert len(townships) == len(TABLE_7_1_TOWNSHIPS)


@pytest.mark.parametrize(
    ("code", "name", "city", "province"),
    [
        pytest.param("141122", "交城县", "141100", "140000", id="jiaocheng"),
        pytest.param("500241", "秀山土家族苗族自治县", "500200", "500000", id="xiushan"),
        pytest.param("640423", "隆德县", "640400", "640000", id="longde"),
        pytest.param("433130", "龙山县", "433100", "430000", id="longshan"),
        pytest.param("230126", "巴彦县", "230100", "230000", id="bayan"),
    ],
)
def test_source_document_counties(
    table: RegionTable, code: str, name: str, city: str, province: str
) -> None:
    chain = table.parent_chain(code)
    assert [r.code for r in chain] == [code, city, province]
    assert chain[0].name == name
    assert chain[0].status == "official"


@pytest.mark.parametrize(("township", "minimum"), [("141122100", 3), ("141122101", 3)])
def test_demo_villages(table: RegionTable, township: str, minimum: int) -> None:
    villages = table.villages_of(township)
    assert len(villages) >= minimum
    assert all(v.status == "provisional" and v.source == "demo" for v in villages)


def test_villages_under_at_least_three_townships(table: RegionTable) -> None:
    villages = table.villages_of(JIAOCHENG)
    assert len({v.parent_code for v in villages}) >= 3
    assert all(v.status == "provisional" for v in table.by_level("village"))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("141122100201", "141122100201", id="village"),
        pytest.param("141122100000", "141122100000", id="township-12"),
        pytest.param("141122100", "141122100000", id="township-9"),
        pytest.param("141122", "141122", id="county"),
        pytest.param("141122000000", "141122", id="county-12"),
        pytest.param("14", "140000", id="province-2"),
        pytest.param("1411", "141100", id="city-4"),
        pytest.param("141122100299", None, id="unknown-village"),
        pytest.param("14112210", None, id="8-digits"),
        pytest.param("14112a", None, id="not-digits"),
        pytest.param("", None, id="empty"),
    ],
)
def test_get_accepts_every_code_form(table: RegionTable, code: str, expected: str | None) -> None:
    region = table.get(code)
    assert (region.code if region else None) == expected


def test_navigation(table: RegionTable) -> None:
    village = "141122101202"
    assert [r.level for r in table.parent_chain(village)] == [
        "village",
        "township",
        "county",
        "city",
        "province",
    ]
    township, county = table.township_of(village), table.county_of(village)
    assert township == must_get(table, "141122101000")
    assert county == must_get(table, JIAOCHENG)
    assert table.township_of("141122101") == township
    assert table.township_of(JIAOCHENG) is None
    assert table.county_of("141100") is None
    assert table.is_village(village)
    assert not table.is_village("141122101000")
    assert not table.is_village("999999999999")
    assert [r.code for r in table.children("141122101")] == [
        "141122101201",
        "141122101202",
        "141122101203",
        "141122101204",
    ]
    assert table.villages_of(village) == [table.get(village)]
    assert table.parent_chain("999999") == []
    assert table.children("999999") == []
    assert table.villages_of("999999") == []
    assert "141122" in table
    assert "999999" not in table


# Principals from the contract: village officer (12), township officer (9), county officer (6).
VILLAGE_A = "141122100201"
VILLAGE_B = "141122100202"
OTHER_TOWNSHIP_VILLAGE = "141122101201"


@pytest.mark.parametrize(
    ("scope", "code", "expected"),
    [
        pytest.param(VILLAGE_A, VILLAGE_A, True, id="village-sees-itself"),
        pytest.param(VILLAGE_A, VILLAGE_B, False, id="village-not-neighbour"),
        pytest.param(VILLAGE_A, OTHER_TOWNSHIP_VILLAGE, False, id="village-not-other-township"),
        pytest.param(VILLAGE_A, "141122100", False, id="village-not-its-township"),
        pytest.param(VILLAGE_A, JIAOCHENG, False, id="village-not-its-county"),
        pytest.param("141122100", VILLAGE_A, True, id="township-9-sees-village"),
        pytest.param("141122100", VILLAGE_B, True, id="township-9-sees-other-village"),
        pytest.param("141122100", "141122100000", True, id="township-9-sees-itself-12"),
        pytest.param("141122100", OTHER_TOWNSHIP_VILLAGE, False, id="township-not-other-township"),
        pytest.param("141122100", JIAOCHENG, False, id="township-not-county"),
        pytest.param("141122100000", VILLAGE_A, True, id="township-12-sees-village"),
        pytest.param("141122100000", OTHER_TOWNSHIP_VILLAGE, False, id="township-12-not-other"),
        pytest.param(JIAOCHENG, VILLAGE_A, True, id="county-sees-village"),
        pytest.param(JIAOCHENG, OTHER_TOWNSHIP_VILLAGE, True, id="county-sees-other-township"),
        pytest.param(JIAOCHENG, "141122101", True, id="county-sees-township-9"),
        pytest.param(JIAOCHENG, JIAOCHENG, True, id="county-sees-itself"),
        pytest.param(JIAOCHENG, "141121100201", False, id="county-not-neighbour-county"),
        pytest.param(JIAOCHENG, "500241", False, id="county-not-other-province"),
        pytest.param(JIAOCHENG, "141100", False, id="county-not-its-city"),
        pytest.param("141122000000", VILLAGE_A, True, id="county-12-sees-village"),
        pytest.param("141100", VILLAGE_A, True, id="city-sees-village"),
        pytest.param("141100", "140100", False, id="city-not-other-city"),
        pytest.param("14", VILLAGE_A, True, id="province-2-sees-village"),
        pytest.param("140000", VILLAGE_A, True, id="province-6-sees-village"),
        pytest.param("140000", "500241", False, id="province-not-other-province"),
        pytest.param("", VILLAGE_A, False, id="empty-scope"),
        pytest.param("000000", VILLAGE_A, False, id="zero-scope"),
        pytest.param("1411221002", VILLAGE_A, False, id="10-digit-scope"),
        pytest.param("14112210020X", VILLAGE_A, False, id="non-digit-scope"),
        pytest.param("140022", "140022100201", False, id="gap-in-scope"),
        pytest.param(JIAOCHENG, "", False, id="empty-target"),
        pytest.param(JIAOCHENG, "1411221002", False, id="malformed-target"),
    ],
)
def test_in_scope(scope: str, code: str, expected: bool) -> None:
    assert in_scope(scope, code) is expected


def test_scope_code_is_the_token_form(table: RegionTable) -> None:
    assert must_get(table, VILLAGE_A).scope_code == VILLAGE_A
    assert must_get(table, "141122100000").scope_code == "141122100"
    assert must_get(table, JIAOCHENG).scope_code == JIAOCHENG


@given(st.text(max_size=14), st.text(max_size=14))
def test_in_scope_never_raises(scope: str, code: str) -> None:
    in_scope(scope, code)


@given(st.sampled_from(sorted(r.code for r in RegionTable.load())))
def test_every_ancestor_scope_contains_the_region(code: str) -> None:
    table = default_region_table()
    for ancestor in table.parent_chain(code):
        assert in_scope(ancestor.scope_code, code)
        assert in_scope(ancestor.code, code)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("14", "140000000000", id="province"),
        pytest.param("141122100", "141122100000", id="township"),
        pytest.param("140022", None, id="gap"),
        pytest.param("1411221", None, id="seven-digits"),
        pytest.param("００", None, id="full-width"),
    ],
)
def test_full_code(code: str, expected: str | None) -> None:
    assert full_code(code) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("（会立）", "会立"),
        ("会立乡", "会立"),
        ("天宁镇", "天宁"),
        ("东街社区", "东街"),
        ("镇", "镇"),
    ],
)
def test_canonical_name(name: str, expected: str) -> None:
    assert canonical_name(name) == expected


def test_default_table_is_cached() -> None:
    assert default_region_table() is default_region_table()
    assert default_region_table().version == RegionTable.load().version


HEADER = "code,name,level,parent_code,status,source"
GOOD_ROWS = [
    "140000,山西省,province,,official,test",
    "141100,吕梁市,city,140000,official,test",
    "141122,交城县,county,141100,official,test",
    "141122100000,天宁镇,township,141122,official,test",
    "141122100201,东关村,village,141122100000,provisional,demo",
]


def _file(*rows: str, version: str = "# version: 2099.01-7") -> str:
    return "\n".join([version, "# a comment", HEADER, *rows]) + "\n"


def test_load_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "regions.csv"
    path.write_text(_file(*GOOD_ROWS), encoding="utf-8")
    table = RegionTable.load(path)
    assert table.version == "2099.01-7"
    assert len(table) == 5
    assert table.is_village("141122100201")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(_file(*GOOD_ROWS, version="# no version"), "version", id="no-version"),
        pytest.param(_file(*GOOD_ROWS, GOOD_ROWS[2]), "duplicate", id="duplicate-code"),
        pytest.param(
            _file(*GOOD_ROWS, "141123,文水县,county,141199,official,test"),
            "not in the table",
            id="missing-parent",
        ),
        pytest.param(
            _file(*GOOD_ROWS, "141122101201,某村,village,141122100000,provisional,demo"),
            "prefix",
            id="village-outside-parent",
        ),
        pytest.param(
            _file(*GOOD_ROWS, "141122101000,某镇,township,141100,official,test"),
            "is a city",
            id="parent-wrong-level",
        ),
        pytest.param(
            _file(*GOOD_ROWS, "141122101,某镇,township,141122,official,test"),
            "12 digits",
            id="township-9-digits-in-file",
        ),
        pytest.param(
            _file(*GOOD_ROWS, "141122101000,某镇,county,141100,official,test"),
            "digits",
            id="level-does-not-match-code",
        ),
        pytest.param(
            _file(*GOOD_ROWS, "141122101000,某镇,township,141122,guessed,test"),
            "status",
            id="unknown-status",
        ),
        pytest.param(
            _file(*GOOD_ROWS, "141122101000,某镇,town,141122,official,test"),
            "level",
            id="unknown-level",
        ),
        pytest.param(
            _file(*GOOD_ROWS, "141122101000,某镇,township,141122,official,"),
            "source",
            id="empty-source",
        ),
        pytest.param(
            _file(*GOOD_ROWS, "141122101000,,township,141122,official,test"),
            "name",
            id="empty-name",
        ),
        pytest.param(
            _file(*GOOD_ROWS, "150000,内蒙古自治区,province,140000,official,test"),
            "no parent",
            id="province-with-parent",
        ),
        pytest.param(
            "# version: 1\ncode,name,level\n140000,山西省,province\n",
            "columns",
            id="wrong-columns",
        ),
    ],
)
def test_bad_files_are_refused(text: str, problem: str) -> None:
    with pytest.raises(RegionDataError, match=problem):
        RegionTable.parse(text)

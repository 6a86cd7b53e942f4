from __future__ import annotations

import pytest

from nlp.places import PlaceEntry, PlaceIndex, PlaceMatch, haversine_km, nearest_grid


@pytest.fixture(scope="module")
def index() -> PlaceIndex:
    return PlaceIndex(
        [
            PlaceEntry("x1:筱塘新村", "筱塘新村", ("筱塘小区",), "xiaotang-1"),
            PlaceEntry("x1:筱塘市场", "筱塘市场", (), "xiaotang-1"),
            PlaceEntry("x1:南门路", "南门路1-19号", (), "xiaotang-1"),
            PlaceEntry("x2:南门路", "南门路21-40号", (), "xiaotang-2"),
            PlaceEntry("x2:东区", "筱塘新村东区", (), "xiaotang-2"),
            PlaceEntry("x3:北街", "北街2-8号", (), "xiaotang-3"),
        ]
    )


@pytest.mark.parametrize(
    ("text", "key", "grid", "matched", "detail"),
    [
        ("筱塘新村3号楼2单元电梯坏了", "x1:筱塘新村", "xiaotang-1", "筱塘新村", "3号楼2单元"),
        ("筱塘小区 的 8栋 门口有垃圾", "x1:筱塘新村", "xiaotang-1", "筱塘小区", "8栋"),
        ("筱塘新村东区5幢停水", "x2:东区", "xiaotang-2", "筱塘新村东区", "5幢"),  # longest wins
        ("筱塘市场12号摊位乱扔垃圾", "x1:筱塘市场", "xiaotang-1", "筱塘市场", "12号"),
        ("南门路12号有人乱停车", "x1:南门路", "xiaotang-1", "南门路12号", "12号"),
        ("南门路25号3单元漏水", "x2:南门路", "xiaotang-2", "南门路25号", "25号3单元"),
        ("北街有人打架", "x3:北街", "xiaotang-3", "北街", ""),  # one grid for the street
        ("小塘新村8栋门口有垃圾", "x1:筱塘新村", "xiaotang-1", "小塘新村", "8栋"),  # one-character typo
        ("筱塘新材路灯不亮", "x1:筱塘新村", "xiaotang-1", "筱塘新材", ""),
        ("南門路１２號", "x1:南门路", "xiaotang-1", "南门路12号", "12号"),  # traditional, full-width
    ],
)
def test_find(index: PlaceIndex, text: str, key: str, grid: str, matched: str, detail: str) -> None:
    assert index.find(text) == PlaceMatch(key, grid, matched, detail)


@pytest.mark.parametrize(
    "text",
    [
        "南门路50号",  # outside every range
        "北街12号",  # outside 2-8
        "南门路有人打架",  # street split between two grids: ambiguous
        "我家在别处",
        "塘新",  # too short for fuzzy
        "",
    ],
)
def test_no_match(index: PlaceIndex, text: str) -> None:
    assert index.find(text) is None


def test_names_for_segmenter(index: PlaceIndex) -> None:
    assert {"筱塘新村", "筱塘小区", "南门路", "北街"} <= set(index.names())


def test_nearest_grid() -> None:
    centres = {"a": (25.4310, 119.0070), "b": (25.50, 119.10), "c": (24.0, 118.0)}
    assert nearest_grid(centres, 25.44, 119.01) == "a"
    assert nearest_grid(centres, 25.49, 119.09) == "b"
    assert nearest_grid({}, 25.0, 119.0) is None


def test_haversine() -> None:
    assert haversine_km(0, 0, 0, 0) == 0
    # one degree of latitude is about 111 km
    assert 110.5 < haversine_km(25.0, 119.0, 26.0, 119.0) < 111.5

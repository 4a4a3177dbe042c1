"""The landing-order picture: well-formed, deterministic SVG that shows rows and misplaced CLs.

Why: the picture is committed beside DEPLOYING.md and compared by ``--check``,
so its bytes must depend on the rows only; and it is only useful when every
row has its colour and boundary, and every out-of-order CL its ring.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rollsafe.table import rows_from
from rollsafe.table._svg import PALETTE, colour, nice_ticks, render_svg
from tests.test_rows import history_of, live
from tests.test_table import COMPAT, SPECS

NS = "{http://www.w3.org/2000/svg}"


def picture(*extra: tuple[int, int]) -> str:
    return render_svg(rows_from(history_of(*SPECS, *extra), COMPAT, {}))


def paths(text: str) -> dict[str, int]:
    """Stroke colour -> number of dots its path draws."""
    root = ET.fromstring(text.encode())
    return {p.get("stroke", ""): p.get("d", "").count("M") for p in root.iter(f"{NS}path")}


def test_picture_is_well_formed_and_deterministic() -> None:
    text = picture()
    root = ET.fromstring(text.encode())
    assert root.tag == f"{NS}svg"
    assert (root.get("width"), root.get("height")) == ("960", "540")
    assert root.find(f"{NS}title") is not None
    assert text == picture()
    assert "<script" not in text and "href" not in text


def test_every_cl_is_a_dot_in_its_rows_colour_and_misplaced_ones_are_ringed() -> None:
    dots = paths(picture())
    # Row 0: 1549, 1567, 1552, 1560; row 1: 1565, 1556, 1570; row 2 (open): 1580.
    assert dots[colour(0)] == 4 and dots[colour(1)] == 3 and dots[colour(2)] == 1
    assert dots["#222222"] == 4  # 1567, 1560 in row 1's range; 1565, 1556 in row 0's
    root = ET.fromstring(picture().encode())
    dashed = [line for line in root.iter(f"{NS}line") if line.get("stroke-dasharray")]
    assert len(dashed) == 2  # one boundary before each row but the first
    assert "Landing order of 8 CLs in 3 rows, 4 out of order" in picture()


def test_cls_landing_in_the_open_row_leave_the_picture_alone() -> None:
    assert picture((1590, 3), (1558, 3)) == picture()


def test_dates_label_the_landing_axis() -> None:
    text = render_svg(
        rows_from(history_of(*[(n, 1 + n // 40) for n in range(1, 200)]), live(*range(1, 6)), {})
    )
    assert "2024-01-01" in text and "2024-01-07" in text  # the open row: its first CL only
    assert "landing order (date landed, UTC)" in text and ">CL number<" in text


def test_many_rows_cycle_colours_and_drop_the_legend() -> None:
    specs = [(n, 1 + n // 10) for n in range(1, 300)]
    text = render_svg(rows_from(history_of(*specs), live(*range(1, 31)), {}))
    assert "Colours cycle by row" in text
    assert set(paths(text)) == set(PALETTE)
    assert colour(0) != colour(1) and colour(9) != colour(10)


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(996.0, 1604.0) == [1000, 1200, 1400, 1600]
    assert nice_ticks(0.5, 8.5) == [2, 4, 6, 8]
    assert nice_ticks(0.0, 49.0) == [0, 10, 20, 30, 40]
    assert nice_ticks(5.0, 5.0) == [5.0]


def test_no_rows_still_gives_a_picture() -> None:
    text = render_svg(())
    assert ET.fromstring(text.encode()).tag == f"{NS}svg"
    assert "No schema has shipped yet" in text

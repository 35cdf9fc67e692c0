"""The console's pure helpers: SVG charts (ui/admin/charts.py), notice diffs (ui/admin/diff.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from consentry.ui.admin.charts import Series, axis, bar_chart, line_chart
from consentry.ui.admin.diff import diff_text

SVG = "{http://www.w3.org/2000/svg}"


def test_axes_end_on_whole_steps() -> None:
    assert axis(0) == (1.0, 1.0)
    assert axis(3) == (3.0, 1.0)
    assert axis(7) == (8.0, 2.0)
    assert axis(10) == (10.0, 5.0)
    assert axis(1234) == (1500.0, 500.0)


def test_a_line_chart_is_an_accessible_image_with_its_table() -> None:
    chart = line_chart(
        "c1",
        "Opt-in <rate>",
        ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"],
        [Series("Rate", (0.5, None, 0.25, 1.0))],
        percent=True,
    )
    root = ET.fromstring(str(chart.svg))
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c1-t c1-d"
    assert root.find(f"{SVG}title").text == "Opt-in <rate>"  # escaped in the markup
    assert "from 50 % to 100 %" in root.find(f"{SVG}desc").text
    # The missing day breaks the line: a lone point, then a line of two.
    assert len(root.findall(f"{SVG}circle")) == 1 and len(root.findall(f"{SVG}polyline")) == 1
    assert chart.columns == ("Day", "Rate")
    assert chart.rows[1] == ("2026-01-02", "—") and chart.rows[3] == ("2026-01-04", "100 %")
    assert "style=" not in str(chart.svg)  # colours are classes: the CSP allows no inline style


def test_a_bar_chart_has_a_group_per_category_and_totals() -> None:
    chart = bar_chart(
        "c2",
        "Per purpose",
        ["Analytics", "A purpose with a very long name indeed"],
        [Series("Grants", (3.0, 0.0)), Series("Refusals", (1.0, 2.0))],
    )
    root = ET.fromstring(str(chart.svg))
    assert len(root.findall(f"{SVG}rect")) == 2 + 4  # legend + bars
    labels = [t.text for t in root.findall(f"{SVG}text")]
    assert "A purpose with a very…" in labels
    assert chart.rows == (
        ("Analytics", "3", "1", "4"),
        ("A purpose with a very long name indeed", "0", "2", "2"),
    )
    assert "Analytics: 3 grants, 1 refusals" in chart.description


def test_empty_charts_say_so() -> None:
    assert bar_chart("e", "Nothing", [], [Series("Grants", ())]).description == "Nothing: no data."
    assert line_chart("f", "Nothing", [], [Series("All", ())]).rows == ()


def test_a_diff_marks_words_added_and_removed() -> None:
    diff = diff_text("We measure the audience.", "We measure and sell the audience.")
    assert [(s.kind, s.text) for s in diff.segments] == [
        ("same", "We measure"),
        ("added", " and sell"),
        ("same", " the audience."),
    ]
    assert (diff.words_added, diff.words_removed, diff.changed) == (2, 0, True)
    assert not diff_text("Same.", "Same.").changed


@given(st.text(max_size=80), st.text(max_size=80))
def test_a_diff_rebuilds_both_texts(old: str, new: str) -> None:
    diff = diff_text(old, new)
    assert "".join(s.text for s in diff.segments if s.kind != "added") == old
    assert "".join(s.text for s in diff.segments if s.kind != "removed") == new

"""The server-rendered SVG charts: well-formed, escaped, left-to-right inside RTL pages, gaps not bridged."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from optria.web.charts import Line, Series, line_chart, nice_ticks, sparkline

NS = "{http://www.w3.org/2000/svg}"


def parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def test_line_chart_draws_band_line_limits_and_axes() -> None:
    points = [(1000.0 + 60 * i, 2.0 + i / 10) for i in range(10)]
    band = [(x, y - 0.2, y + 0.2) for x, y in points]
    svg = parse(line_chart([Series(points, band=band)], x_range=(1000, 1600), title="Trend <b>x</b>",
                           lines=[Line(7.1, "warn", "Warning"), Line(11.0, "crit", "Critical")], gap=120))
    assert svg.get("dir") == "ltr" and svg.get("role") == "img" and svg.get("aria-label") == "Trend <b>x</b>"
    assert svg.find(f"{NS}title").text == "Trend <b>x</b>"          # escaped in the markup, intact as text
    assert len(svg.findall(f"{NS}polyline")) == 1 and len(svg.findall(f"{NS}polygon")) == 1
    limits = [e for e in svg.findall(f"{NS}line") if "limit" in e.get("class", "")]
    assert [e.get("class") for e in limits] == ["limit limit-warn", "limit limit-crit"]
    assert float(limits[1].get("y1")) < float(limits[0].get("y1"))   # higher value, higher on the chart
    labels = [t.text for t in svg.findall(f"{NS}text")]
    assert "Warning" in labels and "Critical" in labels and any(":" in (t or "") for t in labels)


def test_gaps_in_the_data_are_not_drawn_over() -> None:
    points = [(0.0, 1.0), (60.0, 2.0), (1000.0, 3.0), (1060.0, 2.0), (3000.0, 1.0)]
    svg = parse(line_chart([Series(points)], x_range=(0, 3600), title="t", gap=120))
    assert len(svg.findall(f"{NS}polyline")) == 2 and len(svg.findall(f"{NS}circle")) == 1


def test_empty_chart_says_so_and_text_is_escaped() -> None:
    markup = str(line_chart([Series([])], x_range=(0, 10), title="a&b", empty_text="لا توجد بيانات <في> الفترة"))
    svg = parse(markup)
    assert "&lt;في&gt;" in markup and svg.find(f"{NS}text[@class='empty']").text == "لا توجد بيانات <في> الفترة"
    assert svg.findall(f"{NS}polyline") == []


def test_sparkline() -> None:
    svg = parse(sparkline([1, 2, 3, 2], title="spark", lines=[Line(2.5, "warn")]))
    assert svg.get("dir") == "ltr" and len(svg.findall(f"{NS}polyline")) == 1 and len(svg.findall(f"{NS}line")) == 1
    assert parse(sparkline([1], title="one")).findall(f"{NS}polyline") == []


@pytest.mark.parametrize("lo,hi", [(0, 100), (2.13, 2.31), (-5, 5), (1000, 1250), (7, 7)])
def test_nice_ticks_cover_the_range_with_round_steps(lo, hi) -> None:
    ticks = nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 8
    assert ticks[0] >= lo - 1e-9 and ticks[-1] <= max(hi, lo + abs(lo) or 1) + 1e-9
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1

"""Sparklines: points stay in the box, gaps split the line, labels are escaped."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from connectors.server.sparkline import points, sparkline

series = st.lists(
    st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False)), max_size=40
)


@given(series)
def test_every_point_lies_inside_the_box(values: list[float | None]) -> None:
    for segment in points(values, width=100, height=20):
        for x, y in segment:
            assert 0 <= x <= 100 + 1e-6
            assert -1e-6 <= y <= 20 + 1e-6


@given(series)
def test_each_present_value_gets_exactly_one_point(values: list[float | None]) -> None:
    drawn = sum(len(s) for s in points(values, width=100, height=20))
    assert drawn == sum(1 for v in values if v is not None and math.isfinite(v))


def test_a_gap_splits_the_line_into_segments() -> None:
    assert len(points([1.0, 2.0, None, 3.0, 4.0], width=10, height=10)) == 2


def test_the_highest_value_is_at_the_top_and_zero_at_the_bottom() -> None:
    ((first, second),) = points([0.0, 5.0], width=10, height=10)
    assert first == (0.0, 10.0)
    assert second == (10.0, 0.0)


def test_the_label_is_escaped_and_no_data_draws_an_empty_frame() -> None:
    svg = str(sparkline([None, None], label='<script>"x"</script>'))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "polyline" not in svg
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")

"""What a report shows and leaves out: legends that leave the data visible,
charts a sweep cannot answer left undrawn, no stale picture beside a report."""

from __future__ import annotations

import pytest

from reports import data, document, sweep_charts
from reports.figures import LEGEND_INSIDE_MAX, Chart, legend, new_figure
from tests.sweep_builder import build_sweep


def _figure_with_series(count: int):
    figure = new_figure()
    axes = figure.add_subplot()
    for index in range(count):
        axes.plot([1, 2], [index, index + 1], label=f"series {index}")
    return figure, axes


def test_a_short_legend_stays_inside_its_plot():
    figure, axes = _figure_with_series(3)
    height = figure.get_size_inches()[1]
    legend(axes)
    assert axes.get_legend() is not None and not figure.legends
    assert figure.get_size_inches()[1] == height


def test_a_long_legend_goes_below_the_figure_which_grows_to_hold_it():
    figure, axes = _figure_with_series(LEGEND_INSIDE_MAX + 12)
    height = figure.get_size_inches()[1]
    legend(axes)
    assert axes.get_legend() is None
    (below,) = figure.legends
    assert len(below.get_texts()) == LEGEND_INSIDE_MAX + 12
    assert figure.get_size_inches()[1] > height


def test_panels_sharing_series_share_one_long_legend():
    figure = new_figure(rows=2)
    panels = figure.subplots(1, 2)
    for axes in panels:
        for index in range(LEGEND_INSIDE_MAX + 1):
            axes.plot([1, 2], [index, index], label=f"series {index}")
    legend(*panels)
    (below,) = figure.legends
    assert len(below.get_texts()) == LEGEND_INSIDE_MAX + 1  # not twice over


def test_a_chart_skipped_now_leaves_no_picture_from_an_earlier_report(tmp_path):
    charts = tmp_path / document.CHART_FOLDER
    charts.mkdir()
    (charts / "throughput-vs-rate.png").write_bytes(b"an older report's chart")
    (charts / "notes.png").write_bytes(b"not a chart of the report")
    skipped = Chart(
        "throughput-vs-rate", "Throughput", "?", "sweep.json", skipped="not varied"
    )
    document.write(tmp_path, "title", [document.ChartBlock(skipped, "wardcast ...")])
    assert not (charts / "throughput-vs-rate.png").exists()
    assert (charts / "notes.png").exists()


@pytest.mark.slow
def test_a_rate_axis_of_one_number_and_max_draws_no_rate_charts(
    tmp_path_factory, scenarios
):
    folder = build_sweep(
        tmp_path_factory.mktemp("sweeps") / "one-rate",
        name="one-rate",
        scenario_file=scenarios["scale"],
        axes={"rate": [2000, "max"], "subscribers": [1, 2]},
        with_baseline=False,
    )
    charts = {chart.key: chart for chart, _ in sweep_charts.draw(data.load(folder))}
    assert "two or more numbers" in charts["throughput-vs-rate"].skipped
    assert "two or more numbers" in charts["drops-vs-rate"].skipped
    assert charts["latency-vs-subscribers"].drawn
    assert not charts["filtering-cost"].drawn

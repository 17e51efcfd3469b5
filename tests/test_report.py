"""Reports drawn from real results on disk: what they show is what the files hold."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from reports import data, run_charts, sweep_charts
from reports.checks import SATURATED_LAG_US, run_warnings
from sim.daily import DailyLatency
from sim.histogram import Histogram

pytestmark = pytest.mark.slow

RUN_CHART_KEYS = {"latency-percentiles", "subscriber-latency", "per-day", "resources"}


def _report(wardcast, folder: Path) -> tuple[str, str]:
    wardcast("report", str(folder), check=True)
    return (folder / "report.html").read_text(), (folder / "report.md").read_text()


def _images(html: str) -> dict[str, bytes]:
    """Each chart's embedded PNG, by chart key."""
    found = re.findall(
        r'<figure data-chart="([^"]+)">.*?src="data:image/png;base64,([^"]+)"', html
    )
    return {key: base64.b64decode(payload) for key, payload in found}


def test_report_of_run_with_drops_shows_its_drop_count_in_the_warnings(
    wardcast, drops_run
):
    result = json.loads((drops_run / "result.json").read_text())
    dropped = result["totals"]["dropped"]
    html, markdown = _report(wardcast, drops_run)
    warnings = html.split('id="warnings"', 1)[1].split("</div>", 1)[0]
    assert f"{dropped:,} updates dropped" in warnings
    assert html.index('id="warnings"') < html.index("<figure")
    assert f"{dropped:,} updates dropped" in markdown.split("## ", 1)[0]


def test_per_day_drops_add_up_to_the_run_total(drops_run):
    run = data.load(drops_run)
    dropped, expected = run_charts.drops_per_day(run)
    assert int(dropped.sum()) == run.totals["dropped"]
    assert int(expected.sum()) == run.totals["expected"]


def test_per_day_chart_title_states_the_drop_count_on_disk(drops_run):
    run = data.load(drops_run)
    assert run.totals["dropped"] > 0
    figure = run_charts.per_day(run)
    titles = [axes.get_title() for axes in figure.axes]
    expected = f"{run.totals['dropped']:,} of {run.totals['expected']:,}"
    assert any(title.startswith(expected) for title in titles), titles


def test_clean_run_report_has_no_warnings_and_every_run_chart(wardcast, clean_run):
    html, markdown = _report(wardcast, clean_run)
    assert 'id="warnings"' not in html
    assert "No warnings" in markdown
    assert set(_images(html)) == RUN_CHART_KEYS
    for key in RUN_CHART_KEYS:
        assert (clean_run / "charts" / f"{key}.png").is_file()
        assert f"(charts/{key}.png)" in markdown


@pytest.mark.parametrize("no_report", [False, True])
def test_wardcast_run_writes_its_report_unless_told_not_to(
    wardcast, tmp_path, no_report
):
    options = ["--no-report"] if no_report else []
    out = tmp_path / "run"
    wardcast(
        "run", "--patients", "5", "--days", "1", "--rate", "max",
        "--subscriber", "administration", *options, "--out", str(out), check=True,
    )  # fmt: skip
    assert (out / "result.json").is_file()
    assert (out / "report.html").is_file() is not no_report
    assert (out / "report.md").is_file() is not no_report


def test_latency_plot_follows_the_histogram_on_disk(clean_run):
    run = data.load(clean_run)
    raw = json.loads((clean_run / "result.json").read_text())
    histogram = Histogram.from_dict(raw["histograms"]["from_intended"])
    figure = run_charts.latency_percentiles(run)
    line = figure.axes[0].get_lines()[0]
    assert len(line.get_ydata()) == len(raw["histograms"]["from_intended"]["slots"])
    assert max(line.get_ydata()) == pytest.approx(histogram.max / 1000.0)


def test_subscriber_chart_plots_each_subscribers_recorded_p99(clean_run):
    run = data.load(clean_run)
    figure = run_charts.subscriber_latency(run)
    p99 = [line for line in figure.axes[0].get_lines() if line.get_label() == "p99"][0]
    assert list(p99.get_ydata()) == pytest.approx(
        [s.latency_us["p99"] for s in run.reported]
    )


def test_reproduce_scenario_file_runs_the_same_scenario(wardcast, clean_run, tmp_path):
    _report(wardcast, clean_run)
    again = tmp_path / "again"
    wardcast(
        "run", "--scenario", str(clean_run / "scenario.toml"), "--no-report",
        "--out", str(again), check=True,
    )  # fmt: skip
    before = json.loads((clean_run / "result.json").read_text())["scenario"]
    after = json.loads((again / "result.json").read_text())["scenario"]
    assert after == before


def test_report_of_missing_folder_is_one_line_and_status_2(wardcast, tmp_path):
    completed = wardcast("report", str(tmp_path))
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "neither result.json nor sweep.json" in completed.stderr


def test_report_of_truncated_result_is_one_line_and_status_2(wardcast, tmp_path):
    (tmp_path / "result.json").write_text('{"schema": "wardcast.res')
    completed = wardcast("report", str(tmp_path))
    assert completed.returncode == 2
    assert "not valid JSON" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_daily_latency_summary_matches_the_values_recorded():
    daily = DailyLatency()
    values = np.arange(1, 1001, dtype=np.int64) * 1000  # 1 µs … 1 ms, on day 0
    daily.record(np.zeros(1000, dtype=np.int64), values)
    daily.record(np.array([2]), np.array([5_000_000]))
    day0, day1, day2 = DailyLatency.from_dict(daily.to_dict()).summary()
    assert day0["count"] == 1000 and day1["count"] == 0 and day2["count"] == 1
    assert day0["p50"] == pytest.approx(500.0, rel=0.07)
    assert day0["p99"] == pytest.approx(990.0, rel=0.07)
    assert day0["max"] == 1000.0 and day2["max"] == 5000.0


def test_drops_warning_names_warm_up_when_the_first_day_dropped(drops_run):
    run = data.load(drops_run)
    dropped, _ = run_charts.drops_per_day(run)
    texts = [w.text for w in run_warnings(run)]
    assert any("during warm-up" in t for t in texts) == bool(dropped[0])


def test_rate_sweep_draws_throughput_and_drops_and_skips_what_it_did_not_vary(
    rate_sweep,
):
    sweep = data.load(rate_sweep)
    charts = {chart.key: chart for chart, _ in sweep_charts.draw(sweep)}
    assert charts["throughput-vs-rate"].drawn
    assert charts["drops-vs-rate"].drawn
    assert (
        "does not vary subscriber sockets" in charts["latency-vs-subscribers"].skipped
    )
    assert not charts["filtering-cost"].drawn


def test_drops_chart_plots_the_dropped_share_each_point_recorded(rate_sweep):
    sweep = data.load(rate_sweep)
    drawn = sweep_charts.drops_vs_rate(sweep)
    plotted = {
        bars.get_label(): dict(
            zip(bars.lines[0].get_xdata(), bars.lines[0].get_ydata(), strict=True)
        )
        for bars in drawn.figure.axes[0].containers
    }
    for point in sweep.done:
        summary = point.summary
        share = summary["dropped"] / summary["expected"] * 100
        label = f"hwm={point.params['hwm']}"
        assert plotted[label][point.params["rate"]] == pytest.approx(share)
    assert any(p.summary["dropped"] > 0 for p in sweep.done)


def test_scale_sweep_draws_latency_against_patients_and_subscribers(scale_sweep):
    sweep = data.load(scale_sweep)
    charts = {chart.key: chart for chart, _ in sweep_charts.draw(sweep)}
    assert charts["latency-vs-subscribers"].drawn
    assert charts["latency-vs-patients"].drawn
    assert "does not vary the offered rate" in charts["throughput-vs-rate"].skipped
    drawn = sweep_charts.latency_vs_patients(sweep)
    baseline = [
        line for line in drawn.figure.axes[0].get_lines()
        if line.get_label() == "raw pyzmq p50"
    ]  # fmt: skip
    assert baseline[0].get_ydata()[0] == sweep.baseline.latency_us["p50"]


def test_filtering_chart_plots_cpu_per_message_of_both_sides(filtering_sweep):
    sweep = data.load(filtering_sweep)
    drawn = sweep_charts.filtering_cost(sweep)
    labels = {bars.get_label() for bars in drawn.figure.axes[0].containers}
    assert {"publisher side", "subscriber side"} <= labels
    rows = {(row[0], row[1]): row[2] for row in drawn.table.rows}
    for point in sweep.done:
        value = point.summary["publisher_cpu_us_per_message"]
        subscriptions = f"{point.params['subscriptions']:,}"
        assert rows[("publisher side", subscriptions)] == f"{value:.2f}"


def test_sweep_report_lists_every_point_and_embeds_every_drawn_chart(
    wardcast, rate_sweep
):
    html, markdown = _report(wardcast, rate_sweep)
    sweep = data.load(rate_sweep)
    for point in sweep.points:
        assert f"| {point.id} |" in markdown
    drawn = {chart.key for chart, _ in sweep_charts.draw(sweep) if chart.drawn}
    images = _images(html)
    assert set(images) == drawn
    for payload in images.values():
        assert matplotlib.image.imread(io.BytesIO(payload), format="png").shape[1] > 500
    assert "Not drawn: this sweep does not vary subscriber sockets" in markdown
    with_drops = [p.id for p in sweep.done if p.summary["dropped"]]
    warnings = markdown.split("## Sweep and machine", 1)[0]
    assert f"updates dropped in {len(with_drops)} points ({with_drops[0]}" in warnings
    assert f"wardcast sweep {sweep.scenario_file}" in markdown


def test_report_of_a_publisher_offered_more_than_it_can_send_warns_saturated(
    wardcast, tmp_path
):
    # Ten million updates a second is beyond any Python publisher, so most of
    # 40,000 updates leave well behind their intended times.
    out = tmp_path / "saturated"
    wardcast(
        "run", "--patients", "10000", "--days", "2", "--rate", "10000000",
        "--hwm", "0", "--subscriber", "administration", "--out", str(out),
        check=True,
    )  # fmt: skip
    lag = json.loads((out / "result.json").read_text())["publisher"]["lag_us"]
    assert lag["p50"] > SATURATED_LAG_US
    markdown = (out / "report.md").read_text()
    warnings = markdown.split("## ", 1)[0]
    assert f"more than {lag['p50']:,.0f} µs behind schedule" in warnings
    assert "saturated publisher" in warnings


def test_resources_chart_draws_each_process_cpu_and_memory_on_disk(clean_run):
    raw = json.loads((clean_run / "result.json").read_text())
    figure = run_charts.resources(data.load(clean_run))
    cpu_axes, memory_axes = figure.axes[:2]
    running = [bar.get_width() for bar in cpu_axes.containers[0]]
    memory = [bar.get_width() for bar in memory_axes.containers[0]]
    publisher = raw["publisher"]
    subscribers = [s for s in raw["subscribers"] if s["status"] == "reported"]
    assert running == pytest.approx(
        [publisher["cpu_seconds"]] + [s["cpu_seconds"] for s in subscribers]
    )
    assert memory == pytest.approx(
        [publisher["max_rss_bytes"] / 2**20]
        + [s["max_rss_bytes"] / 2**20 for s in subscribers]
    )

"""Charts of one run, drawn from its result.json.

latency-percentiles   the merged latency histogram as a percentile plot
subscriber-latency    p50 / p99 / p99.9 / max of every subscriber
per-day               latency and drops per simulated day
resources             CPU time and peak memory of every process
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports.data import RunResult
from reports.figures import (
    COLOURS,
    Chart,
    Skip,
    new_figure,
    nines,
    nines_axis,
    png_of,
    style,
    thousands,
)
from sim.daily import DailyLatency
from sim.histogram import Histogram

# Above this many subscribers their names no longer fit under the axis: they
# are drawn by rank instead.
NAMED_SUBSCRIBERS = 30
PERCENTILE_NAMES = {"p50": "p50", "p99": "p99", "p999": "p99.9", "max": "max"}
# Distinct shapes, so percentiles that coincide (few updates) stay visible.
MARKERS = {"p50": "o", "p99": "s", "p999": "^", "max": "x"}


def draw(run: RunResult) -> list[Chart]:
    """Every chart of a run, each drawn or skipped with the reason."""
    return [_chart(spec, run) for spec in RUN_CHARTS]


def _chart(spec: tuple, run: RunResult) -> Chart:
    key, title, question, source, painter = spec
    try:
        figure = painter(run)
    except Skip as reason:
        return Chart(key, title, question, source, skipped=str(reason))
    return Chart(key, title, question, source, png=png_of(figure))


def latency_percentiles(run: RunResult) -> Figure:
    if run.from_intended.count == 0:
        raise Skip("no update was delivered, so there is no latency to plot")
    figure = new_figure()
    axes = figure.add_subplot()
    top = 0.0
    for label, histogram, colour in (
        ("from intended send time", run.from_intended, COLOURS[0]),
        ("from actual send time", run.from_actual, COLOURS[1]),
    ):
        if histogram.count == 0:
            continue
        percentiles, values_us = _curve(histogram)
        axes.step(
            nines(percentiles), values_us, where="post", label=label, color=colour
        )
        top = max(top, float(percentiles[-1]))
    nines_axis(axes, top)
    axes.set_yscale("log")
    thousands(axes)
    style(
        axes,
        xlabel="percentile (log scale of nines)",
        ylabel="one-way latency (µs, log)",
        title=f"Latency distribution, {run.from_intended.count:,} updates delivered",
    )
    axes.legend(fontsize=10)
    return figure


def _curve(histogram: Histogram) -> tuple[np.ndarray, np.ndarray]:
    """Each occupied slot at the percentile halfway through its own values,
    so no point sits at 100% (infinitely far out on the nines scale)."""
    slots = np.flatnonzero(histogram.counts)
    counts = histogram.counts[slots]
    midpoint = (np.cumsum(counts) - counts / 2.0) / histogram.count * 100.0
    _, values = histogram.percentile_curve(scale=1000.0)
    return midpoint, np.maximum(np.asarray(values), 1e-3)


def subscriber_latency(run: RunResult) -> Figure:
    reported = [s for s in run.reported if s.latency_us and s.received]
    if not reported:
        raise Skip("no subscriber reported a latency")
    figure = new_figure()
    axes = figure.add_subplot()
    positions = np.arange(len(reported))
    for (key, label), colour in zip(PERCENTILE_NAMES.items(), COLOURS, strict=False):
        values = [max(s.latency_us[key], 1e-3) for s in reported]  # type: ignore[index]
        axes.plot(
            positions,
            values,
            MARKERS[key],
            label=label,
            color=colour,
            markersize=8 if key == "p50" else 6,
            fillstyle="none" if key in ("p99", "p999") else "full",
        )
    axes.set_yscale("log")
    thousands(axes)
    if len(reported) <= NAMED_SUBSCRIBERS:
        axes.set_xticks(positions)
        axes.set_xticklabels([s.name for s in reported], rotation=30, ha="right")
        xlabel = "subscriber"
    else:
        xlabel = "subscriber (in the order of the run)"
    style(
        axes,
        xlabel=xlabel,
        ylabel="latency from intended send (µs, log)",
        title="Latency percentiles per subscriber",
    )
    axes.legend(fontsize=10, ncols=4)
    return figure


def per_day(run: RunResult) -> Figure:
    days = int(run.scenario["days"])
    reported = run.reported
    if not reported or days < 1:
        raise Skip("no subscriber reported, so there is nothing per day")
    figure = new_figure(rows=2)
    latency_axes, drop_axes = figure.subplots(2, 1, sharex=True)
    _daily_latency(latency_axes, merged_daily(run))
    style(
        latency_axes, xlabel="", ylabel="latency (µs, log)", title="Per simulated day"
    )
    style(drop_axes, xlabel="simulated day", ylabel="updates dropped")
    try:
        dropped, expected = drops_per_day(run)
    except Skip as reason:
        drop_axes.text(
            0.5,
            0.5,
            f"drops per day unknown: {reason}",
            ha="center",
            transform=drop_axes.transAxes,
        )
        return figure
    x = np.arange(1, days + 1)
    drop_axes.bar(x, dropped, color=COLOURS[1], label="dropped")
    drop_axes.set_ylim(bottom=0, top=max(1, int(dropped.max()) * 1.15))
    drop_axes.set_title(
        f"{int(dropped.sum()):,} of {int(expected.sum()):,} expected updates dropped",
        fontsize=10,
    )
    if days <= 31:
        drop_axes.set_xticks(x)
    return figure


def _daily_latency(axes: Axes, daily: DailyLatency | None) -> None:
    if daily is None:
        axes.text(
            0.5,
            0.5,
            "latency per day not recorded in this result",
            ha="center",
            transform=axes.transAxes,
        )
        return
    summary = daily.summary()
    x = np.arange(1, len(summary) + 1)
    for key, colour in zip(("p50", "p99", "max"), COLOURS, strict=False):
        values = [max(day[key], 1e-3) for day in summary]  # type: ignore[literal-required]
        axes.plot(
            x, values, MARKERS[key] + "-", label=key, color=colour, fillstyle="none"
        )
    axes.set_yscale("log")
    thousands(axes)
    axes.legend(fontsize=10, ncols=3)


def merged_daily(run: RunResult) -> DailyLatency | None:
    records = [s.latency_per_day for s in run.reported if s.latency_per_day]
    if not records:
        return None
    merged = DailyLatency()
    for record in records:
        merged.merge(record)
    return merged


def drops_per_day(run: RunResult) -> tuple[np.ndarray, np.ndarray]:
    """Dropped and expected updates per simulated day, over every subscriber.

    Expected per day comes from the schedule (every followed patient gets
    `updates_per_day` updates a day); it holds only when the publisher sent
    its whole schedule, so an aborted publisher has no per-day drops."""
    days, per_day = int(run.scenario["days"]), int(run.scenario["updates_per_day"])
    if run.publisher.aborted or run.published != int(run.scenario["messages"]):
        raise Skip("the publisher did not send its whole schedule")
    expected = np.zeros(days, dtype=np.int64)
    received = np.zeros(days, dtype=np.int64)
    for entry in run.reported:
        expected += entry.topics * per_day
        counts = np.asarray(entry.received_per_day[:days], dtype=np.int64)
        received[: len(counts)] += counts
    return np.maximum(expected - received, 0), expected


def resources(run: RunResult) -> Figure:
    rows = _processes(run)
    if not rows:
        raise Skip("no process reported its CPU time or memory")
    figure = new_figure(height=max(3.5, 1.2 + 0.35 * len(rows)))
    cpu_axes, memory_axes = figure.subplots(1, 2, sharey=True)
    names = [name for name, *_ in rows]
    positions = np.arange(len(rows))
    running = [run_cpu for _, run_cpu, _, _ in rows]
    start_up = [max(total - run_cpu, 0.0) for _, run_cpu, total, _ in rows]
    cpu_axes.barh(positions, running, color=COLOURS[0], label="during the run")
    cpu_axes.barh(
        positions, start_up, left=running, color="#aec7e8", label="start-up and rest"
    )
    cpu_axes.set_yticks(positions)
    cpu_axes.set_yticklabels(names)
    cpu_axes.invert_yaxis()
    cpu_axes.legend(fontsize=9)
    style(cpu_axes, xlabel="CPU time, user + system (s)", ylabel="process")
    memory_axes.barh(positions, [rss / 2**20 for *_, rss in rows], color=COLOURS[2])
    style(memory_axes, xlabel="peak resident memory (MiB)", ylabel="")
    figure.suptitle("CPU and memory per process", fontsize=12)
    return figure


def _processes(run: RunResult) -> list[tuple[str, float, float, float]]:
    """(name, CPU during the run, CPU in all, peak RSS) of each process."""
    rows = []
    publisher = run.publisher
    if publisher.cpu_seconds_total is not None and publisher.max_rss_bytes:
        rows.append(
            (
                "publisher",
                float(publisher.cpu_seconds or 0.0),
                float(publisher.cpu_seconds_total),
                float(publisher.max_rss_bytes),
            )
        )
    seen: dict[int | None, list[str]] = {}
    figures = {}
    for entry in run.reported:
        if entry.cpu_seconds_total is None or entry.max_rss_bytes is None:
            continue
        seen.setdefault(entry.process, []).append(entry.name)
        figures[entry.process] = entry
    for process, names in seen.items():
        entry = figures[process]
        label = names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}"
        rows.append(
            (
                label,
                float(entry.cpu_seconds or 0.0),
                float(entry.cpu_seconds_total or 0.0),
                float(entry.max_rss_bytes or 0),
            )
        )
    return rows


RUN_CHARTS: tuple[tuple[str, str, str, str, Callable[[RunResult], Figure]], ...] = (
    (
        "latency-percentiles",
        "Latency distribution",
        "How long do updates take, and how bad is the tail?",
        "result.json: histograms.from_intended, histograms.from_actual",
        latency_percentiles,
    ),
    (
        "subscriber-latency",
        "Latency per subscriber",
        "Is any subscriber served worse than the others?",
        "result.json: subscribers[].latency_us",
        subscriber_latency,
    ),
    (
        "per-day",
        "Latency and drops per simulated day",
        "Does the run degrade as the days go by, or drop during warm-up?",
        "result.json: subscribers[].latency_per_day, received_per_day, topics;"
        " scenario.days, updates_per_day",
        per_day,
    ),
    (
        "resources",
        "CPU and memory per process",
        "What does each process cost?",
        "result.json: publisher.cpu_seconds, max_rss_bytes;"
        " subscribers[].cpu_seconds, cpu_seconds_total, max_rss_bytes",
        resources,
    ),
)

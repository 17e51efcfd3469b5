"""Charts of a sweep, drawn from its sweep.json and its points' result.json.

    latency-vs-subscribers  p50 / p99 / p99.9 / max against subscriber sockets
    latency-vs-patients     the same against patients
    throughput-vs-rate      achieved against offered rate, saturation marked
    drops-vs-rate           share of updates dropped against rate, per HWM
    filtering-cost          CPU per message against subscriptions per
                            subscriber, publisher side and subscriber side

Each point is the median of its repeats, with a bar from the lowest to the
highest repeat. A chart whose quantity the sweep did not vary is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports.data import Sweep, SweepPoint
from reports.document import Table
from reports.figures import (
    COLOURS,
    Chart,
    Skip,
    auto_scale,
    legend,
    new_figure,
    png_of,
    style,
    thousands,
)
from reports.series import (
    AXIS_NAMES,
    Series,
    Spread,
    figure,
    number,
    other_axes,
    series,
    varying,
)

# The publisher sustains an offered rate when it sends at least this share of
# it and nothing is dropped: 5% allows for start-up and the end of the run
# falling inside the measured span.
SUSTAINED_SHARE = 0.95
LATENCIES = {"p50": "p50", "p99": "p99", "p999": "p99.9", "max": "max"}
# Up to this many series, each saturation star is named in the legend.
STARS_IN_LEGEND = 3
STAR_MEANING = "highest offered rate sent in full with nothing dropped"


@dataclass(frozen=True)
class Drawn:
    figure: Figure
    table: Table


def draw(sweep: Sweep) -> list[tuple[Chart, Table | None]]:
    """Every chart of a sweep with the table of the figures it plots."""
    drawn = []
    for key, title, question, source, painter in SWEEP_CHARTS:
        try:
            result = painter(sweep)
        except Skip as reason:
            drawn.append(
                (Chart(key, title, question, source, skipped=str(reason)), None)
            )
            continue
        chart = Chart(key, title, question, source, png=png_of(result.figure))
        drawn.append((chart, result.table))
    return drawn


def _needs_variation(sweep: Sweep, name: str, label: str) -> list[SweepPoint]:
    """The finished points, if they take at least two numeric values of
    `name` (an x axis needs numbers: a rate axis of 2,000 and "max" has only
    one)."""
    points = sweep.done
    numeric = [v for v in varying(points, name) if number(v) is not None]
    if len(numeric) < 2:
        raise Skip(f"this sweep does not vary {label} over two or more numbers")
    return points


def _errorbar(axes: Axes, line: Series, **style_options: object) -> None:
    medians = [v.median for v in line.values]
    below = [v.median - v.low for v in line.values]
    above = [v.high - v.median for v in line.values]
    axes.errorbar(line.x, medians, yerr=[below, above], capsize=3, **style_options)  # type: ignore[arg-type]


def _latency_against(sweep: Sweep, x_name: str, x_label: str) -> Drawn:
    """One panel per percentile, one line per setting of the other axes, so
    a grid of settings stays readable; the panels share their scales."""
    points = _needs_variation(sweep, x_name, x_label)
    by = other_axes(points, sweep.axes, x_name)
    figure_ = new_figure(rows=2, height=7.0)
    panels = figure_.subplots(2, 2, sharex=True, sharey=True).flatten()
    xs: list[float] = []
    ys: list[float] = []
    rows = []
    for axes, (key, label) in zip(panels, LATENCIES.items(), strict=True):
        lines = series(
            points, x_name, lambda p, k=key: figure(p, f"latency_us.{k}"), by=by
        )
        for index, line in enumerate(lines):
            colour = COLOURS[index % len(COLOURS)]
            _errorbar(axes, line, fmt="o-", color=colour, label=line.label or x_label)
            xs += line.x
            ys += [v.median for v in line.values]
            rows += [
                (label, line.label, f"{x:,.0f}", f"{v.median:,.0f}",
                 f"{v.low:,.0f}–{v.high:,.0f}", str(v.repeats))
                for x, v in zip(line.x, line.values, strict=True)
            ]  # fmt: skip
        baseline = sweep.baseline.latency_us.get(key) if sweep.baseline else None
        if baseline and key in ("p50", "p99"):
            axes.axhline(
                baseline, color="grey", linestyle="--", label=f"raw pyzmq {key}"
            )
            ys.append(baseline)
        style(axes, xlabel=x_label, ylabel="latency (µs)", title=label)
    if not rows:
        raise Skip("no finished point recorded a latency")
    auto_scale(panels[0], xs, ys)
    thousands(panels[0])
    if panels[0].get_xscale() == "log":
        thousands(panels[0], "x")
    legend(*panels, fontsize=8)
    figure_.suptitle(
        f"Latency from intended send against {x_label}"
        " (median of repeats, bars from lowest to highest)",
        fontsize=12,
    )
    headers = ("percentile", "series", x_label, "median µs", "range µs", "repeats")
    return Drawn(figure_, Table(headers, rows))


def latency_vs_subscribers(sweep: Sweep) -> Drawn:
    return _latency_against(sweep, "subscribers", "subscriber sockets")


def latency_vs_patients(sweep: Sweep) -> Drawn:
    return _latency_against(sweep, "patients", "patients")


def throughput_vs_rate(sweep: Sweep) -> Drawn:
    points = _needs_variation(sweep, "rate", "the offered rate")
    by = other_axes(points, sweep.axes, "rate")
    figure_ = new_figure()
    axes = figure_.add_subplot()
    rows = []
    xs: list[float] = []
    published = series(points, "rate", lambda p: figure(p, "published_per_s"), by=by)
    dropped = series(points, "rate", lambda p: figure(p, "dropped"), by=by)
    # With many series each star gets no legend entry of its own (the table
    # gives every saturation point); one entry says what a star means.
    star_labels = len(published) <= STARS_IN_LEGEND
    for index, (line, drops) in enumerate(zip(published, dropped, strict=True)):
        rows += _draw_sent(
            axes, line, drops, COLOURS[index % len(COLOURS)], star_labels
        )
        xs += line.x
    if not star_labels:
        axes.plot([], [], "*", markersize=12, color="grey", label=STAR_MEANING)
    if not rows:
        raise Skip("no finished point recorded its send rate")
    axes.plot(
        [min(xs), max(xs)],
        [min(xs), max(xs)],
        color="lightgrey",
        label="sent = offered",
    )
    if sweep.baseline:
        axes.axhline(
            sweep.baseline.throughput_per_s,
            color="grey",
            linestyle="--",
            label="raw pyzmq throughput",
        )
    auto_scale(axes, xs, xs)
    thousands(axes)
    thousands(axes, "x")
    style(
        axes,
        xlabel="offered rate (updates/s)",
        ylabel="sent (updates/s)",
        title="Throughput against offered rate",
    )
    legend(axes)
    headers = ("series", "offered /s", "sent /s (median)", "most dropped", "sustained")
    return Drawn(figure_, Table(headers, rows))


def _draw_sent(
    axes: Axes, line: Series, drops: Series, colour: str, star_label: bool
) -> list[tuple[str, ...]]:
    """One series of sent against offered, its saturation point starred
    (named in the legend if `star_label`); returns its table rows."""
    _errorbar(axes, line, fmt="o-", color=colour, label=f"sent {line.label}".strip())
    point = saturation(line, drops)
    if point is not None:
        axes.plot(
            [point],
            [point],
            "*",
            markersize=18,
            color=colour,
            label=f"sustained up to {point:,.0f}/s {line.label}".strip()
            if star_label
            else "_nolegend_",
        )
    return [
        (
            line.label or "all",
            f"{x:,.0f}",
            f"{v.median:,.0f}",
            f"{d.high:,.0f}",
            "yes" if sustained(x, v, d) else "no",
        )
        for x, v, d in zip(line.x, line.values, drops.values, strict=True)
    ]


def sustained(offered: float, sent: Spread, dropped: Spread) -> bool:
    """Sent at SUSTAINED_SHARE of the offered rate in every repeat, and no
    repeat dropped anything."""
    return sent.low >= SUSTAINED_SHARE * offered and dropped.high == 0


def saturation(sent: Series, dropped: Series) -> float | None:
    """The highest offered rate sustained (see `sustained`)."""
    best = None
    for x, spread, drops in zip(sent.x, sent.values, dropped.values, strict=True):
        if sustained(x, spread, drops):
            best = x
    return best


def drops_vs_rate(sweep: Sweep) -> Drawn:
    points = _needs_variation(sweep, "rate", "the offered rate")
    by = ("hwm",) + tuple(
        n for n in other_axes(points, sweep.axes, "rate") if n != "hwm"
    )
    figure_ = new_figure()
    axes = figure_.add_subplot()
    lines = series(points, "rate", _dropped_percent, by=by)
    if not lines:
        raise Skip("no finished point recorded expected and dropped updates")
    rows, xs = [], []
    for index, line in enumerate(lines):
        _errorbar(
            axes, line, fmt="o-", color=COLOURS[index % len(COLOURS)], label=line.label
        )
        xs += line.x
        rows += [
            (line.label, f"{x:,.0f}", f"{v.median:.3f}", f"{v.low:.3f}–{v.high:.3f}")
            for x, v in zip(line.x, line.values, strict=True)
        ]
    auto_scale(axes, xs, [1.0])
    axes.set_yscale("symlog", linthresh=0.01)
    axes.set_ylim(bottom=0, top=100)
    thousands(axes, "x")
    style(
        axes,
        xlabel="offered rate (updates/s)",
        ylabel="updates dropped (% of expected, symlog)",
        title="Drops against rate, per high-water mark",
    )
    legend(axes)
    return Drawn(
        figure_, Table(("series", "offered /s", "dropped % (median)", "range %"), rows)
    )


def _dropped_percent(point: SweepPoint) -> float | None:
    expected, dropped = figure(point, "expected"), figure(point, "dropped")
    if not expected or dropped is None:
        return None
    return dropped / expected * 100.0


def filtering_cost(sweep: Sweep) -> Drawn:
    points = sweep.done
    # Only a sweep that sets out to vary them: subscriptions also differ
    # between roles, and a role axis is not a question about filtering.
    named = {*AXIS_NAMES["subscriptions"], *AXIS_NAMES["filtering"]} & set(sweep.axes)
    if not named or (
        len(varying(points, "subscriptions")) < 2
        and len(varying(points, "filtering")) < 2
    ):
        raise Skip(
            "this sweep varies neither subscriptions per subscriber"
            " nor the filtering side"
        )
    by = other_axes(points, sweep.axes, "subscriptions")
    figure_ = new_figure()
    axes = figure_.add_subplot()
    rows, xs, ys = [], [], []
    sides = (
        ("publisher", "publisher_cpu_us_per_message", "-"),
        ("subscriber", "subscriber_cpu_us_per_message", "--"),
    )
    for side, name, dash in sides:
        lines = series(points, "subscriptions", lambda p, n=name: figure(p, n), by=by)
        for index, line in enumerate(lines):
            label = f"{side} side {line.label}".strip()
            _errorbar(
                axes,
                line,
                fmt="o" + dash,
                color=COLOURS[index % len(COLOURS)],
                label=label,
            )
            xs += line.x
            ys += [v.median for v in line.values]
            rows += [
                (label, f"{x:,.0f}", f"{v.median:.2f}", f"{v.low:.2f}–{v.high:.2f}")
                for x, v in zip(line.x, line.values, strict=True)
            ]
    if not rows:
        raise Skip("no finished point recorded CPU per message")
    auto_scale(axes, xs, ys)
    style(
        axes,
        xlabel="subscriptions per subscriber",
        ylabel="CPU per message (µs)",
        title="Filtering cost: publisher side against subscriber side",
    )
    legend(axes)
    return Drawn(
        figure_,
        Table(("series", "subscriptions", "µs/message (median)", "range"), rows),
    )


SWEEP_CHARTS: tuple[tuple[str, str, str, str, Callable[[Sweep], Drawn]], ...] = (
    (
        "latency-vs-subscribers",
        "Latency against subscribers",
        "Does latency hold as subscribers are added?",
        "sweep.json: points[].summary.latency_us, subscribers per point;"
        " baseline.latency_us",
        latency_vs_subscribers,
    ),
    (
        "latency-vs-patients",
        "Latency against patients",
        "Does latency hold as the hospital grows?",
        "sweep.json: points[].summary.latency_us, patients per point;"
        " baseline.latency_us",
        latency_vs_patients,
    ),
    (
        "throughput-vs-rate",
        "Throughput against offered rate",
        "Up to which rate does the publisher keep up with no drops?",
        "sweep.json: points[].summary.published_per_s, dropped, params.rate;"
        " baseline.throughput_per_s",
        throughput_vs_rate,
    ),
    (
        "drops-vs-rate",
        "Drops against rate for each HWM",
        "How much is lost when subscribers cannot keep up, and does a larger HWM help?",
        "sweep.json: points[].summary.dropped, expected, params.rate, hwm",
        drops_vs_rate,
    ),
    (
        "filtering-cost",
        "Filtering cost",
        "What do subscriptions cost, and on which side is filtering cheaper?",
        "sweep.json: points[].summary.publisher_cpu_us_per_message,"
        " subscriber_cpu_us_per_message",
        filtering_cost,
    ),
)

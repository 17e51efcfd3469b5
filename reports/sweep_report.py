"""The report of a sweep: verdict, warnings, the baseline, a table and a chart
per question, and the points themselves."""

from __future__ import annotations

import shlex
from typing import Any

from reports import sweep_charts
from reports.checks import sweep_warnings
from reports.data import Sweep
from reports.document import Block, Caveats, ChartBlock, Heading, Table, Text
from reports.reproduce import report_command
from reports.run_report import machine_table
from sim.sweepspec import params_text

POINT_LATENCIES = ("p50", "p99", "p999", "max")


def title(sweep: Sweep) -> str:
    return f"wardcast sweep {sweep.name}"


def blocks(sweep: Sweep) -> list[Block]:
    measure = sweep_command(sweep)
    redraw = report_command(sweep.folder)
    content: list[Block] = [
        Heading("Verdict"),
        *verdict_blocks(sweep.verdict),
        Caveats(
            sweep_warnings(sweep),
            all_clear="No warnings: every point finished, none dropped or received"
            " a foreign update, and a baseline was measured.",
        ),
        Heading("Sweep and machine"),
        sweep_table(sweep),
        machine_table(sweep.machine, sweep.created),
        Heading("Baseline: raw pyzmq PUB/SUB on the same machine"),
        baseline_block(sweep),
    ]
    content.append(Heading("The questions, one chart and table each"))
    for chart, table in sweep_charts.draw(sweep):
        content.append(ChartBlock(chart, f"{measure} && wardcast report OUT"))
        if table is not None:
            content.append(table)
    content += [
        Heading("Every point"),
        points_table(sweep),
        Heading("Reproduce"),
        Text("Measure again, then draw the report of the new sweep:"),
        Text(f"{measure}\nwardcast report OUT", code=True),
        Text("Redraw this report from the files in this folder:"),
        Text(redraw, code=True),
    ]
    return content


def sweep_command(sweep: Sweep) -> str:
    scenario = shlex.quote(sweep.scenario_file or "SCENARIO.toml")
    return f"wardcast sweep {scenario}"


def verdict_blocks(verdict: dict[str, Any]) -> list[Block]:
    """The verdict as a reviewer reads it: where the design holds, the
    zero-drop rates, the fitted cost models with their held-out errors, and
    the prediction with its assumptions."""
    if not verdict:
        return [Text("This sweep holds no verdict.")]
    found: list[Block] = []
    if verdict.get("criterion"):
        found.append(Text(f"Criterion: {verdict['criterion']}."))
    if verdict.get("statements"):
        found.append(findings_table(verdict["statements"]))
    if verdict.get("searches"):
        found.append(searches_table(verdict["searches"]))
    if verdict.get("fits"):
        found.append(fits_table(verdict["fits"]))
    prediction = verdict.get("prediction") or {}
    if prediction:
        found.append(prediction_table(prediction))
    if verdict.get("baseline_drift") is not None:
        found.append(
            Text(
                "The raw-pyzmq baseline moved by"
                f" {verdict['baseline_drift']:+.0%} between the sweep's start and"
                " its end: how much the machine itself drifted meanwhile."
            )
        )
    return found


def findings_table(statements: list[str]) -> Table:
    rows = []
    for statement in statements:
        subject, _, finding = statement.partition(": ")
        rows.append((subject, finding) if finding else ("", statement))
    return Table(("along", "finding"), rows, caption="Where the design holds")


def fits_table(fits: list[dict[str, Any]]) -> Table:
    rows = [
        (
            fit["y"],
            fit["x"]
            + (f" ({params_text(fit['others'])})" if fit.get("others") else ""),
            fit["model"],
            _flat(fit["a"]),
            _flat(fit["b"]),
            _flat(fit["r2"]),
            _flat(fit["holdout"]["x"]),
            _flat(fit["holdout"]["measured"]),
            _flat(fit["holdout"]["predicted"]),
            f"{fit['holdout']['error_pct']:.0f}%",
        )
        for fit in fits
    ]
    return Table(
        (
            "cost",
            "against",
            "model",
            "a",
            "b",
            "r²",
            "held out at",
            "measured",
            "predicted",
            "error",
        ),
        rows,
        caption="How cost grows: fitted without the largest point, then checked"
        " against it",
    )


def _rate_or_blank(rate: float | None) -> str:
    return "" if rate is None else f"{rate:,.0f}"


def prediction_table(prediction: dict[str, Any]) -> Table:
    rows = [
        (key.replace("_", " "), _flat(value))
        for key, value in prediction.items()
        if key not in ("assumptions", "extrapolations")
    ]
    rows += [
        (
            f"publisher at {guess['x']} = {guess['at']:g}",
            f"{guess['publisher_cpu_us_per_message']:.3g} µs CPU per update, at"
            f" most {guess['publisher_max_updates_per_s']:,.0f} updates/s a core",
        )
        for guess in prediction.get("extrapolations", [])
    ]
    rows += [("assumption", text) for text in prediction.get("assumptions", [])]
    return Table(("prediction", "value"), rows, caption="What the model predicts")


def searches_table(searches: list[dict[str, Any]]) -> Table:
    """The zero-drop rates the sweep searched, beside raw pyzmq's, searched
    the same way just after: the harness-efficiency figure."""
    rows = [
        (
            params_text(search["params"]) or "base",
            f"{search.get('zero_drop_rate') or 0.0:,.0f}",
            _rate_or_blank(search.get("baseline_zero_drop_rate")),
            _flat(search.get("ratio_to_baseline") or ""),
            ", ".join(f"{r:.2f}" for r in search.get("pair_ratios", [])),
        )
        for search in searches
    ]
    return Table(
        (
            "search",
            "harness (updates/s)",
            "raw pyzmq (messages/s)",
            "ratio (median)",
            "each pair's ratio",
        ),
        rows,
        caption="Highest rate with zero drops, the first pair's rates (raw"
        " pyzmq: one publisher, one subscriber, as the baseline always is); the"
        " ratio is the median over every paired search",
    )


def _flat(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def sweep_table(sweep: Sweep) -> Table:
    rows = [
        ("name", sweep.name),
        ("scenario file", sweep.scenario_file),
        ("repeats", str(sweep.repeats)),
        ("warm-up", str(sweep.warmup)),
        ("points", f"{len(sweep.done)} done of {len(sweep.points)}"),
    ]
    rows += [
        (f"axis {axis}", ", ".join(map(str, values)))
        for axis, values in sweep.axes.items()
    ]
    rows += [
        (f"base {key}", str(value))
        for key, value in sweep.base_scenario.items()
        if key != "subscribers"
    ]
    return Table(("setting", "value"), rows, caption="Sweep")


def baseline_block(sweep: Sweep) -> Block:
    baseline = sweep.baseline
    if baseline is None:
        return Text("No baseline was measured, so no figure is given as a ratio.")
    latency = baseline.latency_us
    rows = [
        ("message bytes", f"{baseline.message_bytes:,}"),
        ("throughput (messages/s)", f"{baseline.throughput_per_s:,.0f}"),
        ("latency measured at (messages/s)", _flat(baseline.latency_rate_per_s)),
    ]
    rows += [(f"latency {key} (µs)", f"{value:,.0f}") for key, value in latency.items()]
    return Table(("raw pyzmq", "value"), rows)


def points_table(sweep: Sweep) -> Table:
    axes = list(sweep.axes)
    rows = []
    for point in sweep.points:
        summary = point.summary
        latency = summary.get("latency_us") or {}
        rows.append(
            (
                point.id,
                *(str(point.params.get(axis, "")) for axis in axes),
                str(point.repeat),
                point.status,
                _flat(summary.get("delivered_per_s", "")),
                _flat(summary.get("dropped", "")),
                _flat(summary.get("foreign", "")),
                *(_flat(latency.get(key, "")) for key in POINT_LATENCIES),
                _flat(summary.get("ratio_to_baseline", "")),
            )
        )
    headers = (
        "point", *axes, "repeat", "status", "delivered/s", "dropped", "foreign",
        "p50 µs", "p99 µs", "p99.9 µs", "max µs", "× baseline",
    )  # fmt: skip
    return Table(headers, rows)

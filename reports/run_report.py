"""The report of one run: its warnings, tables and charts, as document blocks."""

from __future__ import annotations

from typing import Any

from reports import run_charts
from reports.checks import run_warnings
from reports.data import RunResult
from reports.document import Block, Caveats, ChartBlock, Heading, Table, Text
from reports.figures import Skip
from reports.reproduce import report_command, run_command, write_scenario

PERCENTILES = ("p50", "p90", "p99", "p999", "max")


def blocks(run: RunResult) -> list[Block]:
    write_scenario(run.folder, run.scenario)
    measure, redraw = run_command(run.folder), report_command(run.folder)
    content: list[Block] = [
        Caveats(
            run_warnings(run),
            all_clear="No warnings: every subscriber reported, nothing was dropped,"
            " no foreign or malformed update arrived, the publisher kept its"
            " schedule.",
        ),
        *fault_blocks(run),
        *veth_blocks(run),
        Heading("Scenario and machine"),
        scenario_table(run.scenario),
        machine_table(run.machine, run.created),
        Heading("What was delivered"),
        delivery_table(run),
        Heading("How long updates took"),
        latency_table(run),
        Heading("Subscribers"),
        subscriber_table(run),
        Heading("Publisher"),
        publisher_table(run),
        Heading("Per simulated day"),
        per_day_table(run),
        Heading("Charts"),
    ]
    content += [
        ChartBlock(chart, f"{measure} && wardcast report NEW   (redraw: {redraw})")
        for chart in run_charts.draw(run)
    ]
    content += [
        Heading("Reproduce"),
        Text("Measure again (the scenario file is written beside this report):"),
        Text(f"{measure}\nwardcast report NEW", code=True),
        Text("Redraw these charts from this folder's result.json:"),
        Text(redraw, code=True),
    ]
    return content


def fault_blocks(run: RunResult) -> list[Block]:
    """What was injected, when, and what it cost: result.json's `faults`."""
    if not run.faults:
        return []
    rows = [
        (
            fault["kind"],
            str(fault.get("target", "")),
            _seconds(fault.get("injected_at_seconds")),
            _seconds(fault.get("ended_at_seconds")),
            _count(fault.get("messages_lost")),
            _seconds(fault.get("recovery_seconds")),
            str(fault.get("note", "")),
        )
        for fault in run.faults
    ]
    return [
        Heading("Faults injected"),
        Table(
            (
                "fault",
                "target",
                "injected at (s)",
                "ended at (s)",
                "updates lost",
                "recovered in (s)",
                "note",
            ),
            rows,
            caption="Seconds count from the publisher's first send",
        ),
    ]


def veth_blocks(run: RunResult) -> list[Block]:
    """`wardcast deploy-netns`: the same hospital across veth and on loopback."""
    comparison = run.veth_vs_loopback
    if not comparison:
        return []
    rows = []
    for path in ("loopback", "veth"):
        figures = comparison[path]
        latency = figures["latency_from_actual_us"]
        rows.append(
            (
                path,
                f"{latency['p50']:,.0f}",
                f"{latency['p99']:,.0f}",
                f"{figures['delivered_per_s']:,.0f}",
            )
        )
    ratios = (
        "veth / loopback",
        _ratio(comparison.get("latency_p50_ratio")),
        "",
        _ratio(comparison.get("throughput_ratio")),
    )
    return [
        Heading("Veth against loopback"),
        Table(
            ("path", "latency p50 (µs)", "latency p99 (µs)", "delivered /s"),
            [*rows, ratios],
            caption=(
                "Latency from the actual send at a steady"
                f" {comparison.get('latency_rate_per_s', 0):,.0f} updates/s;"
                " delivered per second at full speed"
                f" ({comparison.get('throughput_updates', 0):,} updates)"
            ),
        ),
    ]


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:,.3f}"


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def title(run: RunResult) -> str:
    verdict = "PASSED" if run.passed and run.status == "complete" else "FAILED"
    dropped = run.totals.get("dropped", 0)
    if dropped:
        verdict += f" with {dropped:,} updates dropped"
    return f"wardcast run {run.scenario.get('name', '')}: {verdict}"


def scenario_table(scenario: dict[str, Any]) -> Table:
    rows = [
        (key, _setting(value))
        for key, value in scenario.items()
        if key not in ("subscribers",)
    ]
    rows.append(("subscribers", f"{len(scenario.get('subscribers', []))} sockets"))
    return Table(("setting", "value"), rows, caption="Scenario")


def _setting(value: Any) -> str:
    return (
        f"{value:,}"
        if isinstance(value, int) and not isinstance(value, bool)
        else str(value)
    )


def machine_table(machine: dict[str, Any], created: str) -> Table:
    rows = [("created", created)] + [(k, str(v)) for k, v in machine.items()]
    return Table(("machine", ""), rows, caption="Where and when it ran")


def delivery_table(run: RunResult) -> Table:
    totals = run.totals
    rows = [
        ("published", f"{run.published:,}"),
        ("wall time (s)", f"{run.wall_seconds:.2f}"),
        ("published per second", f"{run.published_per_s:,.0f}"),
        ("delivered per second", f"{run.delivered_per_s:,.0f}"),
    ]
    rows += [(key, f"{totals.get(key, 0):,}") for key in totals]
    return Table(("figure", "value"), rows)


def latency_table(run: RunResult) -> Table:
    rows = [
        ("from intended send (µs)", *(_us(run.latency_us, p) for p in PERCENTILES)),
        (
            "from actual send (µs)",
            *(_us(run.from_actual.percentiles(scale=1000.0), p) for p in PERCENTILES),
        ),
        ("publisher lag (µs)", *(_us(run.publisher.lag_us, p) for p in PERCENTILES)),
    ]
    return Table(("latency", "p50", "p90", "p99", "p99.9", "max"), rows)


def _us(percentiles: Any, key: str) -> str:
    return f"{percentiles[key]:,.0f}"


def subscriber_table(run: RunResult) -> Table:
    rows = []
    for s in run.subscribers:
        if s.status != "reported":
            rows.append((s.name, s.role, s.status.upper(), *[""] * 9))
            continue
        latency = s.latency_us or {}
        rows.append(
            (
                s.name,
                s.role,
                f"{s.topics:,}",
                f"{s.expected:,}",
                f"{s.received:,}",
                f"{s.dropped:,}",
                f"{s.foreign:,}",
                *(_us(latency, p) for p in ("p50", "p99", "max")),
                f"{s.cpu_seconds or 0:.2f}",
                f"{(s.max_rss_bytes or 0) / 2**20:.0f}",
            )
        )
    headers = (
        "subscriber", "role", "topics", "expected", "received", "dropped",
        "foreign", "p50 µs", "p99 µs", "max µs", "cpu s", "rss MiB",
    )  # fmt: skip
    return Table(headers, rows)


def publisher_table(run: RunResult) -> Table:
    publisher = run.publisher
    return Table(
        ("figure", "value"),
        [
            ("published", f"{publisher.published:,}"),
            ("aborted", "yes" if publisher.aborted else "no"),
            ("send span (s)", f"{publisher.send_seconds:.3f}"),
            ("CPU during the run (s)", f"{publisher.cpu_seconds or 0:.3f}"),
            ("CPU in all (s)", f"{publisher.cpu_seconds_total or 0:.3f}"),
            ("peak memory (MiB)", f"{(publisher.max_rss_bytes or 0) / 2**20:.0f}"),
        ],
    )


def per_day_table(run: RunResult) -> Table | Text:
    try:
        dropped, expected = run_charts.drops_per_day(run)
    except Skip as reason:
        return Text(f"No per-day figures: {reason}.")
    daily = run_charts.merged_daily(run)
    summary = daily.summary() if daily else []
    rows = []
    for day in range(len(expected)):
        latency = summary[day] if day < len(summary) else None
        rows.append(
            (
                str(day + 1),
                f"{int(expected[day]):,}",
                f"{int(dropped[day]):,}",
                *(
                    (
                        f"{latency['p50']:,.0f}",
                        f"{latency['p99']:,.0f}",
                        f"{latency['max']:,.0f}",
                    )
                    if latency
                    else ("", "", "")
                ),
            )
        )
    return Table(
        ("day", "expected", "dropped", "p50 µs", "p99 µs", "max µs"),
        rows,
        caption="Latency per day from coarse per-day histograms (within about 6%)",
    )

"""Results: the `result.json` of a run, written atomically, and its summary.

The schema is `wardcast.result/1`. Its field names keep their meaning from
version to version; new fields may be added.

    wall_seconds      from the publisher's first send to the last report
    throughput        published_per_s over the publisher's send span;
                      delivered_per_s over first send to last delivery
    latency_us        one-way, from each update's intended send time, over
                      every delivered update; `latency_from_actual_us` the same
                      from the actual send time
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import zmq

import sim
from sim.harness import RunOutcome, Worker
from sim.histogram import Histogram

# The counts summed over subscribers in a result's "totals".
TOTALS = (
    "expected",
    "received",
    "dropped",
    "foreign",
    "duplicates",
    "reordered",
    "malformed",
    "stale",
)

SCHEMA = "wardcast.result/1"


def machine() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pyzmq": zmq.pyzmq_version(),
        "libzmq": zmq.zmq_version(),
        "numpy": np.__version__,
        "clock": "time.monotonic_ns, one clock for every process on this host",
    }


def build(outcome: RunOutcome) -> dict[str, Any]:
    """The result record of a run, from what its processes reported."""
    publisher = outcome.publisher
    subscribers = [entry for w in outcome.workers for entry in _subscriber_entries(w)]
    merged = {"from_intended": Histogram(), "from_actual": Histogram()}
    for entry in subscribers:
        for key, histogram in merged.items():
            raw = entry.get("histograms", {}).get(key)
            if raw:
                histogram.merge(Histogram.from_dict(raw))
    first_send = publisher.get("first_send_ns", 0)
    last_send = publisher.get("last_send_ns", 0)
    last_delivery = max((e.get("last_receive_ns", 0) for e in subscribers), default=0)
    published = publisher.get("published", 0)
    delivered = sum(e.get("received", 0) for e in subscribers)
    problems = list(outcome.problems)
    problems += _judge(subscribers)
    status = "complete"
    if (
        outcome.interrupted
        or outcome.failed
        or any(e["status"] not in ("reported", "killed") for e in subscribers)
    ):
        status = "incomplete"
    return {
        "schema": SCHEMA,
        "wardcast_version": sim.__version__,
        "status": status,
        "passed": not problems,
        "problems": problems,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "scenario": outcome.scenario.to_dict(),
        "run_id": publisher.get("run_id"),
        "wall_seconds": _seconds(outcome.last_report_ns - first_send)
        if first_send
        else 0.0,
        "published": published,
        "throughput": {
            "published_per_s": _rate(published, last_send - first_send),
            "delivered_per_s": _rate(delivered, last_delivery - first_send),
        },
        "totals": {key: sum(e.get(key, 0) for e in subscribers) for key in TOTALS},
        "latency_us": merged["from_intended"].percentiles(scale=1000.0),
        "latency_from_actual_us": merged["from_actual"].percentiles(scale=1000.0),
        "publisher": _publisher_entry(outcome),
        "subscribers": subscribers,
        "histograms": {key: h.to_dict() for key, h in merged.items()},
    }


def _subscriber_entries(worker: Worker) -> list[dict[str, Any]]:
    if worker.kind != "subscribers":
        return []
    if worker.report is None:
        return [
            {
                "name": spec["name"],
                "role": spec["role"],
                "topics": len(spec["patients"]) or None,
                "status": worker.state,
                "error": worker.error,
                "process": worker.worker_id,
            }
            for spec in worker.subscribers
        ]
    process = worker.report["process"]
    return [
        {
            **entry,
            "status": "reported",
            "process": worker.worker_id,
            "sockets_in_process": len(worker.report["subscribers"]),
            "cpu_seconds": process["cpu_seconds"],
            "cpu_seconds_total": process["cpu_seconds_total"],
            "max_rss_bytes": process["max_rss_bytes"],
        }
        for entry in worker.report["subscribers"]
    ]


def _publisher_entry(outcome: RunOutcome) -> dict[str, Any]:
    publisher = outcome.publisher
    lag = Histogram.from_dict(publisher["lag"]) if "lag" in publisher else Histogram()
    usage = publisher.get("usage", {})
    return {
        "run_id": publisher.get("run_id"),
        "published": publisher.get("published", 0),
        "aborted": publisher.get("aborted", False),
        "send_seconds": _seconds(
            publisher.get("last_send_ns", 0) - publisher.get("first_send_ns", 0)
        ),
        "lag_us": lag.percentiles(scale=1000.0),
        "cpu_seconds": publisher.get("cpu_seconds"),
        "cpu_seconds_total": usage.get("cpu_seconds_total"),
        "max_rss_bytes": usage.get("max_rss_bytes"),
        "late_subscriptions": publisher.get("late_subscriptions", 0),
        "chunks_built_late": publisher.get("chunks_built_late", 0),
    }


def _judge(subscribers: list[dict[str, Any]]) -> list[str]:
    """Problems that fail a run: anything but drops, which are measurements."""
    problems = []
    for entry in subscribers:
        name = entry["name"]
        if entry["status"] == "killed":
            continue  # killed on purpose: an injected fault, measured in "faults"
        if entry["status"] != "reported":
            problems.append(f"subscriber {name} did not report ({entry['status']})")
            continue
        if entry["foreign"]:
            examples = ", ".join(entry["foreign_topics"])
            problems.append(
                f"subscriber {name} received {entry['foreign']} foreign updates"
                f" ({examples})"
            )
        if entry.get("session_ended") and entry["dropped"]:
            problems.append(
                f"subscriber {name} lost its session with the publisher (an"
                f" oversized frame or a protocol error) and {entry['dropped']}"
                " updates never arrived"
            )
        if entry["malformed"]:
            problems.append(
                f"subscriber {name} received {entry['malformed']} malformed frames"
            )
    return problems


def _seconds(ns: int) -> float:
    return max(ns, 0) / 1e9


def _rate(count: int, span_ns: int) -> float:
    return count / (span_ns / 1e9) if span_ns > 0 else 0.0


def write(result: dict[str, Any], folder: Path) -> Path:
    """Write `result.json` in `folder` atomically: whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "result.json"
    write_json_atomically(path, result)
    return path


def write_json_atomically(path: Path, document: Any) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(document, handle, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# The counts of a subscriber's row, in the table's order.
COUNTED = ("expected", "received", "dropped", "foreign")
SUMMARY_HEADER = (
    "subscriber", "role", "topics", "expected", "received", "dropped", "foreign",
    "p50 µs", "p99 µs", "max µs", "cpu s", "rss MiB",
)  # fmt: skip


def summary(result: dict[str, Any]) -> str:
    """The terminal table of a run."""
    scenario, throughput = result["scenario"], result["throughput"]
    lines = [
        f"{scenario['name']}: {scenario['patients']} patients, {scenario['days']} days,"
        f" {scenario['updates_per_day']} updates a day, paced by {_pacing(scenario)},"
        f" {scenario['message_bytes']}-byte messages, hwm {scenario['hwm']}",
        f"published {result['published']:,} updates in {result['wall_seconds']:.2f} s"
        f" ({throughput['published_per_s']:,.0f}/s sent,"
        f" {throughput['delivered_per_s']:,.0f}/s delivered)",
        "",
    ]
    rows = [SUMMARY_HEADER, *map(_subscriber_row, result["subscribers"])]
    rows.append(_totals_row(result["totals"], result["latency_us"]))
    lines += _aligned(rows)
    lines += ["", _outcome_line(result)]
    return "\n".join(lines)


def _subscriber_row(entry: dict[str, Any]) -> tuple[str, ...]:
    if entry["status"] != "reported":
        # Its process state (DIED, for one) stands in the first latency column.
        return (
            entry["name"],
            entry["role"],
            *[""] * (1 + len(COUNTED)),
            entry["status"].upper(),
            *[""] * 4,
        )
    latency = entry["latency_us"]
    return (
        entry["name"],
        entry["role"],
        *(f"{entry[key]:,}" for key in ("topics", *COUNTED)),
        *(f"{latency[key]:,.0f}" for key in ("p50", "p99", "max")),
        f"{entry['cpu_seconds']:.2f}",
        f"{entry['max_rss_bytes'] / 2**20:.0f}",
    )


def _totals_row(totals: dict[str, int], latency: dict[str, float]) -> tuple[str, ...]:
    return (
        "all",
        "",
        "",
        *(f"{totals[key]:,}" for key in COUNTED),
        *(f"{latency[key]:,.0f}" for key in ("p50", "p99", "max")),
        "",
        "",
    )


def _aligned(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as columns: names to the left, figures to the right, a rule under
    the header and above the totals."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(width) if column < 2 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0 or index == len(rows) - 2:
            lines.append("  ".join("-" * width for width in widths))
    return lines


def _outcome_line(result: dict[str, Any]) -> str:
    """PASSED or FAILED with the reasons; drops are measurements, not failures,
    but a passed run that dropped says so beside the word."""
    if not result["passed"]:
        return "FAILED: " + "; ".join(result["problems"])
    totals = result["totals"]
    if not totals["dropped"]:
        return "PASSED"
    share = totals["dropped"] / totals["expected"] if totals["expected"] else 0.0
    return (
        f"PASSED with drops: {totals['dropped']:,} of {totals['expected']:,}"
        f" expected updates ({share:.2%}) never arrived; every subscriber"
        " received only its own patients and reported"
    )


def _pacing(scenario: dict[str, Any]) -> str:
    if scenario["rate"] == "clock":
        return f"the clock ({scenario['day_seconds']} s a day)"
    if scenario["rate"] == "max":
        return "nothing (as fast as possible)"
    return f"rate ({scenario['rate']:,.0f} updates/s)"

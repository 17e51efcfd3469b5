"""The few figures of a run that a sweep compares across its points.

Costs are per message so that points of different sizes compare:

    publisher_cpu_us_per_message    publisher CPU over the send loop, per
                                    update published
    publisher_cpu_us_per_delivered  the same per update delivered (fan-out
                                    spreads the publisher's cost)
    subscriber_cpu_us_per_message   every subscriber process's CPU from ready
                                    to report, summed, per frame that reached
                                    a subscriber socket; at low rates the
                                    idle loop (a poll every 50 ms) dominates
    wire_bytes                      frames that reached subscriber sockets,
                                    times the frame size: the payload on the
                                    wire (ZMTP adds 2 to 9 bytes a frame, TCP
                                    its headers)

A process holding several subscriber sockets reports its CPU once, so it is
counted once, not once per socket.
"""

from __future__ import annotations

from typing import Any


def summarise(
    result: dict[str, Any], baseline: dict[str, Any] | None
) -> dict[str, Any]:
    """The summary of one `result.json` record, with ratios to `baseline`."""
    totals = result["totals"]
    reported = [s for s in result["subscribers"] if s["status"] == "reported"]
    published = result["published"]
    received = totals["received"]
    frames = sum(
        s["received"] + s.get("filtered", 0) + s["foreign"] + s["duplicates"]
        for s in reported
    )
    processes = {s["process"]: s for s in reported}
    subscriber_cpu = sum(s["cpu_seconds"] for s in processes.values())
    publisher_cpu = result["publisher"].get("cpu_seconds") or 0.0
    message_bytes = result["scenario"]["message_bytes"]
    summary = {
        "message_bytes": message_bytes,
        "rate": result["scenario"]["rate"],
        "published": published,
        "published_per_s": result["throughput"]["published_per_s"],
        "delivered_per_s": result["throughput"]["delivered_per_s"],
        "expected": totals["expected"],
        "received": received,
        "dropped": totals["dropped"],
        "foreign": totals["foreign"],
        "filtered": sum(s.get("filtered", 0) for s in reported),
        "latency_us": result["latency_us"],
        "lag_us": result["publisher"]["lag_us"],
        "publisher_cpu_us_per_message": _per(publisher_cpu, published),
        "publisher_cpu_us_per_delivered": _per(publisher_cpu, received),
        "subscriber_cpu_us_per_message": _per(subscriber_cpu, frames),
        "wire_bytes": frames * message_bytes,
        "wire_bytes_per_published": frames * message_bytes / published
        if published
        else 0.0,
        "max_rss_bytes_max": max(
            (s["max_rss_bytes"] for s in processes.values()), default=0
        ),
        "subscriber_processes": len(processes),
        "subscriber_sockets": len(result["subscribers"]),
        **_slow_and_others(result),
    }
    summary["ratio_to_baseline"] = _ratios(summary, baseline)
    return summary


def _per(cpu_seconds: float, count: int) -> float | None:
    return cpu_seconds * 1e6 / count if count else None


def _slow_and_others(result: dict[str, Any]) -> dict[str, Any]:
    """Drops of the slow subscriber against everyone else's."""
    slow_names = {
        spec["name"] for spec in result["scenario"]["subscribers"] if spec["slow_us"]
    }
    if not slow_names:
        return {}
    reported = [s for s in result["subscribers"] if s["status"] == "reported"]
    slow = [s for s in reported if s["name"] in slow_names]
    others = [s for s in reported if s["name"] not in slow_names]
    return {
        "slow_dropped": sum(s["dropped"] for s in slow),
        "others_dropped": sum(s["dropped"] for s in others),
        "others_latency_p99_us": max(
            (s["latency_us"]["p99"] for s in others), default=None
        ),
    }


def _ratios(
    summary: dict[str, Any], baseline: dict[str, Any] | None
) -> dict[str, float | None]:
    if not baseline:
        return {}

    def ratio(value: float | None, reference: float | None) -> float | None:
        return value / reference if value is not None and reference else None

    return {
        "delivered_per_s": ratio(
            summary["delivered_per_s"], baseline["throughput_per_s"]
        ),
        "latency_p50": ratio(
            summary["latency_us"]["p50"], baseline["latency_us"]["p50"]
        ),
        "latency_p99": ratio(
            summary["latency_us"]["p99"], baseline["latency_us"]["p99"]
        ),
    }

"""What each injected fault did, measured from what the processes reported.

Every fault gets a record in `result.json` under `faults`: what was
injected, on what, when (seconds after the publisher started sending, and
the raw monotonic time every process shares), how many updates it cost and
how long the subscribers took to recover.

Where in the schedule. The publisher sends slot by slot, patient 1 to N in
each, so the number of updates it has sent (its position, reported after
every chunk) says exactly how many went out on every topic. A fault is set
against the last position heard before it struck. Updates sent between that
report and the fault are counted as sent after it: with the clock's bursts
an update slot apart, that window is almost always empty.

The killed publisher never says how much it sent, so its count is the larger
of its last position and the furthest sequence number any subscriber
received from it; an update sent after its last report and delivered to
nobody cannot be counted, and the record says which source it came from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.faults import FaultHarness, Injection

NS = 1e9


def per_topic_at(position: int, patients: int) -> np.ndarray:
    """Updates sent on each topic (indexed by patient) once `position`
    updates have gone out in schedule order."""
    counts = np.full(patients + 1, position // patients, dtype=np.int64)
    counts[0] = 0
    counts[1 : position % patients + 1] += 1
    return counts


def follows(spec: dict[str, Any], patients: int) -> np.ndarray:
    mask = np.zeros(patients + 1, dtype=bool)
    if spec["role"] == "administration":
        mask[1:] = True
    else:
        mask[list(spec["patients"])] = True
    return mask


def effects(harness: FaultHarness, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The `faults` section of a result."""
    measured = []
    for injection in harness.injections:
        entry: dict[str, Any] = {
            "kind": injection.kind,
            "target": injection.target,
            "planned_at_seconds": injection.planned_at_seconds,
            "injected_at_seconds": _since_start(harness, injection.at_ns),
            "ended_at_seconds": _since_start(harness, injection.until_ns),
            "injected_at_ns": injection.at_ns,
            "ended_at_ns": injection.until_ns or None,
            "publisher_position": injection.position,
            **injection.detail,
        }
        if injection.at_ns == 0:
            entry["note"] = "never injected: the run ended before its time"
        else:
            entry.update(_MEASURES[injection.kind](harness, injection, record))
        measured.append(entry)
    return measured


def _since_start(harness: FaultHarness, at_ns: int) -> float | None:
    if not at_ns or not harness.started_ns:
        return None
    return (at_ns - harness.started_ns) / NS


def _reported(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in record["subscribers"] if e["status"] == "reported"]


def _killed_subscriber(
    harness: FaultHarness, injection: Injection, record: dict[str, Any]
) -> dict[str, Any]:
    patients = harness.scenario.patients
    process = harness.workers[injection.detail["process"].encode()]
    names = [spec["name"] for spec in process.subscribers]
    # Positions count along the schedule, across a publisher restart too, so
    # the last one heard is where the run ended.
    after = per_topic_at(harness.position, patients) - per_topic_at(
        injection.position, patients
    )
    lost = int(
        sum(after[follows(spec, patients)].sum() for spec in process.subscribers)
    )
    return {
        "subscribers_killed": names,
        "messages_lost": lost,
        "messages_lost_counts": "updates published on the killed subscribers' topics"
        " after the kill; what they had received before it died with them",
        "recovery_seconds": None,
        "other_subscribers_dropped": sum(e["dropped"] for e in _reported(record)),
    }


def _restarted_publisher(
    harness: FaultHarness, injection: Injection, record: dict[str, Any]
) -> dict[str, Any]:
    patients = harness.scenario.patients
    old_run = injection.detail["killed_run_id"]
    new_run = record["run_id"]
    seen = _furthest_seen(record, old_run, patients)
    sent = max(injection.position, seen)
    at_kill = per_topic_at(sent, patients)
    subscribers = []
    for entry in _reported(record):
        old = next(
            (o for o in entry.get("other_runs", []) if o["run_id"] == old_run), None
        )
        expected = int(at_kill[follows(entry, patients)].sum())
        received = old["received"] if old else 0
        first_new = entry["liveness"]["runs"].get(str(new_run), {})
        recovery = None
        if first_new:
            recovery = (first_new["first_receive_ns"] - injection.at_ns) / NS
        subscribers.append(
            {
                "name": entry["name"],
                "expected_from_killed_run": expected,
                "received_from_killed_run": received,
                "messages_lost": expected - received,
                "noticed_after_seconds": _noticed(entry, injection),
                "recovery_seconds": recovery,
            }
        )
    recoveries = [s["recovery_seconds"] for s in subscribers]
    return {
        "run_ids": [old_run, new_run],
        "sent_before_kill": sent,
        "sent_before_kill_from": "subscribers' sequence numbers"
        if seen > injection.position
        else "the publisher's last position report",
        "resumed_from_position": injection.position,
        "messages_lost": sum(s["messages_lost"] for s in subscribers),
        "steady_state_dropped": record["totals"]["dropped"],
        "recovery_seconds": None if None in recoveries else max(recoveries),
        "subscribers": subscribers,
    }


def _furthest_seen(record: dict[str, Any], run_id: int, patients: int) -> int:
    """The furthest schedule position any subscriber received from a run
    (as a count: the position of its last update plus one)."""
    seen = 0
    for entry in _reported(record):
        for other in entry.get("other_runs", []):
            if other["run_id"] != run_id:
                continue
            next_seq = np.asarray(other["next_seq"], dtype=np.int64)
            topics = np.flatnonzero(next_seq > 0)
            if len(topics):
                furthest = (next_seq[topics] - 1) * patients + topics
                seen = max(seen, int(furthest.max()))
    return seen


def _noticed(entry: dict[str, Any], injection: Injection) -> float | None:
    """How long after the fault the subscriber's socket saw its publisher
    go (a `disconnected` event); None if it never did."""
    for event in entry["liveness"]["connection_events"]:
        if event["event"] == "disconnected" and event["at_ns"] >= injection.at_ns:
            return (event["at_ns"] - injection.at_ns) / NS
    return None


def _link_cut(
    harness: FaultHarness, injection: Injection, record: dict[str, Any]
) -> dict[str, Any]:
    subscribers = []
    for entry in _reported(record):
        liveness = entry["liveness"]
        overlapping = [
            s
            for s in liveness["silences"]
            if s["start_ns"] <= (injection.until_ns or s["start_ns"])
            and s["end_ns"] >= injection.at_ns
        ]
        recovery = None
        silent = max((s["seconds"] for s in overlapping), default=0.0)
        if overlapping and injection.until_ns:
            recovery = (overlapping[-1]["end_ns"] - injection.until_ns) / NS
        elif entry["last_receive_ns"] <= injection.at_ns:
            # Nothing arrived after the cut: silent from then to its report.
            silent = liveness["silent_at_report_seconds"] or 0.0
        events = [
            e for e in liveness["connection_events"] if e["at_ns"] >= injection.at_ns
        ]
        subscribers.append(
            {
                "name": entry["name"],
                "dropped": entry["dropped"],
                "noticed_after_seconds": _noticed(entry, injection),
                "silent_seconds": silent,
                "recovered": recovery is not None,
                "recovery_seconds": recovery,
                "connection_events": [e["event"] for e in events],
            }
        )
    recoveries = [s["recovery_seconds"] for s in subscribers]
    return {
        "messages_lost": record["totals"]["dropped"],
        "recovery_seconds": None if None in recoveries else max(recoveries),
        "heartbeats": harness.scenario.heartbeat_ivl_ms > 0,
        "subscribers": subscribers,
    }


def _steady_loss(
    harness: FaultHarness, injection: Injection, record: dict[str, Any]
) -> dict[str, Any]:
    """Packet loss and delay last the whole run: what was lost, and the
    latency from the actual send, which is what the delay moves."""
    return {
        "messages_lost": record["totals"]["dropped"],
        "latency_from_actual_us": record["latency_from_actual_us"],
        "recovery_seconds": None,
    }


_MEASURES = {
    "kill_subscriber": _killed_subscriber,
    "restart_publisher": _restarted_publisher,
    "link_cut": _link_cut,
    "packet_loss": _steady_loss,
    "delay": _steady_loss,
}

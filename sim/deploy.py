"""Running a scenario as it would be deployed: each process on its own
network stack, with the scenario's faults injected, and the same hospital
measured across veth against loopback.

`run` is what `wardcast run` uses whenever a scenario asks for namespaces or
a fault; `veth_against_loopback` is `wardcast deploy-netns`: the scenario
itself (exact delivery, latency as the hospital feels it), a latency probe
(the same hospital at a steady rate) and a throughput probe (at full speed),
each once on loopback and once across namespaces, with the comparison
written into the namespace run's result.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Any

from sim import result as results
from sim.fault_effects import effects
from sim.faults import FaultHarness
from sim.netns import Topology
from sim.scenario import Scenario

logger = logging.getLogger(__name__)

# Days of the throughput probe: enough updates (25 patients x 2 x 2,000 =
# 100,000) that start-up is small beside sending, few enough to take seconds.
THROUGHPUT_DAYS = 2000
# The latency probe: a steady 2,000 updates a second for 2 s (25 patients x
# 2 x 80 days), slow enough that no update waits behind another, so what is
# measured is the path itself; the scenario's own runs send in bursts of a
# whole slot, where each update also waits for those ahead of it.
LATENCY_RATE = 2_000.0
LATENCY_DAYS = 80


def run(scenario: Scenario, *, log_level: str = "WARNING") -> dict[str, Any]:
    """Run a resolved scenario, in namespaces if it asks, and its result."""
    with contextlib.ExitStack() as stack:
        topology = None
        if scenario.namespaces:
            processes = math.ceil(
                len(scenario.subscribers) / scenario.subscribers_per_process
            )
            topology = stack.enter_context(Topology(subscriber_hosts=processes))
            scenario = scenario.replace(endpoint=topology.data_endpoint)
        harness = FaultHarness(scenario, topology=topology, log_level=log_level)
        outcome = harness.run()
        record = results.build(outcome)
        record["faults"] = effects(harness, record)
        if topology is not None:
            record["deployment"] = _deployment(topology, harness)
            for entry in record["subscribers"]:
                entry["namespace"] = harness.placed.get(entry["process"], "")
            record["publisher"]["namespace"] = harness.placed.get("publisher", "")
        return record


def _deployment(topology: Topology, harness: FaultHarness) -> dict[str, Any]:
    return {
        "kind": "network namespaces on one host, joined by a bridge",
        "bridge": topology.bridge,
        "subnet": str(topology.subnet),
        "control_endpoint": harness.control_endpoint,
        "data_endpoint": topology.data_endpoint,
        "hosts": {
            host.namespace: {"address": host.address, "veth": host.host_veth}
            for host in topology.hosts.values()
        },
        "clock": "one host: time.monotonic_ns is one clock in every namespace",
    }


def veth_against_loopback(
    scenario: Scenario, out: Path, *, log_level: str = "WARNING"
) -> dict[str, Any]:
    """The namespace run's result with `veth_vs_loopback`; every run's
    result is also written in its own folder under `out`."""
    # Unlimited high-water marks: at full speed the default 1,000 drops most
    # of a slow subscriber's updates, and the probe measures what the path
    # carries, not what a full queue throws away.
    throughput = scenario.replace(
        name=f"{scenario.name}-throughput",
        rate=math.inf,
        days=THROUGHPUT_DAYS,
        hwm=0,
    )
    latency = scenario.replace(
        name=f"{scenario.name}-latency", rate=LATENCY_RATE, days=LATENCY_DAYS
    )
    runs: dict[str, dict[str, Any]] = {}
    for label, chosen in (
        ("loopback", scenario.replace(namespaces=False)),
        ("veth", scenario.replace(namespaces=True)),
        ("latency-loopback", latency.replace(namespaces=False)),
        ("latency-veth", latency.replace(namespaces=True)),
        ("throughput-loopback", throughput.replace(namespaces=False)),
        ("throughput-veth", throughput.replace(namespaces=True)),
    ):
        logger.info("deploy-netns: %s run", label)
        runs[label] = run(chosen, log_level=log_level)
        results.write(runs[label], out / label)
    record = dict(runs["veth"])
    record["veth_vs_loopback"] = compare(runs)
    problems = [
        f"{label}: {problem}"
        for label, other in runs.items()
        if label != "veth"
        for problem in other["problems"]
    ]
    record["problems"] = record["problems"] + problems
    record["passed"] = not record["problems"] and all(
        other["status"] == "complete" for other in runs.values()
    )
    return record


def compare(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Latency from the steady-rate probes (and, as the hospital feels it,
    from the scenario's bursts), throughput from the full-speed probes."""

    def figures(label: str) -> dict[str, Any]:
        probe = runs[f"throughput-{label}"]
        return {
            "latency_from_actual_us": runs[f"latency-{label}"][
                "latency_from_actual_us"
            ],
            "scenario_latency_from_actual_us": runs[label]["latency_from_actual_us"],
            "delivered_per_s": probe["throughput"]["delivered_per_s"],
            "published_per_s": probe["throughput"]["published_per_s"],
        }

    loopback, veth = figures("loopback"), figures("veth")
    return {
        "loopback": loopback,
        "veth": veth,
        "added_latency_p50_us": veth["latency_from_actual_us"]["p50"]
        - loopback["latency_from_actual_us"]["p50"],
        "latency_p50_ratio": _ratio(
            veth["latency_from_actual_us"]["p50"],
            loopback["latency_from_actual_us"]["p50"],
        ),
        "throughput_ratio": _ratio(
            veth["delivered_per_s"], loopback["delivered_per_s"]
        ),
        "throughput_updates": runs["throughput-veth"]["published"],
        "latency_rate_per_s": LATENCY_RATE,
        "dropped": {label: runs[label]["totals"]["dropped"] for label in runs},
    }


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None

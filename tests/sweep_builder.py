"""Small real sweeps for the report tests, made before `wardcast sweep` exists.

Each point is a real `wardcast run --out` on loopback; the sweep.json around
them follows the agreed `wardcast.sweep/1` layout, with every summary figure
computed from the point's own result.json. The baseline is measured here too:
raw pyzmq PUB/SUB, one frame per send, the publisher in its own process.
Nothing is invented: a chart drawn from these folders shows what ran.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from sim.cli import build_parser, scenario_from_options
from sim.histogram import Histogram
from sim.result import machine
from tests.conftest import COMMAND_TIMEOUT_S, read_result, run_wardcast

# Enough frames for the throughput to be more than start-up noise, few enough
# to take well under a second on two shared cores.
BASELINE_FRAMES = 50_000
LATENCY_FRAMES = 2_000
LATENCY_RATE_PER_S = 10_000
RECEIVE_TIMEOUT_MS = 10_000

_PUBLISHER = """
import sys, time, zmq
size, frames, latency_frames, rate = map(int, sys.argv[1:5])
context = zmq.Context()
socket = context.socket(zmq.XPUB)
socket.setsockopt(zmq.SNDHWM, 0)
port = socket.bind_to_random_port("tcp://127.0.0.1")
print(port, flush=True)
socket.setsockopt(zmq.RCVTIMEO, 10_000)
socket.recv()  # the subscription: nothing is lost to a late joiner
body = b"x" * size
for _ in range(frames):
    socket.send(body)
gap = 1e9 / rate
start = time.monotonic_ns()
for index in range(latency_frames):
    due = start + int(index * gap)
    while time.monotonic_ns() < due:
        pass
    socket.send(time.monotonic_ns().to_bytes(8, "little") + body[8:])
socket.close(linger=5_000)
context.term()
"""


def measure_baseline(message_bytes: int) -> dict[str, Any]:
    """Raw pyzmq throughput, then one-way latency at a modest paced rate."""
    publisher = subprocess.Popen(
        [sys.executable, "-c", _PUBLISHER, str(message_bytes), str(BASELINE_FRAMES),
         str(LATENCY_FRAMES), str(LATENCY_RATE_PER_S)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    try:
        port = int(publisher.stdout.readline())  # type: ignore[union-attr]
        socket.setsockopt(zmq.RCVHWM, 0)
        socket.setsockopt(zmq.RCVTIMEO, RECEIVE_TIMEOUT_MS)
        socket.subscribe(b"")
        socket.connect(f"tcp://127.0.0.1:{port}")
        socket.recv()
        first = time.monotonic_ns()
        for _ in range(BASELINE_FRAMES - 1):
            socket.recv()
        throughput = (BASELINE_FRAMES - 1) / ((time.monotonic_ns() - first) / 1e9)
        latencies = []
        for _ in range(LATENCY_FRAMES):
            frame = socket.recv()
            latencies.append(time.monotonic_ns() - int.from_bytes(frame[:8], "little"))
        publisher.wait(timeout=COMMAND_TIMEOUT_S)
    finally:
        socket.close(linger=0)
        context.term()
        if publisher.poll() is None:
            publisher.kill()
            publisher.wait()
        publisher.stdout.close()  # type: ignore[union-attr]
    histogram = Histogram()
    histogram.record(np.array(latencies))
    return {
        "message_bytes": message_bytes,
        "throughput_per_s": throughput,
        "latency_us": dict(histogram.percentiles(scale=1000.0)),
        "latency_rate_per_s": LATENCY_RATE_PER_S,
    }


def summary_of(result: dict[str, Any], baseline: dict[str, Any] | None) -> dict:
    """A point's summary, every figure taken from its result.json."""
    publisher, totals = result["publisher"], result["totals"]
    reported = [s for s in result["subscribers"] if s["status"] == "reported"]
    subscriber_cpu = sum(s["cpu_seconds"] for s in reported)
    delivered = result["throughput"]["delivered_per_s"]
    return {
        "published": result["published"],
        "published_per_s": result["throughput"]["published_per_s"],
        "delivered_per_s": delivered,
        "expected": totals["expected"],
        "received": totals["received"],
        "dropped": totals["dropped"],
        "foreign": totals["foreign"],
        "latency_us": result["latency_us"],
        "publisher_cpu_us_per_message": publisher["cpu_seconds"]
        * 1e6
        / max(result["published"], 1),
        "subscriber_cpu_us_per_message": subscriber_cpu
        * 1e6
        / max(totals["received"], 1),
        "max_rss_bytes_max": max((s["max_rss_bytes"] for s in reported), default=0),
        "ratio_to_baseline": delivered / baseline["throughput_per_s"]
        if baseline
        else None,
    }


def options_for(params: dict[str, Any]) -> list[str]:
    """`wardcast run` options for one point. `subscribers` adds that many
    caregivers; `subscriptions` one psychiatrist following that many
    patients (the tests' own axis names, as a sweep may give them)."""
    options = []
    for axis, value in params.items():
        if axis == "subscribers":
            options += [f"--subscriber=caregiver:{i + 1}" for i in range(value)]
        elif axis == "subscriptions":
            patients = ",".join(str(i + 1) for i in range(value))
            options += [f"--subscriber=psychiatrist:{patients}"]
        else:
            options += [f"--{axis.replace('_', '-')}", str(value)]
    return options


def build_sweep(
    folder: Path,
    *,
    name: str,
    scenario_file: Path,
    axes: dict[str, list[Any]],
    repeats: int = 1,
    extra: tuple[str, ...] = (),
    with_baseline: bool = True,
) -> Path:
    """Run every point of `axes` x `repeats` for real and write sweep.json."""
    folder.mkdir(parents=True)
    base = read_base(scenario_file, extra)
    baseline = measure_baseline(base["message_bytes"]) if with_baseline else None
    points = []
    grid = [
        dict(zip(axes, values, strict=True))
        for values in itertools.product(*axes.values())
    ]
    for index, params in enumerate(grid):
        for repeat in range(repeats):
            point_id = f"p{index:02d}r{repeat}"
            out = folder / "points" / point_id
            run_wardcast(
                "run", "--scenario", str(scenario_file), *extra, *options_for(params),
                "--no-report", "--out", str(out), check=True,
            )  # fmt: skip
            points.append(
                {
                    "id": point_id,
                    "params": params,
                    "repeat": repeat,
                    "dir": f"points/{point_id}",
                    "status": "done",
                    "summary": summary_of(read_result(out), baseline),
                }
            )
    sweep = {
        "schema": "wardcast.sweep/1",
        "name": name,
        "scenario_file": str(scenario_file),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "axes": axes,
        "repeats": repeats,
        "warmup": 0,
        "base_scenario": base,
        "baseline": baseline,
        "points": points,
        "verdict": {"text": "made by the report tests; no verdict is drawn"},
    }
    (folder / "sweep.json").write_text(json.dumps(sweep, indent=1))
    return folder


def read_base(scenario_file: Path, extra: tuple[str, ...]) -> dict:
    """The base scenario as `wardcast run` resolves it from these options."""
    args = build_parser().parse_args(["run", "--scenario", str(scenario_file), *extra])
    return scenario_from_options(args).to_dict()

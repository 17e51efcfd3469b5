"""The raw-pyzmq baseline every sweep measures beside its own runs.

One publisher (this process) and one subscriber process, loopback TCP, frames
of the sweep's message size sent the fastest plain way: one compiled `send`
per frame (see `sim.wire.raw_send`), the same bytes every time but for an
8-byte send stamp. Two measurements:

    throughput  as many frames as the sockets take, back to back; delivered
                per second over the subscriber's first to last receive
    latency     a modest fixed rate, each frame stamped with
                `time.monotonic_ns()` at send, the subscriber subtracting it
                from its receive time (one clock on one host)

and, for sweeps that search a rate, a third (`zero_drop_search`):

    zero-drop   the highest rate raw pyzmq sends with nothing dropped, found
                by the same probes, pacing and high-water mark as the
                harness's own search (`sim.rates`), so the harness-efficiency
                ratio divides like by like

The publisher waits on XPUB until the subscription has arrived, so nothing is
lost to a late joiner; what the subscriber then misses is counted as dropped.
The subscriber runs as `python -m sim.baseline` and prints its figures as one
JSON line, so it imports no more than numpy and pyzmq and starts quickly.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import zmq

from sim.errors import RunError
from sim.histogram import Histogram, Percentiles
from sim.rates import highest_sustained, sustained, waiter
from sim.wire import raw_send

logger = logging.getLogger(__name__)

# Frames in the throughput run: a few hundred thousand is a second or two at
# pyzmq's rate on loopback, long enough that start-up is a small part of it.
THROUGHPUT_FRAMES = 300_000
# ... but no more than this many bytes, so 64 KiB frames take seconds too.
THROUGHPUT_BYTES = 1 << 30
# The latency run: ten thousand frames a second, as in DESIGN.md's measured
# facts, for two seconds: far below the throughput, so queues stay empty.
LATENCY_RATE_PER_S = 10_000
LATENCY_FRAMES = 20_000
# The subscriber gives up this long after the last frame it received.
QUIET_S = 1.0
SUBSCRIBER_TIMEOUT_S = 60.0
BASELINE_HWM = 1000  # ZeroMQ's default, as an untouched deployment has
_stamp = struct.Struct("<q").pack_into


@dataclass(frozen=True)
class Baseline:
    """What raw pyzmq did with frames of `message_bytes` on this machine."""

    message_bytes: int
    throughput_per_s: float
    throughput_frames: int
    throughput_dropped: int
    latency_us: Percentiles
    latency_rate_per_s: float
    latency_frames: int
    latency_dropped: int
    measured: str

    def to_dict(self) -> dict:
        return asdict(self)


def measure(
    message_bytes: int,
    *,
    throughput_frames: int = THROUGHPUT_FRAMES,
    latency_frames: int = LATENCY_FRAMES,
    latency_rate: float = LATENCY_RATE_PER_S,
) -> Baseline:
    """Measure raw PUB/SUB throughput and latency for one message size."""
    throughput_frames = min(throughput_frames, THROUGHPUT_BYTES // message_bytes)
    fast = _exchange(message_bytes, throughput_frames, rate=None)
    paced = _exchange(message_bytes, latency_frames, rate=latency_rate, latency=True)
    latency = Histogram()
    latency.record(np.asarray(paced["latencies_ns"], dtype=np.int64))
    baseline = Baseline(
        message_bytes=message_bytes,
        throughput_per_s=_delivered_per_s(fast),
        throughput_frames=throughput_frames,
        throughput_dropped=throughput_frames - fast["received"],
        latency_us=latency.percentiles(scale=1000.0),
        latency_rate_per_s=latency_rate,
        latency_frames=latency_frames,
        latency_dropped=latency_frames - paced["received"],
        measured=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    logger.info(
        "baseline at %d bytes: %.0f frames/s, p50 %.0f µs",
        message_bytes,
        baseline.throughput_per_s,
        baseline.latency_us["p50"],
    )
    return baseline


def zero_drop_search(
    message_bytes: int, *, frames: int, hwm: int, probes: int
) -> dict[str, Any]:
    """Raw pyzmq's highest zero-drop rate, and every probe it took."""
    tried: list[dict[str, Any]] = []

    def probe(rate: float) -> dict[str, Any]:
        run = _exchange(
            message_bytes, frames, rate=None if math.isinf(rate) else rate, hwm=hwm
        )
        dropped = frames - run["received"]
        result = {
            "rate": "max" if math.isinf(rate) else round(rate, 1),
            "published_per_s": run["sent_per_s"],
            "delivered_per_s": _delivered_per_s(run),
            "dropped": dropped,
            "sustained": sustained(
                rate, published_per_s=run["sent_per_s"], dropped=dropped
            ),
        }
        tried.append(result)
        return result

    rate = highest_sustained(probe, probes)
    logger.info("raw pyzmq's zero-drop rate at %d bytes: %.0f/s", message_bytes, rate)
    return {
        "message_bytes": message_bytes,
        "frames": frames,
        "hwm": hwm,
        "zero_drop_rate": rate,
        "probes": tried,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _delivered_per_s(run: dict) -> float:
    """Frames a second over the subscriber's first to last receive."""
    span_ns = run["last_ns"] - run["first_ns"]
    return (run["received"] - 1) / (span_ns / 1e9) if span_ns else 0.0


def _exchange(
    message_bytes: int,
    frames: int,
    *,
    rate: float | None,
    hwm: int = BASELINE_HWM,
    latency: bool = False,
) -> dict:
    context = zmq.Context()
    socket = context.socket(zmq.XPUB)
    socket.setsockopt(zmq.SNDHWM, hwm)
    socket.setsockopt(zmq.LINGER, 0)
    try:
        socket.bind("tcp://127.0.0.1:*")
        endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        command = [
            *(sys.executable, "-m", "sim.baseline", endpoint, str(frames)),
            *("--hwm", str(hwm)),
            *(("--latency",) if latency else ()),
        ]
        subscriber = subprocess.Popen(
            command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        try:
            if not socket.poll(int(SUBSCRIBER_TIMEOUT_S * 1000)):
                raise RunError("the baseline subscriber never subscribed")
            socket.recv()
            sent_per_s = _send(socket, message_bytes, frames, rate)
            output, _ = subscriber.communicate(timeout=SUBSCRIBER_TIMEOUT_S)
        finally:
            if subscriber.poll() is None:
                subscriber.kill()
                subscriber.wait()
    finally:
        socket.close(linger=0)
        context.term()
    if subscriber.returncode != 0 or not output:
        raise RunError(f"the baseline subscriber exited {subscriber.returncode}")
    return {**json.loads(output), "sent_per_s": sent_per_s}


def _send(
    socket: zmq.Socket, message_bytes: int, frames: int, rate: float | None
) -> float:
    """Send `frames` frames at `rate` (None: back to back); the rate sent."""
    frame = bytearray(message_bytes)
    send, now = raw_send(socket), time.monotonic_ns
    started = now()
    if rate is None:
        for _ in range(frames):
            send(frame)
    else:
        # Pacing and stamping as the harness's publisher does them.
        wait = waiter(rate)
        due_times = (started + np.arange(1, frames + 1) * (1e9 / rate)).astype(np.int64)
        for due in due_times.tolist():
            moment = now()
            if moment < due:
                moment = wait(due)
            _stamp(frame, 0, moment)
            send(frame)
    elapsed_ns = now() - started
    return frames / (elapsed_ns / 1e9) if elapsed_ns else 0.0


def _subscribe(endpoint: str, frames: int, hwm: int, latency: bool) -> dict:
    """The subscriber's side: a bare receive loop, timed."""
    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.RCVHWM, hwm)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    recv, now = socket.recv, time.monotonic_ns
    received = first = last = 0
    latencies: list[int] = []
    keep = latencies.append
    # A receive timeout rather than a poll per frame: the loop stays as bare
    # as a plain `recv` loop, and silence still ends it.
    socket.setsockopt(zmq.RCVTIMEO, int(SUBSCRIBER_TIMEOUT_S * 1000))
    try:
        frame = recv()
        first = last = now()
        received = 1
        socket.setsockopt(zmq.RCVTIMEO, int(QUIET_S * 1000))
        if latency:
            keep(last - int.from_bytes(frame[:8], "little", signed=True))
        while received < frames:
            frame = recv()
            last = now()
            received += 1
            if latency:
                keep(last - int.from_bytes(frame[:8], "little", signed=True))
    except zmq.Again:
        pass
    socket.close(linger=0)
    context.term()
    return {
        "received": received,
        "first_ns": first,
        "last_ns": last,
        "latencies_ns": latencies,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.baseline")
    parser.add_argument("endpoint")
    parser.add_argument("frames", type=int)
    parser.add_argument("--hwm", type=int, default=BASELINE_HWM)
    parser.add_argument("--latency", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(_subscribe(args.endpoint, args.frames, args.hwm, args.latency)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The hospital's publisher: an XPUB socket, a readiness barrier and an
open-loop send loop.

Readiness. PUB drops whatever it sends before a subscription has arrived, so a
run that simply started sending would mix slow-joiner loss into its drop
counts. The publisher uses XPUB with XPUB_VERBOSE, which hands it every
subscription message (duplicates from different subscribers included), and
does not start its clock until it has seen every subscription the scenario
expects, counted as a multiset of prefixes.

Sending. Frames are built before the clock starts (up to a memory budget;
past it, chunk by chunk as the run goes), so the per-update work is: wait for
the intended time if it is still ahead, stamp the actual send time into the
frame, send. Pacing is open-loop (see `sim.schedule` and `sim.rates`).
"""

from __future__ import annotations

import logging
import random
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zmq

from sim import endpoints, security
from sim.errors import RunError
from sim.histogram import Histogram
from sim.liveness import heartbeats, set_heartbeats
from sim.rates import waiter
from sim.scenario import Scenario
from sim.schedule import frame_chunks, resume_chunks
from sim.wire import ACTUAL_SEND_OFFSET, INTENDED_SEND_OFFSET, raw_send

logger = logging.getLogger(__name__)

# Frames built before the clock starts, at most; a larger run builds the rest
# as it goes, and the building time then shows as publisher lag.
PREBUILD_BYTES = 256 * 1024 * 1024
# The clock starts this long after the barrier, so the first update is not
# already late when the loop reaches it.
START_LEAD_NS = 5_000_000

_stamp_actual = struct.Struct("<q").pack_into
_stamp_both = struct.Struct("<qq").pack_into


@dataclass
class PublishOutcome:
    """What one publisher run sent."""

    run_id: int
    published: int
    per_topic: np.ndarray
    first_send_ns: int
    last_send_ns: int
    lag: Histogram
    aborted: bool = False
    late_subscriptions: int = 0
    chunks_built_late: int = 0
    cpu_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def expected_subscriptions(scenario: Scenario) -> Counter[bytes]:
    wanted: Counter[bytes] = Counter()
    for spec in scenario.subscribers:
        wanted.update(spec.prefixes())
    return wanted


def process_cpu_seconds() -> float:
    # CPU of every thread of the process (ZeroMQ's I/O thread does the fan-out)
    # to the nanosecond; os.times() counts in 10 ms clock ticks, too coarse
    # for a short run's cost per message.
    return time.process_time()


class Publisher:
    """Publishes one scenario's updates on an XPUB socket."""

    def __init__(self, scenario: Scenario, context: zmq.Context) -> None:
        self.scenario = scenario
        self.run_id = random.SystemRandom().randrange(1, 2**32)
        # Keys are loaded before the socket exists, so a missing key leaves no
        # socket open to block the context's termination.
        self.curve: security.CurveServer | None = None
        if scenario.curve:
            self.curve = security.CurveServer(context, Path(scenario.keys))
        self.socket = context.socket(zmq.XPUB)
        self.socket.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.socket.setsockopt(zmq.SNDHWM, scenario.hwm)
        self.socket.setsockopt(zmq.RCVHWM, 0)
        self.socket.setsockopt(zmq.LINGER, 0)
        if scenario.sndbuf:
            self.socket.setsockopt(zmq.SNDBUF, scenario.sndbuf)
        if self.curve is not None:
            self.curve.apply(self.socket)
        set_heartbeats(self.socket, heartbeats(scenario))
        self.endpoint = ""
        self._chunks: Iterator[np.ndarray] = iter(())
        self._prebuilt: list[np.ndarray] = []

    def bind(self) -> str:
        self.endpoint = endpoints.bind(self.socket, self.scenario.endpoint)
        logger.info("publisher bound %s (run id %08x)", self.endpoint, self.run_id)
        return self.endpoint

    def prebuild(self, resume_from: int = 0) -> None:
        """Build frames ahead of the clock, up to PREBUILD_BYTES; a restarted
        publisher resumes the schedule after its first `resume_from` updates."""
        self._chunks = frame_chunks(self.scenario, self.run_id)
        if resume_from:
            self._chunks = resume_chunks(self._chunks, resume_from)
        built = 0
        for chunk in self._chunks:
            self._prebuilt.append(chunk)
            built += chunk.nbytes
            if built >= PREBUILD_BYTES:
                break
        logger.debug("prebuilt %d bytes of frames", built)

    def await_subscriptions(self, wanted: Counter[bytes], timeout_s: float) -> None:
        """Block until every wanted subscription has arrived (bounded)."""
        outstanding = Counter(wanted)
        # Kept beside the Counter: recomputing `+outstanding` per message made
        # 20,000 subscriptions take minutes (quadratic).
        missing = sum(wanted.values())
        deadline = time.monotonic() + timeout_s
        while missing > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.socket.poll(int(remaining * 1000)):
                total = sum(wanted.values())
                raise RunError(
                    f"only {total - missing} of {total} subscriptions reached the"
                    f" publisher within {timeout_s:.0f} s;"
                    f" missing {sorted(+outstanding)[:3]}"
                )
            message = self.socket.recv()
            prefix = message[1:]
            if message[:1] == b"\x01":
                missing -= outstanding[prefix] > 0
                outstanding[prefix] -= 1
            elif message[:1] == b"\x00":
                outstanding[prefix] += 1
                missing += outstanding[prefix] > 0
        logger.info("all %d subscriptions arrived", sum(wanted.values()))

    def publish(
        self,
        should_stop: Callable[[], bool] = lambda: False,
        on_chunk: Callable[[np.ndarray, list[bytes]], None] | None = None,
    ) -> PublishOutcome:
        """Send every update on schedule; `should_stop` is asked between chunks,
        `on_chunk` told of each chunk sent and the subscription changes seen."""
        paced = self.scenario.paced_by != "max"
        start_ns = time.monotonic_ns() + START_LEAD_NS
        per_topic = np.zeros(self.scenario.patients + 1, dtype=np.int64)
        lag = Histogram()
        outcome = PublishOutcome(self.run_id, 0, per_topic, 0, 0, lag)
        cpu_before = process_cpu_seconds()
        for built_late, frames in self._all_chunks():
            outcome.chunks_built_late += built_late
            if paced:
                frames["intended_ns"] += start_ns
            sent = self._send_chunk(frames, paced)
            if outcome.published == 0 and sent:
                outcome.first_send_ns = int(frames["actual_ns"][0])
            if sent:
                outcome.last_send_ns = int(frames["actual_ns"][sent - 1])
            outcome.published += sent
            per_topic += np.bincount(frames["patient"][:sent], minlength=len(per_topic))
            if paced:
                lag.record(frames["actual_ns"][:sent] - frames["intended_ns"][:sent])
            changes = self._drain_subscriptions()
            outcome.late_subscriptions += len(changes)
            if on_chunk is not None:
                on_chunk(frames[:sent], changes)
            if sent < len(frames) or should_stop():
                outcome.aborted = True
                break
        outcome.cpu_seconds = process_cpu_seconds() - cpu_before
        logger.info("published %d updates", outcome.published)
        return outcome

    def _all_chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        for chunk in self._prebuilt:
            yield 0, chunk
        self._prebuilt = []
        for chunk in self._chunks:
            yield 1, chunk

    def _send_chunk(self, frames: np.ndarray, paced: bool) -> int:
        """Send a chunk's frames; the number sent (all, unless interrupted)."""
        size = frames.itemsize
        buffer = memoryview(frames.view(np.uint8))
        # One view per frame, made before the loop: slicing inside it costs
        # as much as the stamp and the send together.
        views = [
            buffer[offset : offset + size] for offset in range(0, buffer.nbytes, size)
        ]
        send = raw_send(self.socket)
        now = time.monotonic_ns
        if not paced:
            for view in views:
                moment = now()
                _stamp_both(view, INTENDED_SEND_OFFSET, moment, moment)
                send(view)
            return len(frames)
        wait = waiter(self.scenario.rate)
        for due, view in zip(frames["intended_ns"].tolist(), views, strict=True):
            moment = now()
            if moment < due:
                moment = wait(due)
            _stamp_actual(view, ACTUAL_SEND_OFFSET, moment)
            send(view)
        return len(frames)

    def _drain_subscriptions(self) -> list[bytes]:
        """Subscription changes that arrived during the run (reconnects)."""
        changes = []
        while self.socket.poll(0):
            changes.append(self.socket.recv())
        return changes

    def close(self, linger_ms: int = 0) -> None:
        """Close; `linger_ms` is how long updates still queued may take to go."""
        self.socket.close(linger=linger_ms)
        if self.curve is not None:
            self.curve.stop()
            self.curve = None

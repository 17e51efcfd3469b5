"""Liveness: heartbeats on the data sockets, and silence as a reported fact.

A SUB socket never says that its publisher has gone: a dead peer over TCP
looks exactly like a quiet one until the kernel gives up, many minutes later.
Two things make it visible:

- ZeroMQ heartbeats (`ZMQ_HEARTBEAT_IVL`, `_TIMEOUT`, `_TTL`), scenario
  settings, make either side drop a connection whose peer stops answering;
  the subscriber's socket monitor then sees `disconnected` and, once the
  peer is back, `connected` again. Without heartbeats a cut cable produces
  no event at all, only silence.
- Every subscriber keeps the silences it lived through: each stretch longer
  than `silence_seconds` between two updates, with its start and end on the
  one monotonic clock every process on the host shares, so the harness can
  line them up with the faults it injected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import zmq

from sim.scenario import Scenario

# Silence shorter than this is never reported, however fast the clock runs:
# a loaded two-core machine can stall a process for a few hundred ms.
MIN_SILENCE_S = 0.5
# A gap of this many schedule slots without an update is silence.
SILENT_SLOTS = 3
# The threshold of a subscriber that was given none: no gap is that long.
NEVER_SILENT_NS = 10**15


def heartbeats(scenario: Scenario) -> tuple[int, int, int]:
    """The scenario's heartbeat interval, timeout and TTL in ms (0: off)."""
    return (
        scenario.heartbeat_ivl_ms,
        scenario.heartbeat_timeout_ms,
        scenario.heartbeat_ttl_ms,
    )


def set_heartbeats(socket: zmq.Socket, settings: tuple[int, int, int]) -> None:
    """Apply heartbeat settings to a data socket, before it binds or connects
    (ZeroMQ copies them into each connection as it is made)."""
    options = (zmq.HEARTBEAT_IVL, zmq.HEARTBEAT_TIMEOUT, zmq.HEARTBEAT_TTL)
    for option, value in zip(options, settings, strict=True):
        if value:
            socket.setsockopt(option, value)


def silence_threshold_ns(scenario: Scenario) -> int:
    """How long without an update counts as silence in this scenario."""
    if scenario.silence_seconds:
        return int(scenario.silence_seconds * 1e9)
    slot_s = 0.0
    if scenario.paced_by == "clock":
        slot_s = scenario.day_seconds / scenario.updates_per_day
    return int(max(MIN_SILENCE_S, SILENT_SLOTS * slot_s) * 1e9)


@dataclass
class Liveness:
    """What one subscriber knows about its publisher being there."""

    silence_ns: int
    silences: list[tuple[int, int]] = field(default_factory=list)
    connections: list[tuple[str, int]] = field(default_factory=list)
    runs: dict[int, list[int]] = field(default_factory=dict)  # first, last ns
    last_ns: int = 0

    def note(self, event: str, at_ns: int) -> None:
        """A session with the publisher was made ("connected") or ended
        ("disconnected"); the subscriber's socket monitor tells."""
        self.connections.append((event, at_ns))

    def observe(self, received_ns: np.ndarray) -> None:
        """Note the receive times of a batch (in arrival order)."""
        if self.last_ns:
            stamps = np.concatenate(([self.last_ns], received_ns))
        else:
            stamps = received_ns
        gaps = np.diff(stamps)
        for index in np.flatnonzero(gaps > self.silence_ns).tolist():
            self.silences.append((int(stamps[index]), int(stamps[index + 1])))
        self.last_ns = int(received_ns[-1])

    def observe_run(self, run_id: int, received_ns: np.ndarray) -> None:
        times = self.runs.setdefault(run_id, [int(received_ns[0]), 0])
        times[1] = int(received_ns[-1])

    def to_dict(self, now_ns: int) -> dict:
        return {
            "silence_threshold_seconds": self.silence_ns / 1e9,
            "silences": [
                {"start_ns": a, "end_ns": b, "seconds": (b - a) / 1e9}
                for a, b in self.silences
            ],
            "longest_silence_seconds": max(
                ((b - a) / 1e9 for a, b in self.silences), default=0.0
            ),
            "silent_at_report_seconds": (now_ns - self.last_ns) / 1e9
            if self.last_ns
            else None,
            "connection_events": [
                {"event": name, "at_ns": at} for name, at in self.connections
            ],
            "runs": {
                str(run_id): {"first_receive_ns": a, "last_receive_ns": b}
                for run_id, (a, b) in self.runs.items()
            },
        }

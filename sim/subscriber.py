"""Hospital subscribers: SUB sockets that count, time and check every update.

The receive loop is the harness's ceiling, so it does as little as possible
per message: receive, check the size, take the receive time, append both to
lists. Everything else (decoding, validation, foreign-topic checks, sequence
accounting, latency histograms) runs once per batch on numpy arrays.

End of run. The subscriber never decides by silence that a run is over: the
harness sends, on the control channel, how many updates the publisher sent on
every topic. The subscriber then keeps receiving until it has them all, or
until nothing has arrived for `drain_quiet_seconds`, or `drain_timeout_seconds`
have passed, and only then reports; what never arrived is dropped.
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from sim import security
from sim.accounting import TopicLedger
from sim.daily import DailyLatency
from sim.histogram import Histogram
from sim.liveness import NEVER_SILENT_NS, Liveness, set_heartbeats
from sim.roles import SubscriberSpec
from sim.scenario import Scenario
from sim.wire import BatchDecoder

logger = logging.getLogger(__name__)

# Frames taken from one socket in one go, and the number held back before they
# are processed as a batch. Processing a batch costs tens of microseconds
# whatever its size, so frames wait (their receive times already taken) until
# a batch is full or the subscriber is idle; large enough that numpy's
# per-call overhead is spread thin, small enough that a batch is processed
# long before the socket's high-water mark fills.
BATCH_FRAMES = 512
# Frames held back before processing, across a process's sockets: numpy's
# per-call overhead made 512-frame batches cost 1.1 µs a frame and 4,096-frame
# batches 0.4 µs (reference size, this machine); the byte budget keeps a
# process of many sockets, or of 64 KiB frames, small.
MAX_FLUSH_FRAMES = 4096
FLUSH_BUDGET_BYTES = 8 * 1024 * 1024


def flush_threshold(message_bytes: int, sockets: int) -> int:
    """Frames a socket holds before they are processed as a batch."""
    share = FLUSH_BUDGET_BYTES // (message_bytes * max(sockets, 1))
    return max(1, min(MAX_FLUSH_FRAMES, share))


SECONDS_PER_DAY = 86_400
# What the session monitor listens for: a session made (after CURVE, if any)
# and a session ended.
SESSION_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
# The longest run a scenario may describe (100,000 days), in simulated seconds.
LONGEST_RUN_SECONDS = 100_000 * SECONDS_PER_DAY
# Names of foreign topics kept as evidence in a report.
FOREIGN_EXAMPLES = 5


@dataclass
class Tally:
    """What one subscriber has seen so far."""

    received_frames: int = 0
    malformed: int = 0
    foreign: int = 0
    stale: int = 0  # well-formed updates from a publisher run other than this one
    filtered: int = 0  # other patients' updates, dropped here by choice
    negative_latency: int = 0
    foreign_topics: list[str] = field(default_factory=list)
    first_receive_ns: int = 0
    last_receive_ns: int = 0
    # Sessions with the publisher: made, ended, and the reason the last ended.
    connections: int = 0
    disconnections: int = 0


class SubscriberSocket:
    """One subscriber: a SUB socket following one role's patients."""

    def __init__(
        self,
        spec: SubscriberSpec,
        *,
        context: zmq.Context,
        endpoint: str,
        decoder: BatchDecoder,
        hwm: int,
        rcvbuf: int = 0,
        start_epoch: int = 0,
        extra_prefixes: tuple[bytes, ...] = (),
        keys: str = "",
        max_message_bytes: int = -1,
        liveness: Liveness | None = None,
        heartbeats: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        self.spec = spec
        self.decoder = decoder
        self.start_epoch = start_epoch
        self.socket = context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, hwm)
        # Subscriptions travel out through the send queue: at the default
        # high-water mark of 1,000, a subscriber to 10,000 topics would
        # silently subscribe to only 1,000 of them.
        self.socket.setsockopt(zmq.SNDHWM, 0)
        self.socket.setsockopt(zmq.LINGER, 0)
        if rcvbuf:
            self.socket.setsockopt(zmq.RCVBUF, rcvbuf)
        # A frame above this ends the session for good (ZeroMQ treats it as a
        # protocol error and never reconnects): memory stays bounded, and the
        # session monitor below is how the subscriber notices and says so.
        self.socket.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        if keys:
            security.apply_client(self.socket, Path(keys), spec.name)
        self.monitor = self.socket.get_monitor_socket(SESSION_EVENTS)
        set_heartbeats(self.socket, heartbeats)
        self.socket.connect(endpoint)
        # `extra_prefixes` exist only so tests can show that a wrong
        # subscription is caught as foreign; the roles never produce one.
        self.prefixes = spec.prefixes() + list(extra_prefixes)
        for prefix in self.prefixes:
            self.socket.setsockopt(zmq.SUBSCRIBE, prefix)
        self.follows = np.zeros(decoder.patients + 1, dtype=bool)
        if spec.follows_all():
            self.follows[1:] = True
        else:
            self.follows[list(spec.patients)] = True
        self.tally = Tally()
        self.liveness = liveness or Liveness(silence_ns=NEVER_SILENT_NS)
        self.ledgers: dict[int, TopicLedger] = {}
        self.from_intended = Histogram()
        self.from_actual = Histogram()
        self._per_day = np.zeros(0, dtype=np.int64)
        self._days_seen = 0
        self.latency_per_day = DailyLatency()
        self.trace: list[np.ndarray] = []
        self._frames: list[bytes] = []
        self._stamps: list[int] = []

    @property
    def per_day(self) -> np.ndarray:
        """Updates received per simulated day, from the first day."""
        return self._per_day[: self._days_seen]

    @property
    def topics(self) -> int:
        return int(self.follows.sum())

    def receive(self) -> int:
        """Take what is waiting, up to a batch, without processing it.

        The parts of a multipart message (which no wardcast publisher sends)
        are taken one by one and each is checked as an update of its own:
        asking RCVMORE of every message would add a socket-option call to the
        hottest loop, and a part is held to the same checks as a message.
        """
        frames, stamps = self._frames, self._stamps
        keep, stamp = frames.append, stamps.append
        recv, now = self.socket.recv, time.monotonic_ns
        size = self.decoder.message_bytes
        before = len(frames)
        try:
            for _ in range(BATCH_FRAMES):
                frame = recv(zmq.NOBLOCK)
                if len(frame) == size:
                    keep(frame)
                    stamp(now())
                else:
                    self._set_aside_odd_frame()
        except zmq.Again:
            pass
        return len(frames) - before

    def session_events(self) -> None:
        """Count the sessions made and ended since last asked, and tell the
        liveness record when each happened (one monitor serves both: ZeroMQ
        allows one per socket)."""
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.tally.connections += 1
                self.liveness.note("connected", time.monotonic_ns())
            elif event == zmq.EVENT_DISCONNECTED:
                self.tally.disconnections += 1
                self.liveness.note("disconnected", time.monotonic_ns())

    @property
    def session_ended(self) -> bool:
        """True when the last session with the publisher ended and none followed."""
        self.session_events()
        return self.tally.disconnections >= self.tally.connections > 0

    @property
    def pending(self) -> int:
        return len(self._frames)

    def flush(self) -> None:
        """Process every frame received so far."""
        if not self._frames:
            return
        frames, stamps = self._frames, self._stamps
        self._frames, self._stamps = [], []
        self._account(frames, np.array(stamps, dtype=np.int64))
        if self.spec.slow_us:
            time.sleep(len(frames) * self.spec.slow_us / 1e6)

    def _set_aside_odd_frame(self) -> None:
        """A frame of the wrong size: count it, with the rest of its message."""
        self.tally.malformed += 1
        while self.socket.getsockopt(zmq.RCVMORE):
            self.socket.recv()

    def _account(self, frames: list[bytes], received_ns: np.ndarray) -> None:
        tally = self.tally
        if not tally.first_receive_ns:
            tally.first_receive_ns = int(received_ns[0])
        tally.last_receive_ns = int(received_ns[-1])
        self.liveness.observe(received_ns)
        tally.received_frames += len(frames)
        records, valid = self.decoder.decode(frames)
        # A simulated time far outside any run would make the per-day counts
        # below allocate without bound: such a frame is malformed.
        valid &= records["sim_time"] - self.start_epoch < LONGEST_RUN_SECONDS
        if not valid.all():
            tally.malformed += int((~valid).sum())
            records, received_ns = records[valid], received_ns[valid]
        own = self.follows[records["patient"]]
        if not own.all():
            if self.spec.filters_itself():
                tally.filtered += int((~own).sum())
            else:
                self._note_foreign(records[~own])
            records, received_ns = records[own], received_ns[own]
        if len(records) == 0:
            return
        run_ids = records["run_id"]
        if (run_ids == run_ids[0]).all():  # the usual case: one publisher run
            batch_runs = [int(run_ids[0])]
        else:
            batch_runs = np.unique(run_ids).tolist()
        for run_id in batch_runs:
            mine = run_ids == run_id
            ledger = self.ledgers.get(run_id)
            if ledger is None:
                ledger = self.ledgers[run_id] = TopicLedger(self.decoder.patients)
            ledger.record(records["patient"][mine], records["seq"][mine])
            self.liveness.observe_run(run_id, received_ns[mine])
        from_intended = received_ns - records["intended_ns"]
        tally.negative_latency += int((from_intended < 0).sum())
        self.from_intended.record(from_intended)
        self.from_actual.record(received_ns - records["actual_ns"])
        days = (records["sim_time"] - self.start_epoch) // SECONDS_PER_DAY
        days = np.clip(days, 0, None)
        counts = np.bincount(days)
        if len(counts) > len(self._per_day):
            # Grow by doubling: a week-long run would otherwise pad every batch.
            grown = np.zeros(max(len(counts), 2 * len(self._per_day)), np.int64)
            grown[: len(self._per_day)] = self._per_day
            self._per_day = grown
        self._per_day[: len(counts)] += counts
        self._days_seen = max(self._days_seen, len(counts))
        self.latency_per_day.record(days, from_intended)
        if self.spec.trace:
            self.trace.append(
                np.stack([run_ids, records["patient"], records["seq"]], axis=1)
            )

    def _note_foreign(self, records: np.ndarray) -> None:
        self.tally.foreign += len(records)
        room = FOREIGN_EXAMPLES - len(self.tally.foreign_topics)
        for topic in np.unique(records["topic"])[:room].tolist():
            self.tally.foreign_topics.append(topic.decode(errors="replace"))

    def received_for(self, run_id: int) -> int:
        self.flush()
        ledger = self.ledgers.get(run_id)
        return int(ledger.received[self.follows].sum()) if ledger else 0

    def report(self, run_id: int, published: np.ndarray) -> dict:
        """This subscriber's figures for the publisher run `run_id`."""
        self.flush()
        self.session_events()
        ledger = self.ledgers.get(run_id) or TopicLedger(self.decoder.patients)
        expected_per_topic = np.where(self.follows, published, 0)
        received_per_topic = np.where(self.follows, ledger.received, 0)
        dropped_per_topic = expected_per_topic - received_per_topic
        stale = sum(
            int(other.received.sum())
            for key, other in self.ledgers.items()
            if key != run_id
        )
        topics_with_drops = np.flatnonzero(dropped_per_topic)
        report = {
            "name": self.spec.name,
            "role": str(self.spec.role),
            "topics": self.topics,
            "patients": list(self.spec.patients),
            "expected": int(expected_per_topic.sum()),
            "received": int(received_per_topic.sum()),
            "dropped": int(dropped_per_topic.sum()),
            "foreign": self.tally.foreign,
            "foreign_topics": self.tally.foreign_topics,
            "duplicates": ledger.duplicates,
            "reordered": ledger.reordered,
            "gaps": ledger.gap_events,
            "malformed": self.tally.malformed,
            "filter_side": self.spec.filter_side,
            "filtered": self.tally.filtered,
            "stale": stale,
            "topics_with_drops": len(topics_with_drops),
            "negative_latency": self.tally.negative_latency,
            "connections": self.tally.connections,
            "disconnections": self.tally.disconnections,
            "session_ended": self.session_ended,
            "latency_us": self.from_intended.percentiles(scale=1000.0),
            "latency_from_actual_us": self.from_actual.percentiles(scale=1000.0),
            "first_receive_ns": self.tally.first_receive_ns,
            "last_receive_ns": self.tally.last_receive_ns,
            "received_per_day": self.per_day.tolist(),
            "latency_per_day": self.latency_per_day.to_dict(),
            "histograms": {
                "from_intended": self.from_intended.to_dict(),
                "from_actual": self.from_actual.to_dict(),
            },
        }
        report["liveness"] = self.liveness.to_dict(time.monotonic_ns())
        report["other_runs"] = [
            {
                "run_id": key,
                "received": int(other.received[self.follows].sum()),
                "duplicates": other.duplicates,
                "next_seq": other.next_seq.tolist(),
            }
            for key, other in self.ledgers.items()
            if key != run_id
        ]
        if self.spec.trace:
            trace = np.concatenate(self.trace) if self.trace else np.zeros((0, 3))
            report["trace"] = trace.astype(np.int64).tolist()
        return report

    def close(self) -> None:
        self.socket.disable_monitor()
        self.monitor.close(linger=0)
        self.socket.close(linger=0)


def process_usage() -> tuple[float, int]:
    """CPU seconds (user + system) and peak resident bytes of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def subscriber_message_limit(scenario: Scenario) -> int:
    """ZMQ_MAXMSGSIZE for a scenario's subscribers (see Scenario)."""
    if scenario.max_message_bytes != 0:
        return scenario.max_message_bytes
    if scenario.curve:
        return scenario.message_bytes + security.CURVE_MESSAGE_OVERHEAD
    return scenario.message_bytes

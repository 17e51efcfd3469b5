"""Hospital subscribers as Locust users.

Each user is one subscriber of one role (caregiver, psychiatrist or
administration) with its own SUB socket from `zmq.green`, whose waits yield to
gevent: a plain pyzmq receive would block every other user of the process and
Locust's own loop with them. Every delivered update is a Locust request event
of type ZMQ named by the role, its response time the one-way latency from the
update's intended send time; every update found missing is a failed event, one
per update, so Locust's failure count is the number of updates dropped.

Exact accounting for a user that joins a running publisher and leaves before
it ends. A user counts each topic from the first sequence number it sees on
it: what the publisher sent before that (slow-joiner loss included) is not
this user's. Within the window, a jump in sequence numbers is a drop, reported
as soon as it is seen. The end of the window comes from the publisher itself:
when the test stops, each Locust process asks the publisher's progress
endpoint (`sim.progress`, a channel that cannot drop) how far it has got, lets
its users receive until they have seen everything up to that point (bounded by
a quiet time and a deadline), and counts what is still missing as dropped.
So for every topic a user saw, expected = (publisher's count, or one past the
last sequence seen if later) - first sequence seen, and dropped = expected -
received. A user stopped before the end of the test (a shape that steps down)
closes its window at the last update it received.

Every Locust process keeps its own mergeable histograms (`sim.histogram`) and
sends them to the master at the end; see `sim.locust_results`.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

import gevent
import numpy as np
import zmq.green as zmq
from locust import User, constant, task

from sim.locust_tally import FOREIGN_EXAMPLES, JoiningLedger, RoleTally
from sim.progress import Progress
from sim.roles import Role, SubscriberSpec, make_subscriber
from sim.wire import BatchDecoder

logger = logging.getLogger(__name__)

REQUEST_TYPE = "ZMQ"
# A user's wait for updates is a poll this long, so a stopping user is never
# stuck for longer in a receive.
POLL_MS = 100
# Frames taken from the socket before they are decoded as one numpy batch:
# decoding costs tens of microseconds whatever the size, and a batch of this
# many is processed long before a default high-water mark of 1,000 fills.
BATCH_FRAMES = 256
DROPPED = "update dropped (sequence gap)"
DROPPED_AT_END = "update dropped (never arrived before the end)"
FOREIGN = "foreign update (a topic this user did not subscribe to)"


class UpdateDropped(Exception):
    """An update the publisher sent that this user never received."""


class ForeignUpdate(Exception):
    """An update on a topic this user did not subscribe to."""


@dataclass(frozen=True, kw_only=True)
class SocketOptions:
    """How every user's SUB socket is set up."""

    endpoint: str
    hwm: int = 1000
    rcvbuf: int = 0
    slow_us: float = 0.0


class Subscription:
    """One user's SUB socket and what it has seen; knows nothing of Locust."""

    def __init__(
        self,
        spec: SubscriberSpec,
        *,
        context: zmq.Context,
        progress: Progress,
        options: SocketOptions,
    ) -> None:
        self.spec = spec
        self.run_id = progress.run_id
        self.slow_us = options.slow_us
        self.decoder = BatchDecoder(
            message_bytes=progress.message_bytes, patients=progress.patients
        )
        self.socket = context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, options.hwm)
        # Subscriptions leave through the send queue (see sim.subscriber).
        self.socket.setsockopt(zmq.SNDHWM, 0)
        self.socket.setsockopt(zmq.LINGER, 0)
        if options.rcvbuf:
            self.socket.setsockopt(zmq.RCVBUF, options.rcvbuf)
        self.socket.connect(options.endpoint)
        for prefix in spec.prefixes():
            self.socket.setsockopt(zmq.SUBSCRIBE, prefix)
        self.follows = np.zeros(progress.patients + 1, dtype=bool)
        if spec.follows_all():
            self.follows[1:] = True
        else:
            self.follows[list(spec.patients)] = True
        self.ledger = JoiningLedger(progress.patients)
        self.tally = RoleTally(str(spec.role), users=1, topics=int(self.follows.sum()))
        self.closed = False

    def receive(self) -> Delivery | None:
        """Wait up to POLL_MS for updates and account for those that came."""
        # A window closed while this user waited takes nothing more in.
        if not self.socket.poll(POLL_MS) or self.closed:
            return None
        frames, stamps = [], []
        size = self.decoder.message_bytes
        try:
            for _ in range(BATCH_FRAMES):
                frame = self.socket.recv(zmq.NOBLOCK)
                stamp = time.monotonic_ns()
                if len(frame) == size:
                    frames.append(frame)
                    stamps.append(stamp)
                else:
                    self.tally.malformed += 1
        except zmq.Again:
            pass
        delivery = self._account(frames, np.array(stamps, dtype=np.int64))
        if self.slow_us:
            gevent.sleep(len(frames) * self.slow_us / 1e6)
        return delivery

    def _account(self, frames: list[bytes], received_ns: np.ndarray) -> Delivery:
        tally = self.tally
        if not frames:
            return Delivery(np.zeros(0, dtype=np.int64), 0, [])
        records, valid = self.decoder.decode(frames)
        tally.malformed += int((~valid).sum())
        records, received_ns = records[valid], received_ns[valid]
        own = self.follows[records["patient"]]
        foreign = [t.decode(errors="replace") for t in records["topic"][~own]]
        tally.foreign += len(foreign)
        room = FOREIGN_EXAMPLES - len(tally.foreign_topics)
        tally.foreign_topics += sorted(set(foreign))[: max(room, 0)]
        current = own & (records["run_id"] == self.run_id)
        tally.stale += int((own & ~current).sum())
        records, received_ns = records[current], received_ns[current]
        missing = self.ledger.record(records["patient"], records["seq"])
        latency = received_ns - records["intended_ns"]
        tally.from_intended.record(latency)
        tally.from_actual.record(received_ns - records["actual_ns"])
        tally.delivered += len(records)
        return Delivery(latency, missing, foreign)

    def behind(self, published: np.ndarray) -> int:
        return self.ledger.behind(published)

    def release(self) -> None:
        """Close the socket; only from the greenlet that receives on it."""
        self.socket.close(linger=0)

    def close(self, published: np.ndarray | None) -> int:
        """Close the window (see the module's docstring); the updates still
        missing at its end, which are dropped. The socket stays open until
        its own user lets it go: closing it under a greenlet that is waiting
        on it aborts gevent's loop."""
        self.closed = True
        tail = self.ledger.behind(published) if published is not None else 0
        expected, received = self.ledger.close(published)
        self.tally.expected, self.tally.received = expected, received
        self.tally.dropped = expected - received
        self.tally.duplicates = self.ledger.duplicates
        return tail


@dataclass(frozen=True)
class Delivery:
    """What one receive brought: latencies (ns) of the updates delivered,
    updates found missing, and the topics of foreign updates."""

    latency_ns: np.ndarray
    missing: int
    foreign: list[str]


def choose_patients(
    role: Role, patients: int, how_many: int, rng: random.Random
) -> list[int]:
    """The patients a new user of `role` follows."""
    if role is Role.ADMINISTRATION:
        return []
    if role is Role.CAREGIVER:
        return [rng.randint(1, patients)]
    start = rng.randint(0, patients - 1)
    return [(start + k) % patients + 1 for k in range(min(how_many, patients))]


class HospitalUser(User):
    """A subscriber of one role; the task receives until the user is stopped."""

    abstract = True
    role: Role = Role.ADMINISTRATION
    wait_time = constant(0)

    def on_start(self) -> None:
        from sim import locust_run

        process = locust_run.process_state(self.environment)
        spec = make_subscriber(
            str(self.role),
            choose_patients(
                self.role,
                process.progress.patients,
                process.settings.psychiatrist_patients,
                process.rng,
            ),
        )
        self.subscription = Subscription(
            spec,
            context=process.context,
            progress=process.progress,
            options=process.settings.socket_options(),
        )
        process.join(self)

    @task
    def listen(self) -> None:
        from sim import locust_run

        process = locust_run.process_state(self.environment)
        fire = self.environment.events.request.fire
        name = str(self.role)
        size = self.subscription.decoder.message_bytes
        while not self.subscription.closed:
            delivery = self.subscription.receive()
            if delivery is None:
                continue
            for latency_ms in (delivery.latency_ns / 1e6).tolist():
                fire(
                    request_type=REQUEST_TYPE,
                    name=name,
                    response_time=latency_ms,
                    response_length=size,
                    exception=None,
                    context={},
                )
            process.note_step(delivery.latency_ns, delivery.missing)
            self.report_failures(delivery.missing, DROPPED)
            for topic in delivery.foreign:
                self.report_failures(1, f"{FOREIGN}: {topic}", ForeignUpdate)
        # The end-of-test drain closed this user's window. The user waits to
        # be stopped rather than stop itself: Locust, stopping its users just
        # after, logs an error for every user greenlet that has already ended.
        self.subscription.release()
        while True:
            gevent.sleep(POLL_MS / 1000)

    def report_failures(
        self, count: int, message: str, kind: type[Exception] = UpdateDropped
    ) -> None:
        fire = self.environment.events.request.fire
        for _ in range(count):
            fire(
                request_type=REQUEST_TYPE,
                name=str(self.role),
                response_time=0.0,
                response_length=0,
                exception=kind(message),
                context={},
            )

    def on_stop(self) -> None:
        from sim import locust_run

        if not hasattr(self, "subscription"):
            return
        if not self.subscription.closed:
            locust_run.process_state(self.environment).leave(self, published=None)
        self.subscription.release()


class CaregiverUser(HospitalUser):
    """Follows one patient."""

    role = Role.CAREGIVER
    weight = 3


class PsychiatristUser(HospitalUser):
    """Follows a handful of consecutive patients."""

    role = Role.PSYCHIATRIST
    weight = 2


class AdministrationUser(HospitalUser):
    """Follows every patient."""

    role = Role.ADMINISTRATION
    weight = 1


USER_CLASSES = (CaregiverUser, PsychiatristUser, AdministrationUser)

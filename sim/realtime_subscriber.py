"""`wardcast subscribe`: one hospital subscriber in real time.

The subscriber as a person runs it, in a terminal beside `wardcast publish`
(`sim.realtime`): it follows one role's patients and prints their updates as
they arrive, counting what is missing by sequence number, foreign or
malformed. It never waits without a word: a silence longer than
`--silence-seconds` is said, and a session that ends is watched. When a session
ends, ZeroMQ retrying a refused connection means the publisher went away
(and will be reconnected to if it comes back); no retries mean the session
ended for good. Either way, one that stays ended for `--reconnect-seconds`
stops the subscriber with a line saying which it was.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import zmq
from zmq.utils.monitor import recv_monitor_message

from sim import endpoints, security
from sim.errors import ScenarioError, UserError
from sim.realtime import DEFAULT_ENDPOINT
from sim.roles import SubscriberSpec, make_subscriber
from sim.wire import MalformedFrame, decode_frame

# A frame larger than this ends the session: far above any update (a few
# hundred bytes) and far below what would exhaust a small machine's memory.
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
# A session that ended (publisher gone, oversized frame) and did not come back
# within this long is reported and the subscriber stops; a restarting
# publisher is back well within it.
RECONNECT_GRACE_S = 10.0
# Sessions made and ended, and ZeroMQ retrying a refused connection: after a
# session ends, retries mean the publisher is gone (and will be reconnected
# to when it is back); no retries mean the session ended for good (an
# oversized frame or a protocol error, which ZeroMQ never reconnects).
SESSION_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED
)
# Why a subscriber stopped on an ended session: its publisher went away (and
# ZeroMQ was retrying), or the session ended for good.
GONE, ENDED = "publisher gone", "session ended for good"
# Updates come every half simulated day (30 s in real time), so three missed
# slots mean the publisher is gone rather than between updates.
REAL_TIME_SILENCE_S = 90.0


def add_subscribe_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--role", required=True, help="caregiver, psychiatrist or administration"
    )
    parser.add_argument(
        "--patient",
        type=int,
        action="append",
        default=[],
        help="a patient to follow; repeat for a psychiatrist",
    )
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    parser.add_argument("--hwm", type=int, default=1000)
    parser.add_argument(
        "--count",
        type=int,
        default=0,
        help="stop after this many updates (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=0.0,
        help="stop after this long (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--keys",
        type=Path,
        help="CURVE key folder holding publisher.key and this subscriber's keys",
    )
    parser.add_argument(
        "--name", help="this subscriber's key name in --keys (default: from the role)"
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help="a larger frame ends the session (ZMQ_MAXMSGSIZE; -1 unlimited)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        help="write this subscriber's counts as JSON to this file when it stops",
    )
    parser.add_argument(
        "--reconnect-seconds",
        type=float,
        default=RECONNECT_GRACE_S,
        help="how long an ended session may stay ended before giving up",
    )
    parser.add_argument(
        "--silence-seconds",
        type=float,
        default=REAL_TIME_SILENCE_S,
        help="say so when no update has come for this long (default 90)",
    )


def command_subscribe(args: argparse.Namespace) -> int:
    spec = make_subscriber(args.role, args.patient, name=args.name)
    endpoints.parse(args.endpoint)
    if not args.silence_seconds > 0:
        raise ScenarioError(
            f"--silence-seconds must be above 0, got {args.silence_seconds}"
        )
    if args.max_message_bytes == 0 or args.max_message_bytes < -1:
        raise ScenarioError(
            f"--max-message-bytes must be -1 (unlimited) or above 0, got"
            f" {args.max_message_bytes}"
        )
    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    monitor = None
    try:
        socket.setsockopt(zmq.RCVHWM, args.hwm)
        socket.setsockopt(zmq.SNDHWM, 0)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, args.max_message_bytes)
        if args.keys is not None:
            security.apply_client(socket, args.keys, spec.name)
        monitor = socket.get_monitor_socket(SESSION_EVENTS)
        socket.connect(args.endpoint)
        for prefix in spec.prefixes():
            socket.setsockopt(zmq.SUBSCRIBE, prefix)
        who = (
            "every patient"
            if spec.follows_all()
            else ", ".join(map(str, spec.patients))
        )
        print(
            f"{spec.role} following {who} from {args.endpoint}; Ctrl-C to stop",
            flush=True,
        )
        tally = _RealTimeTally(spec.patients)
        _receive(socket, monitor, tally, args)
    finally:
        if monitor is not None:
            socket.disable_monitor()
            monitor.close(linger=0)
        socket.close(linger=0)
        context.term()
    print(tally.summary(), flush=True)
    if args.report is not None:
        _write_report(args, spec, tally)
    if tally.stopped_by == GONE:
        print(
            f"wardcast: the publisher at {args.endpoint} went away and was not back"
            f" within {args.reconnect_seconds:g} s (ZeroMQ kept retrying); stopped",
            file=sys.stderr,
        )
        return 1
    if tally.stopped_by == ENDED:
        print(
            f"wardcast: the session with {args.endpoint} ended and did not resume"
            f" within {args.reconnect_seconds:g} s (a frame over --max-message-bytes"
            " or a protocol error ends it for good); stopped",
            file=sys.stderr,
        )
        return 1
    return 0


def _receive(
    socket: zmq.Socket,
    monitor: zmq.Socket,
    tally: _RealTimeTally,
    args: argparse.Namespace,
) -> None:
    """Receive until done or Ctrl-C; `tally.stopped_by` says if a session that
    ended (GONE or ENDED) stopped it."""
    poller = zmq.Poller()
    poller.register(socket, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    deadline = time.monotonic() + args.max_seconds if args.max_seconds else None
    ended_at: float | None = None
    retrying = False
    heard, said_silent = time.monotonic(), False
    try:
        while not args.count or tally.received < args.count:
            now = time.monotonic()
            if ended_at is not None and now - ended_at >= args.reconnect_seconds:
                tally.stopped_by = GONE if retrying else ENDED
                return
            if not said_silent and now - heard >= args.silence_seconds:
                print(
                    f"silent: no update for {now - heard:.1f} s;"
                    f" is the publisher at {args.endpoint} running?",
                    flush=True,
                )
                said_silent = True
            wait = 1.0 if deadline is None else deadline - now
            if wait <= 0:
                break
            timeout = min(wait, 1.0, args.silence_seconds)
            events = dict(poller.poll(int(timeout * 1000)))
            if monitor in events:
                event = recv_monitor_message(monitor)["event"]
                if event == zmq.EVENT_DISCONNECTED:
                    tally.sessions_ended += 1
                    ended_at, retrying = time.monotonic(), False
                elif event == zmq.EVENT_CONNECT_RETRIED:
                    retrying = True
                elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    ended_at = None
            if socket in events:
                tally.take(socket.recv_multipart())
                heard, said_silent = time.monotonic(), False
    except KeyboardInterrupt:
        pass


def _write_report(
    args: argparse.Namespace, spec: SubscriberSpec, tally: _RealTimeTally
) -> None:
    from sim.result import write_json_atomically

    report = {
        "schema": "wardcast.subscriber-report/1",
        "name": spec.name,
        "role": str(spec.role),
        "patients": list(spec.patients),
        "endpoint": args.endpoint,
        "curve": args.keys is not None,
        "received": tally.received,
        "missing": tally.missing,
        "foreign": tally.foreign,
        "malformed": tally.malformed,
        "sessions_ended": tally.sessions_ended,
        "stopped_by_ended_session": tally.stopped_by is not None,
        "stopped_by": tally.stopped_by,
    }
    try:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(args.report, report)
    except OSError as error:
        raise UserError(
            f"cannot write the report {args.report}: {error.strerror}; choose"
            " another --report"
        ) from None


class _RealTimeTally:
    """Counts for a person watching one subscriber."""

    def __init__(self, patients: tuple[int, ...]) -> None:
        self.patients = set(patients)
        self.next_seq: dict[tuple[int, int], int] = {}
        self.received = self.missing = self.foreign = self.malformed = 0
        self.sessions_ended = 0
        # GONE or ENDED when a session that ended stopped the subscriber.
        self.stopped_by: str | None = None

    def take(self, parts: list[bytes]) -> None:
        try:
            if len(parts) != 1:
                raise MalformedFrame(f"a message of {len(parts)} parts, not one")
            update = decode_frame(parts[0])
        except MalformedFrame as error:
            self.malformed += 1
            print(f"(malformed update: {error})", flush=True)
            return
        if self.patients and update.patient not in self.patients:
            self.foreign += 1
            print(f"(foreign update on {update.topic})", flush=True)
            return
        self.received += 1
        key = (update.run_id, update.patient)
        self.missing += max(0, update.seq - self.next_seq.get(key, update.seq))
        self.next_seq[key] = update.seq + 1
        print(f"{update.topic}: {update.text}", flush=True)

    def summary(self) -> str:
        return (
            f"received {self.received} updates; {self.missing} missing by sequence"
            f" number, {self.foreign} foreign, {self.malformed} malformed;"
            f" {self.sessions_ended} sessions ended"
        )

"""`wardcast publish` and `wardcast subscribe`: the hospital in real time.

These are the two roles as a person runs them, in two terminals: the
publisher sends every patient's update at midnight and noon of each simulated
day (a day lasts a minute unless told otherwise) and the subscriber prints
the updates of its patients as they arrive. The same wire format, roles and
checks as a measured run; no harness, no control channel.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from sim import endpoints, security
from sim.errors import RunError, ScenarioError, UserError
from sim.progress import Progress, ProgressServer
from sim.roles import SubscriberSpec, make_subscriber
from sim.scenario import Scenario, parse_rate, resolve
from sim.wire import MalformedFrame, decode_frame

if TYPE_CHECKING:
    from sim.publisher import Publisher

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
# A frame larger than this ends the session: far above any update (a few
# hundred bytes) and far below what would exhaust a small machine's memory.
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
# A session that ended (publisher gone, oversized frame) and did not come back
# within this long is reported and the subscriber stops; a restarting
# publisher is back well within it.
RECONNECT_GRACE_S = 10.0
SESSION_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
# After the last update, how long the publisher waits for its queues to drain
# before it exits: closing at once discarded the week's last few updates
# (seen in the container deployment: 345 of 350 arrived).
FLUSH_LINGER_MS = 5_000
REAL_TIME_DAY_SECONDS = 60.0
# Updates come every half simulated day (30 s in real time), so three missed
# slots mean the publisher is gone rather than between updates.
REAL_TIME_SILENCE_S = 90.0


def add_publish_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--patients", type=int, default=25)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--updates-per-day", type=int, default=2)
    parser.add_argument(
        "--day-seconds",
        type=float,
        default=REAL_TIME_DAY_SECONDS,
        help="wall seconds per simulated day (default 60)",
    )
    parser.add_argument(
        "--rate",
        metavar="UPDATES_PER_S|max",
        help="send this many updates per second instead of following the clock",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hwm", type=int, default=1000)
    parser.add_argument(
        "--sndbuf", type=int, default=0, help="kernel send buffer bytes (0: OS default)"
    )
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    parser.add_argument(
        "--status",
        metavar="ENDPOINT",
        help="also answer progress requests here (reliable; for Locust users);"
        " keeps answering after the schedule ends, until Ctrl-C",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="print no line per batch of updates"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow plaintext on an address other machines can reach",
    )
    parser.add_argument(
        "--keys",
        type=Path,
        help="CURVE key folder made by `wardcast keys`: encrypt, admit only its"
        " subscribers",
    )
    parser.add_argument(
        "--await-subscriptions",
        type=int,
        default=0,
        metavar="N",
        help="start the clock once N subscriptions have arrived (the reference six"
        " make 11), so no subscriber misses the first updates",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for --await-subscriptions (default 300)",
    )


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


def refuse_plaintext(endpoint: str, insecure: bool, curve: bool = False) -> None:
    """Patient data never leaves this machine unencrypted unless told to."""
    security.refuse_plaintext(endpoint, insecure=insecure, curve=curve)


def command_publish(args: argparse.Namespace) -> int:
    from sim.publisher import Publisher

    refuse_plaintext(args.endpoint, args.insecure, curve=args.keys is not None)
    if args.status:
        refuse_plaintext(args.status, args.insecure)
    scenario = _real_time_scenario(args)
    context = zmq.Context()
    try:
        publisher = Publisher(scenario, context)
    except BaseException:
        context.term()
        raise
    status = None
    sent = _SentCounter(quiet=args.quiet)
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        bound = publisher.bind()
        if args.status:
            status = sent.status = _progress_server(context, args.status, publisher)
        publisher.prebuild()
        # Progress is answered only once the frames are built, so whoever
        # waits for an answer knows the updates are about to flow.
        if status is not None:
            status.start()
        print(
            f"publishing {scenario.patients} patients on {bound}, {_pace(scenario)}"
            "; Ctrl-C to stop",
            flush=True,
        )
        if args.await_subscriptions:
            _await_subscriptions(
                publisher, args.await_subscriptions, args.start_timeout
            )
        outcome = publisher.publish(on_chunk=sent.on_chunk)
        print(f"published {outcome.published:,} updates", flush=True)
        if status is None:
            # Let the updates still queued reach the subscribers before the
            # socket goes.
            publisher.close(linger_ms=FLUSH_LINGER_MS)
        else:
            status.finish()
            print(
                f"schedule finished; answering progress on {status.endpoint}"
                " until Ctrl-C",
                flush=True,
            )
            while True:
                signal.pause()
    except _Terminated:
        print(f"stopped after {sent.published:,} updates", flush=True)
    finally:
        if status is not None:
            status.stop()
        publisher.close()
        context.term()
    return 0


def _real_time_scenario(args: argparse.Namespace) -> Scenario:
    return resolve(
        Scenario(
            name="real-time",
            patients=args.patients,
            days=args.days,
            updates_per_day=args.updates_per_day,
            day_seconds=args.day_seconds,
            rate=parse_rate(args.rate) if args.rate is not None else None,
            seed=args.seed,
            hwm=args.hwm,
            sndbuf=args.sndbuf,
            endpoint=args.endpoint,
            curve=args.keys is not None,
            keys=str(args.keys or ""),
        )
    )


def _progress_server(
    context: zmq.Context, endpoint: str, publisher: Publisher
) -> ProgressServer:
    scenario = publisher.scenario
    return ProgressServer(
        context,
        endpoint,
        Progress(
            run_id=publisher.run_id,
            patients=scenario.patients,
            message_bytes=scenario.message_bytes,
            host=socket.gethostname(),
            scenario=scenario.to_dict(),
        ),
    )


def _pace(scenario: Scenario) -> str:
    if scenario.paced_by == "clock":
        return f"one simulated day every {scenario.day_seconds:g} s"
    if scenario.paced_by == "rate":
        return f"{scenario.rate:g} updates a second"
    return "as fast as it can"


class _Terminated(Exception):
    """SIGTERM arrived: stop publishing and exit cleanly (status 0)."""


def _raise_terminated(signum: int, frame: object) -> None:
    # Raised wherever the publisher is, even asleep until a slot a simulated
    # half-day away; a chunk cut short only leaves the progress count low,
    # which is all it promises to be.
    raise _Terminated


class _SentCounter:
    """Counts what the publisher sent, chunk by chunk, tells the progress
    server, and prints a line per chunk unless quiet."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.published = 0
        self.status: ProgressServer | None = None

    def on_chunk(self, frames: np.ndarray, subscriptions: list[bytes]) -> None:
        self.published += len(frames)
        if self.status is not None:
            self.status.advance(len(frames))
        if not self.quiet:
            _announce(frames, subscriptions)


def _await_subscriptions(publisher: Publisher, count: int, timeout_s: float) -> None:
    """Block until `count` subscriptions, whatever their prefixes, have arrived."""
    print(f"waiting for {count} subscriptions", flush=True)
    deadline = time.monotonic() + timeout_s
    arrived = 0
    while arrived < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not publisher.socket.poll(int(remaining * 1000)):
            raise RunError(
                f"only {arrived} of {count} subscriptions arrived within"
                f" {timeout_s:g} s: start the subscribers, or lower"
                " --await-subscriptions"
            )
        message = publisher.socket.recv()
        arrived += 1 if message[:1] == b"\x01" else -1
    print(f"{arrived} subscriptions arrived; publishing", flush=True)


def _announce(frames: np.ndarray, subscriptions: list[bytes]) -> None:
    for message in subscriptions:
        change = "subscribed" if message[:1] == b"\x01" else "unsubscribed"
        prefix = message[1:].rstrip(b"\x00").decode(errors="replace") or "(everything)"
        print(f"a subscriber {change}: {prefix}", flush=True)
    when = np.datetime64(int(frames["sim_time"][0]), "s")
    print(f"{when}: published {len(frames)} updates", flush=True)


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
        ended = _receive(socket, monitor, tally, args)
    finally:
        if monitor is not None:
            socket.disable_monitor()
            monitor.close(linger=0)
        socket.close(linger=0)
        context.term()
    print(tally.summary(), flush=True)
    if args.report is not None:
        _write_report(args, spec, tally, ended)
    if ended:
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
) -> bool:
    """Receive until done or Ctrl-C; True if stopped by a session that ended."""
    poller = zmq.Poller()
    poller.register(socket, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    deadline = time.monotonic() + args.max_seconds if args.max_seconds else None
    ended_at: float | None = None
    heard, said_silent = time.monotonic(), False
    try:
        while not args.count or tally.received < args.count:
            now = time.monotonic()
            if ended_at is not None and now - ended_at >= args.reconnect_seconds:
                return True
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
                    ended_at = time.monotonic()
                elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    ended_at = None
            if socket in events:
                tally.take(socket.recv_multipart())
                heard, said_silent = time.monotonic(), False
    except KeyboardInterrupt:
        pass
    return False


def _write_report(
    args: argparse.Namespace,
    spec: SubscriberSpec,
    tally: _RealTimeTally,
    ended: bool,
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
        "stopped_by_ended_session": ended,
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

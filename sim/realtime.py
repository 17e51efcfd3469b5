"""`wardcast publish`: the hospital's publisher in real time.

The two roles as a person runs them, in two terminals: this publisher sends
every patient's update at midnight and noon of each simulated day (a day
lasts a minute unless told otherwise), and `wardcast subscribe`
(`sim.realtime_subscriber`) prints the updates of its patients as they
arrive. The same wire format, roles and checks as a measured run; no
harness, no control channel.
"""

from __future__ import annotations

import argparse
import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zmq

from sim import security
from sim.errors import RunError, ScenarioError
from sim.progress import Progress, ProgressServer
from sim.scenario import Scenario, parse_rate, resolve

if TYPE_CHECKING:
    from sim.publisher import Publisher

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
# After the last update, how long the publisher waits for its queues to drain
# before it exits: closing at once discarded the week's last few updates
# (seen in the container deployment: 345 of 350 arrived).
FLUSH_LINGER_MS = 5_000
REAL_TIME_DAY_SECONDS = 60.0
# Subscribers started before the publisher retry their connection every
# 100 ms (ZeroMQ's reconnect interval); a publisher that sent its first slot
# as soon as it bound lost it to them (seen: a caregiver started first printed
# 3 of 4 updates). The clock therefore starts this long after binding.
JOIN_SECONDS = 1.0
MAX_JOIN_SECONDS = 3600.0


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
        "--join-seconds",
        type=float,
        default=JOIN_SECONDS,
        help="without --await-subscriptions or --status, start the clock this"
        f" long after binding, so waiting subscribers join (default {JOIN_SECONDS:g})",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for --await-subscriptions (default 300)",
    )


def refuse_plaintext(endpoint: str, insecure: bool, curve: bool = False) -> None:
    """Patient data never leaves this machine unencrypted unless told to."""
    security.refuse_plaintext(endpoint, insecure=insecure, curve=curve)


def command_publish(args: argparse.Namespace) -> int:
    from sim.publisher import Publisher

    refuse_plaintext(args.endpoint, args.insecure, curve=args.keys is not None)
    if args.status:
        refuse_plaintext(args.status, args.insecure)
    if not 0 <= args.join_seconds <= MAX_JOIN_SECONDS:
        raise ScenarioError(
            f"--join-seconds must be 0 to {MAX_JOIN_SECONDS:g}, got {args.join_seconds}"
        )
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
        elif status is None:
            time.sleep(args.join_seconds)
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

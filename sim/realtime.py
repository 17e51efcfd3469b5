"""`wardcast publish` and `wardcast subscribe`: the hospital in real time.

These are the two roles as a person runs them, in two terminals: the
publisher sends every patient's update at midnight and noon of each simulated
day (a day lasts a minute unless told otherwise) and the subscriber prints
the updates of its patients as they arrive. The same wire format, roles and
checks as a measured run; no harness, no control channel.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import zmq

from sim import endpoints
from sim.errors import EndpointError, ScenarioError
from sim.roles import make_subscriber
from sim.scenario import Scenario, resolve
from sim.wire import MalformedFrame, decode_frame

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
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
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hwm", type=int, default=1000)
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow plaintext on an address other machines can reach",
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
        "--silence-seconds",
        type=float,
        default=REAL_TIME_SILENCE_S,
        help="say so when no update has come for this long (default 90)",
    )


def refuse_plaintext(endpoint: str, insecure: bool) -> None:
    """Patient data never leaves this machine unencrypted unless told to."""
    if not endpoints.is_loopback(endpoint) and not insecure:
        raise EndpointError(
            f"refusing to publish patient data in plaintext on {endpoint}, which other"
            " machines can reach: bind a loopback address, or add --insecure on a"
            " private network"
        )


def command_publish(args: argparse.Namespace) -> int:
    from sim.publisher import Publisher

    refuse_plaintext(args.endpoint, args.insecure)
    scenario = resolve(
        Scenario(
            name="real-time",
            patients=args.patients,
            days=args.days,
            updates_per_day=args.updates_per_day,
            day_seconds=args.day_seconds,
            seed=args.seed,
            hwm=args.hwm,
            endpoint=args.endpoint,
        )
    )
    context = zmq.Context()
    publisher = Publisher(scenario, context)
    try:
        bound = publisher.bind()
        print(
            f"publishing {scenario.patients} patients on {bound}, one simulated day"
            f" every {scenario.day_seconds:g} s; Ctrl-C to stop",
            flush=True,
        )
        publisher.prebuild()
        outcome = publisher.publish(on_chunk=_announce)
        print(f"published {outcome.published:,} updates", flush=True)
    finally:
        publisher.close()
        context.term()
    return 0


def _announce(frames: np.ndarray, subscriptions: list[bytes]) -> None:
    for message in subscriptions:
        change = "subscribed" if message[:1] == b"\x01" else "unsubscribed"
        prefix = message[1:].rstrip(b"\x00").decode(errors="replace") or "(everything)"
        print(f"a subscriber {change}: {prefix}", flush=True)
    when = np.datetime64(int(frames["sim_time"][0]), "s")
    print(f"{when}: published {len(frames)} updates", flush=True)


def command_subscribe(args: argparse.Namespace) -> int:
    spec = make_subscriber(args.role, args.patient)
    endpoints.parse(args.endpoint)
    if not args.silence_seconds > 0:
        raise ScenarioError(
            f"--silence-seconds must be above 0, got {args.silence_seconds}"
        )
    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.RCVHWM, args.hwm)
    socket.setsockopt(zmq.SNDHWM, 0)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(args.endpoint)
    for prefix in spec.prefixes():
        socket.setsockopt(zmq.SUBSCRIBE, prefix)
    who = "every patient" if spec.follows_all() else ", ".join(map(str, spec.patients))
    print(
        f"{spec.role} following {who} from {args.endpoint}; Ctrl-C to stop", flush=True
    )
    tally = _RealTimeTally(spec.patients)
    deadline = time.monotonic() + args.max_seconds if args.max_seconds else None
    heard = time.monotonic()
    said_silent = False
    try:
        while not args.count or tally.received < args.count:
            wait = 1.0 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                break
            if socket.poll(int(min(wait, 1.0, args.silence_seconds) * 1000)):
                tally.take(socket.recv())
                heard, said_silent = time.monotonic(), False
            elif not said_silent and time.monotonic() - heard >= args.silence_seconds:
                print(
                    f"silent: no update for {time.monotonic() - heard:.1f} s;"
                    f" is the publisher at {args.endpoint} running?",
                    flush=True,
                )
                said_silent = True
    except KeyboardInterrupt:
        pass
    finally:
        socket.close(linger=0)
        context.term()
    print(tally.summary(), flush=True)
    return 0


class _RealTimeTally:
    """Counts for a person watching one subscriber."""

    def __init__(self, patients: tuple[int, ...]) -> None:
        self.patients = set(patients)
        self.next_seq: dict[tuple[int, int], int] = {}
        self.received = self.missing = self.foreign = self.malformed = 0

    def take(self, frame: bytes) -> None:
        try:
            update = decode_frame(frame)
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
            f" number, {self.foreign} foreign, {self.malformed} malformed"
        )

"""Entry point of a worker process: `python -m sim.worker --control E --worker-id ID`.

The harness starts every publisher and subscriber process by re-running this
module with explicit flags. A worker connects its DEALER to the harness, says
hello, receives its configuration, plays its part, reports and exits. It
imports only what its part needs (no matplotlib), so a hundred of them start
quickly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import traceback

import numpy as np
import zmq

from sim import control
from sim.errors import RunError, UserError
from sim.liveness import (
    Liveness,
    heartbeats,
    silence_threshold_ns,
)
from sim.publisher import Publisher, expected_subscriptions
from sim.roles import SubscriberSpec
from sim.scenario import Scenario
from sim.schedule import slots
from sim.subscriber import (
    BATCH_FRAMES,
    SubscriberSocket,
    flush_threshold,
    process_usage,
    subscriber_message_limit,
)
from sim.wire import BatchDecoder

logger = logging.getLogger("sim.worker")

# How long a worker waits for its configuration before giving up on a harness
# that never answered.
HELLO_TIMEOUT_S = 60.0
# Poll interval while idle: how quickly a worker notices the end of a run.
IDLE_POLL_MS = 50


class Aborted(Exception):
    """The harness asked this worker to stop."""


def run_publisher(link: zmq.Socket, context: zmq.Context, config: dict) -> None:
    scenario = Scenario.from_dict(config["scenario"])
    publisher = Publisher(scenario, context)
    try:
        _publish(link, publisher, scenario, config)
    finally:
        # Also on failure: an open socket or a running authenticator would
        # block the context's termination and hang this process.
        publisher.close()
    cpu, rss = process_usage()
    control.send(link, "usage", {"cpu_seconds_total": cpu, "max_rss_bytes": rss})


def _publish(
    link: zmq.Socket, publisher: Publisher, scenario: Scenario, config: dict
) -> None:
    try:
        endpoint = publisher.bind()
    except UserError as error:
        control.send(link, "failed", {"error": str(error), "user_error": True})
        return
    control.send(link, "bound", {"endpoint": endpoint, "run_id": publisher.run_id})
    resume_from = config.get("resume_from", 0)
    publisher.prebuild(resume_from)
    _await(link, "go", scenario.start_timeout_seconds)
    publisher.await_subscriptions(
        expected_subscriptions(scenario), scenario.start_timeout_seconds
    )
    control.send(link, "started", {"run_id": publisher.run_id})
    position = [resume_from]

    def report_progress(frames: np.ndarray, changes: list[bytes]) -> None:
        # Where the publisher is in the schedule, so that a fault injected
        # mid-run can be set against what had been sent when it struck.
        position[0] += len(frames)
        control.send(link, "progress", {"position": position[0]})

    outcome = publisher.publish(
        should_stop=lambda: _asked_to_stop(link),
        on_chunk=report_progress if config.get("progress") else None,
    )
    body = {
        "run_id": outcome.run_id,
        "published": outcome.published,
        "first_send_ns": outcome.first_send_ns,
        "last_send_ns": outcome.last_send_ns,
        "aborted": outcome.aborted,
        "late_subscriptions": outcome.late_subscriptions,
        "chunks_built_late": outcome.chunks_built_late,
        "cpu_seconds": outcome.cpu_seconds,
        "lag": outcome.lag.to_dict(),
    }
    control.send(link, "finished", body, outcome.per_topic.astype("<i8").tobytes())
    # Stay up until every subscriber has reported: the socket's queues are
    # still being flushed by ZeroMQ's I/O thread.
    _await(link, "exit", config["exit_timeout_seconds"])


def run_subscribers(link: zmq.Socket, context: zmq.Context, config: dict) -> None:
    scenario = Scenario.from_dict(config["scenario"])
    decoder = BatchDecoder(
        message_bytes=scenario.message_bytes, patients=scenario.patients
    )
    start_epoch = next(slots(scenario)).epoch_seconds
    wrong = config.get("wrong_subscriptions", {})
    sockets = [
        SubscriberSocket(
            spec,
            context=context,
            endpoint=config["endpoint"],
            decoder=decoder,
            hwm=scenario.hwm,
            rcvbuf=scenario.rcvbuf,
            start_epoch=start_epoch,
            keys=scenario.keys if scenario.curve else "",
            max_message_bytes=subscriber_message_limit(scenario),
            liveness=Liveness(silence_threshold_ns(scenario)),
            heartbeats=heartbeats(scenario),
            extra_prefixes=tuple(map(bytes.fromhex, wrong.get(spec.name, ()))),
        )
        for spec in map(SubscriberSpec.from_dict, config["subscribers"])
    ]
    cpu_at_ready, _ = process_usage()
    control.send(link, "ready", {"pid": os.getpid()})
    run_id, published = _receive_until_end(link, sockets, scenario, config)
    cpu, rss = process_usage()
    reports = [sub.report(run_id, published) for sub in sockets]
    for sub in sockets:
        sub.close()
    control.send(
        link,
        "report",
        {
            "subscribers": reports,
            "process": {
                "pid": os.getpid(),
                "cpu_seconds": cpu - cpu_at_ready,
                "cpu_seconds_total": cpu,
                "max_rss_bytes": rss,
            },
        },
    )


def _receive_until_end(
    link: zmq.Socket, sockets: list[SubscriberSocket], scenario: Scenario, config: dict
) -> tuple[int, np.ndarray]:
    """Receive until the run has ended and every socket is drained."""
    poller, by_socket, by_monitor = _poll_all(link, sockets)
    give_up = time.monotonic() + config["max_seconds"]
    end: tuple[int, np.ndarray] | None = None
    wanted: list[int] = []
    drain_deadline = last_frame = 0.0
    busy = False
    flush_at = flush_threshold(scenario.message_bytes, len(sockets))
    while time.monotonic() < give_up:
        events = dict(poller.poll(0 if busy else IDLE_POLL_MS))
        busy = False
        if not events:
            for sub in sockets:
                sub.flush()
        for zsocket in events:
            if zsocket is link:
                kind, body, frames = control.receive(link)[1:]
                if kind == "abort":
                    raise Aborted()
                if kind == "end":
                    published = np.frombuffer(frames[0], dtype="<i8")
                    end = (body["run_id"], published)
                    wanted = [int(published[sub.follows].sum()) for sub in sockets]
                    drain_deadline = time.monotonic() + scenario.drain_timeout_seconds
                continue
            if zsocket in by_monitor:
                by_monitor[zsocket].session_events()
                continue
            sub = by_socket[zsocket]
            if sub.receive() == BATCH_FRAMES:
                busy = True
            if sub.pending >= flush_at:
                sub.flush()
            last_frame = time.monotonic()
        if end is None:
            continue
        now = time.monotonic()
        done = all(
            s.received_for(end[0]) >= n for s, n in zip(sockets, wanted, strict=True)
        )
        quiet = now - max(last_frame, drain_deadline - scenario.drain_timeout_seconds)
        if done or quiet >= scenario.drain_quiet_seconds or now >= drain_deadline:
            return end
    raise RunError(f"no end of run within {config['max_seconds']:.0f} s")


def _poll_all(
    link: zmq.Socket, sockets: list[SubscriberSocket]
) -> tuple[zmq.Poller, dict, dict]:
    """A poller over the control link, every SUB socket and every SUB
    socket's monitor (so each session's start and end is timed as it
    happens); SUB sockets and monitors map back to their subscriber."""
    poller = zmq.Poller()
    poller.register(link, zmq.POLLIN)
    by_socket = {sub.socket: sub for sub in sockets}
    by_monitor = {sub.monitor: sub for sub in sockets}
    for zsocket in [*by_socket, *by_monitor]:
        poller.register(zsocket, zmq.POLLIN)
    return poller, by_socket, by_monitor


def _await(link: zmq.Socket, wanted: str, timeout_s: float) -> dict:
    message = control.await_message(link, timeout_s)
    if message is None:
        raise RunError(f"the harness sent no {wanted!r} within {timeout_s:.0f} s")
    kind, body, _ = message
    if kind == "abort" or (kind == "exit" and wanted != "exit"):
        # The harness is stopping the run early (Ctrl-C, say): not a failure.
        raise Aborted()
    if kind != wanted:
        raise RunError(f"expected {wanted!r} from the harness, got {kind!r}")
    return body


def _asked_to_stop(link: zmq.Socket) -> bool:
    if not link.poll(0):
        return False
    kind = control.receive(link)[1]
    return kind == "abort"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.worker")
    parser.add_argument("--control", required=True)
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    # Ctrl-C in a terminal reaches every process in its group. The harness
    # alone decides what it means, and asks its workers for what they have
    # measured; a worker that died of it would take its figures with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=args.log_level,
        format=f"%(asctime)s {args.worker_id} %(levelname)s %(name)s: %(message)s",
    )
    context = zmq.Context()
    link = control.connect_worker(context, args.control, args.worker_id)
    try:
        control.send(link, "hello", {"pid": os.getpid()})
        message = control.await_message(link, HELLO_TIMEOUT_S)
        if message is None:
            logger.error("no configuration from the harness at %s", args.control)
            return 3
        kind, config, _ = message
        role = run_publisher if kind == "publisher" else run_subscribers
        role(link, context, config)
        return 0
    except Aborted:
        return 0
    except UserError as error:  # a missing key, say: the user's to fix
        control.send(link, "failed", {"error": str(error), "user_error": True})
        return 2
    except Exception as error:  # report any failure to the harness, then exit
        logger.debug("worker failed", exc_info=True)
        detail = "".join(traceback.format_exception_only(error)).strip()
        control.send(link, "failed", {"error": detail, "user_error": False})
        return 1
    finally:
        link.close(linger=2000)
        # destroy, not term: sockets a failure left open must not hang the exit.
        context.destroy(linger=0)


if __name__ == "__main__":
    sys.exit(main())

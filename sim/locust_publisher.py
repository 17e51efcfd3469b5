"""`wardcast publish` started by a Locust run (`--start-publisher`).

The master (or the only process, without workers) starts the publisher when
Locust starts, waits until its progress endpoint answers, and stops it when
Locust quits. Its schedule lasts `--publish-seconds` at `--publish-rate`
updates a second; a test that outlasts it still counts exactly, with no more
updates to receive.
"""

from __future__ import annotations

import argparse
import logging
import math
import subprocess
import sys
import time
from typing import Any

import zmq.green as zmq

from sim.errors import RunError, ScenarioError
from sim.progress import Progress, ask

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 30.0
ASK_TIMEOUT_S = 1.0
STOP_GRACE_S = 10.0
UPDATES_PER_DAY = 2


def add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--start-publisher",
        action="store_true",
        help="start `wardcast publish` on --hospital-endpoint and --hospital-status",
    )
    parser.add_argument("--patients", type=int, default=25)
    parser.add_argument("--publish-rate", type=float, default=100.0)
    parser.add_argument(
        "--publish-seconds",
        type=float,
        default=600.0,
        help="how long the started publisher's schedule lasts",
    )
    parser.add_argument("--publish-hwm", type=int, default=1000)
    parser.add_argument("--publish-sndbuf", type=int, default=0)
    parser.add_argument(
        "--publish-insecure",
        action="store_true",
        help="let the started publisher bind an address other machines reach",
    )


def command(options: argparse.Namespace) -> list[str]:
    """The `wardcast publish` command the options describe."""
    if not options.patients >= 1:
        raise ScenarioError(f"--patients must be 1 or more, got {options.patients}")
    if not options.publish_rate > 0 or not options.publish_seconds > 0:
        raise ScenarioError("--publish-rate and --publish-seconds must be above 0")
    updates = options.publish_rate * options.publish_seconds
    days = max(1, math.ceil(updates / (options.patients * UPDATES_PER_DAY)))
    arguments = [
        *(sys.executable, "-m", "sim.cli", "publish", "--quiet"),
        *("--patients", str(options.patients), "--days", str(days)),
        *("--updates-per-day", str(UPDATES_PER_DAY)),
        *("--rate", f"{options.publish_rate:g}", "--hwm", str(options.publish_hwm)),
        *("--sndbuf", str(options.publish_sndbuf)),
        *("--endpoint", options.hospital_endpoint),
        *("--status", options.hospital_status),
    ]
    if options.publish_insecure:
        arguments.append("--insecure")
    return arguments


class StartedPublisher:
    """A `wardcast publish` process owned by this Locust process."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.status = options.hospital_status
        self.process = subprocess.Popen(command(options), stdin=subprocess.DEVNULL)
        logger.info("started wardcast publish (pid %d)", self.process.pid)

    def await_ready(self) -> Progress:
        """Its first progress answer; raises RunError if it never comes."""
        context = zmq.Context.instance()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RunError(
                    f"wardcast publish exited with status {self.process.returncode}"
                    " before it answered: see its message above"
                )
            try:
                return ask(context, self.status, ASK_TIMEOUT_S)
            except RunError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_GRACE_S)

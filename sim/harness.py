"""The harness: starts a run's processes, conducts it, and gathers what they
measured.

One publisher process and as many subscriber processes as the scenario's
`subscribers_per_process` asks for are started by re-running `sim.worker`.
They all connect to the harness's control ROUTER. The run goes through these
steps, each with a deadline, so a lost message or a dead process ends the run
in bounded time instead of hanging it:

    start    every worker says hello and gets its configuration; the
             publisher binds and says where; subscribers connect, subscribe
             and say they are ready
    publish  the publisher waits for every subscription (its own barrier),
             then runs the schedule and reports how much it sent per topic
    drain    the harness forwards those counts to the subscribers, which
             finish receiving and report
    finish   the publisher is released, every process is reaped

A subscriber process that dies is recorded as such and the run goes on
without it; one that never reports by the deadline is recorded as silent.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from sim import control
from sim.errors import EndpointError, RunError
from sim.scenario import Scenario
from sim.schedule import scheduled_seconds
from sim.security import RunKeys

logger = logging.getLogger(__name__)

CONTROL_ENDPOINT = "tcp://127.0.0.1:*"
# Slack on every phase's deadline beyond what the scenario itself needs,
# generous because a loaded two-core machine starts Python slowly.
PHASE_SLACK_S = 30.0
# A publisher at "max" is given this many updates per second, at the very
# least, before its run counts as hung.
SLOWEST_MAX_RATE = 5_000
PROCESS_EXIT_GRACE_S = 5.0
# After Ctrl-C, how long the publisher may take to stop and the subscribers to
# report what they measured: a person waiting, not a scenario's own deadline.
SALVAGE_S = 10.0
POLL_S = 0.05


@dataclass
class Worker:
    """One worker process as the harness sees it."""

    worker_id: str
    kind: str  # "publisher" or "subscribers"
    subscribers: list[dict]
    process: subprocess.Popen
    state: str = "starting"  # starting, configured, ready, reported, died, failed,
    # killed (by the harness itself, an injected fault)
    report: dict[str, Any] | None = None
    error: str = ""

    @property
    def alive(self) -> bool:
        return self.state not in ("died", "failed", "killed", "released")


@dataclass
class RunOutcome:
    """Everything the processes reported, for `sim.result` to turn into a result."""

    scenario: Scenario
    publisher: dict[str, Any] = field(default_factory=dict)
    published_per_topic: np.ndarray | None = None
    workers: list[Worker] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    last_report_ns: int = 0
    interrupted: bool = False
    failed: bool = False


class Harness:
    """Runs one scenario; `launcher` prefixes each worker's command line (for
    running a worker inside a network namespace, say)."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        log_level: str = "WARNING",
        launcher: Callable[[str], Sequence[str]] = lambda worker_id: (),
        control_endpoint: str = CONTROL_ENDPOINT,
        wrong_subscriptions: Mapping[str, Sequence[bytes]] | None = None,
    ) -> None:
        """`wrong_subscriptions` (subscriber name: raw prefixes) is for tests
        alone: it adds subscriptions the roles can never make, to show that
        what they let through is counted as foreign. No command or scenario
        file reaches it."""
        self.scenario = scenario
        self.wrong_subscriptions = {
            name: [prefix.hex() for prefix in prefixes]
            for name, prefixes in (wrong_subscriptions or {}).items()
        }
        self.run_keys: RunKeys | None = None
        if scenario.curve:
            names = [spec.name for spec in scenario.subscribers]
            self.run_keys = RunKeys(scenario.keys, names)
            self.scenario = scenario.replace(keys=str(self.run_keys.folder))
        self.log_level = log_level
        self.launcher = launcher
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(control_endpoint)
        self.control_endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.workers: dict[bytes, Worker] = {}
        self.outcome = RunOutcome(scenario=scenario)
        self.endpoint = ""
        self._user_error: str = ""
        self._released = False  # the publisher was told to exit or abort

    # -- the run, step by step ----------------------------------------------

    def run(self) -> RunOutcome:
        try:
            self._start()
            self._publish()
            self._drain()
        except RunError as error:
            self.outcome.problems.append(str(error))
            self.outcome.failed = True
        except KeyboardInterrupt:
            self.outcome.interrupted = True
            self.outcome.problems.append("interrupted before the run could finish")
            self._salvage()
        finally:
            self._finish()
        return self.outcome

    def _salvage(self) -> None:
        """After Ctrl-C: stop the publisher and gather what was measured.

        The publisher stops between chunks and says what it sent; the
        subscribers are then told, as at a normal end, and report what they
        received. A second Ctrl-C, or a publisher that never started, ends the
        gathering; whatever arrived by then is kept.
        """
        publisher = self.workers.get(b"publisher")
        try:
            if publisher is None or not publisher.alive:
                return
            if self.outcome.published_per_topic is None:
                self._tell(publisher, "abort")
                self._released = True
                self._pump(
                    lambda: (
                        self.outcome.published_per_topic is not None
                        or publisher.process.poll() is not None
                    ),
                    time.monotonic() + SALVAGE_S,
                )
            if self.outcome.published_per_topic is not None:
                self._drain(timeout_s=SALVAGE_S)
        except (KeyboardInterrupt, RunError) as error:
            logger.warning("stopped gathering results: %s", error or "interrupted")

    def _start(self) -> None:
        self._spawn("publisher", "publisher", [])
        specs = [spec.to_dict() for spec in self.scenario.subscribers]
        per_process = self.scenario.subscribers_per_process
        for index, first in enumerate(range(0, len(specs), per_process)):
            self._spawn(
                f"subscribers-{index}",
                "subscribers",
                specs[first : first + per_process],
            )
        deadline = time.monotonic() + self.scenario.start_timeout_seconds
        if not self._pump(
            lambda: all(w.state in ("ready", "bound") for w in self.workers.values()),
            deadline,
        ):
            slow = [w.worker_id for w in self.workers.values() if w.state != "ready"]
            raise RunError(
                f"workers not ready within the start timeout: {', '.join(slow)}"
            )
        logger.info("all %d subscriber processes ready", len(self.workers) - 1)

    def _publish(self) -> None:
        publisher = self._publisher()
        control.send(self.router, "go", to=publisher.worker_id.encode())
        expected = scheduled_seconds(self.scenario) or (
            self.scenario.messages / SLOWEST_MAX_RATE
        )
        deadline = time.monotonic() + self.scenario.start_timeout_seconds + expected * 2
        deadline += PHASE_SLACK_S
        if not self._pump(
            lambda: self.outcome.published_per_topic is not None, deadline
        ):
            raise RunError("the publisher did not finish before its deadline")

    def _drain(self, timeout_s: float | None = None) -> None:
        counts = self.outcome.published_per_topic
        assert counts is not None
        body = {"run_id": self.outcome.publisher["run_id"]}
        for worker in self._subscriber_workers():
            if worker.alive:
                self._tell(worker, "end", body, counts.astype("<i8").tobytes())
        if timeout_s is None:
            timeout_s = self.scenario.drain_timeout_seconds + PHASE_SLACK_S
        deadline = time.monotonic() + timeout_s
        self._pump(
            lambda: all(w.state != "ready" for w in self._subscriber_workers()),
            deadline,
        )
        for worker in self._subscriber_workers():
            if worker.state == "ready":
                worker.state = "silent"
                self.outcome.problems.append(
                    f"{worker.worker_id} sent no report within the drain deadline"
                )

    def _finish(self) -> None:
        publisher = self.workers.get(b"publisher")
        if publisher and publisher.alive and publisher.state != "starting":
            self._tell(publisher, "exit")
            self._released = True
            self._pump(
                lambda: "usage" in self.outcome.publisher or not publisher.alive,
                time.monotonic() + PROCESS_EXIT_GRACE_S,
            )
        for worker in self.workers.values():
            if worker.process.poll() is not None:
                continue
            if worker.state in ("starting", "hello"):
                # It has done nothing yet and may not even be connected.
                worker.process.terminate()
            elif worker.alive and worker.state != "reported":
                self._tell(worker, "abort")
        self._reap()
        self.outcome.workers = list(self.workers.values())
        self.router.close(linger=0)
        self.context.term()
        if self.run_keys is not None:
            self.run_keys.remove()
        if self._user_error:
            raise EndpointError(self._user_error)

    # -- processes and messages ---------------------------------------------

    def _spawn(self, worker_id: str, kind: str, subscribers: list[dict]) -> None:
        command = [
            *self.launcher(worker_id),
            sys.executable,
            "-m",
            "sim.worker",
            "--control",
            self.control_endpoint,
            "--worker-id",
            worker_id,
            "--log-level",
            self.log_level,
        ]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        self.workers[worker_id.encode()] = Worker(worker_id, kind, subscribers, process)
        logger.debug("started %s as pid %d", worker_id, process.pid)

    def _pump(self, done: Callable[[], bool], deadline: float) -> bool:
        """Handle messages and watch processes until `done()` or the deadline."""
        while not done():
            if self._user_error:
                raise EndpointError(self._user_error)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self.router.poll(int(min(remaining, POLL_S) * 1000)):
                while self.router.poll(0):
                    self._handle(*control.receive(self.router, routed=True))
            self._watch_processes()
        return True

    def _handle(
        self, sender: bytes | None, kind: str, body: dict, frames: list[bytes]
    ) -> None:
        worker = self.workers.get(sender or b"")
        if worker is None:
            logger.warning("message %r from unknown worker %r", kind, sender)
            return
        logger.debug("%s: %s", worker.worker_id, kind)
        if kind == "hello":
            self._configure(worker)
        elif kind == "bound":
            self.endpoint = body["endpoint"]
            self.outcome.publisher["run_id"] = body["run_id"]
            worker.state = "bound"
            for waiting in self._subscriber_workers():
                if waiting.state == "hello":
                    self._configure(waiting)
        elif kind == "ready":
            worker.state = "ready"
            logger.info("%s ready (pid %d)", worker.worker_id, body["pid"])
        elif kind == "started":
            logger.info("publisher started run %08x", body["run_id"])
        elif kind == "finished":
            self.outcome.publisher.update(body)
            self.outcome.published_per_topic = np.frombuffer(frames[0], dtype="<i8")
        elif kind == "report":
            worker.state = "reported"
            worker.report = body
            self.outcome.last_report_ns = time.monotonic_ns()
        elif kind == "usage":
            self.outcome.publisher["usage"] = body
        elif kind == "failed":
            worker.state = "failed"
            worker.error = body["error"]
            if body.get("user_error"):
                self._user_error = body["error"]
            else:
                self.outcome.problems.append(
                    f"{worker.worker_id} failed: {body['error']}"
                )
                if worker.kind == "publisher":
                    raise RunError(f"the publisher failed: {body['error']}")

    def _configure(self, worker: Worker) -> None:
        scenario = self.scenario.to_dict()
        if worker.kind == "publisher":
            exit_timeout = self.scenario.drain_timeout_seconds + 2 * PHASE_SLACK_S
            self._tell(
                worker,
                "publisher",
                {"scenario": scenario, "exit_timeout_seconds": exit_timeout},
            )
            worker.state = "configured"
        elif not self.endpoint:
            worker.state = "hello"
        else:
            max_seconds = (
                self.scenario.start_timeout_seconds * 2
                + 2 * scheduled_seconds(self.scenario)
                + self.scenario.messages / SLOWEST_MAX_RATE
                + self.scenario.drain_timeout_seconds
                + 2 * PHASE_SLACK_S
            )
            self._tell(
                worker,
                "subscribers",
                {
                    "scenario": scenario,
                    "subscribers": worker.subscribers,
                    "endpoint": self.endpoint,
                    "max_seconds": max_seconds,
                    "wrong_subscriptions": self.wrong_subscriptions,
                },
            )
            worker.state = "configured"

    def _tell(
        self, worker: Worker, kind: str, body: dict | None = None, *frames: bytes
    ) -> None:
        try:
            control.send(self.router, kind, body, *frames, to=worker.worker_id.encode())
        except zmq.ZMQError as error:
            logger.debug("cannot reach %s: %s", worker.worker_id, error)

    def _watch_processes(self) -> None:
        for worker in self.workers.values():
            status = worker.process.poll()
            if status is None or not worker.alive or worker.state == "reported":
                continue
            if worker.kind == "publisher" and "usage" in self.outcome.publisher:
                continue
            if worker.kind == "publisher" and self._released:
                # Told to stop, it stopped: not a failure, whether or not it
                # said goodbye first.
                worker.state = "released"
                continue
            worker.state = "died"
            worker.error = _describe_exit(status)
            self.outcome.problems.append(f"{worker.worker_id} {worker.error}")
            logger.warning("%s %s", worker.worker_id, worker.error)
            if worker.kind == "publisher":
                raise RunError(f"the publisher {worker.error}")

    def _reap(self) -> None:
        deadline = time.monotonic() + PROCESS_EXIT_GRACE_S
        for worker in self.workers.values():
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("killing %s, which did not exit", worker.worker_id)
                worker.process.kill()
                worker.process.wait()

    def _publisher(self) -> Worker:
        return self.workers[b"publisher"]

    def _subscriber_workers(self) -> list[Worker]:
        return [w for w in self.workers.values() if w.kind == "subscribers"]


def _describe_exit(status: int) -> str:
    if status < 0:
        return f"died from signal {-status} before reporting"
    return f"exited with status {status} before reporting"

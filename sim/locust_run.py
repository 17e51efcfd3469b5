"""A Locust run of hospital subscribers: options, per-process state, the end
of the test, and the stepped load shape.

The end of a test. Locust stops a distributed test in several ways (a time
limit, the end of a shape, the web UI's stop button, Ctrl-C), and all of them
go through the master's `test_stopping` event while the workers' users are
still running. There the master sends `wardcast_finish` to every worker and
waits, bounded, for their reports. A worker handles that message before any
stop or quit that follows it (Locust handles a worker's messages one at a
time): it asks the publisher how far it has got, lets its users drain up to
that point, closes their accounting windows (`sim.locust_users`), and sends
its tallies and histograms back as `wardcast_report`. The master merges them
and writes `result.json` (`sim.locust_results`). Without a master (one
process), the same steps run in that process.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import resource
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import numpy as np
import zmq.green as zmq
from locust import LoadTestShape
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from sim import locust_publisher, locust_results
from sim.errors import RunError, ScenarioError
from sim.locust_tally import RoleTally, StepTally
from sim.locust_users import DROPPED_AT_END, USER_CLASSES, HospitalUser, SocketOptions
from sim.progress import Progress, ask

logger = logging.getLogger(__name__)

FINISH = "wardcast_finish"
REPORT = "wardcast_report"
PROGRESS_TIMEOUT_S = 5.0
# A draining user that has received nothing new for this long has been sent
# everything it will get; what it is still missing is dropped.
DRAIN_QUIET_S = 1.0
DRAIN_TIMEOUT_S = 15.0
DRAIN_POLL_S = 0.05
# The master waits this long past the workers' own drain deadline for their
# reports: a loaded two-core machine answers slowly.
REPORT_SLACK_S = 15.0
NO_LATENCIES = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The wardcast options of a Locust run."""

    endpoint: str
    status: str
    role_mix: dict[str, int]
    psychiatrist_patients: int
    hwm: int
    rcvbuf: int
    slow_us: float
    steps: tuple[int, ...]
    step_seconds: float
    step_spawn_rate: float
    result_dir: str

    def socket_options(self) -> SocketOptions:
        return SocketOptions(
            endpoint=self.endpoint,
            hwm=self.hwm,
            rcvbuf=self.rcvbuf,
            slow_us=self.slow_us,
        )

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> Settings:
        return cls(
            endpoint=options.hospital_endpoint,
            status=options.hospital_status,
            role_mix=parse_role_mix(options.role_mix),
            psychiatrist_patients=options.psychiatrist_patients,
            hwm=options.subscriber_hwm,
            rcvbuf=options.subscriber_rcvbuf,
            slow_us=options.slow_us,
            steps=parse_steps(options.steps),
            step_seconds=options.step_seconds,
            step_spawn_rate=options.step_spawn_rate,
            result_dir=options.result_dir,
        )


def add_arguments(parser: Any) -> None:
    """wardcast's options on Locust's command line (and in its web UI)."""
    # Locust's web UI shows only options added to the parser itself, not to a
    # group of it.
    group = parser
    group.add_argument(
        "--hospital-endpoint",
        default="tcp://127.0.0.1:5555",
        help="where `wardcast publish` publishes updates",
        include_in_web_ui=True,
    )
    group.add_argument(
        "--hospital-status",
        default="tcp://127.0.0.1:5556",
        help="where `wardcast publish --status` answers progress requests",
        include_in_web_ui=True,
    )
    group.add_argument(
        "--role-mix",
        default="caregiver=3,psychiatrist=2,administration=1",
        help="relative numbers of users per role",
        include_in_web_ui=True,
    )
    group.add_argument("--psychiatrist-patients", type=int, default=3)
    group.add_argument("--subscriber-hwm", type=int, default=1000)
    group.add_argument("--subscriber-rcvbuf", type=int, default=0)
    group.add_argument(
        "--slow-us",
        type=float,
        default=0.0,
        help="microseconds each user spends on every update (a slow consumer)",
    )
    group.add_argument(
        "--steps",
        default="",
        help="subscriber counts to step through, e.g. 6,12,24 (default: -u users)",
        include_in_web_ui=True,
    )
    group.add_argument("--step-seconds", type=float, default=10.0)
    group.add_argument("--step-spawn-rate", type=float, default=10.0)
    locust_publisher.add_arguments(group)
    group.add_argument(
        "--result-dir",
        default="",
        help="folder for result.json (default: results/locust-TIME)",
    )


def parse_role_mix(text: str) -> dict[str, int]:
    mix: dict[str, int] = {}
    roles = {str(user.role) for user in USER_CLASSES}
    for part in filter(None, (p.strip() for p in text.split(","))):
        role, _, weight = part.partition("=")
        if role not in roles or not weight.isdigit():
            raise ScenarioError(
                f"cannot read {part!r} in --role-mix: write ROLE=WEIGHT with ROLE one"
                f" of {', '.join(sorted(roles))}, e.g. caregiver=3,administration=1"
            )
        mix[role] = int(weight)
    if not any(mix.values()):
        raise ScenarioError("--role-mix gives no role a weight above 0")
    return mix


def parse_steps(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ScenarioError(
            f"cannot read --steps {text!r}: write user counts above 0, e.g. 6,12,24"
        )
    return tuple(int(p) for p in parts)


def apply_role_mix(settings: Settings) -> None:
    for user_class in USER_CLASSES:
        user_class.weight = settings.role_mix.get(str(user_class.role), 0)


@dataclass
class ProcessState:
    """One Locust process's users and what they have seen in one test."""

    settings: Settings
    context: zmq.Context
    progress: Progress | None
    rng: random.Random
    progress_error: str = ""
    live: list[HospitalUser] = field(default_factory=list)
    roles: dict[str, RoleTally] = field(default_factory=dict)
    steps: dict[int, StepTally] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    # The shape's clock, as near as a worker can tell: its first spawn order
    # comes within a fraction of a second of the master starting the shape.
    started_ns: int = field(default_factory=time.monotonic_ns)

    def step_now(self) -> int:
        if not self.settings.steps:
            return 0
        elapsed = (time.monotonic_ns() - self.started_ns) / 1e9
        return min(
            int(elapsed // self.settings.step_seconds), len(self.settings.steps) - 1
        )

    def note_step(self, latency_ns: np.ndarray, dropped: int) -> None:
        """Count deliveries (their latencies) and drops in the current step."""
        step = self.step_now()
        tally = self.steps.get(step)
        if tally is None:
            tally = self.steps[step] = StepTally(step)
        tally.delivered += len(latency_ns)
        tally.dropped += dropped
        tally.from_intended.record(latency_ns)

    def require_progress(self) -> Progress:
        if self.progress is None:
            raise RunError(self.progress_error)
        return self.progress

    def join(self, user: HospitalUser) -> None:
        self.live.append(user)

    def leave(self, user: HospitalUser, published: np.ndarray | None) -> None:
        tail = user.subscription.close(published)
        self.note_step(NO_LATENCIES, tail)
        user.report_failures(tail, DROPPED_AT_END)
        self.live.remove(user)
        tally = user.subscription.tally
        self.roles.setdefault(tally.role, RoleTally(tally.role)).merge(tally)

    def drain(self) -> None:
        """Let every live user catch up with the publisher, then close them."""
        try:
            progress = ask(self.context, self.settings.status, PROGRESS_TIMEOUT_S)
            published = progress.per_topic()
        except RunError as error:
            logger.error("%s; windows end at the last update each user saw", error)
            published = None
        if published is not None:
            self._await_users(published)
        for user in list(self.live):
            self.leave(user, published)

    def _await_users(self, published: np.ndarray) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        behind = sum(user.subscription.behind(published) for user in self.live)
        quiet_since = time.monotonic()
        while behind and time.monotonic() < deadline:
            if time.monotonic() - quiet_since > DRAIN_QUIET_S:
                break
            gevent.sleep(DRAIN_POLL_S)
            now_behind = sum(user.subscription.behind(published) for user in self.live)
            if now_behind < behind:
                quiet_since = time.monotonic()
            behind = now_behind
        logger.info("drained: %d updates still missing", behind)

    def report(self, worker: str) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "worker": worker,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "max_rss_bytes": usage.ru_maxrss * 1024,
            "roles": [tally.to_dict() for tally in self.roles.values()],
            "steps": [tally.to_dict() for tally in self.steps.values()],
        }


_state: ProcessState | None = None
_publisher: locust_publisher.StartedPublisher | None = None


def process_state(environment: Environment) -> ProcessState:
    if _state is None:
        start_test(environment)
    assert _state is not None
    _state.require_progress()
    return _state


def start_test(environment: Environment, **_: Any) -> None:
    """A fresh state for a new test, with the publisher's progress."""
    global _state
    settings = Settings.from_options(environment.parsed_options)
    context = zmq.Context.instance()
    index = getattr(environment.runner, "worker_index", 0)
    state = ProcessState(settings, context, None, random.Random(index))
    if not isinstance(environment.runner, WorkerRunner):
        # The web UI may have changed the mix since Locust started.
        apply_role_mix(settings)
    try:
        state.progress = ask(context, settings.status, PROGRESS_TIMEOUT_S)
    except RunError as error:
        state.progress_error = str(error)
        logger.error("%s", error)
    _state = state


def on_init(environment: Environment, **_: Any) -> None:
    """Checks the options (raises ScenarioError), starts the publisher if
    asked (raises RunError if it does not start) and sets up messages."""
    global _publisher
    runner = environment.runner
    options = environment.parsed_options
    if options is not None:
        apply_role_mix(Settings.from_options(options))
        if options.start_publisher and not isinstance(runner, WorkerRunner):
            _publisher = locust_publisher.StartedPublisher(options)
            environment.events.quitting.add_listener(lambda **_: _publisher.stop())
            _publisher.await_ready()
        elif not isinstance(runner, WorkerRunner):
            # Fail now, in one line, rather than with every user that starts.
            ask(zmq.Context.instance(), options.hospital_status, PROGRESS_TIMEOUT_S)
    if isinstance(runner, WorkerRunner):
        runner.register_message(FINISH, _finish_worker)
    elif isinstance(runner, MasterRunner):
        runner.register_message(REPORT, _collect_report)


def _finish_worker(environment: Environment, msg: Any, **_: Any) -> None:
    runner = environment.runner
    if _state is None:
        report = {"worker": runner.client_id, "roles": [], "host": socket.gethostname()}
    else:
        _state.drain()
        report = _state.report(runner.client_id)
    # Locust's own statistics go first, so that by the time the master has
    # this report it also has every request event the drain fired.
    runner._send_stats()
    runner.send_message(REPORT, report)


_reports: dict[str, dict[str, Any]] = {}


def _collect_report(environment: Environment, msg: Any, **_: Any) -> None:
    _reports[msg.node_id] = msg.data


def on_test_stopping(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    if isinstance(runner, MasterRunner):
        workers = [client.id for client in runner.clients.all]
        _reports.clear()
        runner.send_message(FINISH, {})
        reports = _await_reports(workers)
    else:
        state = _state
        if state is None:
            return
        state.drain()
        reports = {"local": state.report("local")}
        workers = ["local"]
    _write_result(environment, reports, workers)


def _await_reports(workers: list[str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S + PROGRESS_TIMEOUT_S + REPORT_SLACK_S
    while not set(workers) <= set(_reports) and time.monotonic() < deadline:
        gevent.sleep(DRAIN_POLL_S)
    missing = sorted(set(workers) - set(_reports))
    if missing:
        logger.error("no report from workers %s", ", ".join(missing))
    return dict(_reports)


def _write_result(
    environment: Environment, reports: dict[str, dict[str, Any]], workers: list[str]
) -> None:
    state = _state
    settings = Settings.from_options(environment.parsed_options)
    context = zmq.Context.instance()
    try:
        final = ask(context, settings.status, PROGRESS_TIMEOUT_S)
    except RunError as error:
        logger.error("%s", error)
        final = None
    start = state.progress if state is not None else None
    record = locust_results.build(
        reports=reports,
        workers=workers,
        start=start,
        final=final,
        settings=settings,
        wall_seconds=time.time() - (state.started if state else time.time()),
        user_count=environment.runner.user_count,
    )
    folder = locust_results.write(record, Path(settings.result_dir or _default_dir()))
    print(locust_results.summary(record), flush=True)
    print(f"result: {folder / 'result.json'}", flush=True)


def _default_dir() -> str:
    return str(Path("results") / time.strftime("locust-%Y%m%d-%H%M%S"))


class SubscriberSteps(LoadTestShape):
    """Steps the subscriber count through `--steps`, holding each for
    `--step-seconds`, then ends the test; without `--steps`, holds Locust's
    own `--users` at `--spawn-rate` until `--run-time` or a stop."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options
        settings = Settings.from_options(options)
        if not settings.steps:
            # Locust applies --run-time only after a shape has ended.
            if options.run_time and self.get_run_time() >= options.run_time:
                return None
            return options.num_users or 1, options.spawn_rate
        step = int(self.get_run_time() // settings.step_seconds)
        if step >= len(settings.steps):
            return None
        return settings.steps[step], settings.step_spawn_rate


def install(events: Any) -> None:
    """Attach wardcast to Locust's events (called by the locustfile, which
    also attaches `on_init`, where a bad option ends the run)."""
    events.init_command_line_parser.add_listener(add_arguments)
    events.test_start.add_listener(start_test)
    events.test_stopping.add_listener(on_test_stopping)

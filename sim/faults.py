"""Faults injected into a run on purpose, as scenario settings.

    kill_subscriber               the named subscriber's process gets SIGKILL
    + kill_subscriber_at_seconds  that long after the publisher starts sending
    restart_publisher_at_seconds  the publisher gets SIGKILL and a new one
                                  (new run id) binds the same endpoint and
                                  resumes the schedule where the old one had
                                  got to; subscribers reconnect by themselves
    link_cut_at_seconds           the publisher's cable (the bridge's end of
    + link_cut_seconds            its veth) is unplugged for that long
    packet_loss                   that fraction of data packets to and from
                                  the publisher is dropped by nftables
    delay_ms / delay_proxy        subscribers reach the publisher through a
                                  proxy that holds every byte that long

The last three act on the veth between network namespaces, so they need
`namespaces = true`. `FaultHarness` is the harness with these injections and
the bookkeeping they need: it hears the publisher's position in the schedule
after every chunk, so a fault can be set against what had been sent when it
struck, and it runs a restarted publisher as a second worker. What each
fault did is measured from the reports by `sim.fault_effects`.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from sim import control
from sim.errors import RunError, ScenarioError
from sim.harness import Harness, RunOutcome, Worker
from sim.netns import (
    DATA_PORT,
    PROXY_PORT,
    Topology,
    drop_packets,
    dropped_packets,
    namespace_of,
    stop_dropping,
)
from sim.scenario import Scenario

logger = logging.getLogger(__name__)

RESTARTED_PUBLISHER = "publisher-2"
PROXY_START_TIMEOUT_S = 30.0
_TIMES = (
    "kill_subscriber_at_seconds",
    "restart_publisher_at_seconds",
    "link_cut_at_seconds",
    "link_cut_seconds",
    "delay_ms",
    "silence_seconds",
)
_HEARTBEATS = ("heartbeat_ivl_ms", "heartbeat_timeout_ms", "heartbeat_ttl_ms")


def check_faults(scenario: Scenario) -> None:
    """Refuse fault settings that cannot be injected; raises ScenarioError."""
    for key in _TIMES:
        value = getattr(scenario, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ScenarioError(f"{key} must be 0 or more seconds, got {value!r}")
    for key in _HEARTBEATS:
        value = getattr(scenario, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ScenarioError(f"{key} must be whole milliseconds, 0 or more")
    loss = scenario.packet_loss
    if isinstance(loss, bool) or not isinstance(loss, int | float) or not 0 <= loss < 1:
        raise ScenarioError(f"packet_loss must be a fraction from 0 to below 1: {loss}")
    names = [spec.name for spec in scenario.subscribers]
    if scenario.kill_subscriber and scenario.kill_subscriber not in names:
        raise ScenarioError(
            f"kill_subscriber {scenario.kill_subscriber!r} is not a subscriber of"
            f" this scenario: choose one of {', '.join(names)}"
        )
    if scenario.kill_subscriber_at_seconds and not scenario.kill_subscriber:
        raise ScenarioError("kill_subscriber_at_seconds needs kill_subscriber = NAME")
    if scenario.link_cut_seconds and not scenario.link_cut_at_seconds:
        raise ScenarioError("link_cut_seconds needs link_cut_at_seconds above 0")
    on_the_wire = [
        key
        for key in ("link_cut_seconds", "packet_loss", "delay_ms", "delay_proxy")
        if getattr(scenario, key)
    ]
    if on_the_wire and not scenario.namespaces:
        raise ScenarioError(
            f"{on_the_wire[0]} acts on the link between network namespaces:"
            " add namespaces = true (or --namespaces)"
        )
    if (
        scenario.restart_publisher_at_seconds
        and not scenario.namespaces
        and scenario.endpoint.endswith(":*")
    ):
        raise ScenarioError(
            "restart_publisher_at_seconds needs an endpoint with a fixed port,"
            " such as tcp://127.0.0.1:5599, so the new publisher binds it again"
        )


def needs_fault_harness(scenario: Scenario) -> bool:
    return bool(
        scenario.namespaces
        or scenario.kill_subscriber
        or scenario.restart_publisher_at_seconds
    )


def proxied(scenario: Scenario) -> bool:
    return bool(scenario.delay_ms or scenario.delay_proxy)


@dataclass
class Injection:
    """One fault as it was injected."""

    kind: str
    target: str
    planned_at_seconds: float
    at_ns: int = 0
    until_ns: int = 0
    position: int = 0  # updates the publisher had sent when it struck
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Timed:
    at_seconds: float
    action: str
    injection: Injection


class FaultHarness(Harness):
    """The harness, in network namespaces if given a topology, with the
    scenario's faults injected at their times."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        topology: Topology | None = None,
        log_level: str = "WARNING",
    ) -> None:
        if topology is None:
            super().__init__(scenario, log_level=log_level)
        else:
            super().__init__(
                scenario,
                log_level=log_level,
                launcher=topology.launcher,
                control_endpoint=topology.control_endpoint,
            )
        self.topology = topology
        self.started_ns = 0
        self.position = 0
        self.injections: list[Injection] = []
        self.run_ids: list[int] = []
        # The namespace the kernel says each worker ran in.
        self.placed: dict[str, str] = {}
        self._timed = _plan(scenario)
        self._proxy: subprocess.Popen | None = None
        for timed in self._timed:
            if not any(timed.injection is known for known in self.injections):
                self.injections.append(timed.injection)

    def run(self) -> RunOutcome:
        loss = None
        try:
            if self.scenario.packet_loss:
                loss = self._start_loss()
            if proxied(self.scenario):
                self._start_proxy()
            return super().run()
        finally:
            for timed in self._timed:
                if timed.action == "plug":  # never leave the cable out
                    self._inject(timed.action, timed.injection)
            if loss is not None:
                self._stop_loss(loss)

    # -- injections at set times --------------------------------------------

    def _watch_processes(self) -> None:
        if self.started_ns:
            elapsed = (time.monotonic_ns() - self.started_ns) / 1e9
            while self._timed and self._timed[0].at_seconds <= elapsed:
                timed = self._timed.pop(0)
                # A fault falls on the run only while it is publishing; one
                # due later is left uninjected (and says so in the result).
                publishing = self.outcome.published_per_topic is None
                if publishing or timed.action == "plug":
                    self._inject(timed.action, timed.injection)
        super()._watch_processes()

    def _inject(self, action: str, injection: Injection) -> None:
        now = time.monotonic_ns()
        logger.info("injecting %s on %s", action, injection.target)
        if action == "kill_subscriber":
            worker = self._worker_of(injection.target)
            self._kill(worker)
            injection.detail["process"] = worker.worker_id
        elif action == "kill_publisher":
            killed = self.workers[b"publisher"]
            self._kill(killed)
            injection.detail["killed_run_id"] = self.outcome.publisher.get("run_id")
            self._spawn(RESTARTED_PUBLISHER, "publisher", [])
        elif action == "unplug":
            assert self.topology is not None
            self.topology.set_link(self.topology.publisher, up=False)
            # The cable stays out for the whole cut, however late it was
            # pulled on a busy machine.
            back_at = (now - self.started_ns) / 1e9 + self.scenario.link_cut_seconds
            self._timed.append(_Timed(back_at, "plug", injection))
            self._timed.sort(key=lambda t: t.at_seconds)
        elif action == "plug":
            assert self.topology is not None
            self.topology.set_link(self.topology.publisher, up=True)
            injection.until_ns = now
            return
        injection.at_ns = now
        injection.position = self.position

    def _kill(self, worker: Worker) -> None:
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait(5)
        worker.state = "killed"
        worker.error = "killed by the harness: an injected fault"

    def _worker_of(self, subscriber: str) -> Worker:
        for worker in self._subscriber_workers():
            if any(spec["name"] == subscriber for spec in worker.subscribers):
                return worker
        raise RunError(f"no process holds subscriber {subscriber}")

    # -- the conversation with workers, extended ----------------------------

    def _handle(
        self, sender: bytes | None, kind: str, body: dict, frames: list[bytes]
    ) -> None:
        worker = self.workers.get(sender or b"")
        if kind == "progress" and worker and worker.state != "killed":
            self.position = body["position"]
            return
        if kind == "bound" and proxied(self.scenario):
            assert self.topology is not None
            body = {**body, "endpoint": self.topology.proxy_endpoint}
        if kind == "started":
            self.run_ids.append(body["run_id"])
            if not self.started_ns:
                self.started_ns = time.monotonic_ns()
        super()._handle(sender, kind, body, frames)
        if kind in ("bound", "ready") and worker and self.topology is not None:
            self.placed[worker.worker_id] = namespace_of(worker.process.pid)
        if kind == "bound" and worker and worker.worker_id == RESTARTED_PUBLISHER:
            control.send(self.router, "go", to=sender)

    def _tell(
        self, worker: Worker, kind: str, body: dict | None = None, *frames: bytes
    ) -> None:
        if kind == "publisher" and body is not None:
            body = {**body, "progress": True}
            if worker.worker_id == RESTARTED_PUBLISHER:
                body["resume_from"] = self.position
        super()._tell(worker, kind, body, *frames)

    def _finish(self) -> None:
        restarted = self.workers.get(RESTARTED_PUBLISHER.encode())
        if restarted and restarted.alive and restarted.state != "starting":
            self._tell(restarted, "exit")
            self._pump(
                lambda: "usage" in self.outcome.publisher or not restarted.alive,
                time.monotonic() + 5.0,
            )
        super()._finish()

    # -- faults that last the whole run -------------------------------------

    def _start_loss(self) -> Injection:
        assert self.topology is not None
        host = self.topology.publisher
        drop_packets(self.topology, host, DATA_PORT, self.scenario.packet_loss)
        injection = Injection(
            kind="packet_loss",
            target=f"tcp port {DATA_PORT} on {host.namespace}",
            planned_at_seconds=0.0,
            at_ns=time.monotonic_ns(),
            detail={"rate": self.scenario.packet_loss, "lasts": "throughout the run"},
        )
        self.injections.append(injection)
        return injection

    def _stop_loss(self, injection: Injection) -> None:
        assert self.topology is not None
        host = self.topology.publisher
        try:
            injection.detail["packets_dropped"] = dropped_packets(self.topology, host)
        finally:
            stop_dropping(self.topology, host)
        injection.until_ns = time.monotonic_ns()

    def _start_proxy(self) -> Injection:
        assert self.topology is not None
        host = self.topology.publisher
        command = [
            sys.executable,
            "-m",
            "sim.delayproxy",
            "--listen",
            f"{host.address}:{PROXY_PORT}",
            "--target",
            f"{host.address}:{DATA_PORT}",
            "--delay-ms",
            str(self.scenario.delay_ms),
        ]
        process = self._proxy = self.topology.start(host, command)
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], PROXY_START_TIMEOUT_S)
        if not ready or process.stdout.readline().strip() != "listening":
            raise RunError(
                f"the delaying proxy did not start within {PROXY_START_TIMEOUT_S} s"
            )
        injection = Injection(
            kind="delay",
            target=f"{self.topology.proxy_endpoint} -> {self.topology.data_endpoint}",
            planned_at_seconds=0.0,
            at_ns=time.monotonic_ns(),
            detail={"delay_ms": self.scenario.delay_ms, "lasts": "throughout the run"},
        )
        self.injections.append(injection)
        return injection


def _plan(scenario: Scenario) -> list[_Timed]:
    """The timed injections of a scenario, in the order they fall due."""
    timed = []
    if scenario.kill_subscriber:
        at = scenario.kill_subscriber_at_seconds
        injection = Injection("kill_subscriber", scenario.kill_subscriber, at)
        timed.append(_Timed(at, "kill_subscriber", injection))
    if scenario.restart_publisher_at_seconds:
        at = scenario.restart_publisher_at_seconds
        injection = Injection("restart_publisher", "publisher", at)
        timed.append(_Timed(at, "kill_publisher", injection))
    if scenario.link_cut_seconds:
        at = scenario.link_cut_at_seconds
        injection = Injection(
            "link_cut",
            "publisher's veth",
            at,
            detail={"seconds": scenario.link_cut_seconds},
        )
        timed.append(_Timed(at, "unplug", injection))
    return sorted(timed, key=lambda t: t.at_seconds)

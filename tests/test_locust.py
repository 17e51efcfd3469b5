"""Locust runs of hospital subscribers: real `wardcast publish`, real Locust
master and worker processes, on loopback.

Every process a test starts is bounded in time and killed and reaped at the
end of the test, whatever happened.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

from sim import result as results
from sim.errors import RunError
from sim.histogram import Histogram
from sim.locust_tally import JoiningLedger
from sim.progress import Progress, ask, published_per_topic
from sim.roles import make_subscriber
from sim.scenario import Scenario, resolve
from sim.schedule import frame_chunks
from tests.conftest import free_port, run_wardcast

LOCUSTFILE = Path(__file__).resolve().parent.parent / "bench" / "locustfile.py"
LOCUST = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
PATIENTS = 25
# Long enough for three Locust processes to start on a loaded two-core
# machine and run their few seconds; a publisher that ends sooner is still
# accounted exactly, but its subscribers would see nothing.
PUBLISHER_SECONDS = 60
STARTUP_TIMEOUT_S = 30
LOCUST_TIMEOUT_S = 150
EXIT_GRACE_S = 10
HTTP_TIMEOUT_S = 10
# Locust's web UI offers no way to wait for a change: it is asked this often.
WEB_POLL_S = 0.2

# What a result of schema wardcast.result/1 must hold (see sim/result.py).
RESULT_KEYS = {
    "schema",
    "scenario",
    "wall_seconds",
    "published",
    "subscribers",
    "latency_us",
    "throughput",
    "totals",
    "status",
    "passed",
    "problems",
    "histograms",
}
SUBSCRIBER_KEYS = {
    "name",
    "role",
    "topics",
    "expected",
    "received",
    "dropped",
    "foreign",
    "duplicates",
    "latency_us",
    "cpu_seconds",
    "max_rss_bytes",
}
PERCENTILE_KEYS = {"p50", "p90", "p99", "p999", "max"}
ALL_ROLES = {"caregiver", "psychiatrist", "administration"}


class Processes:
    """Processes a test started, each logging to a file, all reaped at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 (closed below)
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        self.started.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=EXIT_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=EXIT_GRACE_S)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def start_publisher(
    processes: Processes,
    *,
    rate: int,
    hwm: int = 1000,
    sndbuf: int = 0,
    seconds: int = PUBLISHER_SECONDS,
) -> tuple[str, str]:
    """A running `wardcast publish`; its update and progress endpoints. It
    answers progress once its frames are built, as it starts sending."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    status = f"tcp://127.0.0.1:{free_port()}"
    days = math.ceil(rate * seconds / (PATIENTS * 2))
    processes.start(
        "publisher",
        [
            *(sys.executable, "-m", "sim.cli", "publish", "--quiet"),
            *("--patients", str(PATIENTS), "--days", str(days)),
            *("--rate", str(rate), "--hwm", str(hwm), "--sndbuf", str(sndbuf)),
            *("--endpoint", endpoint, "--status", status),
        ],
    )
    await_progress(status)
    return endpoint, status


def await_progress(status: str) -> Progress:
    context = zmq.Context()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while True:
            try:
                return ask(context, status, timeout_s=1.0)
            except RunError:
                if time.monotonic() > deadline:
                    raise
    finally:
        context.term()


def run_locust(
    processes: Processes,
    folder: Path,
    *,
    endpoint: str,
    status: str,
    workers: int,
    options: list[str],
) -> subprocess.CompletedProcess:
    """A headless Locust master with `workers` worker processes; returns when
    the master has exited."""
    port = free_port()
    for index in range(workers):
        processes.start(
            f"worker-{index}",
            [*LOCUST, "--worker", "--master-port", str(port)],
        )
    master = processes.start(
        "master",
        [
            *LOCUST,
            *("--master", "--master-bind-host", "127.0.0.1"),
            *("--master-bind-port", str(port), "--expect-workers", str(workers)),
            *("--headless", "--only-summary"),
            *("--hospital-endpoint", endpoint, "--hospital-status", status),
            *("--result-dir", str(folder / "result")),
            *("--csv", str(folder / "locust"), "--json-file", str(folder / "locust")),
            *options,
        ],
    )
    returncode = master.wait(timeout=LOCUST_TIMEOUT_S)
    return subprocess.CompletedProcess(master.args, returncode, processes.log("master"))


def locust_stats(folder: Path) -> dict[str, dict]:
    """Locust's own final statistics per request name (role)."""
    entries = json.loads((folder / "locust.json").read_text())
    return {entry["name"]: entry for entry in entries if entry["method"] == "ZMQ"}


def check_result_schema(result: dict) -> None:
    """The result holds every field `wardcast run` writes, with the same
    meaning (sim/result.py), and renders as `wardcast run`'s summary table."""
    assert RESULT_KEYS <= set(result), RESULT_KEYS - set(result)
    assert result["schema"] == results.SCHEMA
    assert set(result["latency_us"]) == PERCENTILE_KEYS
    assert {"published_per_s", "delivered_per_s"} <= set(result["throughput"])
    for entry in result["subscribers"]:
        assert SUBSCRIBER_KEYS <= set(entry), SUBSCRIBER_KEYS - set(entry)
        assert set(entry["latency_us"]) == PERCENTILE_KEYS
        assert entry["expected"] == entry["received"] + entry["dropped"]
    for key in ("patients", "days", "updates_per_day", "message_bytes", "rate", "hwm"):
        assert key in result["scenario"], key
    assert "all" in results.summary(result)


def test_locust_master_and_two_workers_deliver_every_role_without_drops(
    processes: Processes, tmp_path: Path
) -> None:
    endpoint, status = start_publisher(processes, rate=200)
    completed = run_locust(
        processes,
        tmp_path,
        endpoint=endpoint,
        status=status,
        workers=2,
        options=["--users", "12", "--spawn-rate", "12", "--run-time", "6s"],
    )
    assert completed.returncode == 0, completed.stdout
    result = json.loads((tmp_path / "result" / "result.json").read_text())
    check_result_schema(result)
    assert result["status"] == "complete" and result["passed"], result["problems"]

    roles = {entry["role"]: entry for entry in result["subscribers"]}
    assert set(roles) == ALL_ROLES
    for entry in roles.values():
        assert entry["received"] > 0, entry["role"]
    assert result["totals"]["dropped"] == 0
    assert result["totals"]["foreign"] == 0

    assert len(result["workers"]) == 2
    assert all(worker["delivered"] > 0 for worker in result["workers"])
    merged = Histogram.from_dict(result["histograms"]["from_intended"])
    assert merged.count == sum(worker["delivered"] for worker in result["workers"])
    assert merged.count == sum(w["histogram_count"] for w in result["workers"])

    stats = locust_stats(tmp_path)
    for role, entry in roles.items():
        assert stats[role]["num_failures"] == 0
        assert stats[role]["num_requests"] == entry["delivered"]
    csv_rows = (tmp_path / "locust_stats.csv").read_text()
    assert all(f"ZMQ,{role}," in csv_rows for role in roles)


def test_locust_drops_when_publisher_outpaces_subscribers_are_failures(
    processes: Processes, tmp_path: Path
) -> None:
    # An administration user takes 1 ms per update (--slow-us) and is sent
    # 3,000 a second, through queues of 10 and 4 KiB kernel buffers.
    endpoint, status = start_publisher(processes, rate=3000, hwm=10, sndbuf=4096)
    completed = run_locust(
        processes,
        tmp_path,
        endpoint=endpoint,
        status=status,
        workers=2,
        options=[
            *("--users", "4", "--spawn-rate", "4", "--run-time", "5s"),
            *("--role-mix", "caregiver=1,psychiatrist=1,administration=2"),
            *("--subscriber-hwm", "10", "--subscriber-rcvbuf", "4096"),
            *("--slow-us", "1000"),
        ],
    )
    # Locust exits 1 when any request failed: here, every dropped update.
    assert completed.returncode == 1, completed.stdout
    result = json.loads((tmp_path / "result" / "result.json").read_text())
    check_result_schema(result)
    assert result["status"] == "complete" and result["passed"], result["problems"]
    assert result["totals"]["foreign"] == 0
    assert result["totals"]["dropped"] > 0

    stats = locust_stats(tmp_path)
    for entry in result["subscribers"]:
        role = entry["role"]
        assert stats[role]["num_failures"] == entry["dropped"], role
        assert (
            stats[role]["num_requests"] - stats[role]["num_failures"]
            == entry["delivered"]
        ), role
    assert result["totals"]["dropped"] == sum(w["dropped"] for w in result["workers"])


def test_locust_result_renders_with_wardcast_report(
    processes: Processes, tmp_path: Path
) -> None:
    endpoint, status = start_publisher(processes, rate=200)
    completed = run_locust(
        processes,
        tmp_path,
        endpoint=endpoint,
        status=status,
        workers=1,
        options=["--users", "3", "--spawn-rate", "3", "--run-time", "3s"],
    )
    assert completed.returncode == 0, completed.stdout
    rendered = run_wardcast("report", str(tmp_path / "result"))
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "result" / "report.html").exists()


def http(url: str, form: dict[str, str] | None = None) -> dict:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    with urllib.request.urlopen(url, data=data, timeout=HTTP_TIMEOUT_S) as answer:
        return json.loads(answer.read())


def roles_with_deliveries(url: str) -> set[str]:
    """The roles whose users have received updates, from Locust's web UI."""
    stats = http(f"{url}/stats/requests")["stats"]
    return {
        entry["name"]
        for entry in stats
        if entry["name"] != "Aggregated" and entry["num_requests"] > 0
    }


def await_web_ui(url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            http(f"{url}/stats/requests")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(WEB_POLL_S)  # nothing to wait on but the port itself


def test_locust_web_ui_run_writes_merged_result(
    processes: Processes, tmp_path: Path
) -> None:
    endpoint, status = start_publisher(processes, rate=200)
    port, web_port = free_port(), free_port()
    processes.start("worker-0", [*LOCUST, "--worker", "--master-port", str(port)])
    processes.start(
        "master",
        [
            *LOCUST,
            *("--master", "--master-bind-host", "127.0.0.1"),
            *("--master-bind-port", str(port)),
            *("--web-host", "127.0.0.1", "--web-port", str(web_port)),
            *("--hospital-endpoint", endpoint, "--hospital-status", status),
            *("--role-mix", "caregiver=1,psychiatrist=1,administration=1"),
            *("--result-dir", str(tmp_path / "result")),
        ],
    )
    url = f"http://127.0.0.1:{web_port}"
    await_web_ui(url)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while http(f"{url}/stats/requests")["workers"] == []:
        assert time.monotonic() < deadline, "the worker never joined the master"
        time.sleep(WEB_POLL_S)
    started = http(f"{url}/swarm", {"user_count": "3", "spawn_rate": "3"})
    assert started["success"], started

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while roles_with_deliveries(url) != ALL_ROLES:
        assert time.monotonic() < deadline, "users of some role received nothing"
        time.sleep(WEB_POLL_S)
    http(f"{url}/stop", {})

    result_path = tmp_path / "result" / "result.json"
    deadline = time.monotonic() + LOCUST_TIMEOUT_S
    while not result_path.exists():
        assert time.monotonic() < deadline, processes.log("master")
        time.sleep(WEB_POLL_S)
    result = json.loads(result_path.read_text())
    check_result_schema(result)
    assert result["passed"], result["problems"]
    assert {entry["role"] for entry in result["subscribers"]} == ALL_ROLES
    assert result["totals"]["received"] > 0
    assert result["totals"]["dropped"] == 0


def test_locust_ledger_counts_from_first_update_seen_and_finds_gaps() -> None:
    ledger = JoiningLedger(patients=3)
    # Joined mid-stream: patient 2 first seen at 40, then 41 and 44 (42, 43 lost).
    missing = ledger.record(np.array([2, 2, 2]), np.array([40, 41, 44]))
    assert missing == 2
    assert ledger.record(np.array([2]), np.array([44])) == 0  # a repeat
    assert ledger.duplicates == 1
    published = np.array([0, 0, 47, 0])  # the publisher reached 46 on patient 2
    assert ledger.behind(published) == 2
    expected, received = ledger.close(published)
    assert (expected, received) == (47 - 40, 3)


def test_locust_progress_count_matches_what_the_schedule_sends() -> None:
    administration = (make_subscriber("administration"),)
    scenario = resolve(
        Scenario(patients=7, days=3, rate=100.0, subscribers=administration)
    )
    order = np.concatenate(
        [chunk["patient"] for chunk in frame_chunks(scenario, run_id=1)]
    )
    for published in (0, 1, 6, 7, 8, 20, len(order)):
        sent = np.bincount(order[:published], minlength=scenario.patients + 1)
        assert (published_per_topic(published, scenario.patients) == sent).all()


def test_locust_publisher_answers_progress_and_stops_on_sigterm(
    processes: Processes,
) -> None:
    endpoint, status = start_publisher(processes, rate=500)
    first = await_progress(status)
    assert first.patients == PATIENTS and first.message_bytes > 0
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while await_progress(status).published <= first.published:
        assert time.monotonic() < deadline, "the publisher's count never moved"
    publisher = processes.started[0]
    publisher.terminate()
    assert publisher.wait(timeout=EXIT_GRACE_S) == 0
    assert "stopped after" in processes.log("publisher")


def test_locust_publish_refuses_a_bad_rate_in_one_line() -> None:
    completed = run_wardcast("publish", "--rate", "0", "--status", "tcp://127.0.0.1:1")
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and "rate" in completed.stderr


def test_locust_accounting_imports_leave_the_test_process_unpatched() -> None:
    # Importing Locust patches the standard library for gevent; the modules a
    # test or the harness imports for accounting must not bring it in.
    probe = (
        "import sys, sim.locust_tally, sim.locust_results, sim.progress;"
        " print('gevent' in sys.modules, 'locust' in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT_S,
        check=True,
    )
    assert completed.stdout.split() == ["False", "False"]


def test_locust_steps_shape_reports_each_subscriber_count(
    processes: Processes, tmp_path: Path
) -> None:
    endpoint, status = start_publisher(processes, rate=200)
    locust = processes.start(
        "locust",
        [
            *LOCUST,
            *("--headless", "--only-summary"),
            *("--hospital-endpoint", endpoint, "--hospital-status", status),
            *("--steps", "2,4", "--step-seconds", "3", "--step-spawn-rate", "10"),
            *("--role-mix", "caregiver=1,administration=1"),
            *("--result-dir", str(tmp_path / "result")),
            *("--csv", str(tmp_path / "locust")),
        ],
    )
    assert locust.wait(timeout=LOCUST_TIMEOUT_S) == 0, processes.log("locust")
    result = json.loads((tmp_path / "result" / "result.json").read_text())
    check_result_schema(result)
    assert [step["users"] for step in result["steps"]] == [2, 4]
    assert all(step["delivered"] > 0 for step in result["steps"])
    assert sum(step["delivered"] for step in result["steps"]) == sum(
        entry["delivered"] for entry in result["subscribers"]
    )
    users = {entry["role"]: entry["users"] for entry in result["subscribers"]}
    assert users == {"caregiver": 2, "administration": 2}
    # Users whose window the end of the test closed wait to be stopped: one
    # that ended itself first made Locust log an error while stopping it.
    assert "ERROR" not in processes.log("locust")

"""Whole runs, with real publisher and subscriber processes on loopback."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import read_result, run_wardcast

CONTRACT_SUBSCRIBER_FIELDS = {
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
PERCENTILES = {"p50", "p90", "p99", "p999", "max"}


def test_reference_week_delivers_every_update_to_its_subscribers(tmp_path):
    completed = run_wardcast("run", "--out", str(tmp_path), check=True)
    result = read_result(tmp_path)
    assert result["schema"] == "wardcast.result/1"
    assert result["published"] == 25 * 2 * 7
    expected = {entry["name"]: entry["expected"] for entry in result["subscribers"]}
    assert expected == {
        "caregiver-1": 14,
        "caregiver-2": 14,
        "caregiver-3": 14,
        "psychiatrist-8-9": 28,
        "psychiatrist-10-11-12-and-2-more": 70,
        "administration": 350,
    }
    for entry in result["subscribers"]:
        assert CONTRACT_SUBSCRIBER_FIELDS <= set(entry)
        assert set(entry["latency_us"]) == PERCENTILES
        assert entry["received"] == entry["expected"]
        assert (entry["dropped"], entry["foreign"], entry["duplicates"]) == (0, 0, 0)
        assert entry["cpu_seconds"] >= 0 and entry["max_rss_bytes"] > 0
    assert set(result["latency_us"]) == PERCENTILES
    assert result["throughput"]["published_per_s"] > 0
    assert result["wall_seconds"] > 0
    assert "PASSED" in completed.stdout
    assert "administration" in completed.stdout


def test_each_role_receives_exactly_its_patients_among_120(tmp_path):
    subscribers = [
        "caregiver:1",
        "caregiver:10",
        "caregiver:100",
        "psychiatrist:1,11,111",
        "psychiatrist:12-19",
        "administration",
    ]
    options = [f"--subscriber={spec}" for spec in subscribers]
    run_wardcast(
        "run", "--patients", "120", "--days", "2", "--rate", "5000",
        "--out", str(tmp_path), *options, check=True,
    )  # fmt: skip
    result = read_result(tmp_path)
    topics = [entry["topics"] for entry in result["subscribers"]]
    assert topics == [1, 1, 1, 3, 8, 120]
    for entry in result["subscribers"]:
        assert entry["expected"] == entry["topics"] * 2 * 2
        assert entry["received"] == entry["expected"]
        assert entry["foreign"] == 0


def write_scenario(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_drops_of_a_slow_subscriber_are_counted_exactly(tmp_path):
    """A slow administration subscriber against a tiny HWM and small kernel
    buffers loses updates; the test counts them itself from the trace of
    what arrived and the schedule of what was sent."""
    patients, days, updates = 200, 10, 2
    scenario = write_scenario(
        tmp_path / "slow.toml",
        f"""
        patients = {patients}
        days = {days}
        rate = "max"
        hwm = 10
        sndbuf = 4096
        rcvbuf = 4096
        drain_quiet_seconds = 1.0
        [[subscriber]]
        role = "administration"
        slow_us = 200
        trace = true
        """,
    )
    out = tmp_path / "out"
    completed = run_wardcast(
        "run", "--scenario", str(scenario), "--out", str(out), check=True
    )
    result = read_result(out)
    entry = result["subscribers"][0]
    run_id = result["run_id"]
    arrived = {(p, s) for r, p, s in entry["trace"] if r == run_id}
    sent = {(p, s) for p in range(1, patients + 1) for s in range(days * updates)}
    assert arrived <= sent
    true_drops = len(sent) - len(arrived)
    assert true_drops > 0
    assert result["published"] == len(sent)
    assert entry["dropped"] == true_drops
    assert entry["received"] == len(arrived)
    assert entry["foreign"] == 0
    # Drops are a measurement: the run passes, and its last line says so.
    assert f"PASSED with drops: {true_drops:,} of {len(sent):,}" in completed.stdout


class LineReader:
    """Lines of a process's stream, awaited with a bound."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, needle: str, timeout: float) -> str:
        while True:
            line = self.lines.get(timeout=timeout)
            if needle in line:
                return line


def test_a_subscriber_killed_mid_run_is_reported_and_the_run_still_ends(tmp_path):
    command = [
        sys.executable, "-m", "sim.cli", "-v", "run", "--patients", "25",
        "--days", "40", "--rate", "250", "--subscriber", "caregiver:1",
        "--subscriber", "administration", "--out", str(tmp_path),
    ]  # fmt: skip
    with subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    ) as process:
        try:
            log = LineReader(process.stderr)
            ready = log.wait_for("subscribers-1 ready (pid", timeout=60)
            pid = int(ready.rsplit("pid ", 1)[1].rstrip(")\n"))
            log.wait_for("publisher started run", timeout=60)
            os.kill(pid, signal.SIGKILL)
            status = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert status == 1
    result = read_result(tmp_path)
    caregiver, administration = result["subscribers"]
    assert administration["status"] == "died"
    assert "signal 9" in administration["error"]
    assert caregiver["status"] == "reported"
    assert caregiver["received"] == caregiver["expected"] == 80
    assert result["status"] == "incomplete"
    assert any("administration did not report" in p for p in result["problems"])

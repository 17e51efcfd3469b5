"""`wardcast publish` and `wardcast subscribe` in two processes, as in two
terminals."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.conftest import run_wardcast


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def watch_caregiver(seed: int) -> list[str]:
    """Start a caregiver of patient 1, then a fast publisher; its printed updates."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    subscribe = [
        sys.executable, "-m", "sim.cli", "subscribe", "--role", "caregiver",
        "--patient", "1", "--endpoint", endpoint, "--count", "4",
        "--max-seconds", "60",
    ]  # fmt: skip
    publish = [
        sys.executable, "-m", "sim.cli", "publish", "--day-seconds", "0.5",
        "--days", "4", "--seed", str(seed), "--endpoint", endpoint,
    ]  # fmt: skip
    with subprocess.Popen(subscribe, stdout=subprocess.PIPE, text=True) as watcher:
        # The subscriber says it is following before it waits for updates.
        assert "following 1" in watcher.stdout.readline()
        with subprocess.Popen(publish, stdout=subprocess.DEVNULL) as publisher:
            try:
                output, _ = watcher.communicate(timeout=90)
            finally:
                publisher.kill()
                publisher.wait()
    assert watcher.returncode == 0
    return output.splitlines()


def test_caregiver_in_real_time_prints_only_its_patients_updates():
    lines = watch_caregiver(seed=3)
    updates = [line for line in lines if line.startswith("Patient_")]
    assert len(updates) == 4
    for line in updates:
        assert line.startswith("Patient_1_data: Dear Caregiver, on ")
        assert "your patient Patient_1 received" in line
    assert "0 foreign, 0 malformed" in lines[-1]


def test_real_time_publisher_refuses_plaintext_on_a_reachable_address():
    completed = run_wardcast("publish", "--endpoint", "tcp://0.0.0.0:5599")
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "--insecure" in completed.stderr

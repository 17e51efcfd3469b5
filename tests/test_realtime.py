"""`wardcast publish` and `wardcast subscribe` in two processes, as in two
terminals."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import free_port, run_wardcast


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


def _subscribe(endpoint: str, *options: str) -> list[str]:
    return [
        sys.executable, "-m", "sim.cli", "subscribe", "--role", "caregiver",
        "--patient", "1", "--endpoint", endpoint, "--max-seconds", "60", *options,
    ]  # fmt: skip


def _publish(endpoint: str, days: int) -> list[str]:
    return [
        sys.executable, "-m", "sim.cli", "publish", "--day-seconds", "0.5",
        "--days", str(days), "--endpoint", endpoint, "--quiet",
    ]  # fmt: skip


def test_a_caregiver_started_first_receives_the_first_slot():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with subprocess.Popen(
        _subscribe(endpoint, "--count", "4"), stdout=subprocess.PIPE, text=True
    ) as watcher:
        assert "following 1" in watcher.stdout.readline()
        completed = subprocess.run(_publish(endpoint, days=2), timeout=60)
        output, _ = watcher.communicate(timeout=60)
    assert completed.returncode == 0 and watcher.returncode == 0
    updates = [line for line in output.splitlines() if line.startswith("Patient_")]
    assert "on 2024-05-11 00:00:00:" in updates[0]
    assert "received 4 updates; 0 missing" in output


def test_a_subscriber_follows_a_publisher_that_comes_back_and_says_when_it_is_gone():
    """Two publisher runs in turn on one endpoint: the subscriber reconnects
    by itself, then says the publisher went away (not that the session ended
    for good, which only a protocol error does) and stops."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with subprocess.Popen(
        _subscribe(endpoint, "--reconnect-seconds", "3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as watcher:
        assert "following 1" in watcher.stdout.readline()
        for _ in range(2):
            assert (
                subprocess.run(_publish(endpoint, days=1), timeout=60).returncode == 0
            )
        output, errors = watcher.communicate(timeout=60)
    assert watcher.returncode == 1
    # Two runs of one day each: patient 1's midnight and noon, twice (each
    # run's sequence numbers start again, so nothing counts as missing).
    assert output.count("Patient_1_data: Dear Caregiver") == 4
    assert "2 sessions ended" in output
    assert errors.count("\n") == 1
    assert "went away and was not back within 3 s" in errors

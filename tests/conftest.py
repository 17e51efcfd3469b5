"""Fixtures shared by the test suite."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# Real runs and sweeps shared by the report tests, made once per session.
pytest_plugins = ["tests.report_fixtures"]

# Every command a test starts is bounded: a hung harness fails the test
# instead of hanging the suite.
COMMAND_TIMEOUT_S = 120


def run_wardcast(
    *args: str, timeout: float = COMMAND_TIMEOUT_S, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the installed command line as a user would, bounded in time."""
    completed = subprocess.run(
        [sys.executable, "-m", "sim.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"wardcast {' '.join(args)} exited {completed.returncode}:\n"
            f"{completed.stdout}\n{completed.stderr}"
        )
    return completed


def free_port() -> int:
    """A loopback port nothing listens on now. Another process could take it
    before the test binds it; on a test machine that race is rare and fails
    loudly."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_result(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


@pytest.fixture
def wardcast():
    return run_wardcast

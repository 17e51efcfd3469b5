"""Nothing measured is lost: Ctrl-C, a crashed subscriber, a full disk.

Each run is a real `wardcast run` with its real worker processes; the test
reads the harness's own progress lines (-v) to act at the right moment.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from sim.result import write_json_atomically
from tests.conftest import read_result

# Bound on any step of a run on a loaded two-core machine.
STEP_S = 60.0


class _Run:
    """`wardcast run -v` in its own process group, as a terminal starts it."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sim.cli", "-v", "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.log: list[str] = []
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.process.stderr, selectors.EVENT_READ)

    def await_line(self, pattern: str) -> re.Match[str]:
        """The first log line matching `pattern`, failing after STEP_S."""
        wanted = re.compile(pattern)
        for line in self.log:
            if match := wanted.search(line):
                return match
        deadline = time.monotonic() + STEP_S
        while (remaining := deadline - time.monotonic()) > 0:
            if not self._selector.select(remaining):
                break
            line = self.process.stderr.readline()
            if not line:
                break
            self.log.append(line)
            if match := wanted.search(line):
                return match
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.log)}")

    def finish(self) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=STEP_S * 2)
        return self.process.returncode, out, "".join(self.log) + err

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.communicate()
        self._selector.close()


@pytest.fixture
def runs():
    started: list[_Run] = []
    yield lambda *args: started.append(_Run(*args)) or started[-1]
    for run in started:
        run.kill()


def test_nothing_lost_ctrl_c_writes_what_was_measured_marked_incomplete(
    runs, tmp_path: Path
) -> None:
    run = runs("--days", "60", "--day-seconds", "0.5", "--out", str(tmp_path))
    endpoint = run.await_line(r"publisher bound (\S+)")[1]
    # The test's own witness: a subscriber to a patient no reference
    # subscriber follows. Two updates seen means at least one full day was
    # published: 25 updates of the first slot and 20 of the second.
    with zmq.Context() as context, context.socket(zmq.SUB) as witness:
        witness.connect(endpoint)
        witness.setsockopt(zmq.SUBSCRIBE, b"Patient_20_data\x00")
        for _ in range(2):
            assert witness.poll(STEP_S * 1000), "the witness saw no update"
            witness.recv()
    os.killpg(run.process.pid, signal.SIGINT)  # Ctrl-C in the terminal
    status, out, log = run.finish()

    assert status == 130, log
    result = read_result(tmp_path)
    assert result["status"] == "incomplete"
    assert "interrupted" in " ".join(result["problems"])
    assert result["published"] >= 45
    assert result["published"] < 60 * 2 * 25
    assert result["publisher"]["aborted"] is True
    by_name = {entry["name"]: entry for entry in result["subscribers"]}
    assert {entry["status"] for entry in by_name.values()} == {"reported"}
    assert by_name["administration"]["expected"] == result["published"]
    for entry in by_name.values():
        assert entry["received"] == entry["expected"] > 0
    assert "(incomplete)" in out
    assert "Traceback" not in log


def test_nothing_lost_a_crashed_subscriber_leaves_the_others_results(
    runs, tmp_path: Path
) -> None:
    run = runs("--days", "6", "--day-seconds", "0.5", "--out", str(tmp_path))
    pids = {}
    for _ in range(6):
        match = run.await_line(
            rf"subscribers-{len(pids)} ready \(pid (\d+)\)",
        )
        pids[f"subscribers-{len(pids)}"] = int(match[1])
    run.await_line(r"publisher started run")
    os.kill(pids["subscribers-5"], signal.SIGKILL)  # administration
    status, out, log = run.finish()

    assert status == 1, log
    result = read_result(tmp_path)
    assert result["status"] == "incomplete"
    by_name = {entry["name"]: entry for entry in result["subscribers"]}
    assert by_name["administration"]["status"] == "died"
    assert "signal 9" in by_name["administration"]["error"]
    others = [entry for name, entry in by_name.items() if name != "administration"]
    assert len(others) == 5
    for entry in others:
        assert entry["status"] == "reported"
        assert entry["received"] == entry["expected"] == len(entry["patients"]) * 12
    assert "DIED" in out


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 128 KiB tmpfs, mounted for the test and unmounted after it."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_nothing_lost_full_disk_moves_the_result_and_leaves_no_half_file(
    small_disk: Path, tmp_path: Path
) -> None:
    # Fill the disk but for a few kilobytes: less than a result needs.
    filler = small_disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        except OSError:
            pass
    filler.write_bytes(filler.read_bytes()[: -8 * 1024])
    out_dir = small_disk / "run"

    completed = subprocess.run(
        [sys.executable, "-m", "sim.cli", "run", "--out", str(out_dir)],
        capture_output=True,
        text=True,
        timeout=STEP_S * 2,
    )

    assert completed.returncode == 1, completed.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == []  # nothing half written
    match = re.search(
        r"No space left on device\); wrote it to (\S+) instead", completed.stderr
    )
    assert match, completed.stderr
    moved = Path(match[1])
    try:
        result = json.loads(moved.read_text())
    finally:
        shutil.rmtree(moved.parent)
    assert result["status"] == "complete"
    assert result["totals"]["received"] == result["totals"]["expected"] == 490
    assert "PASSED" in completed.stdout


def test_nothing_lost_a_failed_write_keeps_the_previous_file_whole(
    tmp_path: Path,
) -> None:
    path = tmp_path / "result.json"
    write_json_atomically(path, {"published": 490})

    class Unwritable:
        """Fails half way through serialising, after some bytes are out."""

    with pytest.raises(TypeError):
        write_json_atomically(path, {"published": 980, "later": Unwritable()})
    assert json.loads(path.read_text()) == {"published": 490}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]

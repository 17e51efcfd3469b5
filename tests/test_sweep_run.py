"""`wardcast sweep` end to end: real harness runs, a real baseline, resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import COMMAND_TIMEOUT_S, read_result

# Small enough that a point takes a second or two: the raw-pyzmq baseline is
# cut to a few thousand frames, which is plenty to exercise it.
TINY = """
name = "tiny"
patients = 20
days = 2
rate = {rate}
[[subscriber]]
role = "caregiver"
patients = [3]
[sweep]
baseline_frames = 3000
baseline_latency_frames = 300
repeats = {repeats}
[sweep.axes]
subscribers = [1, 2]
"""
# How long the interrupt test waits for the first point to finish.
FIRST_POINT_TIMEOUT_S = 90.0


def tiny_sweep(folder: Path, *, rate: int = 2000, repeats: int = 1) -> Path:
    path = folder / "tiny.toml"
    path.write_text(TINY.format(rate=rate, repeats=repeats))
    return path


def read_sweep(folder: Path) -> dict:
    return json.loads((folder / "sweep.json").read_text())


@pytest.mark.slow
def test_small_sweep_records_every_point_beside_a_baseline(tmp_path, wardcast):
    out = tmp_path / "out"
    completed = wardcast("sweep", str(tiny_sweep(tmp_path)), "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    sweep = read_sweep(out)
    assert sweep["schema"] == "wardcast.sweep/1"
    assert sweep["axes"] == {"subscribers": [1, 2]}
    assert sweep["baseline"]["throughput_per_s"] > 0
    assert sweep["baseline"]["message_bytes"] == sweep["base_scenario"]["message_bytes"]
    assert [p["status"] for p in sweep["points"]] == ["done", "done"]
    for point, sockets in zip(sweep["points"], (1, 2), strict=True):
        result = read_result(out / point["dir"])
        summary = point["summary"]
        assert len(result["subscribers"]) == sockets
        assert summary["published"] == result["published"] == 80
        assert summary["expected"] == 80 * sockets  # administration, all 80
        assert summary["received"] + summary["dropped"] == summary["expected"]
        assert summary["foreign"] == 0
        assert summary["ratio_to_baseline"]["delivered_per_s"] > 0
        assert summary["max_rss_bytes_max"] > 0
    assert set(sweep["verdict"]["limits"]) == {"subscribers"}
    assert "raw pyzmq" in completed.stdout


SEARCHED = """
name = "searched"
patients = 20
days = 10
hwm = 10000
[[subscriber]]
role = "administration"
[sweep]
baseline_frames = 3000
baseline_latency_frames = 300
search_probes = 2
search_repeats = 3
[sweep.axes]
rate_fraction = [0.5]
"""


@pytest.mark.slow
def test_repeated_searches_pair_harness_and_raw_and_take_the_median(tmp_path, wardcast):
    path = tmp_path / "searched.toml"
    path.write_text(SEARCHED)
    out = tmp_path / "out"
    completed = wardcast("sweep", str(path), "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    (search,) = read_sweep(out)["searches"]
    pairs = [search, *search["repeats"]]
    assert [p["dir"] for p in pairs] == [
        "search/01-base",
        "search/01-base-r2",
        "search/01-base-r3",
    ]
    ratios = []
    for pair in pairs:
        assert pair["status"] == "done" and pair["zero_drop_rate"] > 0
        for probe in pair["probes"]:
            assert read_result(out / probe["dir"])["published"] == 400
        ratios.append(
            pair["zero_drop_rate"] / pair["baseline_search"]["zero_drop_rate"]
        )
    assert search["pair_ratios"] == pytest.approx(ratios)
    assert search["ratio_to_baseline"] == pytest.approx(sorted(ratios)[1])
    assert "median of 3 paired searches" in completed.stdout
    # The points are placed at the first search's rate.
    (point,) = read_sweep(out)["points"]
    assert point["rate"] == pytest.approx(0.5 * search["zero_drop_rate"])


def test_existing_sweep_is_not_overwritten_without_resume(tmp_path, wardcast):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").write_text("{}")
    completed = wardcast("sweep", str(tiny_sweep(tmp_path)), "--out", str(out))
    assert completed.returncode == 2
    assert "--resume" in completed.stderr
    assert (out / "sweep.json").read_text() == "{}"


def test_resume_refuses_a_different_sweep_definition(tmp_path, wardcast):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").write_text(
        json.dumps({"schema": "wardcast.sweep/1", "settings": {"axes": {}}})
    )
    completed = wardcast(
        "sweep", str(tiny_sweep(tmp_path)), "--out", str(out), "--resume"
    )
    assert completed.returncode == 2
    assert "different sweep definition" in completed.stderr


def _wait_for_done_point(out: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + FIRST_POINT_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if any(p["status"] == "done" for p in read_sweep(out)["points"]):
                return
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        # The sweep rewrites sweep.json after each point; polling it is the
        # only signal a separate process gives, so poll at a modest pace.
        time.sleep(0.1)
    raise AssertionError("no point finished before the deadline")


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_redoing_finished_points(tmp_path, wardcast):
    out = tmp_path / "out"
    path = tiny_sweep(tmp_path, rate=100, repeats=2)
    process = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "sweep", str(path), "--out", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_done_point(out, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=COMMAND_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "--resume" in stderr
    interrupted = read_sweep(out)
    finished = {p["id"]: p for p in interrupted["points"] if p["status"] == "done"}
    assert finished
    assert any(p["status"] == "pending" for p in interrupted["points"])
    run_ids = {
        point_id: read_result(out / point["dir"])["run_id"]
        for point_id, point in finished.items()
    }

    completed = wardcast("sweep", str(path), "--out", str(out), "--resume")
    assert completed.returncode == 0, completed.stderr
    resumed = read_sweep(out)
    assert [p["status"] for p in resumed["points"]] == ["done"] * 4
    assert resumed["created"] == interrupted["created"]
    for point_id, run_id in run_ids.items():
        point = next(p for p in resumed["points"] if p["id"] == point_id)
        assert read_result(out / point["dir"])["run_id"] == run_id
        assert point["summary"] == finished[point_id]["summary"]


@pytest.mark.slow
def test_subscriber_side_filter_counts_others_as_filtered_not_foreign(
    tmp_path, wardcast
):
    scenario = tmp_path / "filter.toml"
    scenario.write_text(
        'patients = 12\ndays = 2\nrate = 1000\n[[subscriber]]\nrole = "psychiatrist"\n'
        'patients = [1, 10]\nfilter_side = "subscriber"\n'
    )
    out = tmp_path / "run"
    completed = wardcast("run", "--scenario", str(scenario), "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    (subscriber,) = read_result(out)["subscribers"]
    assert subscriber["foreign"] == 0
    assert subscriber["expected"] == 2 * 2 * 2
    assert subscriber["received"] + subscriber["dropped"] == subscriber["expected"]
    assert subscriber["filtered"] + subscriber["received"] <= 12 * 2 * 2
    assert subscriber["filtered"] > 0
    assert subscriber["filter_side"] == "subscriber"


@pytest.mark.slow
def test_run_accepts_a_sweep_file_and_runs_its_base_scenario(tmp_path, wardcast):
    out = tmp_path / "run"
    completed = wardcast(
        "run", "--scenario", str(tiny_sweep(tmp_path)), "--out", str(out)
    )
    assert completed.returncode == 0, completed.stderr
    result = read_result(out)
    assert result["scenario"]["name"] == "tiny"
    assert [s["name"] for s in result["subscribers"]] == ["caregiver-3"]

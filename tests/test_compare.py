"""`wardcast compare`: a real change is flagged, run-to-run noise is not."""

from __future__ import annotations

import json

import pytest

from reports.compare import run_changes, sweep_changes
from reports.data import load

pytestmark = pytest.mark.slow


def _verdicts(output: str) -> dict[str, str]:
    """figure name -> verdict, from the first table of compare's output."""
    verdicts = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) >= 6 and cells[0] != "figure":
            verdicts.setdefault(cells[0], " ".join(cells[5:]))
    return verdicts


def test_compare_flags_drops_from_a_slow_subscriber_as_a_real_change(
    wardcast, steady_pair, slowed_sweep
):
    steady, _ = steady_pair
    completed = wardcast("compare", str(steady), str(slowed_sweep), check=True)
    verdicts = _verdicts(completed.stdout)
    assert verdicts["dropped"] == "CHANGED"
    assert verdicts["received"] == "CHANGED"
    assert verdicts["expected"] == "same"
    assert "changed beyond the run-to-run noise: " in completed.stdout
    changes = dict(sweep_changes(load(steady), load(slowed_sweep)))["patients=50"]
    dropped = next(c for c in changes if c.figure == "dropped")
    assert dropped.a == [0.0, 0.0, 0.0]
    assert dropped.b == [p.summary["dropped"] for p in load(slowed_sweep).done]
    assert min(dropped.b) > 0


def test_compare_of_two_unchanged_sweeps_calls_their_difference_noise(
    wardcast, steady_pair
):
    first, second = steady_pair
    completed = wardcast("compare", str(first), str(second), check=True)
    verdicts = _verdicts(completed.stdout)
    assert verdicts["latency_us.p50"] in ("within noise", "same")
    assert verdicts["received"] == "same"
    assert verdicts["expected"] == "same"
    changes = dict(sweep_changes(load(first), load(second)))["patients=50"]
    p50 = next(c for c in changes if c.figure == "latency_us.p50")
    assert len(p50.a) == len(p50.b) == 3
    assert p50.noise is not None and p50.noise > 0


def test_compare_of_single_runs_says_noise_is_unknown(wardcast, drops_run, clean_run):
    completed = wardcast("compare", str(clean_run), str(drops_run), check=True)
    assert "noise unknown" in completed.stdout
    dropped = json.loads((drops_run / "result.json").read_text())["totals"]["dropped"]
    changes = {c.figure: c for c in run_changes(load(clean_run), load(drops_run))}
    assert changes["dropped"].mean_b == dropped
    assert changes["dropped"].verdict == "noise unknown"


def test_compare_of_a_run_and_a_sweep_is_a_usage_error(wardcast, clean_run, rate_sweep):
    completed = wardcast("compare", str(clean_run), str(rate_sweep))
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "compare two runs or two sweeps" in completed.stderr


def test_compare_of_a_missing_folder_is_a_usage_error(wardcast, clean_run, tmp_path):
    completed = wardcast("compare", str(clean_run), str(tmp_path / "absent"))
    assert completed.returncode == 2
    assert "does not exist" in completed.stderr
    assert "Traceback" not in completed.stderr

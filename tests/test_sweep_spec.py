"""Sweep files: parsing, validation and how axes become scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.roles import Role
from sim.sweepspec import load_sweep, point_label, point_scenario
from sim.verdict import fit_line

SCENARIOS = Path(__file__).resolve().parent.parent / "bench" / "scenarios"

BASE = """
patients = 40
days = 2
rate = 1000
[[subscriber]]
role = "administration"
"""


def write_sweep(folder: Path, sweep: str, base: str = BASE) -> Path:
    path = folder / "sweep.toml"
    path.write_text(base + sweep)
    return path


def test_grid_is_the_cartesian_product_in_file_order(tmp_path):
    spec = load_sweep(
        write_sweep(
            tmp_path,
            "[sweep]\nrepeats = 2\n[sweep.axes]\nsubscribers = [1, 2]\n"
            "hwm = [10, 20, 30]\n",
        )
    )
    grid = spec.grid()
    assert len(grid) == 6
    assert grid[0] == {"subscribers": 1, "hwm": 10}
    assert grid[1] == {"subscribers": 1, "hwm": 20}
    assert grid[-1] == {"subscribers": 2, "hwm": 30}
    assert spec.repeats == 2


@pytest.mark.parametrize(
    ("sweep", "named"),
    [
        ("[sweep]\nrepeat = 2\n[sweep.axes]\nhwm = [1]\n", "'repeat'"),
        ("[sweep]\n[sweep.axes]\nhwms = [1]\n", "'hwms'"),
        ("[sweep]\n[sweep.axes]\nhwm = 5\n", "axis hwm"),
        ("[sweep]\n[sweep.axes]\nhwm = [-1]\n", "hwm"),
        ("[sweep]\n[sweep.axes]\nsubscriptions = [41]\n", "subscriptions"),
        ("[sweep]\n[sweep.axes]\nfilter_side = ['both']\n", "filter_side"),
        ("[sweep]\n[sweep.axes]\nsubscribers = [0]\n", "subscribers"),
        ("[sweep]\nrepeats = 0\n[sweep.axes]\nhwm = [1]\n", "repeats"),
        ("[sweep]\nsearch_repeats = 1.5\n[sweep.axes]\nhwm = [1]\n", "search_repeats"),
        ("[sweep]\n[sweep.axes]\nrate = [1, 2]\nrate_fraction = [1]\n", "rate"),
        ("[sweep]\n", "[sweep.axes]"),
        ("", "[sweep]"),
    ],
)
def test_bad_sweep_file_is_refused_naming_the_key(tmp_path, sweep, named):
    with pytest.raises(ScenarioError) as caught:
        load_sweep(write_sweep(tmp_path, sweep))
    message = str(caught.value)
    assert named in message
    assert "\n" not in message


def test_bad_sweep_is_one_line_and_status_2_from_the_command_line(tmp_path, wardcast):
    path = write_sweep(tmp_path, "[sweep]\n[sweep.axes]\nhwmm = [1]\n")
    completed = wardcast("sweep", str(path), "--out", str(tmp_path / "out"))
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "'hwmm'" in completed.stderr
    assert not (tmp_path / "out").exists()


def test_subscribers_axis_makes_caregivers_of_distinct_patients(tmp_path):
    spec = load_sweep(
        write_sweep(
            tmp_path,
            "[sweep]\nsubscriber_role = 'caregiver'\n[sweep.axes]\nsubscribers = [3]\n",
        )
    )
    scenario = point_scenario(spec, spec.grid()[0])
    assert [s.role for s in scenario.subscribers] == [Role.CAREGIVER] * 3
    assert [s.patients for s in scenario.subscribers] == [(1,), (2,), (3,)]


def test_subscriptions_axis_gives_each_subscriber_that_many_patients(tmp_path):
    spec = load_sweep(
        write_sweep(
            tmp_path,
            "[sweep]\n[sweep.axes]\nsubscribers = [2]\nsubscriptions = [30]\n",
        )
    )
    scenario = point_scenario(spec, spec.grid()[0])
    first, second = scenario.subscribers
    assert len(first.patients) == len(second.patients) == 30
    assert first.patients[0] == 1
    assert second.patients[0] == 31
    assert max(second.patients) <= 40


def test_subscriber_side_filtering_subscribes_to_everything(tmp_path):
    spec = load_sweep(
        write_sweep(
            tmp_path,
            "[sweep]\n[sweep.axes]\nsubscriptions = [5]\n"
            "filter_side = ['publisher', 'subscriber']\n",
        )
    )
    by_publisher, by_subscriber = (
        point_scenario(spec, params).subscribers[0] for params in spec.grid()
    )
    assert len(by_publisher.prefixes()) == 5
    assert by_subscriber.prefixes() == [b""]
    assert by_subscriber.patients == by_publisher.patients


def test_slow_us_slows_only_the_first_subscriber(tmp_path):
    spec = load_sweep(
        write_sweep(
            tmp_path, "[sweep]\n[sweep.axes]\nsubscribers = [3]\nslow_us = [50]\n"
        )
    )
    scenario = point_scenario(spec, spec.grid()[0])
    assert [s.slow_us for s in scenario.subscribers] == [50.0, 0.0, 0.0]


def test_point_label_is_safe_as_a_folder_name():
    label = point_label({"rate": "max", "filter_side": "subscriber", "x": 1.0})
    assert label == "rate=max-filter_side=subscriber-x=1"
    assert "/" not in point_label({"name": "a/b c"})


SWEEP_FILES = [
    p for p in sorted(SCENARIOS.glob("*.toml")) if "[sweep]" in p.read_text()
]


def test_the_shipped_sweeps_cover_every_question():
    names = {path.stem for path in SWEEP_FILES}
    assert names >= {
        "efficiency",
        "patients",
        "subscribers",
        "rate",
        "filtering",
        "slow",
        "message-size",
    }


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.stem)
def test_every_shipped_sweep_file_loads(path):
    spec = load_sweep(path)
    assert spec.grid()


def test_fit_line_recovers_a_line_and_predicts_the_held_out_point():
    fit = fit_line([(1, 5.0), (2, 8.0), (4, 14.0), (8, 26.0)], model="a + b*x")
    assert fit is not None
    assert fit["a"] == pytest.approx(2.0)
    assert fit["b"] == pytest.approx(3.0)
    assert fit["holdout"]["x"] == 8
    assert fit["holdout"]["predicted"] == pytest.approx(26.0)
    assert fit["holdout"]["error_pct"] == pytest.approx(0.0, abs=1e-9)


def test_fit_line_needs_three_distinct_points():
    assert fit_line([(1, 1.0), (2, 2.0), (2, 2.5)], model="a + b*x") is None

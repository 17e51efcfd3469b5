"""Real runs and sweeps the report tests draw from, made once per session.

Every folder here is made by real `wardcast run` processes on loopback; the
tests then check that what the report shows is what those files hold.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_wardcast
from tests.sweep_builder import build_sweep

# An administration subscriber that spends 200 µs on every update cannot keep
# up with a publisher sending as fast as it can: with high-water marks of 10
# most updates are dropped. Small kernel buffers keep the backlog from hiding
# in loopback's socket buffers instead of at the high-water mark.
SLOW_SCENARIO = """
name = "slow-administration"
patients = 100
days = 2
sndbuf = 4096
rcvbuf = 4096
[[subscriber]]
role = "administration"
slow_us = 200
[[subscriber]]
role = "caregiver"
patients = [1]
"""
STEADY_SCENARIO = """
name = "steady"
patients = 50
days = 1
rate = 2000
[[subscriber]]
role = "administration"
"""
# The same hospital with the slow administration subscriber of SLOW_SCENARIO,
# high-water marks of 10 and no pacing: a real change (it drops, and sends far
# faster) that compare must flag. `slow_us` makes a subscriber slow to drain
# its socket, not slow to stamp what it receives, so the change shows in drops
# and rates rather than in latency.
SLOWED_SCENARIO = """
name = "slowed"
patients = 50
days = 1
rate = "max"
hwm = 10
sndbuf = 4096
rcvbuf = 4096
[[subscriber]]
role = "administration"
slow_us = 200
"""
SCALE_SCENARIO = """
name = "scale"
patients = 40
days = 1
rate = "max"
"""


def _scenario(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("scenarios")
    return {
        "slow": _scenario(folder, "slow", SLOW_SCENARIO),
        "steady": _scenario(folder, "steady", STEADY_SCENARIO),
        "slowed": _scenario(folder, "slowed", SLOWED_SCENARIO),
        "scale": _scenario(folder, "scale", SCALE_SCENARIO),
    }


@pytest.fixture(scope="session")
def drops_run(tmp_path_factory: pytest.TempPathFactory, scenarios) -> Path:
    """A real run that drops: a slow subscriber, HWM 10, no pacing."""
    out = tmp_path_factory.mktemp("runs") / "drops"
    run_wardcast(
        "run", "--scenario", str(scenarios["slow"]), "--hwm", "10", "--rate", "max",
        "--no-report", "--out", str(out), check=True,
    )  # fmt: skip
    result = json.loads((out / "result.json").read_text())
    assert result["totals"]["dropped"] > 0, "the slow subscriber was expected to drop"
    return out


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run with nothing to warn about: a small hospital, no pacing."""
    out = tmp_path_factory.mktemp("runs") / "clean"
    run_wardcast(
        "run", "--patients", "25", "--days", "2", "--rate", "max",
        "--out", str(out), check=True,
    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def rate_sweep(tmp_path_factory: pytest.TempPathFactory, scenarios) -> Path:
    """Offered rate against high-water mark, with the slow subscriber."""
    return build_sweep(
        tmp_path_factory.mktemp("sweeps") / "rate",
        name="rate-and-hwm",
        scenario_file=scenarios["slow"],
        axes={"rate": [1000, 50000], "hwm": [10, 1000]},
    )


@pytest.fixture(scope="session")
def scale_sweep(tmp_path_factory: pytest.TempPathFactory, scenarios) -> Path:
    """Patients against subscriber sockets."""
    return build_sweep(
        tmp_path_factory.mktemp("sweeps") / "scale",
        name="patients-and-subscribers",
        scenario_file=scenarios["scale"],
        axes={"patients": [10, 40], "subscribers": [1, 3]},
    )


@pytest.fixture(scope="session")
def filtering_sweep(tmp_path_factory: pytest.TempPathFactory, scenarios) -> Path:
    """Subscriptions per subscriber, one psychiatrist following 1 or 20."""
    return build_sweep(
        tmp_path_factory.mktemp("sweeps") / "filtering",
        name="subscriptions",
        scenario_file=scenarios["scale"],
        axes={"subscriptions": [1, 20]},
        with_baseline=False,
    )


@pytest.fixture(scope="session")
def steady_pair(
    tmp_path_factory: pytest.TempPathFactory, scenarios
) -> tuple[Path, Path]:
    """Two sweeps of one unchanged setting, three repeats each. They are the
    alternate repeats of one six-repeat sweep, so a change of machine load
    while they ran falls on both alike."""
    whole = build_sweep(
        tmp_path_factory.mktemp("sweeps") / "steady",
        name="steady",
        scenario_file=scenarios["steady"],
        axes={"patients": [50]},
        repeats=6,
        with_baseline=False,
    )
    return _split_repeats(whole, "a", 0), _split_repeats(whole, "b", 1)


def _split_repeats(whole: Path, label: str, parity: int) -> Path:
    sweep = json.loads((whole / "sweep.json").read_text())
    sweep["points"] = [p for p in sweep["points"] if p["repeat"] % 2 == parity]
    sweep["repeats"] = len(sweep["points"])
    sweep["name"] = f"steady-{label}"
    folder = whole.parent / f"steady-{label}"
    folder.mkdir()
    for point in sweep["points"]:
        point["dir"] = str(Path("..") / whole.name / point["dir"])
    (folder / "sweep.json").write_text(json.dumps(sweep, indent=1))
    return folder


@pytest.fixture(scope="session")
def slowed_sweep(tmp_path_factory: pytest.TempPathFactory, scenarios) -> Path:
    return build_sweep(
        tmp_path_factory.mktemp("sweeps") / "slowed",
        name="slowed",
        scenario_file=scenarios["slowed"],
        axes={"patients": [50]},
        repeats=3,
        with_baseline=False,
    )

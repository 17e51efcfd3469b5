"""Shared by the fault and namespace tests: skipping where namespaces cannot
be made, removing whatever a test left, and the independent tally."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest

from sim import deploy, netns
from sim.roles import make_subscriber
from sim.scenario import Scenario, resolve

# Longest a fault run may take, start-up on a loaded machine included: the
# runs send for under 3 s and the harness's phase slack is 30 s.
RUN_BOUND_S = 150.0
NAMESPACES_UNAVAILABLE = netns.unavailable_reason()
needs_namespaces = pytest.mark.skipif(
    bool(NAMESPACES_UNAVAILABLE),
    reason=f"cannot make network namespaces here: {NAMESPACES_UNAVAILABLE}",
)
needs_nftables = pytest.mark.skipif(
    shutil.which("nft") is None,
    reason="nftables (`nft`) is not installed; .ci/run installs it",
)


@pytest.fixture
def no_leftovers():
    """Fail a test that leaves namespaces or links behind, and remove them
    whatever happened, so one failure never spills into the next test."""
    if NAMESPACES_UNAVAILABLE:
        yield
        return
    before = netns.leftovers()
    yield
    after = netns.leftovers()
    new = [name for kind in (0, 1) for name in after[kind] if name not in before[kind]]
    for name in new:
        netns.run_ip("netns", "del", name, check=False)
        netns.run_ip("link", "del", name, check=False)
    assert not new, f"the test left behind {new}"


def traced_hospital(**settings: Any) -> Scenario:
    """The reference subscribers, every one tracing what it receives, over a
    run long enough (2.8 s of sending) to strike in the middle of."""
    subscribers = tuple(
        make_subscriber(role, patients, trace=True)
        for role, patients in (
            ("caregiver", [1]),
            ("caregiver", [2]),
            ("caregiver", [3]),
            ("psychiatrist", [8, 9]),
            ("psychiatrist", list(range(10, 15))),
            ("administration", []),
        )
    )
    base = Scenario(name="fault", days=14, day_seconds=0.2, subscribers=subscribers)
    return resolve(base.replace(**settings))


def run(scenario: Scenario) -> dict[str, Any]:
    """Run a scenario and check it ended in bounded time: its own deadlines
    end a run that hangs, well within this bound."""
    started = time.monotonic()
    record = deploy.run(scenario)
    assert time.monotonic() - started < RUN_BOUND_S
    return record


def traced(entry: dict[str, Any], run_id: int | None = None) -> np.ndarray:
    """(run id, patient, sequence) rows a subscriber traced, for one run."""
    rows = np.asarray(entry["trace"], dtype=np.int64).reshape(-1, 3)
    if run_id is not None:
        rows = rows[rows[:, 0] == run_id]
    return rows


def distinct_updates(rows: np.ndarray) -> set[tuple[int, int]]:
    return {(int(p), int(s)) for p, s in rows[:, 1:].tolist()}


def tally_agrees(entry: dict[str, Any], run_id: int) -> None:
    """The subscriber's own counts against its trace of sequence numbers."""
    rows = traced(entry, run_id)
    distinct = distinct_updates(rows)
    duplicates = sum(n - 1 for n in Counter(map(tuple, rows.tolist())).values())
    assert entry["received"] == len(distinct), entry["name"]
    assert entry["duplicates"] == duplicates, entry["name"]
    assert entry["dropped"] == entry["expected"] - len(distinct), entry["name"]


def by_name(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in record["subscribers"]}


def fault_of(record: dict[str, Any], kind: str) -> dict[str, Any]:
    (fault,) = [f for f in record["faults"] if f["kind"] == kind]
    return fault

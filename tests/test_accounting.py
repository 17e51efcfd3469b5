"""Exact per-topic sequence accounting."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.accounting import TopicLedger


def record(ledger: TopicLedger, pairs: list[tuple[int, int]]) -> None:
    patients = np.array([p for p, _ in pairs], dtype=np.uint32)
    seqs = np.array([s for _, s in pairs], dtype=np.uint32)
    ledger.record(patients, seqs)


def test_in_order_updates_are_all_received():
    ledger = TopicLedger(patients=3)
    record(ledger, [(1, 0), (2, 0), (1, 1), (2, 1), (3, 0)])
    assert ledger.received.tolist() == [0, 2, 2, 1]
    assert (ledger.duplicates, ledger.reordered, ledger.gap_events) == (0, 0, 0)


def test_a_gap_filled_late_is_reordering_and_a_repeat_is_a_duplicate():
    ledger = TopicLedger(patients=1)
    record(ledger, [(1, 0), (1, 3)])
    record(ledger, [(1, 1), (1, 1), (1, 4)])
    assert ledger.received.tolist() == [0, 4]
    assert ledger.reordered == 1
    assert ledger.duplicates == 1
    assert ledger.gap_events == 1


def reference_count(arrivals: list[tuple[int, int]]) -> tuple[dict, int]:
    """Distinct updates per topic and repeats, the obvious way."""
    seen: set[tuple[int, int]] = set()
    duplicates = 0
    for pair in arrivals:
        if pair in seen:
            duplicates += 1
        seen.add(pair)
    per_topic: dict[int, int] = {}
    for patient, _ in seen:
        per_topic[patient] = per_topic.get(patient, 0) + 1
    return per_topic, duplicates


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 4), st.integers(0, 30)), min_size=1, max_size=120
    ),
    st.integers(1, 40),
)
def test_ledger_agrees_with_a_plain_count_for_any_arrival_order(arrivals, batch):
    ledger = TopicLedger(patients=4)
    for start in range(0, len(arrivals), batch):
        record(ledger, arrivals[start : start + batch])
    per_topic, duplicates = reference_count(arrivals)
    assert {p: int(n) for p, n in enumerate(ledger.received) if n} == per_topic
    assert ledger.duplicates == duplicates

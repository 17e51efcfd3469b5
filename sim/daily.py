"""Latency per simulated day: a coarse histogram for every day of a run.

A full-precision histogram per day would cost a quarter of a megabyte of slots
each, so each day keeps the same log-linear slots as `sim.histogram` merged in
groups of `GROUP_BITS`: 16 slots per power of two, every value kept within
about 6% of itself, which is plenty to see a trend across days and costs a few
kilobytes a day. Days are the update's simulated day, not the day it arrived.
The exact maximum of each day is kept beside the slots.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from sim.histogram import SLOTS, highest_in_slot, slot_of

# Merging 64 fine slots leaves 16 per power-of-two range (about 6% apart).
GROUP_BITS = 6
GROUPS = SLOTS >> GROUP_BITS
# Days beyond this are not kept per day (they stay in the run's histograms):
# ten simulated years at a few kilobytes a day per subscriber.
MAX_DAYS = 3660


class DayLatency(TypedDict):
    p50: float
    p99: float
    max: float
    count: int


class DailyLatency:
    """Per-day latency counts of one subscriber, mergeable by addition.

    Rows are allocated ahead of need, doubling: a run of many days whose
    batches each reach a new day would otherwise copy every row so far on
    every batch (profiled: a third of a subscriber's time over 2,000 days).
    """

    def __init__(self) -> None:
        self._counts = np.zeros((0, GROUPS), dtype=np.int64)
        self._maxima = np.zeros(0, dtype=np.int64)
        self.days = 0

    @property
    def counts(self) -> np.ndarray:
        """Counts per group of each day seen, one row a day."""
        return self._counts[: self.days]

    @property
    def maxima(self) -> np.ndarray:
        """The exact maximum of each day seen."""
        return self._maxima[: self.days]

    def record(self, days: np.ndarray, values_ns: np.ndarray) -> None:
        """Record each value on its simulated day; negative values count as 0."""
        keep = days < MAX_DAYS
        days, values = days[keep], np.maximum(values_ns[keep], 0)
        if len(days) == 0:
            return
        self._reach(int(days.max()) + 1)
        first = int(days.min())
        # A batch spans a few days at most: count its (day, group) pairs in
        # one bincount over that window rather than one scattered add each.
        cells = (days - first) * GROUPS + (slot_of(values) >> GROUP_BITS)
        window = self.days - first
        counts = np.bincount(cells, minlength=window * GROUPS)
        self._counts[first : self.days] += counts.reshape(window, GROUPS)
        np.maximum.at(self._maxima, days, values)

    def _reach(self, days: int) -> None:
        """Make room for `days` days, growing the rows by doubling."""
        if days > len(self._maxima):
            capacity = max(days, min(MAX_DAYS, 2 * len(self._maxima)))
            counts = np.zeros((capacity, GROUPS), dtype=np.int64)
            counts[: self.days] = self.counts
            maxima = np.zeros(capacity, dtype=np.int64)
            maxima[: self.days] = self.maxima
            self._counts, self._maxima = counts, maxima
        self.days = max(self.days, days)

    def merge(self, other: DailyLatency) -> None:
        self._reach(other.days)
        shared = self._maxima[: other.days]
        self._counts[: other.days] += other.counts
        np.maximum(shared, other.maxima, out=shared)

    def summary(self, scale: float = 1000.0) -> list[DayLatency]:
        """p50, p99 and max of each day, divided by `scale` (µs from ns)."""
        days = []
        for counts, maximum in zip(self.counts, self.maxima, strict=True):
            total = int(counts.sum())
            days.append(
                DayLatency(
                    p50=self._value_at(counts, total, 50.0, maximum) / scale,
                    p99=self._value_at(counts, total, 99.0, maximum) / scale,
                    max=int(maximum) / scale,
                    count=total,
                )
            )
        return days

    @staticmethod
    def _value_at(counts: np.ndarray, total: int, percentile: float, top: int) -> int:
        if total == 0:
            return 0
        rank = max(1, int(np.ceil(percentile / 100.0 * total)))
        group = int(np.searchsorted(np.cumsum(counts), rank))
        last_slot = ((group + 1) << GROUP_BITS) - 1
        return min(int(highest_in_slot(np.array([last_slot]))[0]), int(top))

    def to_dict(self) -> dict:
        """Sparse form: for each day, the groups it used and their counts."""
        return {
            "unit": "ns",
            "group_bits": GROUP_BITS,
            "max": self.maxima.tolist(),
            "groups": [np.flatnonzero(row).tolist() for row in self.counts],
            "counts": [row[row > 0].tolist() for row in self.counts],
        }

    @classmethod
    def from_dict(cls, raw: dict) -> DailyLatency:
        record = cls()
        record._reach(len(raw["max"]))
        record._maxima[:] = np.asarray(raw["max"], dtype=np.int64)
        for day, (groups, counts) in enumerate(
            zip(raw["groups"], raw["counts"], strict=True)
        ):
            record._counts[day, groups] = counts
        return record

"""Latency histograms that keep three significant digits and merge by addition.

The buckets follow HdrHistogram's log-linear layout. Values are integers
(nanoseconds here). Below 2**11 every value has its own slot; above, each
power-of-two range is split into 1,024 equal slots, so any value is stored
within 1/1,024 (0.1%) of itself: three significant digits at every scale, with
a fixed number of slots. Counts are a numpy array, so recording a batch is one
`bincount` and merging two histograms is one addition. The exact count, sum,
minimum and maximum are kept beside the slots.

A value is reported as the highest value its slot can hold (as HdrHistogram
does), never above the exact maximum.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

SUB_BUCKET_BITS = 11  # 2,048 slots per range: three significant digits
_HALF = 1 << (SUB_BUCKET_BITS - 1)
_MASK = (1 << SUB_BUCKET_BITS) - 1
# Values up to 2**42 ns (73 minutes) are kept exactly to 0.1%; anything longer
# is stored in the top slot, with the exact maximum still kept.
MAX_VALUE_BITS = 42
SLOTS = (MAX_VALUE_BITS - SUB_BUCKET_BITS + 2) * _HALF

# Below this many values, adding into the slots one by one beats counting into
# a fresh array of every slot.
_BINCOUNT_FROM = 4096

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


class Percentiles(TypedDict):
    p50: float
    p90: float
    p99: float
    p999: float
    max: float


def slot_of(values: np.ndarray) -> np.ndarray:
    """The slot index of each non-negative integer value."""
    values = np.minimum(np.asarray(values, dtype=np.int64), (1 << MAX_VALUE_BITS) - 1)
    _, exponent = np.frexp((values | _MASK).astype(np.float64))
    shift = exponent.astype(np.int64) - SUB_BUCKET_BITS
    return ((shift + 1) << (SUB_BUCKET_BITS - 1)) + (values >> shift) - _HALF


def highest_in_slot(slots: np.ndarray) -> np.ndarray:
    """The largest value each slot stands for."""
    slots = np.asarray(slots, dtype=np.int64)
    shift = np.maximum((slots >> (SUB_BUCKET_BITS - 1)) - 1, 0)
    sub = np.where(slots < 2 * _HALF, slots, (slots & (_HALF - 1)) + _HALF)
    return ((sub + 1) << shift) - 1


class Histogram:
    """A mergeable histogram of non-negative integer values."""

    def __init__(self) -> None:
        self.counts = np.zeros(SLOTS, dtype=np.int64)
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    def record(self, values: np.ndarray) -> None:
        """Record a batch of values; negative values are recorded as 0."""
        if len(values) == 0:
            return
        values = np.maximum(np.asarray(values, dtype=np.int64), 0)
        if len(values) < _BINCOUNT_FROM:
            np.add.at(self.counts, slot_of(values), 1)
        else:
            self.counts += np.bincount(slot_of(values), minlength=SLOTS)
        low, high = int(values.min()), int(values.max())
        self.min = low if self.count == 0 else min(self.min, low)
        self.max = max(self.max, high)
        self.count += len(values)
        self.total += int(values.sum())

    def merge(self, other: Histogram) -> None:
        if other.count == 0:
            return
        self.counts += other.counts
        self.min = other.min if self.count == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    def value_at(self, percentile: float) -> int:
        """The value below or at which `percentile` percent of values fall."""
        if self.count == 0:
            return 0
        rank = max(1, int(np.ceil(percentile / 100.0 * self.count)))
        slot = int(np.searchsorted(np.cumsum(self.counts), rank))
        return min(int(highest_in_slot(np.array([slot]))[0]), self.max)

    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentiles(self, scale: float = 1.0) -> Percentiles:
        """p50, p90, p99, p99.9 and max, each divided by `scale`."""
        summary = {name: self.value_at(q) / scale for name, q in PERCENTILES.items()}
        summary["max"] = self.max / scale
        return summary  # type: ignore[return-value]

    def percentile_curve(self, scale: float = 1.0) -> tuple[list[float], list[float]]:
        """Every recorded slot as (percentile, value / scale), for plotting."""
        slots = np.flatnonzero(self.counts)
        if len(slots) == 0:
            return [], []
        cumulative = np.cumsum(self.counts[slots]) / self.count * 100.0
        values = np.minimum(highest_in_slot(slots), self.max) / scale
        return cumulative.tolist(), values.tolist()

    def to_dict(self) -> dict:
        slots = np.flatnonzero(self.counts)
        return {
            "unit": "ns",
            "significant_digits": 3,
            "count": self.count,
            "sum": self.total,
            "min": self.min,
            "max": self.max,
            "slots": slots.tolist(),
            "counts": self.counts[slots].tolist(),
        }

    @classmethod
    def from_dict(cls, raw: dict) -> Histogram:
        histogram = cls()
        histogram.counts[np.asarray(raw["slots"], dtype=np.int64)] = raw["counts"]
        histogram.count = int(raw["count"])
        histogram.total = int(raw["sum"])
        histogram.min = int(raw["min"])
        histogram.max = int(raw["max"])
        return histogram

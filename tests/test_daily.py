"""Latency per simulated day: counts kept per day, whatever the batching."""

from __future__ import annotations

import numpy as np

from sim.daily import GROUP_BITS, MAX_DAYS, DailyLatency
from sim.histogram import slot_of


def _plain_counts(days: np.ndarray, values: np.ndarray) -> dict[tuple, int]:
    """(day, group) -> count, one value at a time."""
    counts: dict[tuple, int] = {}
    for day, group in zip(days, slot_of(values) >> GROUP_BITS, strict=True):
        if day < MAX_DAYS:
            counts[int(day), int(group)] = counts.get((int(day), int(group)), 0) + 1
    return counts


def _recorded_counts(daily: DailyLatency) -> dict[tuple, int]:
    days, groups = np.nonzero(daily.counts)
    return {
        (int(d), int(g)): int(daily.counts[d, g])
        for d, g in zip(days, groups, strict=True)
    }


def test_days_reached_batch_by_batch_count_as_one_plain_tally():
    rng = np.random.default_rng(3)
    # Days in arrival order, many batches each reaching new days, as a long
    # run at full speed gives; some values late, one past MAX_DAYS.
    days = np.sort(rng.integers(0, 2_000, size=40_000))
    days[-1] = MAX_DAYS + 5
    values = rng.lognormal(11, 2, size=len(days)).astype(np.int64)
    daily = DailyLatency()
    for start in range(0, len(days), 512):
        daily.record(days[start : start + 512], values[start : start + 512])
    assert daily.days == int(days[:-1].max()) + 1
    assert _recorded_counts(daily) == _plain_counts(days, values)
    for day in (0, 999, 1_999):
        assert daily.maxima[day] == values[:-1][days[:-1] == day].max(initial=0)


def test_merged_days_add_up_and_survive_json():
    rng = np.random.default_rng(4)
    short, long = DailyLatency(), DailyLatency()
    short_days = rng.integers(0, 3, size=500)
    long_days = rng.integers(0, 40, size=500)
    short_values = rng.integers(1, 10**7, size=500)
    long_values = rng.integers(1, 10**7, size=500)
    short.record(short_days, short_values)
    long.record(long_days, long_values)
    short.merge(long)
    again = DailyLatency.from_dict(short.to_dict())
    both_days = np.concatenate([short_days, long_days])
    both_values = np.concatenate([short_values, long_values])
    assert again.days == 40
    assert _recorded_counts(again) == _plain_counts(both_days, both_values)
    assert again.maxima.max() == both_values.max()

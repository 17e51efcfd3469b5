"""Latency histograms: three significant digits, mergeable."""

from __future__ import annotations

import numpy as np
import pytest

from sim.histogram import Histogram


@pytest.fixture
def latencies() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.lognormal(mean=11, sigma=1.5, size=50_000).astype(np.int64)


@pytest.mark.parametrize("percentile", [50, 90, 99, 99.9, 100])
def test_percentiles_are_within_a_tenth_of_a_percent(latencies, percentile):
    histogram = Histogram()
    histogram.record(latencies)
    exact = np.percentile(latencies, percentile, method="inverted_cdf")
    assert histogram.value_at(percentile) == pytest.approx(exact, rel=1e-3)


def test_max_and_count_are_exact(latencies):
    histogram = Histogram()
    histogram.record(latencies[:100])
    histogram.record(latencies[100:])
    assert histogram.count == len(latencies)
    assert histogram.max == latencies.max()
    assert histogram.min == latencies.min()
    assert histogram.mean() == pytest.approx(latencies.mean())


def test_merging_equals_recording_everything_in_one(latencies):
    whole, left, right = Histogram(), Histogram(), Histogram()
    whole.record(latencies)
    left.record(latencies[:20_000])
    right.record(latencies[20_000:])
    left.merge(right)
    assert np.array_equal(left.counts, whole.counts)
    assert left.percentiles() == whole.percentiles()


def test_a_histogram_survives_json(latencies):
    histogram = Histogram()
    histogram.record(latencies)
    again = Histogram.from_dict(histogram.to_dict())
    assert np.array_equal(again.counts, histogram.counts)
    assert again.percentiles() == histogram.percentiles()


def test_negative_values_count_as_zero():
    histogram = Histogram()
    histogram.record(np.array([-5, 10]))
    assert histogram.min == 0
    assert histogram.count == 2


def test_empty_histogram_reports_zeros():
    assert Histogram().percentiles() == {
        "p50": 0,
        "p90": 0,
        "p99": 0,
        "p999": 0,
        "max": 0,
    }

"""The zero-drop rate search, shared by the harness and the raw baseline."""

from __future__ import annotations

import math

import pytest

from sim import baseline
from sim.rates import highest_sustained, sustained


def _capacity_probe(capacity: float, sender_max: float, tried: list[float]):
    """A sender that reaches `sender_max` and a receiver that takes
    `capacity`: what a probe at each rate would see."""

    def probe(rate: float) -> dict:
        tried.append(rate)
        published = min(rate, sender_max)
        return {
            "published_per_s": published,
            "delivered_per_s": min(published, capacity),
            "sustained": published <= capacity
            and (math.isinf(rate) or published >= 0.97 * rate),
        }

    return probe


def test_a_receiver_limited_search_closes_in_on_the_capacity_from_below():
    tried: list[float] = []
    found = highest_sustained(_capacity_probe(300.0, 1000.0, tried), probes=8)
    assert math.isinf(tried[0])
    assert tried[1] == 300.0  # the rate the receiver took at full speed
    assert found == 300.0


def test_a_search_that_starts_above_the_capacity_bisects_towards_it():
    tried: list[float] = []
    # The receiver takes more at full speed than it can hold steadily.
    probe = _capacity_probe(300.0, 1000.0, tried)

    def optimistic(rate: float) -> dict:
        result = probe(rate)
        if math.isinf(rate):
            result["delivered_per_s"] = 700.0
        return result

    found = highest_sustained(optimistic, probes=10)
    assert 0.9 * 300.0 <= found <= 300.0
    assert all(rate > found for rate in tried[1:] if rate > 300.0)


def test_a_sender_limited_search_stops_at_the_first_probe():
    tried: list[float] = []
    found = highest_sustained(_capacity_probe(5000.0, 1000.0, tried), probes=8)
    assert found == 1000.0 and len(tried) == 1


def test_the_rate_found_is_what_a_sustained_probe_sent_not_what_it_was_asked():
    # A sender 2% short of every rate it is asked for, within the tolerance
    # that still counts as sustained, and a receiver that takes 300 a second.
    def probe(rate: float) -> dict:
        published = 1000.0 if math.isinf(rate) else 0.98 * rate
        return {
            "published_per_s": published,
            "delivered_per_s": min(published, 300.0),
            "sustained": published <= 300.0
            and (math.isinf(rate) or published >= 0.97 * rate),
        }

    found = highest_sustained(probe, probes=3)  # max, then 300 (sends 294)
    assert found == pytest.approx(0.98 * 300.0)


def test_a_probe_that_fell_behind_its_rate_is_not_sustained():
    assert sustained(1000.0, published_per_s=990.0, dropped=0)
    assert not sustained(1000.0, published_per_s=900.0, dropped=0)
    assert not sustained(1000.0, published_per_s=1000.0, dropped=1)
    assert not sustained(math.inf, published_per_s=1.0, dropped=0, clean=False)


@pytest.mark.slow
def test_raw_pyzmq_zero_drop_search_over_real_sockets():
    """Each probe is a real publisher and subscriber process on loopback; the
    rate found is one a probe sent with nothing dropped."""
    found = baseline.zero_drop_search(368, frames=20_000, hwm=10_000, probes=5)
    probes = found["probes"]
    assert len(probes) >= 1 and probes[0]["rate"] == "max"
    for probe in probes:
        assert 0 <= probe["dropped"] <= 20_000
        assert probe["sustained"] == (
            probe["dropped"] == 0
            and (
                probe["rate"] == "max"
                or probe["published_per_s"] >= 0.97 * probe["rate"]
            )
        )
    held = [p for p in probes if p["sustained"]]
    assert held, probes  # 20,000 frames: some rate on the way down loses none
    best = max(
        p["published_per_s"]
        if p["rate"] == "max"
        else min(p["rate"], p["published_per_s"])
        for p in held
    )
    assert found["zero_drop_rate"] == pytest.approx(best, abs=0.1)

"""The verdict: where a sweep holds, what breaks first, and the fitted model."""

from __future__ import annotations

import pytest

from sim.verdict import describe, judge


def summary(*, dropped: int = 0, p99_us: float = 500.0, cpu_us: float = 5.0) -> dict:
    return {
        "message_bytes": 368,
        "published": 1000,
        "received": 1000 - dropped,
        "dropped": dropped,
        "latency_us": {"p50": 100.0, "p90": 200.0, "p99": p99_us, "p999": 0, "max": 0},
        "publisher_cpu_us_per_message": cpu_us,
        "publisher_cpu_us_per_delivered": cpu_us,
        "subscriber_cpu_us_per_message": 2.0,
        "max_rss_bytes_max": 40e6,
    }


def document(points: list[dict]) -> dict:
    return {
        "name": "synthetic",
        "axes": {"subscribers": sorted({p["params"]["subscribers"] for p in points})},
        "settings": {"latency_budget_ms": 100.0},
        "base_scenario": {"patients": 25, "updates_per_day": 2},
        "baseline": None,
        "baselines": {},
        "searches": [],
        "points": points,
    }


def point(subscribers: int, status: str = "done", **figures) -> dict:
    return {
        "id": f"p{subscribers}",
        "params": {"subscribers": subscribers},
        "status": status,
        "problems": [] if status == "done" else ["the publisher died"],
        "summary": summary(**figures) if status == "done" else None,
    }


def test_first_drops_mark_where_the_design_stops_holding():
    verdict = judge(
        document(
            [point(1, cpu_us=5), point(4, cpu_us=8), point(16, dropped=3, cpu_us=20)]
        )
    )
    limit = verdict["limits"]["subscribers"]
    assert limit["holds_up_to"] == 4
    assert limit["breaks_at"] == 16
    assert limit["first_failure"].startswith("drops")


def test_latency_beyond_the_budget_breaks_the_design_too():
    verdict = judge(document([point(1), point(2, p99_us=250_000.0)]))
    assert verdict["limits"]["subscribers"]["first_failure"].startswith("latency")


def test_a_failed_run_is_named_as_the_failure():
    verdict = judge(document([point(1), point(2, status="failed")]))
    failure = verdict["limits"]["subscribers"]["first_failure"]
    assert failure == "failed: the publisher died"


def test_cost_fit_predicts_the_held_out_point_and_reports_its_error():
    points = [point(n, cpu_us=2.0 + 0.5 * n) for n in (1, 2, 4, 8)]
    points[-1]["summary"]["publisher_cpu_us_per_message"] = 7.0  # line says 6
    verdict = judge(document(points))
    (fit,) = [
        f
        for f in verdict["fits"]
        if f["y"] == "publisher_cpu_us_per_message" and f["x"] == "subscribers"
    ]
    assert fit["holdout"]["predicted"] == pytest.approx(6.0)
    assert fit["holdout"]["error_pct"] == pytest.approx(100 / 7)
    assert "holds at every value" in describe({**document(points), "verdict": verdict})

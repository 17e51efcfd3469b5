"""Subscriptions at the scale the filtering sweep needs."""

from __future__ import annotations

import pytest

from tests.conftest import read_result


@pytest.mark.slow
def test_ten_thousand_subscriptions_each_reach_the_publisher(tmp_path, wardcast):
    """Two psychiatrists of 10,000 patients: 20,000 subscriptions must all
    pass the readiness barrier (it once took minutes, counting them
    quadratically) and every update must arrive at both."""
    scenario = tmp_path / "many.toml"
    scenario.write_text(
        "patients = 10000\ndays = 1\nrate = 20000\nhwm = 0\n[[subscriber]]\n"
        'role = "psychiatrist"\npatients = "1-10000"\ncount = 2\n'
    )
    out = tmp_path / "run"
    completed = wardcast("run", "--scenario", str(scenario), "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    result = read_result(out)
    assert [s["topics"] for s in result["subscribers"]] == [10_000, 10_000]
    assert result["totals"]["expected"] == 2 * 20_000
    assert result["totals"]["received"] == 2 * 20_000
    assert result["totals"]["foreign"] == 0

"""The search for the highest rate a scenario sustains with no drops.

A rate is sustained when the run completes cleanly, every subscriber receives
every update it expected (exact accounting, no estimate), and the publisher
kept to the rate it was asked for. How the probes are chosen is in
`sim.rates`, which the raw-pyzmq baseline searches with too.

Every probe is a full harness run, kept on disk and in sweep.json; a resumed
sweep replays the probes it already has instead of running them again, so the
search ends where it would have ended uninterrupted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim import result as results
from sim.harness import Harness
from sim.rates import highest_sustained, sustained
from sim.scenario import Scenario

logger = logging.getLogger(__name__)


class RateSearch:
    """Finds the zero-drop rate of `scenario`, recording into `record`."""

    def __init__(
        self,
        record: dict[str, Any],
        *,
        scenario: Scenario,
        probes: int,
        out: Path,
        log_level: str,
        on_probe: Callable[[], None],
    ) -> None:
        self.record = record
        self.scenario = scenario
        self.probes = probes
        self.out = out
        self.log_level = log_level
        self.on_probe = on_probe

    @property
    def zero_drop_rate(self) -> float:
        return self.record.get("zero_drop_rate", 0.0)

    def run(self) -> float:
        return self._conclude(highest_sustained(self._probe, self.probes))

    def _conclude(self, rate: float) -> float:
        self.record["zero_drop_rate"] = rate
        self.record["status"] = "done"
        logger.info("zero-drop rate of %s: %.0f/s", self.record["params"], rate)
        return rate

    def _probe(self, rate: float) -> dict[str, Any]:
        label = "max" if math.isinf(rate) else round(rate, 1)
        for probe in self.record["probes"]:
            if probe["rate"] == label:
                return probe
        folder = f"{self.record['dir']}/{len(self.record['probes']) + 1:02d}-{label}"
        outcome = Harness(
            self.scenario.replace(rate=rate), log_level=self.log_level
        ).run()
        if outcome.interrupted:
            raise KeyboardInterrupt
        result = results.build(outcome)
        results.write(result, self.out / folder)
        published_per_s = result["throughput"]["published_per_s"]
        probe = {
            "rate": label,
            "published_per_s": published_per_s,
            "delivered_per_s": result["throughput"]["delivered_per_s"],
            "dropped": result["totals"]["dropped"],
            "sustained": sustained(
                rate,
                published_per_s=published_per_s,
                dropped=result["totals"]["dropped"],
                clean=result["status"] == "complete" and result["passed"],
            ),
            "dir": folder,
        }
        self.record["probes"].append(probe)
        self.on_probe()
        logger.info("probe at %s/s: %s", label, probe)
        return probe

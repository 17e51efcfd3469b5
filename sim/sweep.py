"""`wardcast sweep`: run a grid of scenarios, beside a raw-pyzmq baseline.

A sweep runs every point of its grid (see `sim.sweepspec`) `repeats` times,
each a full harness run whose `result.json` lands in
`OUT/points/NNN-axis=value-...-rK/`, and gathers them in `OUT/sweep.json`,
rewritten atomically after every run. A point is marked done only once its
result is on disk, so an interrupted sweep loses at most the run in flight;
`--resume` reads sweep.json back and runs only the points still pending.

sweep.json, schema "wardcast.sweep/1":

    name, scenario_file, created, updated, machine
    axes              {axis: [values]}, in file order
    repeats, warmup, settings (the whole [sweep] table as used)
    base_scenario     the resolved scenario every point starts from
    baseline          raw pyzmq at the base message size (sim.baseline):
                      message_bytes, throughput_per_s, throughput_dropped,
                      latency_us {p50, p90, p99, p999, max},
                      latency_rate_per_s, ...
    baselines         {message_bytes: baseline} for every size the grid uses
    baseline_after    the base-size baseline again at the end: how far the
                      machine drifted during the sweep
    searches[]        for rate_fraction sweeps, per combination of the other
                      axes: params, probes[] {rate, published_per_s,
                      delivered_per_s, dropped, sustained, dir},
                      zero_drop_rate, status, baseline_search (raw pyzmq's
                      zero-drop rate, searched the same way just after:
                      zero_drop_rate, hwm, frames, probes[]),
                      repeats[] (with search_repeats > 1: more such pairs,
                      alternating which of the two runs first; rate_fraction
                      points keep the first search's rate), pair_ratios
                      (each pair's harness rate over raw pyzmq's) and
                      ratio_to_baseline, the median of pair_ratios
    points[]          id, params {axis: value}, repeat (1-based), dir
                      (relative to OUT), status "done" | "failed" | "pending",
                      problems[], rate (the rate asked for, when searched),
                      summary {published, published_per_s, delivered_per_s,
                      expected, received, dropped, foreign, filtered,
                      latency_us, lag_us, publisher_cpu_us_per_message,
                      publisher_cpu_us_per_delivered,
                      subscriber_cpu_us_per_message, wire_bytes, rate,
                      wire_bytes_per_published, max_rss_bytes_max,
                      subscriber_processes, slow_dropped, others_dropped,
                      others_latency_p99_us, ratio_to_baseline
                      {delivered_per_s, latency_p50, latency_p99}}
    verdict           see sim.verdict

A point is "done" when its run completed, whatever it measured (drops are
measurements); "failed" when the run could not complete or a subscriber saw
foreign or malformed updates, with the reasons in `problems`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sim import baseline as raw_baseline
from sim import result as results
from sim.errors import ScenarioError
from sim.harness import Harness
from sim.ratesearch import RateSearch
from sim.scenario import Scenario
from sim.summary import summarise
from sim.sweepspec import RATE_FRACTION, SweepSpec, point_label, point_scenario

logger = logging.getLogger(__name__)

SCHEMA = "wardcast.sweep/1"
DONE, FAILED, PENDING = "done", "failed", "pending"


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep, after sweep.json was saved."""


class Sweep:
    """One sweep's state on disk, run point by point."""

    def __init__(
        self, spec: SweepSpec, out: Path, *, resume: bool, log_level: str = "WARNING"
    ) -> None:
        self.spec = spec
        self.out = out
        self.log_level = log_level
        self.path = out / "sweep.json"
        self.document = self._open(resume)

    # -- sweep.json ---------------------------------------------------------

    def _open(self, resume: bool) -> dict[str, Any]:
        fresh = self._fresh_document()
        if not self.path.exists():
            self.out.mkdir(parents=True, exist_ok=True)
            return fresh
        if not resume:
            raise ScenarioError(
                f"{self.out} already holds a sweep.json: pass --resume to finish it,"
                " or choose another --out"
            )
        try:
            stored = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ScenarioError(f"cannot resume from {self.path}: {error}") from None
        if stored.get("schema") != SCHEMA or stored.get("settings") != json.loads(
            json.dumps(fresh["settings"])
        ):
            raise ScenarioError(
                f"{self.path} was written by a different sweep definition: resume"
                " with the same file, or choose another --out"
            )
        for point in stored["points"]:
            if (
                point["status"] == DONE
                and not (self.out / point["dir"] / "result.json").exists()
            ):
                point["status"] = PENDING
        return stored

    def _fresh_document(self) -> dict[str, Any]:
        spec = self.spec
        points = []
        for index, params in enumerate(spec.grid()):
            for repeat in range(1, spec.repeats + 1):
                number = index * spec.repeats + repeat
                label = f"{number:03d}-{point_label(params)}-r{repeat}"
                points.append(
                    {
                        "id": label,
                        "params": params,
                        "repeat": repeat,
                        "dir": f"points/{label}",
                        "status": PENDING,
                        "problems": [],
                        "summary": None,
                    }
                )
        now = _now()
        return {
            "schema": SCHEMA,
            "name": spec.name,
            "scenario_file": spec.source,
            "created": now,
            "updated": now,
            "machine": results.machine(),
            "axes": spec.axes,
            "repeats": spec.repeats,
            "warmup": spec.warmup,
            "settings": spec.settings(),
            "base_scenario": point_scenario(
                spec, {}, rate=1.0 if spec.searches_rate else None
            ).to_dict(),
            "baseline": None,
            "baselines": {},
            "baseline_after": None,
            "searches": [],
            "points": points,
            "verdict": None,
        }

    def save(self) -> None:
        self.document["updated"] = _now()
        results.write_json_atomically(self.path, self.document)

    # -- running ------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run every pending point; returns sweep.json's contents."""
        pending = [p for p in self.document["points"] if p["status"] == PENDING]
        try:
            self._measure_baselines()
            self._warm_up(pending)
            with tqdm(
                total=len(self.document["points"]),
                initial=len(self.document["points"]) - len(pending),
                desc=self.spec.name,
                unit="run",
                dynamic_ncols=True,
            ) as progress:
                for point in pending:
                    progress.set_postfix_str(point["id"][:40])
                    self._run_point(point)
                    self.save()
                    progress.update()
            self._finish()
        except KeyboardInterrupt:
            self.save()
            raise SweepInterrupted() from None
        return self.document

    def _measure_baselines(self) -> None:
        sizes = {self.document["base_scenario"]["message_bytes"]}
        for params in self.spec.grid():
            rate = 1.0 if self.spec.searches_rate else None
            sizes.add(point_scenario(self.spec, params, rate=rate).message_bytes)
        baselines = self.document["baselines"]
        for size in sorted(sizes):
            if str(size) not in baselines:
                logger.info("measuring the raw-pyzmq baseline at %d bytes", size)
                baselines[str(size)] = self._baseline(size)
                self.save()
        base_size = str(self.document["base_scenario"]["message_bytes"])
        self.document["baseline"] = baselines[base_size]

    def _baseline(self, size: int) -> dict[str, Any]:
        return raw_baseline.measure(
            size,
            throughput_frames=self.spec.baseline_frames,
            latency_frames=self.spec.baseline_latency_frames,
        ).to_dict()

    def _warm_up(self, pending: list[dict[str, Any]]) -> None:
        if not pending or not self.spec.warmup:
            return
        scenario = self._scenario_of(pending[0])
        for number in range(self.spec.warmup):
            logger.info("warm-up run %d of %d", number + 1, self.spec.warmup)
            outcome = Harness(scenario, log_level=self.log_level).run()
            if outcome.interrupted:
                raise KeyboardInterrupt

    def _scenario_of(self, point: dict[str, Any]) -> Scenario:
        params = point["params"]
        if RATE_FRACTION not in params:
            return point_scenario(self.spec, params)
        zero_drop = self._search(params).zero_drop_rate
        rate = params[RATE_FRACTION] * zero_drop if zero_drop else None
        if rate is None:
            raise _PointFailed("no rate sustained zero drops in the search")
        point["rate"] = rate
        return point_scenario(self.spec, params, rate=rate)

    def _search(self, params: dict[str, Any]) -> RateSearch:
        """The zero-drop search for `params` (rate_fraction aside), run or
        replayed, with raw pyzmq's searched beside it: `search_repeats` pairs
        in all, whose median ratio is the harness-efficiency figure."""
        others = {k: v for k, v in params.items() if k != RATE_FRACTION}
        record = self._search_record(others)
        search = self._harness_search(record)
        self._raw_search(record, search.scenario)
        repeats = record.setdefault("repeats", [])
        for number in range(2, self.spec.search_repeats + 1):
            if len(repeats) < number - 1:
                repeats.append(_new_search(others, f"{record['dir']}-r{number}"))
            pair = repeats[number - 2]
            # Alternate which goes first, so a machine that slows down or
            # speeds up during a pair favours neither side.
            if number % 2 == 0:
                self._raw_search(pair, search.scenario)
                self._harness_search(pair)
            else:
                self._harness_search(pair)
                self._raw_search(pair, search.scenario)
        _pair_ratios(record)
        return search

    def _search_record(self, others: dict[str, Any]) -> dict[str, Any]:
        for stored in self.document["searches"]:
            if stored["params"] == others:
                return stored
        number = len(self.document["searches"]) + 1
        record = _new_search(
            others, f"search/{number:02d}-{point_label(others) or 'base'}"
        )
        self.document["searches"].append(record)
        return record

    def _harness_search(self, record: dict[str, Any]) -> RateSearch:
        search = RateSearch(
            record,
            scenario=point_scenario(
                self.spec, {**record["params"], RATE_FRACTION: 1.0}, rate=1.0
            ),
            probes=self.spec.search_probes,
            out=self.out,
            log_level=self.log_level,
            on_probe=self.save,
        )
        if record["status"] != DONE:
            search.run()
            self.save()
        return search

    def _raw_search(self, record: dict[str, Any], scenario: Scenario) -> None:
        if "baseline_search" in record:
            return
        logger.info("searching raw pyzmq's zero-drop rate for %s", record["dir"])
        record["baseline_search"] = raw_baseline.zero_drop_search(
            scenario.message_bytes,
            frames=scenario.messages,
            hwm=scenario.hwm,
            probes=self.spec.search_probes,
        )
        self.save()

    def _run_point(self, point: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            scenario = self._scenario_of(point)
        except _PointFailed as reason:
            point.update(status=FAILED, problems=[str(reason)])
            return
        outcome = Harness(scenario, log_level=self.log_level).run()
        if outcome.interrupted:
            raise KeyboardInterrupt
        record = results.build(outcome)
        results.write(record, self.out / point["dir"])
        size = str(scenario.message_bytes)
        point["summary"] = summarise(record, self.document["baselines"].get(size))
        complete = record["status"] == "complete" and record["passed"]
        point["status"] = DONE if complete else FAILED
        point["problems"] = record["problems"]
        point["seconds"] = round(time.monotonic() - started, 2)
        logger.info("%s: %s", point["id"], point["status"])

    def _finish(self) -> None:
        from sim.verdict import judge

        size = self.document["base_scenario"]["message_bytes"]
        if self.document["baseline_after"] is None:
            self.document["baseline_after"] = self._baseline(size)
        self.document["verdict"] = judge(self.document)
        self.save()


def _new_search(params: dict[str, Any], folder: str) -> dict[str, Any]:
    return {"params": params, "dir": folder, "probes": [], "status": PENDING}


def _pair_ratios(record: dict[str, Any]) -> None:
    """Each pair's harness rate over raw pyzmq's; `ratio_to_baseline` is their
    median (a single pair's own ratio when the search ran once)."""
    ratios = []
    for pair in [record, *record.get("repeats", [])]:
        raw = pair.get("baseline_search", {}).get("zero_drop_rate")
        if raw and pair.get("status") == DONE:
            ratios.append(pair["zero_drop_rate"] / raw)
    record["pair_ratios"] = ratios
    record["ratio_to_baseline"] = statistics.median(ratios) if ratios else None


class _PointFailed(Exception):
    """A point that cannot run, with the reason."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

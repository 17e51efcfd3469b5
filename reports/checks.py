"""Why a result might not mean what it seems to: the report's warnings.

Drops are measurements, not failures, but a reviewer must see them before any
latency figure: latency over the updates that arrived says nothing about the
ones that did not. Foreign or malformed updates and silent subscribers fail a
run outright. A publisher far behind its schedule means the offered load was
never offered, so the run measured the publisher, not the subscribers.
"""

from __future__ import annotations

from dataclasses import dataclass

from reports.data import RunResult, Sweep
from reports.figures import Skip
from reports.run_charts import drops_per_day

# Lag behind schedule above this is not jitter: 10 ms is two orders of
# magnitude above loopback latency on the reference machine (about 56 µs at
# p50). Most updates that late: saturated; only the tail: stalls.
SATURATED_LAG_US = 10_000.0


@dataclass(frozen=True)
class Caveat:
    """One reason to distrust a figure; `severe` ones fail the run."""

    text: str
    severe: bool = False


def run_warnings(run: RunResult) -> list[Caveat]:
    warnings = [Caveat(problem, severe=True) for problem in run.problems]
    if run.status != "complete":
        warnings.append(
            Caveat(f"the run is {run.status}: its figures are partial", severe=True)
        )
    warnings += _drops(run)
    warnings += _publisher(run)
    warnings += _clocks(run)
    for key, label in (("duplicates", "duplicated"), ("stale", "stale")):
        count = run.totals.get(key, 0)
        if count:
            warnings.append(Caveat(f"{count:,} {label} updates were received"))
    return warnings


def _drops(run: RunResult) -> list[Caveat]:
    dropped = run.totals.get("dropped", 0)
    if not dropped:
        return []
    expected = run.totals.get("expected", 0)
    losers = [s for s in run.reported if s.dropped]
    share = dropped / expected * 100 if expected else 0.0
    warnings = [
        Caveat(
            f"{dropped:,} updates dropped ({share:.2f}% of {expected:,} expected)"
            f" at {len(losers)} of {len(run.reported)} subscribers: latency"
            " figures cover only the updates that arrived"
        )
    ]
    try:
        per_day, _ = drops_per_day(run)
    except Skip:
        return warnings
    if len(per_day) and per_day[0]:
        warnings.append(
            Caveat(
                f"{int(per_day[0]):,} drops during warm-up (the first simulated"
                " day): start-up effects are mixed into the result"
            )
        )
    return warnings


def _publisher(run: RunResult) -> list[Caveat]:
    warnings = []
    if run.publisher.aborted:
        warnings.append(
            Caveat("the publisher aborted before its schedule ended", severe=True)
        )
    lag = run.publisher.lag_us
    if run.scenario.get("rate") == "max":
        return warnings  # no schedule, so no lag behind it
    if lag["p50"] > SATURATED_LAG_US:
        warnings.append(
            Caveat(
                f"saturated publisher: half its updates went out more than"
                f" {lag['p50']:,.0f} µs behind schedule (max {lag['max']:,.0f} µs):"
                " the offered rate was not offered, and latency here is mostly"
                " the publisher's queue"
            )
        )
    elif lag["p99"] > SATURATED_LAG_US:
        warnings.append(
            Caveat(
                f"publisher behind schedule at times: p99 lag {lag['p99']:,.0f} µs"
                f" (p50 {lag['p50']:,.0f} µs): short stalls, such as other"
                " processes taking the CPU, are counted in the latency tail"
            )
        )
    return warnings


def _clocks(run: RunResult) -> list[Caveat]:
    host = run.machine.get("hostname")
    others = sorted({s.host for s in run.reported if s.host and s.host != host})
    negative = sum(s.negative_latency for s in run.reported)
    warnings = []
    if others:
        warnings.append(
            Caveat(
                f"subscribers ran on other hosts ({', '.join(others)}) than the"
                f" publisher ({host}): one-way latency subtracts two different"
                " clocks and is only as good as their synchronisation"
            )
        )
    if negative:
        warnings.append(
            Caveat(
                f"{negative:,} updates arrived before they were sent by the clock:"
                " the clocks of sender and receiver disagree"
            )
        )
    return warnings


def sweep_warnings(sweep: Sweep) -> list[Caveat]:
    warnings = []
    unfinished = [p for p in sweep.points if p.status != "done"]
    if unfinished:
        states = sorted({p.status for p in unfinished})
        warnings.append(
            Caveat(
                f"{len(unfinished)} of {len(sweep.points)} points are not done"
                f" ({', '.join(states)}): charts show only finished points",
                severe="failed" in states,
            )
        )
    missing = [p.id for p in sweep.done if p.result is None]
    if missing:
        warnings.append(
            Caveat(
                f"{len(missing)} finished points have no result.json on disk"
                f" ({', '.join(missing[:5])}): only their sweep.json summary is used"
            )
        )
    if sweep.baseline is None:
        warnings.append(Caveat("no baseline in this sweep: no ratio can be given"))
    warnings += _point_warnings(sweep)
    return warnings


def _point_warnings(sweep: Sweep) -> list[Caveat]:
    """Each point's own warnings, gathered by kind so a grid stays readable."""
    by_text: dict[str, list[str]] = {}
    severe: set[str] = set()
    for point in sweep.done:
        dropped = int(point.summary.get("dropped", 0) or 0)
        foreign = int(point.summary.get("foreign", 0) or 0)
        kinds = []
        if point.result is not None:
            for warning in run_warnings(point.result):
                kind = _kind(warning.text)
                kinds.append(kind)
                if warning.severe:
                    severe.add(kind)
        else:
            if dropped:
                kinds.append("updates dropped")
            if foreign:
                kinds.append("foreign updates received")
                severe.add("foreign updates received")
        for kind in kinds:
            by_text.setdefault(kind, []).append(point.id)
    return [
        Caveat(
            f"{kind} in {len(ids)} points ({', '.join(ids[:6])}"
            f"{', …' if len(ids) > 6 else ''})",
            severe=kind in severe,
        )
        for kind, ids in by_text.items()
    ]


def _kind(text: str) -> str:
    """The kind of a run warning without its figures, to group points by it."""
    for kind in (
        "drops during warm-up",
        "updates dropped",
        "saturated publisher",
        "publisher behind schedule",
        "foreign updates",
        "malformed frames",
        "did not report",
        "aborted",
        "other hosts",
        "arrived before they were sent",
        "duplicated",
        "stale",
        "incomplete",
    ):
        if kind in text:
            return kind
    return text

"""The verdict of a sweep: where the design holds, what breaks first, and a
fitted cost model checked against a point it was not fitted on.

A point *holds* when its run completed cleanly, nothing was dropped and its
p99 latency is within the sweep's `latency_budget_ms`. Points above the
zero-drop rate (rate_fraction > 1) are run to show what happens past the
limit, so they are left out when saying where the design holds.

Fits are straight lines, y = a + b·x, by least squares over the medians of
the repeats, one per numeric axis and cost (publisher CPU per message against
subscribers, subscriptions, patients, message size; latency against load as
a + b/(1 - load), load being the rate asked over the raw-pyzmq throughput).
Each fit is done twice: on every point, and on every point but the one with
the largest x, which it must then predict; the relative error of that
prediction is the honest measure of the model, since extrapolating to larger
machines is what it is for.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

import numpy as np

from sim.sweepspec import RATE_FRACTION, params_text

NUMERIC_AXES = ("subscribers", "subscriptions", "patients", "message_bytes", "hwm")
COSTS = (
    "publisher_cpu_us_per_message",
    "publisher_cpu_us_per_delivered",
    "subscriber_cpu_us_per_message",
    "max_rss_bytes_max",
)
# The terminal shows the fits the verdict rests on; sweep.json has them all.
PRINTED_FITS = ("publisher_cpu_us_per_message", "latency_p50_us", "max_rss_bytes_max")
MAX_PRINTED_FITS = 12
# A fit needs this many distinct x values: two to fit a line, one held out.
MIN_FIT_POINTS = 3
# The hospital's own demand: every patient twice a simulated day of 86,400 s.
SECONDS_PER_DAY = 86_400
# Extrapolate each fit to ten times the largest value measured: far enough to
# say something about a bigger deployment, near enough that a line may hold.
EXTRAPOLATION_FACTOR = 10


def judge(document: dict[str, Any]) -> dict[str, Any]:
    """The verdict of a sweep document (sweep.json's contents)."""
    budget_us = document["settings"]["latency_budget_ms"] * 1000.0
    groups = _groups(document["points"])
    verdict: dict[str, Any] = {
        "criterion": (
            f"a point holds when it completes with no drops, no foreign updates and"
            f" p99 latency within {budget_us / 1000:.0f} ms"
        ),
        "limits": _limits(groups, document["axes"], budget_us),
        "fits": _fits(groups, document["axes"], document.get("baselines", {})),
        "searches": [
            {
                "params": s["params"],
                "zero_drop_rate": s.get("zero_drop_rate"),
                "baseline_zero_drop_rate": s.get("baseline_search", {}).get(
                    "zero_drop_rate"
                ),
                "ratio_to_baseline": s.get("ratio_to_baseline"),
                "pair_ratios": s.get("pair_ratios", []),
            }
            for s in document.get("searches", [])
        ],
        "baseline_drift": _drift(document),
    }
    if "slow_us" in document["axes"]:
        verdict["slow_subscriber"] = _slow_subscriber(groups)
    verdict["prediction"] = _prediction(document, verdict)
    verdict["statements"] = statements(verdict)
    return verdict


def _groups(points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Points of the same params, repeats merged by median."""
    by_params: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for point in points:
        by_params[repr(sorted(point["params"].items()))].append(point)
    groups = {}
    for key, members in by_params.items():
        done = [p for p in members if p["status"] == "done" and p["summary"]]
        groups[key] = {
            "params": members[0]["params"],
            "rate": members[0].get("rate"),
            "failed": len(done) < len(members),
            "summaries": [p["summary"] for p in done],
            "problems": [q for p in members for q in p.get("problems", [])],
        }
    return groups


def _median(group: dict[str, Any], key: str) -> float | None:
    values = [s[key] for s in group["summaries"] if s.get(key) is not None]
    return statistics.median(values) if values else None


def _breaks(group: dict[str, Any], budget_us: float) -> str | None:
    """What went wrong at a point, if anything: failed, drops or latency."""
    if group["failed"] or not group["summaries"]:
        return "failed: " + "; ".join(group["problems"][:2])
    if any(s["dropped"] for s in group["summaries"]):
        return f"drops ({max(s['dropped'] for s in group['summaries']):,})"
    p99 = max(s["latency_us"]["p99"] for s in group["summaries"])
    if p99 > budget_us:
        return f"latency (p99 {p99 / 1000:,.0f} ms)"
    return None


def _judged(group: dict[str, Any], axis: str) -> bool:
    """Whether a point says anything about where the design holds: not one
    run past the zero-drop rate, nor one run as fast as possible (those
    measure cost and capacity, and drop by design), unless that is the axis."""
    if axis == RATE_FRACTION or axis == "rate":
        return True
    if group["params"].get(RATE_FRACTION, 0) > 1:
        return False
    return not any(s.get("rate") == "max" for s in group["summaries"])


def _limits(
    groups: dict[str, dict[str, Any]], axes: dict[str, list], budget_us: float
) -> dict[str, Any]:
    """Per axis: where it holds over every other setting together, and
    separately for each combination of the other axes (`by_slice`)."""
    limits = {}
    for axis, values in axes.items():
        judged = [g for g in groups.values() if _judged(g, axis)]
        limits[axis] = _limit(judged, axis, values, budget_us)
        slices = _slices({id(g): g for g in judged}, axis)
        if len(slices) > 1:
            limits[axis]["by_slice"] = [
                {
                    "others": {
                        k: v for k, v in members[0]["params"].items() if k != axis
                    },
                    **_limit(members, axis, values, budget_us),
                }
                for members in slices.values()
            ]
    return limits


def _limit(
    members: list[dict[str, Any]], axis: str, values: list, budget_us: float
) -> dict[str, Any]:
    holds_up_to, breaks_at, first_failure = None, None, None
    holds_at = []
    for value in values:
        at_value = [g for g in members if g["params"][axis] == value]
        failures = [f for g in at_value if (f := _breaks(g, budget_us))]
        if at_value and not failures:
            holds_at.append(value)
        if failures and breaks_at is None:
            breaks_at, first_failure = value, failures[0]
        elif at_value and not failures and breaks_at is None:
            holds_up_to = value
    return {
        "holds_at": holds_at,
        "holds_up_to": holds_up_to,
        "breaks_at": breaks_at,
        "first_failure": first_failure,
    }


def _slices(groups, axis: str) -> dict[str, list[dict[str, Any]]]:
    """Groups sharing every axis value but `axis`'s, by that shared part."""
    slices: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for group in groups.values():
        rest = {k: v for k, v in group["params"].items() if k != axis}
        slices[repr(sorted(rest.items()))].append(group)
    return slices


def _fits(groups, axes: dict[str, list], baselines: dict) -> list[dict[str, Any]]:
    fits = []
    for axis in (a for a in NUMERIC_AXES if a in axes):
        for members in _slices(groups, axis).values():
            rest = {k: v for k, v in members[0]["params"].items() if k != axis}
            for cost in COSTS:
                pairs = [
                    (_x(g, axis), y)
                    for g in members
                    if (y := _median(g, cost)) is not None
                ]
                fit = fit_best(pairs)
                if fit:
                    fits.append(
                        {
                            "y": cost,
                            "x": axis,
                            "others": rest,
                            "paced": not all(_at_max(g) for g in members),
                            **fit,
                        }
                    )
    if RATE_FRACTION in axes:
        fits.extend(_latency_fits(groups, baselines))
    return fits


def _at_max(group: dict[str, Any]) -> bool:
    return all(s.get("rate") == "max" for s in group["summaries"])


def _x(group: dict[str, Any], axis: str) -> float:
    """A point's value on `axis`; message_bytes as run (0 means the
    reference size, whose real size the summary records)."""
    if axis == "message_bytes":
        return float(_median(group, "message_bytes") or 0)
    return float(group["params"][axis])


def _latency_fits(groups, baselines: dict) -> list[dict[str, Any]]:
    fits = []
    for members in _slices(groups, RATE_FRACTION).values():
        pairs = []
        for group in members:
            if group["failed"] or not group["summaries"] or not group["rate"]:
                continue
            summaries = group["summaries"]
            size = str(summaries[0]["message_bytes"])
            base = baselines.get(size, {}).get("throughput_per_s")
            load = group["rate"] / base if base else math.inf
            if load < 1:
                p50 = statistics.median(s["latency_us"]["p50"] for s in summaries)
                pairs.append((load, p50))
        fit = fit_line(pairs, model="a + b/(1-x)")
        if fit:
            rest = {k: v for k, v in members[0]["params"].items() if k != RATE_FRACTION}
            fits.append({"y": "latency_p50_us", "x": "load", "others": rest, **fit})
    return fits


MODELS = {
    "a + b*x": lambda x: x,
    "a + b/x": lambda x: 1.0 / x,
    "a + b*log(x)": math.log,
    "a + b/(1-x)": lambda x: 1.0 / (1.0 - x),
}
# Cost models tried for each axis: linear growth, a fixed cost spread over
# more updates, and diminishing growth.
COST_MODELS = ("a + b*x", "a + b/x", "a + b*log(x)")


def fit_best(pairs: list[tuple[float, float]]) -> dict[str, Any] | None:
    """The cost model that best fits every point but the held-out largest x
    (so choosing it never looks at the point it must predict)."""
    fits = [f for model in COST_MODELS if (f := fit_line(pairs, model=model))]
    return max(fits, key=lambda f: f["training_r2"], default=None)


def fit_line(
    pairs: list[tuple[float, float]], *, model: str = "a + b*x"
) -> dict[str, Any] | None:
    """y = a + b·t(x) over `pairs`, and the error predicting the largest x
    from the others; None when there are too few distinct x values."""
    pairs = sorted(pairs)
    if len({x for x, _ in pairs}) < MIN_FIT_POINTS or pairs[0][0] <= 0:
        return None
    t = MODELS[model]
    xs = np.array([t(x) for x, _ in pairs])
    ys = np.array([y for _, y in pairs])
    b, a = np.polyfit(xs, ys, 1)
    held_x, held_y = pairs[-1]
    hb, ha = np.polyfit(xs[:-1], ys[:-1], 1)
    guess = float(ha + hb * t(held_x))
    return {
        "model": model,
        "a": float(a),
        "b": float(b),
        "r2": _r2(ys, a + b * xs),
        "training_r2": _r2(ys[:-1], ha + hb * xs[:-1]),
        "points": len(pairs),
        "holdout": {
            "x": held_x,
            "measured": held_y,
            "predicted": guess,
            "error_pct": abs(guess - held_y) / abs(held_y) * 100 if held_y else None,
        },
    }


def _r2(ys: np.ndarray, predicted: np.ndarray) -> float:
    spread = float(((ys - ys.mean()) ** 2).sum())
    return 1 - float(((ys - predicted) ** 2).sum()) / spread if spread else 1.0


def _slow_subscriber(groups: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """For each point with a slow subscriber: what it lost, what the others
    lost, and what the same settings lost with no slow subscriber at all."""
    rows = []
    for group in groups.values():
        if not group["params"].get("slow_us") or not group["summaries"]:
            continue
        calm_params = {**group["params"], "slow_us": 0}
        calm = next((g for g in groups.values() if g["params"] == calm_params), None)
        rows.append(
            {
                "params": group["params"],
                "slow_dropped": _median(group, "slow_dropped"),
                "others_dropped": _median(group, "others_dropped"),
                "dropped_without_slow": _median(calm, "dropped") if calm else None,
            }
        )
    return rows


def _drift(document: dict[str, Any]) -> float | None:
    before, after = document.get("baseline"), document.get("baseline_after")
    if not before or not after or not before["throughput_per_s"]:
        return None
    return after["throughput_per_s"] / before["throughput_per_s"] - 1


def _prediction(document: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    """What the fits say about larger deployments, with the assumptions."""
    base = document["base_scenario"]
    # The largest hospital the sweep ran, when patients is one of its axes.
    patients = max(document["axes"].get("patients", [base["patients"]]))
    demand = patients * base["updates_per_day"] / SECONDS_PER_DAY
    prediction: dict[str, Any] = {
        "assumptions": [
            "one publisher process sends every update; its CPU per message is the"
            " fitted line, and a core k times faster divides it by k",
            "subscriber processes run on other cores, so subscribers add cores,"
            " not publisher time, until the machine runs out of cores",
            "loopback TCP; a real network adds its latency and its bandwidth"
            " limit (message_bytes x delivered per second)",
            "the hospital's real demand is patients x updates_per_day / 86,400 s"
            " on average, but a clock-paced slot sends every patient at once:"
            " the burst, not the average, meets the high-water mark",
        ],
        "patients": patients,
        "real_time_updates_per_s": demand,
    }
    rates = [s["zero_drop_rate"] for s in verdict["searches"] if s["zero_drop_rate"]]
    if rates:
        best = max(rates)
        prediction["zero_drop_rate"] = best
        prediction["headroom_over_real_time"] = best / demand if demand else None
        prediction["burst_seconds_per_slot"] = patients / best
    # Only runs as fast as possible: a paced publisher's CPU includes its
    # waiting for each update's time, which says nothing about its ceiling.
    prediction["extrapolations"] = [
        _extrapolate(fit)
        for fit in verdict["fits"]
        if fit["y"] == "publisher_cpu_us_per_message" and not fit.get("paced")
    ]
    return prediction


def _extrapolate(fit: dict[str, Any]) -> dict[str, Any]:
    """The publisher's ceiling at ten times the largest x measured, from its
    fitted CPU per update: one core, so at most 1e6 / cost updates a second."""
    x = fit["holdout"]["x"] * EXTRAPOLATION_FACTOR
    cost = fit["a"] + fit["b"] * MODELS[fit["model"]](x)
    return {
        "x": fit["x"],
        "at": x,
        "others": fit["others"],
        "publisher_cpu_us_per_message": cost,
        "publisher_max_updates_per_s": 1e6 / cost if cost > 0 else math.inf,
    }


def statements(verdict: dict[str, Any]) -> list[str]:
    """The verdict in plain sentences."""
    lines = []
    for axis, overall in verdict.get("limits", {}).items():
        for limit in overall.get("by_slice", [overall]):
            lines.append(_limit_sentence(axis, limit))
    return lines + _prediction_sentences(verdict)


def _limit_sentence(axis: str, limit: dict[str, Any]) -> str:
    if limit.get("others"):
        axis += f" ({params_text(limit['others'])})"
    holds, breaks = limit["holds_at"], limit["breaks_at"]
    if breaks is None and not holds:
        return f"{axis}: not judged (every point ran as fast as possible)"
    if breaks is None:
        return f"{axis}: holds at every value measured, up to {holds[-1]}"
    shown = ", ".join(map(str, holds)) or "no value measured"
    return (
        f"{axis}: holds at {shown}; first fails at {breaks}, by"
        f" {limit['first_failure']}"
    )


def _slow_sentences(verdict: dict[str, Any]) -> list[str]:
    lines = []
    for row in verdict.get("slow_subscriber", []):
        lines.append(
            f"slow subscriber ({params_text(row['params'])}): it lost"
            f" {row['slow_dropped']:,.0f}, the"
            f" others {row['others_dropped']:,.0f}; with no slow subscriber the"
            f" same settings lost {row['dropped_without_slow'] or 0:,.0f}"
        )
    return lines


def _prediction_sentences(verdict: dict[str, Any]) -> list[str]:
    lines = _slow_sentences(verdict)
    prediction = verdict.get("prediction", {})
    if prediction.get("headroom_over_real_time"):
        lines.append(
            f"real time needs {prediction['real_time_updates_per_s']:.3g} updates/s"
            f" on average; the zero-drop rate is"
            f" {prediction['headroom_over_real_time']:,.0f} times that, and a"
            f" clock slot's burst of every patient drains in"
            f" {prediction['burst_seconds_per_slot']:.3g} s"
        )
    for guess in prediction.get("extrapolations", [])[:4]:
        lines.append(
            f"fitted: at {guess['x']} = {guess['at']:g} {guess['others'] or ''} the"
            f" publisher would spend {guess['publisher_cpu_us_per_message']:.3g} µs"
            f" of CPU per update, a ceiling of"
            f" {guess['publisher_max_updates_per_s']:,.0f} updates/s per core"
        )
    return lines


def describe(document: dict[str, Any]) -> str:
    """The verdict as lines for the terminal."""
    verdict = document.get("verdict") or {}
    points = document["points"]
    done = sum(p["status"] == "done" for p in points)
    lines = [f"{document['name']}: {done} of {len(points)} runs done"]
    base = document.get("baseline")
    if base:
        lines.append(
            f"raw pyzmq at {base['message_bytes']} bytes: "
            f"{base['throughput_per_s']:,.0f} msg/s, p50"
            f" {base['latency_us']['p50']:,.0f} µs at"
            f" {base['latency_rate_per_s']:,.0f} msg/s"
        )
    if verdict.get("baseline_drift") is not None:
        lines.append(f"baseline drift over the sweep: {verdict['baseline_drift']:+.0%}")
    for search in verdict.get("searches", []):
        lines.append(_search_line(search))
    lines.append(verdict.get("criterion", ""))
    lines.extend(f"  {line}" for line in verdict.get("statements", []))
    shown = [f for f in verdict.get("fits", []) if f["y"] in PRINTED_FITS]
    for fit in shown[:MAX_PRINTED_FITS]:
        held = fit["holdout"]
        error = held["error_pct"]
        lines.append(
            f"  fit {fit['y']} vs {fit['x']} {fit['others'] or ''}: {fit['model']},"
            f" a={fit['a']:.3g} b={fit['b']:.3g} r2={fit['r2']:.2f};"
            f" predicts x={held['x']:g} as {held['predicted']:.3g},"
            f" measured {held['measured']:.3g}"
            + (f" ({error:.0f}% off)" if error is not None else "")
        )
    return "\n".join(line for line in lines if line)


def _search_line(search: dict[str, Any]) -> str:
    """One search's zero-drop rate and its ratio to raw pyzmq's."""
    line = (
        f"zero-drop rate {search['params'] or ''}: "
        f"{search['zero_drop_rate'] or 0:,.0f}/s"
    )
    ratio = search["ratio_to_baseline"]
    if not ratio:
        return line
    raw = search["baseline_zero_drop_rate"]
    pairs = search.get("pair_ratios", [])
    if len(pairs) <= 1:
        return line + f" ({ratio:.2f} of raw pyzmq's {raw:,.0f}/s)"
    return line + (
        f", raw pyzmq {raw:,.0f}/s in the first pair; harness over raw"
        f" {ratio:.2f}, the median of {len(pairs)} paired searches"
        f" ({min(pairs):.2f} to {max(pairs):.2f})"
    )

"""Sweep points as series: one figure against one quantity, repeats gathered.

A quantity (patients, subscribers, offered rate, HWM, subscriptions per
subscriber, filtering side) is read from a point's params under any of the
names a sweep may give its axis; when the sweep did not vary it by name, it is
read from the point's own result.json, so a chart never depends on how an
axis happened to be spelled. Repeats of one setting are gathered into their
median, minimum and maximum.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reports.data import SweepPoint

# The names a sweep axis may carry for each quantity the charts use.
AXIS_NAMES: dict[str, tuple[str, ...]] = {
    "patients": ("patients",),
    "subscribers": (
        "subscribers",
        "subscriber_count",
        "subscriber_sockets",
        "sockets",
    ),
    "rate": ("rate", "offered_rate", "rate_per_s"),
    "hwm": ("hwm",),
    "subscriptions": (
        "subscriptions",
        "subscriptions_per_subscriber",
        "topics_per_subscriber",
        "topics",
    ),
    "filtering": ("filtering", "filter", "filter_side", "filter_at"),
    "message_bytes": ("message_bytes",),
}


# Axes that are another quantity in disguise: against the offered rate, a
# rate_fraction axis is the x axis itself, not a separate series.
DERIVED: dict[str, tuple[str, ...]] = {"rate": ("rate_fraction",)}


def quantity(point: SweepPoint, name: str) -> Any:
    """The value of `name` at this point, or None if it cannot be known."""
    for alias in AXIS_NAMES.get(name, (name,)):
        if alias in point.params:
            return point.params[alias]
    if name == "rate" and point.summary.get("rate") is not None:
        # A searched point's rate: a fraction of its search's zero-drop rate.
        return point.summary["rate"]
    if point.result is None:
        return None
    scenario = point.result.scenario
    if name == "subscribers":
        return len(scenario.get("subscribers", []))
    if name == "subscriptions":
        topics = [s.topics for s in point.result.reported]
        return sum(topics) / len(topics) if topics else None
    return scenario.get(name)


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def figure(point: SweepPoint, name: str) -> float | None:
    """A summary figure of a point; `latency_us.p99` reaches inside."""
    value: Any = point.summary
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return number(value)


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    repeats: int


@dataclass(frozen=True)
class Series:
    label: str  # the other axes' settings, e.g. "hwm=10"
    x: list[float]
    values: list[Spread]


def varying(points: list[SweepPoint], name: str) -> list[Any]:
    values = {quantity(p, name) for p in points} - {None}
    return sorted(values, key=str)


def series(
    points: list[SweepPoint],
    x_name: str,
    value: Callable[[SweepPoint], float | None],
    *,
    by: tuple[str, ...],
) -> list[Series]:
    """`value` against `x_name`, one series per setting of the `by` quantities."""
    grouped: dict[str, dict[float, list[float]]] = {}
    for point in points:
        x, y = number(quantity(point, x_name)), value(point)
        if x is None or y is None:
            continue
        label = ", ".join(f"{name}={quantity(point, name)}" for name in by)
        grouped.setdefault(label, {}).setdefault(x, []).append(y)
    return [
        Series(
            label=label,
            x=sorted(by_x),
            values=[_spread(by_x[x]) for x in sorted(by_x)],
        )
        for label, by_x in sorted(grouped.items(), key=lambda item: _natural(item[0]))
    ]


def _natural(label: str) -> list[Any]:
    """A sort key that puts subscribers=4 before subscribers=16 and
    rate_fraction=0.25 before rate_fraction=0.5."""
    return [
        (1, 0.0, part) if index % 2 == 0 else (0, float(part), "")
        for index, part in enumerate(re.split(r"(\d+(?:\.\d+)?)", label))
    ]


def _spread(values: list[float]) -> Spread:
    return Spread(statistics.median(values), min(values), max(values), len(values))


def other_axes(
    points: list[SweepPoint], axes: dict[str, list[Any]], x_name: str
) -> tuple[str, ...]:
    """The quantities besides `x_name` that vary across these points."""
    names = []
    for quantity_name, aliases in AXIS_NAMES.items():
        if quantity_name == x_name:
            continue
        if (
            any(alias in axes for alias in aliases)
            and len(varying(points, quantity_name)) > 1
        ):
            names.append(quantity_name)
    known = {alias for aliases in AXIS_NAMES.values() for alias in aliases}
    names += [
        axis
        for axis in axes
        if axis not in known
        and axis not in DERIVED.get(x_name, ())
        and len({str(p.params.get(axis)) for p in points}) > 1
    ]
    return tuple(names)

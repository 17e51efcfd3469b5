"""Sweep files: a scenario plus a `[sweep]` table naming what to vary.

    patients = 1000               # the base scenario, as for `wardcast run`
    rate = "max"
    [[subscriber]]
    role = "administration"

    [sweep]
    repeats = 2                   # runs per grid point (default 1)
    warmup = 1                    # runs of the first point, discarded (default 0)
    subscriber_role = "caregiver" # what the `subscribers` axis adds (below)
    [sweep.axes]                  # the cartesian product of these is run
    subscribers = [1, 16, 64]
    hwm = [100, 1000]

An axis is any Scenario field (patients, days, rate, hwm, message_bytes,
subscribers_per_process, sndbuf, rcvbuf, day_seconds, seed, ...) or one of:

    subscriber_role (also an axis) what the subscribers axis adds
    subscribers     how many subscriber sockets; each is a `subscriber_role`
                    ("administration" follows everyone; "caregiver" number i
                    follows patient i, wrapping round; "mix" cycles the base
                    file's [[subscriber]] list)
    subscriptions   patients each subscriber follows (a psychiatrist of that
                    many consecutive patients, each subscriber starting where
                    the previous one ended, wrapping round)
    filter_side     "publisher" (subscribe to each patient's topic) or
                    "subscriber" (subscribe to everything, filter in Python)
    slow_us         the first subscriber spends this long on every message;
                    the others are normal, to see whether they suffer
    rate_fraction   a fraction of the highest zero-drop rate, which the sweep
                    first searches for at every combination of the other axes

Every point is resolved (checked) before the first run, so a bad value fails
the sweep at once with the axis named, not half an hour in.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import ScenarioError
from sim.roles import FILTER_SIDES, SubscriberSpec, make_subscriber
from sim.scenario import Scenario, load, parse_rate, resolve

SPECIAL_AXES = (
    "subscribers",
    "subscriber_role",
    "subscriptions",
    "filter_side",
    "slow_us",
)
RATE_FRACTION = "rate_fraction"
# Scenario fields a sweep cannot vary: the subscriber list is varied through
# the special axes, and a name per point would only confuse the results.
_FIXED_FIELDS = {"subscribers", "name", "start_date", "endpoint"}
SCENARIO_AXES = tuple(
    f.name for f in dataclasses.fields(Scenario) if f.name not in _FIXED_FIELDS
)
KNOWN_AXES = (*SCENARIO_AXES, *SPECIAL_AXES, RATE_FRACTION)
SUBSCRIBER_ROLES = ("administration", "caregiver", "mix")
_SWEEP_KEYS = {
    "axes": "a table of axis = [values]",
    "repeats": "runs per grid point",
    "warmup": "runs discarded before the first point",
    "subscriber_role": "what the subscribers axis adds",
    "search_probes": "runs spent finding the highest zero-drop rate",
    "search_repeats": "paired harness and raw-pyzmq searches, for a median ratio",
    "latency_budget_ms": "p99 latency beyond which the design no longer holds",
    "baseline_frames": "frames in the raw-pyzmq throughput run",
    "baseline_latency_frames": "frames in the raw-pyzmq latency run",
}
DEFAULT_SEARCH_PROBES = 6
# Updates in the hospital are hours apart; a second of delay is already far
# beyond anything a caregiver would notice, so it is where "holds" ends.
DEFAULT_LATENCY_BUDGET_MS = 1000.0


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: the base scenario and what to vary around it."""

    name: str
    source: str
    base: Scenario
    axes: dict[str, list[Any]]
    repeats: int = 1
    warmup: int = 0
    subscriber_role: str = "administration"
    search_probes: int = DEFAULT_SEARCH_PROBES
    search_repeats: int = 1
    latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS
    baseline_frames: int = 300_000
    baseline_latency_frames: int = 20_000

    @property
    def searches_rate(self) -> bool:
        return RATE_FRACTION in self.axes

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of axis values, in file order, last axis fastest."""
        names = list(self.axes)
        return [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*self.axes.values())
        ]

    def settings(self) -> dict[str, Any]:
        """The sweep's definition as recorded (and compared on resume)."""
        settings = {
            "axes": self.axes,
            "repeats": self.repeats,
            "warmup": self.warmup,
            "subscriber_role": self.subscriber_role,
            "search_probes": self.search_probes,
            "latency_budget_ms": self.latency_budget_ms,
        }
        # Recorded only when set, so sweeps saved before the key existed
        # still resume.
        if self.search_repeats != 1:
            settings["search_repeats"] = self.search_repeats
        return settings


def load_sweep(path: Path) -> SweepSpec:
    """A sweep from a TOML file; raises ScenarioError naming any bad key."""
    base, extras = load(path, extra_keys=frozenset({"sweep"}))
    table = extras.get("sweep")
    if not isinstance(table, dict):
        raise ScenarioError(
            f"{path} has no [sweep] table: add one with [sweep.axes], or run it"
            " with `wardcast run --scenario`"
        )
    spec = parse_sweep(table, base, source=str(path))
    for params in spec.grid():
        point_scenario(spec, params, rate=1.0 if spec.searches_rate else None)
    return spec


def parse_sweep(table: dict, base: Scenario, *, source: str) -> SweepSpec:
    unknown = sorted(set(table) - set(_SWEEP_KEYS))
    if unknown:
        raise ScenarioError(
            f"unknown key {unknown[0]!r} in [sweep] of {source}: known keys are "
            + ", ".join(sorted(_SWEEP_KEYS))
        )
    axes = _axes(table.get("axes", {}), source)
    role = table.get("subscriber_role", "administration")
    if role not in SUBSCRIBER_ROLES:
        raise ScenarioError(
            f"subscriber_role in [sweep] of {source} must be one of "
            f"{', '.join(SUBSCRIBER_ROLES)}, got {role!r}"
        )
    budget = table.get("latency_budget_ms", DEFAULT_LATENCY_BUDGET_MS)
    if isinstance(budget, bool) or not isinstance(budget, int | float) or budget <= 0:
        raise ScenarioError(
            f"latency_budget_ms in [sweep] of {source} must be a number above 0"
        )
    if RATE_FRACTION in axes and "rate" in axes:
        raise ScenarioError(
            f"[sweep.axes] of {source} has both rate and rate_fraction: keep one"
        )
    return SweepSpec(
        name=base.name,
        source=source,
        base=_checked(base),
        axes=axes,
        repeats=_whole(table, "repeats", 1, 1, source),
        warmup=_whole(table, "warmup", 0, 0, source),
        subscriber_role=role,
        search_probes=_whole(table, "search_probes", DEFAULT_SEARCH_PROBES, 2, source),
        search_repeats=_whole(table, "search_repeats", 1, 1, source),
        latency_budget_ms=float(budget),
        baseline_frames=_whole(table, "baseline_frames", 300_000, 100, source),
        baseline_latency_frames=_whole(
            table, "baseline_latency_frames", 20_000, 100, source
        ),
    )


def _checked(base: Scenario) -> Scenario:
    """The base scenario unresolved (each point resolves its own message size,
    which grows with the patients' names), once checked as it stands."""
    resolve(base)
    return base


def _whole(table: dict, key: str, default: int, lowest: int, source: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise ScenarioError(
            f"{key} in [sweep] of {source} must be a whole number, {lowest} or more,"
            f" got {value!r}"
        )
    return value


def _axes(raw: Any, source: str) -> dict[str, list[Any]]:
    if not isinstance(raw, dict) or not raw:
        raise ScenarioError(
            f"[sweep.axes] of {source} must name at least one axis, like"
            " subscribers = [1, 8, 64]"
        )
    axes: dict[str, list[Any]] = {}
    for name, values in raw.items():
        if name not in KNOWN_AXES:
            raise ScenarioError(
                f"unknown axis {name!r} in [sweep.axes] of {source}: known axes are "
                + ", ".join(KNOWN_AXES)
            )
        if not isinstance(values, list) or not values:
            raise ScenarioError(
                f"axis {name} in [sweep.axes] of {source} must be a non-empty list"
                " of values"
            )
        if len({repr(v) for v in values}) != len(values):
            raise ScenarioError(f"axis {name} in {source} repeats a value")
        axes[name] = values
    return axes


def point_scenario(
    spec: SweepSpec, params: dict[str, Any], *, rate: float | None = None
) -> Scenario:
    """The checked scenario of one grid point; `rate` replaces rate_fraction
    once the zero-drop rate is known. Raises ScenarioError naming the axis."""
    changes: dict[str, Any] = {}
    for axis, value in params.items():
        if axis in SCENARIO_AXES:
            changes[axis] = parse_rate(value) if axis == "rate" else value
    if rate is not None:
        changes["rate"] = rate
    scenario = spec.base.replace(**changes, name=spec.name)
    try:
        scenario = scenario.replace(subscribers=_subscribers(spec, scenario, params))
        return resolve(scenario)
    except ScenarioError as error:
        raise ScenarioError(f"sweep point {params_text(params)}: {error}") from None


def _subscribers(
    spec: SweepSpec, scenario: Scenario, params: dict[str, Any]
) -> tuple[SubscriberSpec, ...]:
    subscribers = list(scenario.subscribers)
    if "subscribers" in params or "subscriptions" in params:
        count = params.get("subscribers", len(subscribers))
        _check_whole("subscribers", count, 1)
        if "subscriptions" in params:
            subscribers = _psychiatrists(scenario.patients, count, params)
        else:
            role = params.get("subscriber_role", spec.subscriber_role)
            if role not in SUBSCRIBER_ROLES:
                raise ScenarioError(
                    f"subscriber_role must be one of {', '.join(SUBSCRIBER_ROLES)},"
                    f" got {role!r}"
                )
            subscribers = _by_role(role, scenario, count)
    side = params.get("filter_side", "publisher")
    if side not in FILTER_SIDES:
        raise ScenarioError(
            f"filter_side must be {' or '.join(FILTER_SIDES)}, got {side!r}"
        )
    slow_us = params.get("slow_us", 0)
    if isinstance(slow_us, bool) or not isinstance(slow_us, int | float):
        raise ScenarioError(f"slow_us must be microseconds, got {slow_us!r}")
    if slow_us < 0:
        raise ScenarioError(f"slow_us must be 0 or more, got {slow_us!r}")
    changed = []
    for index, subscriber in enumerate(subscribers):
        changes: dict[str, Any] = {}
        if "filter_side" in params and not subscriber.follows_all():
            changes["filter_side"] = side
        if "slow_us" in params and index == 0:
            changes["slow_us"] = float(slow_us)
        changed.append(dataclasses.replace(subscriber, **changes))
    return tuple(changed)


def _check_whole(axis: str, value: Any, lowest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise ScenarioError(
            f"{axis} must be a whole number, {lowest} or more, got {value!r}"
        )


def _psychiatrists(
    patients: int, count: int, params: dict[str, Any]
) -> list[SubscriberSpec]:
    each = params["subscriptions"]
    _check_whole("subscriptions", each, 1)
    if each > patients:
        raise ScenarioError(
            f"subscriptions {each} is more than the {patients} patients: raise"
            " patients to at least as many"
        )
    return [
        make_subscriber(
            "psychiatrist",
            [(index * each + k) % patients + 1 for k in range(each)],
            name=f"psychiatrist-{index + 1}",
        )
        for index in range(count)
    ]


def _by_role(role: str, scenario: Scenario, count: int) -> list[SubscriberSpec]:
    if role == "administration":
        return [
            make_subscriber("administration", name=f"administration-{i + 1}")
            for i in range(count)
        ]
    if role == "caregiver":
        return [
            make_subscriber(
                "caregiver", [i % scenario.patients + 1], name=f"caregiver-{i + 1}"
            )
            for i in range(count)
        ]
    base = scenario.subscribers
    return [
        dataclasses.replace(base[i % len(base)], name=f"{base[i % len(base)].name}~{i}")
        for i in range(count)
    ]


def params_text(params: dict[str, Any]) -> str:
    """A point's parameters as a person reads them: `subscribers=4, hwm=10`."""
    return ", ".join(f"{axis}={value}" for axis, value in params.items())


def point_label(params: dict[str, Any]) -> str:
    """A folder-safe label of a point's parameters."""
    text = "-".join(f"{axis}={_short(value)}" for axis, value in params.items())
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", text)


def _short(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)

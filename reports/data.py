"""Results on disk as typed records: a run's `result.json`, a sweep's `sweep.json`.

Reports are drawn only from these files, never from anything a run held in
memory, so a report can be made again, anywhere, from the folder alone.
A file that cannot be read is a `UserError` naming the file and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.daily import DailyLatency
from sim.errors import UserError
from sim.histogram import Histogram, Percentiles

RESULT_SCHEMA = "wardcast.result/1"
SWEEP_SCHEMA = "wardcast.sweep/1"


@dataclass(frozen=True)
class SubscriberFigures:
    """One subscriber socket as its run recorded it."""

    name: str
    role: str
    status: str
    process: int | None
    topics: int
    expected: int
    received: int
    dropped: int
    foreign: int
    malformed: int
    negative_latency: int
    latency_us: Percentiles | None
    received_per_day: list[int]
    latency_per_day: DailyLatency | None
    cpu_seconds: float | None
    cpu_seconds_total: float | None
    max_rss_bytes: int | None
    host: str | None


@dataclass(frozen=True)
class PublisherFigures:
    published: int
    aborted: bool
    send_seconds: float
    lag_us: Percentiles
    cpu_seconds: float | None
    cpu_seconds_total: float | None
    max_rss_bytes: int | None


@dataclass(frozen=True)
class RunResult:
    """A run's result.json, with its histograms rebuilt."""

    folder: Path
    scenario: dict[str, Any]
    machine: dict[str, Any]
    created: str
    status: str
    passed: bool
    problems: list[str]
    published: int
    wall_seconds: float
    published_per_s: float
    delivered_per_s: float
    totals: dict[str, int]
    latency_us: Percentiles
    from_intended: Histogram
    from_actual: Histogram
    publisher: PublisherFigures
    subscribers: list[SubscriberFigures]
    # What only some runs have: "faults" (what was injected and what it
    # cost) and "veth_vs_loopback" (`wardcast deploy-netns`).
    faults: list[dict[str, Any]] = field(default_factory=list)
    veth_vs_loopback: dict[str, Any] = field(default_factory=dict)

    @property
    def reported(self) -> list[SubscriberFigures]:
        return [s for s in self.subscribers if s.status == "reported"]


@dataclass(frozen=True)
class Baseline:
    """Raw pyzmq PUB/SUB measured beside a sweep, same bytes per message."""

    message_bytes: int
    throughput_per_s: float
    latency_us: dict[str, float]
    latency_rate_per_s: float | None


@dataclass
class SweepPoint:
    id: str
    params: dict[str, Any]
    repeat: int
    dir: str
    status: str
    summary: dict[str, Any]
    result: RunResult | None = None  # its result.json, when it is on disk


@dataclass
class Sweep:
    folder: Path
    name: str
    scenario_file: str
    created: str
    machine: dict[str, Any]
    axes: dict[str, list[Any]]
    repeats: int
    warmup: Any
    base_scenario: dict[str, Any]
    baseline: Baseline | None
    points: list[SweepPoint] = field(default_factory=list)
    verdict: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> list[SweepPoint]:
        return [p for p in self.points if p.status == "done"]


def load(path: Path) -> RunResult | Sweep:
    """The sweep or run in `path` (a folder, or the JSON file itself)."""
    if path.is_dir():
        for name in ("sweep.json", "result.json"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise UserError(
                f"{path} holds neither result.json nor sweep.json: give a folder"
                " written by `wardcast run --out` or `wardcast sweep`"
            )
    raw = read_json(path)
    schema = raw.get("schema") if isinstance(raw, dict) else None
    if schema == SWEEP_SCHEMA:
        return sweep_from(raw, path.parent)
    if schema == RESULT_SCHEMA:
        return result_from(raw, path.parent)
    raise UserError(
        f"{path} is not a wardcast result or sweep (schema {schema!r}):"
        f" expected {RESULT_SCHEMA} or {SWEEP_SCHEMA}"
    )


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} does not exist: check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise UserError(
            f"{path} is not valid JSON ({error}): was the run interrupted?"
        ) from None


def result_from(raw: dict[str, Any], folder: Path) -> RunResult:
    try:
        return _result(raw, folder)
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(
            f"{folder / 'result.json'} lacks or garbles field {error}:"
            " rerun it with this version of wardcast"
        ) from None


def _result(raw: dict[str, Any], folder: Path) -> RunResult:
    histograms = raw.get("histograms", {})
    return RunResult(
        folder=folder,
        scenario=raw["scenario"],
        machine=raw.get("machine", {}),
        created=raw.get("created", ""),
        status=raw.get("status", "complete"),
        passed=bool(raw.get("passed", True)),
        problems=list(raw.get("problems", [])),
        published=int(raw["published"]),
        wall_seconds=float(raw["wall_seconds"]),
        published_per_s=float(raw["throughput"]["published_per_s"]),
        delivered_per_s=float(raw["throughput"]["delivered_per_s"]),
        totals={key: int(value) for key, value in raw.get("totals", {}).items()},
        latency_us=raw["latency_us"],
        from_intended=_histogram(histograms.get("from_intended")),
        from_actual=_histogram(histograms.get("from_actual")),
        publisher=_publisher(raw.get("publisher", {}), int(raw["published"])),
        subscribers=[_subscriber(entry) for entry in raw["subscribers"]],
        faults=list(raw.get("faults") or []),
        veth_vs_loopback=dict(raw.get("veth_vs_loopback") or {}),
    )


def _histogram(raw: dict | None) -> Histogram:
    return Histogram.from_dict(raw) if raw else Histogram()


def _publisher(raw: dict[str, Any], published: int) -> PublisherFigures:
    empty = Percentiles(p50=0.0, p90=0.0, p99=0.0, p999=0.0, max=0.0)
    return PublisherFigures(
        published=int(raw.get("published", published)),
        aborted=bool(raw.get("aborted", False)),
        send_seconds=float(raw.get("send_seconds", 0.0)),
        lag_us=raw.get("lag_us", empty),
        cpu_seconds=raw.get("cpu_seconds"),
        cpu_seconds_total=raw.get("cpu_seconds_total"),
        max_rss_bytes=raw.get("max_rss_bytes"),
    )


def _subscriber(raw: dict[str, Any]) -> SubscriberFigures:
    daily = raw.get("latency_per_day")
    return SubscriberFigures(
        name=raw["name"],
        role=raw["role"],
        status=raw.get("status", "reported"),
        process=raw.get("process"),
        topics=int(raw.get("topics") or 0),
        expected=int(raw.get("expected", 0)),
        received=int(raw.get("received", 0)),
        dropped=int(raw.get("dropped", 0)),
        foreign=int(raw.get("foreign", 0)),
        malformed=int(raw.get("malformed", 0)),
        negative_latency=int(raw.get("negative_latency", 0)),
        latency_us=raw.get("latency_us"),
        received_per_day=list(raw.get("received_per_day", [])),
        latency_per_day=DailyLatency.from_dict(daily) if daily else None,
        cpu_seconds=raw.get("cpu_seconds"),
        cpu_seconds_total=raw.get("cpu_seconds_total"),
        max_rss_bytes=raw.get("max_rss_bytes"),
        host=raw.get("host") or raw.get("hostname"),
    )


def sweep_from(raw: dict[str, Any], folder: Path) -> Sweep:
    try:
        sweep = _sweep(raw, folder)
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(
            f"{folder / 'sweep.json'} lacks or garbles field {error}:"
            f" expected the {SWEEP_SCHEMA} layout"
        ) from None
    for point in sweep.done:
        path = folder / point.dir / "result.json"
        if path.is_file():
            point.result = result_from(read_json(path), path.parent)
    return sweep


def _sweep(raw: dict[str, Any], folder: Path) -> Sweep:
    baseline = raw.get("baseline")
    return Sweep(
        folder=folder,
        name=str(raw.get("name", folder.name)),
        scenario_file=str(raw.get("scenario_file", "")),
        created=str(raw.get("created", "")),
        machine=raw.get("machine", {}),
        axes={str(k): list(v) for k, v in raw.get("axes", {}).items()},
        repeats=int(raw.get("repeats", 1)),
        warmup=raw.get("warmup"),
        base_scenario=raw.get("base_scenario", {}),
        baseline=Baseline(
            message_bytes=int(baseline["message_bytes"]),
            throughput_per_s=float(baseline["throughput_per_s"]),
            latency_us=dict(baseline["latency_us"]),
            latency_rate_per_s=baseline.get("latency_rate_per_s"),
        )
        if baseline
        else None,
        points=[
            SweepPoint(
                id=str(p["id"]),
                params=dict(p["params"]),
                repeat=int(p.get("repeat", 0)),
                dir=str(p["dir"]),
                status=str(p["status"]),
                summary=dict(p.get("summary") or {}),
            )
            for p in raw["points"]
        ],
        verdict=dict(raw.get("verdict") or {}),
    )

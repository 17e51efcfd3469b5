"""The `result.json` of a Locust run, merged from its workers' reports.

The same schema as `wardcast run` (`sim.result`), so the same tools read both.
A `subscribers[]` entry stands for every user of one role, across all
workers; `workers[]` says what each Locust process delivered and how many
values its histograms held, so a merge can be checked against its parts.

Two things differ from a harness run, and the result says so. Users join and
leave while the publisher runs, so `published` is what the publisher sent
between the start and the end of the test, and each user's `expected` counts
only its own window (see `sim.locust_users`). CPU time and memory are those of
Locust processes, each shared by users of several roles: a role's
`cpu_seconds` is its workers' CPU time shared out by user counts.
"""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sim
from sim import result as results
from sim.histogram import Histogram
from sim.locust_tally import RoleTally, StepTally
from sim.progress import Progress

if TYPE_CHECKING:
    from sim.locust_run import Settings


def build(
    *,
    reports: dict[str, dict[str, Any]],
    workers: list[str],
    start: Progress | None,
    final: Progress | None,
    settings: Settings,
    wall_seconds: float,
    user_count: int,
) -> dict[str, Any]:
    """The result record of one Locust test."""
    roles, worker_entries = _merge_roles(reports)
    subscribers = [_subscriber_entry(tally, worker_entries) for tally in roles.values()]
    merged = {"from_intended": Histogram(), "from_actual": Histogram()}
    for tally in roles.values():
        merged["from_intended"].merge(tally.from_intended)
        merged["from_actual"].merge(tally.from_actual)
    published = final.published - start.published if final is not None and start else 0
    delivered = merged["from_intended"].count
    problems = _judge(subscribers, workers, reports, final)
    hosts = sorted({entry["host"] for entry in worker_entries})
    return {
        "schema": results.SCHEMA,
        "wardcast_version": sim.__version__,
        "source": "locust",
        "status": "complete" if set(workers) <= set(reports) else "incomplete",
        "passed": not problems,
        "problems": problems,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            **results.machine(),
            "clock": _clock(final, hosts),
            "worker_hosts": hosts,
        },
        "scenario": _scenario(final or start, settings, roles, user_count),
        "run_id": final.run_id if final else None,
        "wall_seconds": wall_seconds,
        "published": published,
        "throughput": {
            "published_per_s": published / wall_seconds if wall_seconds else 0.0,
            "delivered_per_s": delivered / wall_seconds if wall_seconds else 0.0,
        },
        "totals": {
            key: sum(e.get(key, 0) for e in subscribers) for key in results.TOTALS
        },
        "latency_us": merged["from_intended"].percentiles(scale=1000.0),
        "latency_from_actual_us": merged["from_actual"].percentiles(scale=1000.0),
        "publisher": _publisher_entry(start, final),
        "subscribers": subscribers,
        "steps": _steps(reports, settings),
        "workers": worker_entries,
        "histograms": {key: h.to_dict() for key, h in merged.items()},
    }


def _merge_roles(
    reports: dict[str, dict[str, Any]],
) -> tuple[dict[str, RoleTally], list[dict[str, Any]]]:
    """Every role's tally over all workers, and an entry per worker."""
    roles: dict[str, RoleTally] = {}
    worker_entries = []
    for worker, report in sorted(reports.items()):
        tallies = [RoleTally.from_dict(raw) for raw in report["roles"]]
        for tally in tallies:
            roles.setdefault(tally.role, RoleTally(tally.role)).merge(tally)
        worker_entries.append(_worker_entry(worker, report, tallies))
    return roles, worker_entries


def _publisher_entry(start: Progress | None, final: Progress | None) -> dict:
    return {
        "run_id": final.run_id if final else None,
        "published": final.published if final else None,
        "published_before_test": start.published if start else None,
        "finished": final.finished if final else None,
        "host": final.host if final else None,
    }


def _steps(
    reports: dict[str, dict[str, Any]], settings: Settings
) -> list[dict[str, Any]]:
    """Per step of the shape: the subscriber count it asked for, and what the
    users delivered and dropped while it lasted (its ramp included)."""
    merged: dict[int, StepTally] = {}
    for report in reports.values():
        for raw in report.get("steps", []):
            tally = StepTally.from_dict(raw)
            merged.setdefault(tally.step, StepTally(tally.step)).merge(tally)
    steps = []
    for index, tally in sorted(merged.items()):
        seconds = settings.step_seconds if settings.steps else None
        steps.append(
            {
                "step": index,
                "users": settings.steps[index] if settings.steps else None,
                "seconds": seconds,
                "delivered": tally.delivered,
                "delivered_per_s": tally.delivered / seconds if seconds else None,
                "dropped": tally.dropped,
                "latency_us": tally.from_intended.percentiles(scale=1000.0),
            }
        )
    return steps


def _worker_entry(
    worker: str, report: dict[str, Any], tallies: list[RoleTally]
) -> dict[str, Any]:
    return {
        "worker": worker,
        "host": report.get("host", ""),
        "pid": report.get("pid"),
        "cpu_seconds": report.get("cpu_seconds", 0.0),
        "max_rss_bytes": report.get("max_rss_bytes", 0),
        "users": {t.role: t.users for t in tallies},
        "delivered": sum(t.delivered for t in tallies),
        "histogram_count": sum(t.from_intended.count for t in tallies),
        "dropped": sum(t.dropped for t in tallies),
    }


def _subscriber_entry(
    tally: RoleTally, workers: list[dict[str, Any]]
) -> dict[str, Any]:
    cpu = 0.0
    rss = 0
    for worker in workers:
        if tally.role not in worker["users"]:
            continue
        share = tally_share(tally, worker)
        cpu += worker["cpu_seconds"] * share
        rss = max(rss, worker["max_rss_bytes"])
    entry = tally.to_dict()
    entry.update(
        name=tally.role,
        status="reported",
        reordered=0,
        latency_us=tally.from_intended.percentiles(scale=1000.0),
        latency_from_actual_us=tally.from_actual.percentiles(scale=1000.0),
        cpu_seconds=cpu,
        cpu_seconds_basis="worker CPU shared out by user counts",
        max_rss_bytes=rss,
    )
    return entry


def tally_share(tally: RoleTally, worker: dict[str, Any]) -> float:
    """This role's share of a worker's users: a gevent process cannot tell
    which user spent its CPU time."""
    users = sum(worker["users"].values())
    return worker["users"][tally.role] / users if users else 0.0


def _judge(
    subscribers: list[dict[str, Any]],
    workers: list[str],
    reports: dict[str, dict[str, Any]],
    final: Progress | None,
) -> list[str]:
    """Problems that fail a run; drops are measurements, not problems."""
    problems = [f"worker {w} did not report" for w in workers if w not in reports]
    if final is None:
        problems.append("the publisher's progress could not be read at the end")
    for entry in subscribers:
        if entry["foreign"]:
            problems.append(
                f"{entry['name']} users received {entry['foreign']} foreign updates"
                f" ({', '.join(entry['foreign_topics'])})"
            )
        if entry["malformed"]:
            problems.append(
                f"{entry['name']} users received {entry['malformed']} malformed frames"
            )
    return problems


def _clock(final: Progress | None, hosts: list[str]) -> str:
    if final is not None and hosts == [final.host]:
        return "time.monotonic_ns, one clock: publisher and workers share a host"
    return (
        "time.monotonic_ns of different hosts: latencies across hosts are not"
        " comparable and may be meaningless"
    )


def _scenario(
    progress: Progress | None,
    settings: Settings,
    roles: dict[str, RoleTally],
    user_count: int,
) -> dict[str, Any]:
    scenario = dict(progress.scenario) if progress else {}
    scenario.update(
        name="locust",
        hwm=settings.hwm,
        publisher_hwm=scenario.get("hwm"),
        endpoint=settings.endpoint,
        subscribers=[
            {"name": t.role, "role": t.role, "users": t.users, "topics": t.topics}
            for t in roles.values()
        ],
        locust={
            "role_mix": settings.role_mix,
            "psychiatrist_patients": settings.psychiatrist_patients,
            "steps": list(settings.steps),
            "step_seconds": settings.step_seconds,
            "rcvbuf": settings.rcvbuf,
            "slow_us": settings.slow_us,
            "users_at_stop": user_count,
            "controller": socket.gethostname(),
        },
    )
    for key in ("patients", "days", "updates_per_day", "message_bytes", "rate"):
        scenario.setdefault(key, 0)
    scenario.setdefault("day_seconds", 0)
    return scenario


def write(record: dict[str, Any], folder: Path) -> Path:
    """Write result.json into `folder`, or beside it if it already holds one."""
    candidate, number = folder, 1
    while (candidate / "result.json").exists():
        number += 1
        candidate = folder.with_name(f"{folder.name}-{number}")
    results.write(record, candidate)
    return candidate


def summary(record: dict[str, Any]) -> str:
    return results.summary(record)

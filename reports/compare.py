"""`wardcast compare A B`: two runs or two sweeps side by side.

Each figure is given for A and B with the ratio B / A. Whether a change is
real is judged against the run-to-run noise the repeats measured: a figure
changed beyond noise when its mean moved by more than NOISE_MULTIPLE times the
larger spread (highest minus lowest repeat) of either side, and by at least
MIN_CHANGE of itself. A single run has no repeats, so its noise is unknown
and the comparison says so instead of guessing.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from reports.data import RunResult, Sweep, SweepPoint, load
from sim.errors import UserError
from sim.sweepspec import params_text

# Means further apart than twice the widest repeat range: for repeats that
# differ only by noise this is rare (the range of three already spans most of
# their spread), while a real change of that size is plain.
NOISE_MULTIPLE = 2.0
# Changes under 5% are not called real however tight the repeats, since the
# machine's load from one hour to the next moves figures that much.
MIN_CHANGE = 0.05

RUN_FIGURES = (
    "published_per_s", "delivered_per_s", "expected", "received", "dropped",
    "foreign", "latency_us.p50", "latency_us.p90", "latency_us.p99",
    "latency_us.p999", "latency_us.max", "publisher_lag_us.p99",
    "publisher_cpu_us_per_message", "subscriber_cpu_us_per_message",
    "max_rss_bytes_max",
)  # fmt: skip
SWEEP_FIGURES = (
    "published_per_s", "delivered_per_s", "expected", "received", "dropped",
    "foreign", "latency_us.p50", "latency_us.p99", "latency_us.p999",
    "latency_us.max", "publisher_cpu_us_per_message",
    "subscriber_cpu_us_per_message", "max_rss_bytes_max", "ratio_to_baseline",
)  # fmt: skip


@dataclass(frozen=True)
class Change:
    """One figure of A and B, with the repeats' noise and the judgement."""

    figure: str
    a: list[float]
    b: list[float]

    @property
    def mean_a(self) -> float:
        return statistics.fmean(self.a)

    @property
    def mean_b(self) -> float:
        return statistics.fmean(self.b)

    @property
    def ratio(self) -> float | None:
        if self.mean_a == 0:
            return 1.0 if self.mean_b == 0 else None
        return self.mean_b / self.mean_a

    @property
    def noise(self) -> float | None:
        """The wider repeat range of the two sides, or None without repeats."""
        if len(self.a) < 2 or len(self.b) < 2:
            return None
        return max(max(self.a) - min(self.a), max(self.b) - min(self.b))

    @property
    def verdict(self) -> str:
        difference = abs(self.mean_b - self.mean_a)
        if difference == 0:
            return "same"
        if self.noise is None:
            return "noise unknown"
        scale = max(abs(self.mean_a), abs(self.mean_b))
        if (
            difference > NOISE_MULTIPLE * self.noise
            and difference >= MIN_CHANGE * scale
        ):
            return "CHANGED"
        return "within noise"


def compare(first: Path, second: Path) -> str:
    a, b = load(first), load(second)
    if isinstance(a, RunResult) and isinstance(b, RunResult):
        return _text(
            f"run {first} (A) against run {second} (B)", [("", run_changes(a, b))]
        )
    if isinstance(a, Sweep) and isinstance(b, Sweep):
        return _text(
            f"sweep {first} (A) against sweep {second} (B)", sweep_changes(a, b)
        )
    kinds = ("a run" if isinstance(a, RunResult) else "a sweep",
             "a run" if isinstance(b, RunResult) else "a sweep")  # fmt: skip
    raise UserError(
        f"{first} holds {kinds[0]} and {second} {kinds[1]}:"
        " compare two runs or two sweeps"
    )


def run_changes(a: RunResult, b: RunResult) -> list[Change]:
    first, second = run_figures(a), run_figures(b)
    return [
        Change(name, [first[name]], [second[name]])
        for name in RUN_FIGURES
        if name in first and name in second
    ]


def run_figures(run: RunResult) -> dict[str, float]:
    reported = run.reported
    received = sum(s.received for s in reported)
    figures = {
        "published_per_s": run.published_per_s,
        "delivered_per_s": run.delivered_per_s,
        "publisher_lag_us.p99": float(run.publisher.lag_us["p99"]),
        "max_rss_bytes_max": float(
            max((s.max_rss_bytes or 0 for s in reported), default=0)
        ),
    }
    for key in ("expected", "received", "dropped", "foreign"):
        figures[key] = float(run.totals.get(key, 0))
    for key, value in run.latency_us.items():
        figures[f"latency_us.{key}"] = float(value)
    if run.publisher.cpu_seconds is not None and run.published:
        figures["publisher_cpu_us_per_message"] = (
            run.publisher.cpu_seconds * 1e6 / run.published
        )
    if received and all(s.cpu_seconds is not None for s in reported):
        figures["subscriber_cpu_us_per_message"] = (
            sum(s.cpu_seconds or 0.0 for s in reported) * 1e6 / received
        )
    return figures


def sweep_changes(a: Sweep, b: Sweep) -> list[tuple[str, list[Change]]]:
    """Changes per setting the two sweeps share, repeats gathered."""
    groups_a, groups_b = _settings(a), _settings(b)
    shared = [key for key in groups_a if key in groups_b]
    if not shared:
        raise UserError(
            "the two sweeps share no setting (same params at a finished point):"
            " compare sweeps of the same axes"
        )
    sections = []
    for key in shared:
        changes = []
        for name in SWEEP_FIGURES:
            values_a = _values(groups_a[key], name)
            values_b = _values(groups_b[key], name)
            if values_a and values_b:
                changes.append(Change(name, values_a, values_b))
        sections.append((key, changes))
    only = [k for k in groups_a if k not in groups_b] + [
        k for k in groups_b if k not in groups_a
    ]
    if only:
        sections.append((f"not compared, in one sweep only: {'; '.join(only)}", []))
    return sections


def _settings(sweep: Sweep) -> dict[str, list[SweepPoint]]:
    groups: dict[str, list[SweepPoint]] = {}
    for point in sweep.done:
        key = params_text(dict(sorted(point.params.items()))) or "the point"
        groups.setdefault(key, []).append(point)
    return groups


def _values(points: list[SweepPoint], name: str) -> list[float]:
    values = []
    for point in points:
        value: object = point.summary
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            values.append(float(value))
    return values


def _text(heading: str, sections: list[tuple[str, list[Change]]]) -> str:
    lines = [heading, ""]
    changed = [
        c.figure for _, changes in sections for c in changes if c.verdict == "CHANGED"
    ]
    unknown = any(
        c.verdict == "noise unknown" for _, changes in sections for c in changes
    )
    for title, changes in sections:
        if title:
            lines.append(f"== {title}")
        if changes:
            lines += _table(changes)
        lines.append("")
    if changed:
        lines.append(
            f"changed beyond the run-to-run noise: {', '.join(sorted(set(changed)))}"
        )
    elif unknown:
        lines.append(
            "noise unknown: these results have no repeats, so no change can be told"
            " from run-to-run noise; compare sweeps with repeats >= 2"
        )
    else:
        lines.append("no figure changed beyond the run-to-run noise")
    return "\n".join(lines)


def _table(changes: list[Change]) -> list[str]:
    rows = [("figure", "A", "B", "B / A", "noise ±", "verdict")]
    for change in changes:
        ratio = change.ratio
        rows.append(
            (
                change.figure,
                _number(change.mean_a),
                _number(change.mean_b),
                "new" if ratio is None else f"{ratio:.3f}",
                "?" if change.noise is None else _number(change.noise),
                change.verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i in (0, 5) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"

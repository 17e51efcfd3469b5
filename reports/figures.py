"""What every chart shares: the Chart record, figure set-up, PNG output, scales.

Figures are built with `matplotlib.figure.Figure` and drawn by the Agg canvas
directly, never through pyplot, so no global state or display is involved and
charts can be drawn in any process.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

# Shown at about 900 pixels wide in the HTML report: 9 x 4.5 inches at 100 dpi,
# with fonts large enough to read at that size without zooming.
FIGURE_SIZE = (9.0, 4.5)
DPI = 100
FONT_SIZE = 11
# A quantity spanning more than this factor between its smallest and largest
# positive value is drawn on a log scale.
LOG_SCALE_SPAN = 20.0
# The "nines" of an HdrHistogram percentile plot: 1 / (1 - q).
NINES_TICKS = (50.0, 90.0, 99.0, 99.9, 99.99, 99.999, 99.9999)
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
# More legend entries than this no longer fit inside a 9 x 4.5 inch plot
# without hiding its data (a grid of two axes gives ten or twenty series):
# the legend then goes below the figure, in columns, in a smaller font.
LEGEND_INSIDE_MAX = 8
LEGEND_COLUMNS = 2
LEGEND_ROW_INCHES = 0.18  # one row of entries at that smaller font


@dataclass(frozen=True)
class Chart:
    """One chart of a report, drawn or skipped with the reason."""

    key: str  # file name without extension, e.g. "latency-percentiles"
    title: str
    question: str  # what a reviewer reads it for
    source: str  # the fields on disk it is drawn from
    png: bytes | None = None
    skipped: str | None = None  # why it is absent, when it is

    @property
    def drawn(self) -> bool:
        return self.png is not None


class Skip(Exception):
    """The data a chart needs is not in the results: say what is missing."""


def new_figure(rows: int = 1, *, height: float | None = None) -> Figure:
    figure = Figure(
        figsize=(FIGURE_SIZE[0], height or FIGURE_SIZE[1] * (1 + 0.6 * (rows - 1))),
        dpi=DPI,
        layout="constrained",
    )
    return figure


def legend(*panels: Axes, fontsize: int = 9) -> None:
    """Each panel's legend inside it when the entries are few; when they are
    many, one legend of every panel's entries below the figure, which grows
    taller by as much so the plots keep their size."""
    entries: dict[str, object] = {}
    for axes in panels:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if len(entries) <= LEGEND_INSIDE_MAX:
        for axes in panels:
            axes.legend(fontsize=fontsize)
        return
    figure = panels[0].get_figure(root=True)
    width, height = figure.get_size_inches()
    rows = -(-len(entries) // LEGEND_COLUMNS)
    figure.set_size_inches(width, height + rows * LEGEND_ROW_INCHES)
    figure.legend(
        list(entries.values()),
        list(entries),
        loc="outside lower center",
        ncols=LEGEND_COLUMNS,
        fontsize=fontsize - 2,
    )


def png_of(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def style(axes: Axes, *, xlabel: str, ylabel: str, title: str = "") -> None:
    axes.set_xlabel(xlabel, fontsize=FONT_SIZE)
    axes.set_ylabel(ylabel, fontsize=FONT_SIZE)
    if title:
        axes.set_title(title, fontsize=FONT_SIZE + 1)
    axes.tick_params(labelsize=FONT_SIZE - 1)
    axes.grid(True, which="major", alpha=0.35)


def wants_log(values: Sequence[float]) -> bool:
    positive = [v for v in values if v and v > 0]
    return len(positive) > 1 and max(positive) / min(positive) > LOG_SCALE_SPAN


def auto_scale(axes: Axes, xs: Sequence[float], ys: Sequence[float]) -> None:
    """Log axes where the range calls for it, and only if every value allows."""
    if wants_log(xs) and all(x > 0 for x in xs):
        axes.set_xscale("log")
    if wants_log(ys):
        if all(y > 0 for y in ys):
            axes.set_yscale("log")
        else:
            axes.set_yscale("symlog", linthresh=1.0)
            axes.set_ylim(bottom=0)


def nines(percentiles: np.ndarray) -> np.ndarray:
    """x position of each percentile on the "nines" scale: 1 / (1 - q)."""
    return 1.0 / (1.0 - np.asarray(percentiles) / 100.0)


def nines_axis(axes: Axes, top_percentile: float) -> None:
    axes.set_xscale("log")
    ticks = [q for q in NINES_TICKS if q <= max(top_percentile, 99.0)]
    axes.set_xticks(nines(np.array(ticks)))
    axes.set_xticklabels([f"{q:g}%" for q in ticks])
    axes.minorticks_off()


def thousands(axes: Axes, which: str = "y") -> None:
    """Plain numbers with thousands separators instead of 1e4 notation."""
    formatter = FuncFormatter(
        lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}"
    )
    (axes.yaxis if which == "y" else axes.xaxis).set_major_formatter(formatter)

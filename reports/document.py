"""A report as a list of blocks, written out as self-contained HTML or Markdown.

The report is built once as blocks (headings, text, tables, charts, caveats)
and rendered twice, so the HTML page and the Markdown summary cannot say
different things. HTML embeds each chart as a base64 PNG and carries its own
style sheet: it opens from a file, with no server and nothing fetched.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from reports.checks import Caveat
from reports.figures import Chart

CHART_FOLDER = "charts"


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str
    code: bool = False


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    caption: str = ""


@dataclass(frozen=True)
class ChartBlock:
    chart: Chart
    command: str  # the command that reproduces it


@dataclass(frozen=True)
class Caveats:
    caveats: list[Caveat]
    all_clear: str  # what to say when there are none


Block = Heading | Text | Table | ChartBlock | Caveats

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 960px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
caption { text-align: left; font-style: italic; padding-bottom: 0.3em; }
.caveats { border: 3px solid #c0392b; background: #fdecea; padding: 0.6em 1em;
           margin: 1em 0; }
.caveats.mild { border-color: #e67e22; background: #fff4e5; }
.caveats.clear { border-color: #27ae60; background: #eafaf1; }
.caveats li.severe { font-weight: bold; color: #922; }
figure { margin: 1.2em 0 2em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
code { background: #f4f4f4; padding: 0.1em 0.3em; }
.skipped { color: #8a5a00; font-style: italic; }
"""


def to_html(title: str, blocks: list[Block]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [_html_block(block) for block in blocks]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Text):
        if block.code:
            return f"<pre><code>{html.escape(block.text)}</code></pre>"
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Caveats):
        return _html_caveats(block)
    return _html_chart(block)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in table.rows
    )
    caption = (
        f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    )
    return (
        f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _html_caveats(block: Caveats) -> str:
    if not block.caveats:
        return f'<div class="caveats clear">{html.escape(block.all_clear)}</div>'
    kind = "" if any(c.severe for c in block.caveats) else " mild"
    items = "".join(
        f'<li class="{"severe" if c.severe else ""}">{html.escape(c.text)}</li>'
        for c in block.caveats
    )
    return (
        f'<div class="caveats{kind}" id="warnings"><strong>Warnings</strong>'
        f"<ul>{items}</ul></div>"
    )


def _html_chart(block: ChartBlock) -> str:
    chart = block.chart
    heading = f"<h3>{html.escape(chart.title)}</h3>"
    if not chart.drawn:
        return (
            f'{heading}<p class="skipped" data-chart="{chart.key}">Not drawn:'
            f" {html.escape(chart.skipped or '')}</p>"
        )
    data = base64.b64encode(chart.png or b"").decode()
    return (
        f'<figure data-chart="{chart.key}">{heading}'
        f"<p>{html.escape(chart.question)}</p>"
        f'<img alt="{html.escape(chart.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>Drawn from {html.escape(chart.source)}.<br>"
        f"Reproduce: <code>{html.escape(block.command)}</code></figcaption></figure>"
    )


def to_markdown(title: str, blocks: list[Block]) -> str:
    parts = [f"# {title}"]
    parts += [_markdown_block(block) for block in blocks]
    return "\n\n".join(parts) + "\n"


def _markdown_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Text):
        return f"```\n{block.text}\n```" if block.code else block.text
    if isinstance(block, Table):
        lines = [f"*{block.caption}*", ""] if block.caption else []
        lines.append("| " + " | ".join(block.headers) + " |")
        lines.append(
            "|" + "|".join(["---"] + ["---:"] * (len(block.headers) - 1)) + "|"
        )
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Caveats):
        if not block.caveats:
            return f"> {block.all_clear}"
        lines = ["> **⚠ Warnings**", ">"]
        lines += [
            f"> - {'**' + c.text + '**' if c.severe else c.text}" for c in block.caveats
        ]
        return "\n".join(lines)
    chart = block.chart
    if not chart.drawn:
        return f"### {chart.title}\n\n*Not drawn: {chart.skipped}*"
    return (
        f"### {chart.title}\n\n{chart.question}\n\n"
        f"![{chart.title}]({CHART_FOLDER}/{chart.key}.png)\n\n"
        f"Drawn from {chart.source}. Reproduce: `{block.command}`"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def write(folder: Path, title: str, blocks: list[Block]) -> tuple[Path, Path]:
    """Write report.html, report.md and the chart files beside them."""
    charts = folder / CHART_FOLDER
    charts.mkdir(exist_ok=True)
    for block in blocks:
        if not isinstance(block, ChartBlock):
            continue
        path = charts / f"{block.chart.key}.png"
        if block.chart.drawn:
            path.write_bytes(block.chart.png or b"")
        else:
            # Drawn by an earlier report of this folder, not by this one: a
            # stale picture beside the report would contradict it.
            path.unlink(missing_ok=True)
    html_path, markdown_path = folder / "report.html", folder / "report.md"
    html_path.write_text(to_html(title, blocks))
    markdown_path.write_text(to_markdown(title, blocks))
    return html_path, markdown_path

"""Reports open in a real browser: headless Chromium, from a file, no server.

A small page loads the report in a frame and reads, for every image, whether
the browser decoded it and to what size; Chromium prints the resulting DOM, so
a chart the browser cannot decode shows up as broken here, not just as a
base64 string that looks fine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import pytest

from reports import data, run_charts, sweep_charts
from reports.report import write_report

pytestmark = pytest.mark.slow

# CI installs Chromium and sets this, so there the test cannot be skipped.
REQUIRE_BROWSER = os.environ.get("WARDCAST_REQUIRE_BROWSER") == "1"
BROWSER_TIMEOUT_S = 120
# Long enough for the frame to load and every image to decode, in virtual
# time (Chromium advances it as fast as the page lets it).
VIRTUAL_TIME_MS = "20000"

CHECK_PAGE = """<!DOCTYPE html>
<html><body>
<pre id="verdict">pending</pre>
<script>
// The frame is made here, after its load listener, so a fast load from the
// cache cannot fire before anyone listens.
const frame = document.createElement("iframe");
frame.style.width = "1000px";
frame.style.height = "800px";
// Checked in the frame's load handler, synchronously: it runs before the
// page's own load event, after which Chromium prints the DOM. An image that
// could not be decoded is complete with no natural size.
frame.addEventListener("load", () => {{
  const out = document.getElementById("verdict");
  const page = frame.contentDocument;
  if (!page) {{ out.textContent = "no access to the report"; return; }}
  const images = [...page.images].map(image => ({{
    chart: image.closest("figure").dataset.chart,
    complete: image.complete,
    width: image.naturalWidth,
    height: image.naturalHeight}}));
  out.textContent = JSON.stringify({{
    figures: page.querySelectorAll("figure[data-chart]").length, images}});
}});
frame.src = "{report}";
document.body.appendChild(frame);
</script></body></html>
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if REQUIRE_BROWSER:
            pytest.fail("chromium is not installed: apt-get install chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def _browse(chromium: str, profile: Path, *options: str) -> str:
    completed = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", *options,
        ],
        capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def _screenshot(chromium: str, report: Path, screenshot: Path) -> Path:
    """The report as a 1000 x 1400 browser window shows it."""
    _browse(
        chromium, screenshot.parent / "profile-shot", "--window-size=1000,1400",
        "--hide-scrollbars", f"--screenshot={screenshot}", report.resolve().as_uri(),
    )  # fmt: skip
    return screenshot


def _assert_rendered(screenshot: Path) -> None:
    """The screenshot is the window's size and more than one flat colour,
    which is what a page that failed to render would be."""
    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[:2] == (1400, 1000)
    assert pixels[..., :3].std() > 0.05


def _decoded(chromium: str, report: Path, tmp_path: Path) -> dict:
    page = tmp_path / "check.html"
    page.write_text(CHECK_PAGE.format(report=report.resolve().as_uri()))
    dom = _browse(
        chromium, tmp_path / "profile", "--allow-file-access-from-files",
        f"--virtual-time-budget={VIRTUAL_TIME_MS}", "--dump-dom", page.as_uri(),
    )  # fmt: skip
    verdict = re.search(r'<pre id="verdict">(.*?)</pre>', dom, re.S)
    assert verdict, dom[-2000:]
    text = verdict.group(1).replace("&quot;", '"')
    assert text.startswith("{"), text
    return json.loads(text)


def _assert_every_chart_decodes(found: dict, drawn: set[str]) -> None:
    assert found["figures"] == len(drawn)
    assert {image["chart"] for image in found["images"]} == drawn
    for image in found["images"]:
        assert image["complete"], image
        assert image["width"] > 500 and image["height"] > 200, image


def test_sweep_report_opens_in_chromium_with_every_chart_decoded(
    chromium, rate_sweep, tmp_path
):
    html, _ = write_report(rate_sweep)
    drawn = {c.key for c, _ in sweep_charts.draw(data.load(rate_sweep)) if c.drawn}
    assert drawn == {"throughput-vs-rate", "drops-vs-rate"}
    _assert_every_chart_decodes(_decoded(chromium, html, tmp_path), drawn)


def test_run_report_opens_in_chromium_with_every_chart_and_a_screenshot(
    chromium, drops_run, tmp_path
):
    html, _ = write_report(drops_run)
    drawn = {c.key for c in run_charts.draw(data.load(drops_run)) if c.drawn}
    assert len(drawn) == len(run_charts.RUN_CHARTS)
    _assert_every_chart_decodes(_decoded(chromium, html, tmp_path), drawn)
    screenshot = _screenshot(chromium, html, tmp_path / "report.png")
    # The warnings box is drawn in colour at the top.
    _assert_rendered(screenshot)
    keep = os.environ.get("WARDCAST_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(screenshot, keep)


REFERENCE_SWEEP = (
    Path(__file__).resolve().parent.parent / "reports/reference/default-sweep"
)


def test_the_committed_default_sweep_report_opens_with_every_chart_and_a_screenshot(
    chromium, tmp_path
):
    """The report a reviewer opens from a clean checkout, as committed: every
    chart the sweep's data supports is in it, and Chromium decodes each one."""
    html = REFERENCE_SWEEP / "report.html"
    assert html.is_file(), "make reference-report writes it; commit its output"
    drawn = {c.key for c, _ in sweep_charts.draw(data.load(REFERENCE_SWEEP)) if c.drawn}
    assert {"latency-vs-subscribers", "throughput-vs-rate"} <= drawn
    _assert_every_chart_decodes(_decoded(chromium, html, tmp_path), drawn)
    _assert_rendered(_screenshot(chromium, html, tmp_path / "reference.png"))

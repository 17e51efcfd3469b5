"""`wardcast report DIR`: the report of the run or sweep in DIR, written beside it."""

from __future__ import annotations

import logging
from pathlib import Path

from reports import data, document, run_report

logger = logging.getLogger(__name__)


def write_report(folder: Path) -> tuple[Path, Path]:
    """Write DIR/report.html and DIR/report.md from the results on disk."""
    loaded = data.load(folder)
    if isinstance(loaded, data.Sweep):
        from reports import sweep_report

        title, blocks = sweep_report.title(loaded), sweep_report.blocks(loaded)
    else:
        title, blocks = run_report.title(loaded), run_report.blocks(loaded)
    paths = document.write(loaded.folder, title, blocks)
    logger.info("report written to %s", paths[0])
    return paths

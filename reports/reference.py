"""`make reference-report`: the reports committed in reports/reference/.

Runs the reference week and the default sweep on this machine, writes their
reports beside them, and a README saying when and on what machine they were
made, so a reviewer can read the charts without running anything.

    python -m reports.reference [--sweep FILE] [--out DIR] [--no-sweep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from reports.report import write_report
from sim.result import machine

logger = logging.getLogger(__name__)

DEFAULT_OUT = Path("reports/reference")
# The sweep `wardcast sweep` runs by default; the Makefile passes its own.
DEFAULT_SWEEP = Path("bench/scenarios/default.toml")
RUN_FOLDER, SWEEP_FOLDER = "reference-week", "default-sweep"
# The sweep's per-run folders, left out of the repository (see below).
BULKY = ("points", "search")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.reference")
    parser.add_argument("--sweep", type=Path, default=DEFAULT_SWEEP)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-sweep", action="store_true", help="the run only")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    made = [_reference_run(args.out / RUN_FOLDER)]
    sweep_ok = True
    if not args.no_sweep:
        sweep_ok = _reference_sweep(args.sweep, args.out / SWEEP_FOLDER)
        if sweep_ok:
            made.append(
                (
                    f"wardcast sweep {args.sweep} --out {args.out / SWEEP_FOLDER}",
                    SWEEP_FOLDER,
                )
            )
    (args.out / "README.md").write_text(_readme(made, sweep_ok, args.sweep, load))
    return 0 if sweep_ok else 1


def _wardcast(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sim.cli", *args]
    logger.info("%s", " ".join(["wardcast", *args]))
    return subprocess.run(command, text=True, stdin=subprocess.DEVNULL)


def _reference_run(folder: Path) -> tuple[str, str]:
    shutil.rmtree(folder, ignore_errors=True)
    # A failed run is shown as failed in its report, not hidden.
    _wardcast("run", "--no-report", "--out", str(folder))
    write_report(folder)
    return f"wardcast run --out {folder}", RUN_FOLDER


def _reference_sweep(scenario: Path, folder: Path) -> bool:
    shutil.rmtree(folder, ignore_errors=True)
    completed = _wardcast("sweep", str(scenario), "--out", str(folder))
    if completed.returncode != 0 or not (folder / "sweep.json").is_file():
        logger.error(
            "wardcast sweep %s did not write %s/sweep.json (status %d)",
            scenario,
            folder,
            completed.returncode,
        )
        return False
    write_report(folder)
    # Each run's full result.json (histograms per subscriber and per day) is
    # about a hundred megabytes over the sweep: too much for the repository.
    # sweep.json keeps every point's summary and the report was drawn with the
    # full results present.
    (folder / ".gitignore").write_text("".join(f"{name}/\n" for name in BULKY))
    return True


def _readme(
    made: list[tuple[str, str]], sweep_ok: bool, sweep: Path, load: float
) -> str:
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    host = machine()
    lines = [
        "# Reference reports",
        "",
        f"Made by `make reference-report` on {when}, on `{host['hostname']}`:"
        f" {host['cpus']} CPUs, {host['platform']}, Python {host['python']},"
        f" pyzmq {host['pyzmq']}, libzmq {host['libzmq']}. The one-minute load"
        f" average was {load:.2f} when they started; the machine is shared, so"
        " absolute times are noisy, and the ratios to the baseline measured in the"
        " same run survive that better.",
        "",
        "| report | made by |",
        "|---|---|",
    ]
    lines += [
        f"| [{folder}]({folder}/report.md) ([HTML]({folder}/report.html)) | `{cmd}` |"
        for cmd, folder in made
    ]
    if sweep_ok:
        lines += [
            "",
            f"The default sweep's per-run folders ({', '.join(BULKY)}) are not"
            " committed: each run's full result.json is large. Its sweep.json holds"
            " every point's summary, and its report was drawn with them present;"
            " `make reference-report` makes them again.",
        ]
    if not sweep_ok:
        lines += [
            "",
            f"The default sweep (`wardcast sweep {sweep}`) did not complete here,"
            " so its report is missing: run `make reference-report` again once"
            " `wardcast sweep` works.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

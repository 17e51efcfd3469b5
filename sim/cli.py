"""The `wardcast` command line.

Every check of what the user typed happens in `scenario_from_options` (and the
scenario module it calls), which raises ScenarioError; `main` alone turns
errors into one line on standard error and an exit status:

    0  the run passed
    1  the run measured a failure (foreign or malformed updates, a subscriber
       that never reported) or could not finish
    2  the user asked for something that cannot be done
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from sim.errors import RunError, ScenarioError, UserError
from sim.roles import parse_subscriber
from sim.scenario import Scenario, load, parse_rate, resolve

logger = logging.getLogger("sim")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is a ScenarioError like any other."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ScenarioError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wardcast", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="say more: -v for each step, -vv for everything",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    run = commands.add_parser("run", help="one simulated scenario (default: a week)")
    add_scenario_options(run)
    run.add_argument(
        "--out", type=Path, help="folder for the results (default: results/NAME-TIME)"
    )

    sweep = commands.add_parser(
        "sweep", help="a grid of runs from a sweep file, beside a raw-pyzmq baseline"
    )
    sweep.add_argument("file", type=Path, help="a scenario file with a [sweep] table")
    sweep.add_argument(
        "--out", type=Path, help="folder for the sweep (default: results/NAME-TIME)"
    )
    sweep.add_argument(
        "--resume",
        action="store_true",
        help="finish the sweep already in --out, keeping the points it has",
    )

    from sim.realtime import add_publish_options, add_subscribe_options

    add_publish_options(
        commands.add_parser("publish", help="the hospital's publisher, in real time")
    )
    add_subscribe_options(
        commands.add_parser("subscribe", help="one subscriber, in real time")
    )
    return parser


def add_scenario_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", type=Path, help="a scenario file (TOML)")
    parser.add_argument("--name", help="the scenario's name in results")
    parser.add_argument("--patients", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--updates-per-day", type=int)
    parser.add_argument(
        "--subscriber",
        action="append",
        metavar="ROLE[:PATIENTS]",
        help="caregiver:3, psychiatrist:8,9,10 or administration; repeat",
    )
    parser.add_argument(
        "--rate",
        metavar="UPDATES_PER_S|max",
        help="pace by updates per second, or 'max'; default: the clock",
    )
    parser.add_argument(
        "--day-seconds",
        type=float,
        help="wall seconds per simulated day when paced by the clock",
    )
    parser.add_argument(
        "--hwm", type=int, help="high-water mark of every socket (0 = unlimited)"
    )
    parser.add_argument("--message-bytes", type=int, help="bytes per update frame")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--subscribers-per-process", type=int)
    parser.add_argument(
        "--endpoint", help="where the publisher binds (tcp://127.0.0.1:*)"
    )


_OPTION_FIELDS = (
    "name",
    "patients",
    "days",
    "updates_per_day",
    "day_seconds",
    "hwm",
    "message_bytes",
    "seed",
    "subscribers_per_process",
    "endpoint",
)


def scenario_from_options(args: argparse.Namespace) -> Scenario:
    """The scenario the options describe, checked; raises ScenarioError."""
    # A sweep file's [sweep] table is set aside: `run` runs its base scenario.
    scenario = (
        load(args.scenario, extra_keys=frozenset({"sweep"}))[0]
        if args.scenario
        else Scenario()
    )
    changes = {
        key: getattr(args, key)
        for key in _OPTION_FIELDS
        if getattr(args, key) is not None
    }
    if args.rate is not None:
        changes["rate"] = parse_rate(args.rate)
    if args.subscriber:
        changes["subscribers"] = tuple(
            parse_subscriber(text) for text in args.subscriber
        )
    return resolve(scenario.replace(**changes))


def command_run(args: argparse.Namespace) -> int:
    scenario = scenario_from_options(args)
    out = (
        args.out
        or Path("results") / f"{scenario.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    )
    _check_writable(out)

    from sim import result as results
    from sim.harness import Harness

    logger.info(
        "running %s: %d updates to %d subscribers",
        scenario.name,
        scenario.messages,
        len(scenario.subscribers),
    )
    outcome = Harness(scenario, log_level=_log_level(args.verbose)).run()
    record = results.build(outcome)
    path = results.write(record, out)
    print(results.summary(record))
    print(f"result: {path}")
    return (
        EXIT_OK if record["passed"] and record["status"] == "complete" else EXIT_FAILED
    )


def command_sweep(args: argparse.Namespace) -> int:
    from sim.sweep import Sweep
    from sim.sweepspec import load_sweep
    from sim.verdict import describe

    spec = load_sweep(args.file)
    if args.resume and args.out is None:
        raise ScenarioError("--resume needs the --out folder of the sweep to finish")
    out = args.out or Path("results") / f"{spec.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    try:
        document = Sweep(
            spec, out, resume=args.resume, log_level=_log_level(args.verbose)
        ).run()
    except KeyboardInterrupt:
        print(
            f"wardcast: sweep interrupted; finish it with: wardcast sweep {args.file}"
            f" --out {out} --resume",
            file=sys.stderr,
        )
        return 130
    print(describe(document))
    print(f"sweep: {out / 'sweep.json'}")
    failed = [p for p in document["points"] if p["status"] != "done"]
    return EXIT_FAILED if failed else EXIT_OK


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ScenarioError(
            f"cannot create output folder {folder}: {error.strerror};"
            " choose another with --out"
        ) from None
    if (folder / "result.json").exists():
        raise ScenarioError(
            f"{folder} already holds a result.json: choose another --out or remove it"
        )


def _log_level(verbosity: int) -> str:
    return ["WARNING", "INFO", "DEBUG"][min(verbosity, 2)]


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except ScenarioError as error:
        print(f"wardcast: {error}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=_log_level(args.verbose),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from sim import realtime

    handlers = {
        "run": command_run,
        "sweep": command_sweep,
        "publish": realtime.command_publish,
        "subscribe": realtime.command_subscribe,
    }
    try:
        return handlers[args.command](args)
    except UserError as error:
        print(f"wardcast: {error}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as error:
        print(f"wardcast: run failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("wardcast: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
